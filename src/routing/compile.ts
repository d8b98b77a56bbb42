import { distanceKm } from './geo.js';
import type {
  Cluster,
  CompiledService,
  GeoPoint,
  Level,
  LevelReason,
  PriorityList,
  ServiceSpec,
  Snapshot,
  SnapshotSource,
} from './types.js';

/**
 * Compiles the routing table from plain store data. Everything the hot path needs is computed here,
 * once per snapshot version: the host index, and for every known region each service's clusters in
 * failover order.
 */
export function compileSnapshot(source: SnapshotSource): Snapshot {
  const regions = regionCatalog(source.services);
  const byHost = new Map<string, CompiledService>();
  const byName = new Map<string, CompiledService>();
  for (const spec of source.services) {
    const service = compileService(spec, regions);
    byName.set(service.name, service);
    for (const host of service.hosts) byHost.set(host, service);
  }
  return { version: source.version, byHost, byName, regions };
}

/**
 * Every region any service names (clusters and failover rules), located at the centroid of the
 * clusters it holds; null for a region only known by name.
 */
function regionCatalog(services: ServiceSpec[]): Map<string, GeoPoint | null> {
  const sums = new Map<string, { lat: number; lon: number; n: number }>();
  const named = new Set<string>();
  for (const service of services) {
    for (const c of service.clusters) {
      const sum = sums.get(c.region) ?? { lat: 0, lon: 0, n: 0 };
      sum.lat += c.latitude;
      sum.lon += c.longitude;
      sum.n += 1;
      sums.set(c.region, sum);
    }
    for (const rule of service.failover) {
      named.add(rule.from);
      for (const to of rule.to) named.add(to);
    }
  }
  const catalog = new Map<string, GeoPoint | null>();
  for (const [region, s] of sums) catalog.set(region, { lat: s.lat / s.n, lon: s.lon / s.n });
  for (const region of named) if (!catalog.has(region)) catalog.set(region, null);
  return catalog;
}

function compileService(spec: ServiceSpec, regions: ReadonlyMap<string, GeoPoint | null>): CompiledService {
  const clusters: Cluster[] = spec.clusters
    .map((c) => ({
      service: spec.name,
      name: c.name,
      region: c.region,
      origin: c.origin.replace(/\/+$/, ''),
      weight: c.weight,
      labels: c.labels,
      location: { lat: c.latitude, lon: c.longitude },
    }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const byRegion = new Map<string, PriorityList>();
  for (const [region, location] of regions) byRegion.set(region, priorityList(spec, clusters, region, location, regions));
  return {
    name: spec.name,
    hosts: spec.hosts,
    clusters,
    byRegion,
    anyRegion: { levels: clusters.length ? [{ region: null, clusters }] : [], reasons: ['no-locality'] },
  };
}

/**
 * A service's clusters in failover order for clients of `clientRegion`: the client's own region first,
 * then the regions of the first failover rule for it (in the order given), then the rest by great-circle
 * distance from the client's region. When the client's region has no known location, the rest cannot
 * be ranked and share one level.
 */
export function priorityList(
  spec: ServiceSpec,
  clusters: Cluster[],
  clientRegion: string,
  clientLocation: GeoPoint | null,
  regions: ReadonlyMap<string, GeoPoint | null>,
): PriorityList {
  const byRegion = new Map<string, Cluster[]>();
  for (const c of clusters) {
    const list = byRegion.get(c.region);
    if (list) list.push(c);
    else byRegion.set(c.region, [c]);
  }
  const levels: Level[] = [];
  const reasons: LevelReason[] = [];
  const take = (region: string, reason: LevelReason): void => {
    const members = byRegion.get(region);
    if (!members) return;
    byRegion.delete(region);
    levels.push({ region, clusters: members });
    reasons.push(reason);
  };

  take(clientRegion, 'same-region');
  const rule = spec.failover.find((r) => r.from === clientRegion);
  for (const region of rule?.to ?? []) take(region, 'failover-rule');

  if (clientLocation) {
    const rest = [...byRegion.keys()]
      .map((region) => ({ region, km: distanceTo(clientLocation, regions.get(region)) }))
      .sort((a, b) => a.km - b.km || (a.region < b.region ? -1 : 1));
    for (const { region } of rest) take(region, 'distance');
  } else if (byRegion.size > 0) {
    levels.push({ region: null, clusters: [...byRegion.values()].flat() });
    reasons.push('no-locality');
  }
  return { levels, reasons };
}

function distanceTo(from: GeoPoint, to: GeoPoint | null | undefined): number {
  return to ? distanceKm(from, to) : Number.POSITIVE_INFINITY;
}
