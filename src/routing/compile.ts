import { distanceKm } from './geo.js';
import { compileMatch, type CompiledMatch } from './match.js';
import { CompiledCluster } from './cluster.js';
import { availability } from './availability.js';
import { routeHolds } from './holds.js';
import { HostIndex, LazyMap } from './lazy-map.js';
import { computeShares } from './shares.js';
import { DEFAULT_POLICY } from './policy.js';
import { resolveSubset, selects } from './subset.js';
import { localityMatches, patternZone, zoneOf } from './zone.js';
import type {
  Cluster,
  CompiledService,
  GeoPoint,
  Level,
  LevelReason,
  LocalityDistribution,
  OverrideSpec,
  CompiledRoute,
  PriorityList,
  RoutePlan,
  RouteMatch,
  RouteSpec,
  ServicePolicy,
  ZonePlans,
  Subset,
  SubsetPlans,
  SubsetRef,
  ServiceSpec,
  Snapshot,
  SnapshotSource,
  SourceIndex,
} from './types.js';

/**
 * Compiles the routing table from plain store data. The host index is built at once; each service (for
 * every known region its clusters in failover order with their traffic shares under the stored health
 * and the overrides active at `now`) is compiled the first time it is needed, so a cold start pays for
 * the services its requests use. Given the `previous` snapshot, the services it compiled from the very
 * same spec object with the same active overrides are reused as they are: a partial reload keeps the
 * objects of the services that did not change (see `mergeSource`), so it recompiles only the changed ones,
 * and an override's expiry only the service it belonged to.
 */
export function compileSnapshot(source: SnapshotSource, now: number, previous?: Snapshot): Snapshot {
  const index = previous ? updateIndex(previous.index, source.services) : buildIndex(source.services);
  const sameRegions = index === previous?.index && source.partial?.regions === previous.source.partial?.regions;
  const regions = sameRegions ? previous.regions : regionCatalog(index, source.partial?.regions);
  const regionsKey = regions === previous?.regions ? previous.regionsKey : JSON.stringify([...regions]);
  // The services the previous snapshot compiled, copied out: capturing its map instead would keep every
  // earlier snapshot alive through each one's closure (a leak of one snapshot per reload, found by the soak).
  const reusable = previous?.regionsKey === regionsKey ? previous.byName.made() : undefined;
  const activeByService = new Map<string, OverrideSpec[]>();
  let validUntil = Number.POSITIVE_INFINITY;
  for (const o of source.overrides) {
    if (o.expiresAt <= now) continue;
    const list = activeByService.get(o.service);
    if (list) list.push(o);
    else activeByService.set(o.service, [o]);
    validUntil = Math.min(validUntil, o.expiresAt);
  }
  const { specs } = index;
  const byName = new LazyMap(specs, (name: string) => {
    const spec = specs.get(name) as ServiceSpec;
    const overrides = activeByService.get(name) ?? NO_OVERRIDES;
    const old = reusable?.get(name);
    return old && old.spec === spec && sameItems(old.overrides, overrides)
      ? old
      : compileService(spec, regions, overrides, now);
  });
  const byHost = new HostIndex(index.serviceOf, byName);
  const locatedRegions =
    regions === previous?.regions
      ? previous.locatedRegions
      : [...regions].flatMap(([region, location]) => (location ? [{ region, location }] : []));
  return { version: source.version, byHost, byName, regions, regionsKey, locatedRegions, validUntil, source, index };
}

interface MutableIndex {
  specs: Map<string, ServiceSpec>;
  serviceOf: Map<string, string>;
  located: Map<string, { lat: number; lon: number; n: number }>;
  named: Map<string, number>;
}

function buildIndex(services: readonly ServiceSpec[]): SourceIndex {
  const index: MutableIndex = { specs: new Map(), serviceOf: new Map(), located: new Map(), named: new Map() };
  for (const spec of services) account(index, spec, 1);
  return index;
}

/** `previous` updated for `services`: the same object when no spec changed. */
function updateIndex(previous: SourceIndex, services: readonly ServiceSpec[]): SourceIndex {
  const changed: ServiceSpec[] = [];
  for (const spec of services) if (previous.specs.get(spec.name) !== spec) changed.push(spec);
  const kept = services.length - changed.length;
  const stillThere = kept + changed.filter((s) => previous.specs.has(s.name)).length;
  const names = stillThere === previous.specs.size ? null : new Set(services.map((s) => s.name));
  const removed = names ? [...previous.specs.values()].filter((s) => !names.has(s.name)) : [];
  if (changed.length === 0 && removed.length === 0) return previous;
  // A copy: the previous snapshot's requests still read its index.
  const index: MutableIndex = {
    specs: new Map(previous.specs),
    serviceOf: new Map(previous.serviceOf),
    located: new Map([...previous.located].map(([region, sum]) => [region, { ...sum }])),
    named: new Map(previous.named),
  };
  for (const spec of [...removed, ...changed]) {
    const old = previous.specs.get(spec.name);
    if (old) account(index, old, -1);
  }
  for (const spec of changed) account(index, spec, 1);
  return index;
}

/** Adds (+1) or takes out (-1) a service's part of the index. */
function account(index: MutableIndex, spec: ServiceSpec, sign: 1 | -1): void {
  if (sign > 0) index.specs.set(spec.name, spec);
  else index.specs.delete(spec.name);
  for (const host of spec.hosts) {
    if (sign > 0) index.serviceOf.set(host, spec.name);
    else if (index.serviceOf.get(host) === spec.name) index.serviceOf.delete(host);
  }
  for (const c of spec.clusters) {
    const sum = index.located.get(c.region) ?? { lat: 0, lon: 0, n: 0 };
    sum.lat += sign * Math.round(c.latitude * 1e6);
    sum.lon += sign * Math.round(c.longitude * 1e6);
    sum.n += sign;
    if (sum.n === 0) index.located.delete(c.region);
    else index.located.set(c.region, sum);
  }
  for (const rule of spec.failover)
    for (const region of [rule.from, ...rule.to]) {
      const n = (index.named.get(region) ?? 0) + sign;
      if (n === 0) index.named.delete(region);
      else index.named.set(region, n);
    }
}

const NO_OVERRIDES: readonly OverrideSpec[] = [];
const NO_ITEMS: readonly never[] = Object.freeze([]);
const NO_ZONES: ZonePlans = new Map();

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * Every region any service names (clusters and failover rules), located at the centroid of the
 * clusters it holds (to a hundredth of a degree, about a kilometre: adding or removing a cluster at the
 * region's usual coordinates then leaves the catalog as it was, so the other services' compiled plans
 * are kept); null for a region only known by name.
 */
export function regionCatalog(
  index: Pick<SourceIndex, 'located' | 'named'>,
  whole?: readonly (readonly [string, GeoPoint | null])[],
): Map<string, GeoPoint | null> {
  // A partial source carries the catalog of the whole configuration; what it holds only adds regions new since.
  const catalog = new Map<string, GeoPoint | null>(whole);
  for (const [region, s] of index.located)
    if (!whole || !catalog.has(region))
      catalog.set(region, { lat: hundredths(s.lat / s.n / 1e6), lon: hundredths(s.lon / s.n / 1e6) });
  for (const region of index.named.keys()) if (!catalog.has(region)) catalog.set(region, null);
  // In name order: the same regions make the same catalog however they were found.
  return new Map([...catalog].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const hundredths = (degrees: number): number => Math.round(degrees * 100) / 100;

function compileService(
  spec: ServiceSpec,
  regions: ReadonlyMap<string, GeoPoint | null>,
  overrides: readonly OverrideSpec[],
  now: number,
): CompiledService {
  const drains = overrides.filter((o) => o.action === 'drain');
  const clusters: Cluster[] = spec.clusters
    .map(
      (c) =>
        new CompiledCluster(
          spec.name,
          c,
          drains.some(
            (o) => (o.cluster === null || o.cluster === c.name) && (o.region === null || o.region === c.region),
          ),
        ),
    )
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const policy = spec.policy ?? DEFAULT_POLICY;
  const all = new Plans(spec, clusters, regions, overrides, policy);
  // Destinations and mirrors selecting the same clusters (by name or by labels) share one set of plans;
  // a name the service does not define selects none, so such a destination has no cluster to send to.
  const bySelector = new Map<string, SubsetPlans>([['[]', all]]);
  const subsetPlans = (ref: SubsetRef): ResolvedSubset => {
    const labels = resolveSubset(ref, spec.subsets);
    const key = labels ? JSON.stringify(Object.entries(labels).sort()) : 'none';
    let plans = bySelector.get(key);
    if (!plans) {
      const members = labels ? clusters.filter((c) => selects(labels, c.labels)) : [];
      plans = new Plans(spec, members, regions, overrides, policy);
      bySelector.set(key, plans);
    }
    return { labels, plans };
  };
  const routes = spec.routes?.length
    ? [...spec.routes]
        .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : 1))
        .map((r) => compileRoute(r, spec.name, subsetPlans, overrides, now))
    : (NO_ITEMS as never[]);
  return new Service(spec, overrides, policy, all, routes);
}

/** A compiled service: its own plans are those of all its clusters (see `Plans`), read through. */
class Service implements CompiledService {
  readonly name: string;
  readonly hosts: string[];
  readonly routeGates: (string | null)[];
  readonly routeHeaderGates: (string | null)[];
  readonly routeMatches: CompiledMatch[];
  readonly #plans: SubsetPlans;

  constructor(
    readonly spec: ServiceSpec,
    readonly overrides: readonly OverrideSpec[],
    readonly policy: ServicePolicy,
    plans: SubsetPlans,
    readonly routes: CompiledRoute[],
  ) {
    this.name = spec.name;
    this.hosts = spec.hosts;
    this.#plans = plans;
    // Most services have no routes: they share one empty array for each (never written to).
    this.routeGates = routes.length ? routes.map((r) => r.match.pathGate) : (NO_ITEMS as never[]);
    this.routeHeaderGates = routes.length ? routes.map((r) => r.match.headerGate) : (NO_ITEMS as never[]);
    this.routeMatches = routes.length ? routes.map((r) => r.match) : (NO_ITEMS as never[]);
  }

  get clusters(): Cluster[] {
    return this.#plans.clusters;
  }
  get byRegion(): ReadonlyMap<string, RoutePlan> {
    return this.#plans.byRegion;
  }
  get byZone(): ZonePlans {
    return this.#plans.byZone;
  }
  get anyRegion(): RoutePlan {
    return this.#plans.anyRegion;
  }
}

/** A route's subset resolved against its service: the labels it stands for (null: an undefined name) and their plans. */
interface ResolvedSubset {
  labels: Subset | null;
  plans: SubsetPlans;
}

function compileRoute(
  spec: RouteSpec,
  service: string,
  subsetPlans: (ref: SubsetRef) => ResolvedSubset,
  overrides: readonly OverrideSpec[],
  now: number,
): CompiledRoute {
  const held = routeHolds(overrides, service, spec.name, now);
  const destinations = spec.destinations.map((d) => ({
    subset: d.subset,
    weight: d.weight,
    ...subsetPlans(d.subset),
    canary: false,
  }));
  if (spec.canary) {
    // The canary's weight (held by an override, else automation's, else its first step) comes out of
    // the other destinations in proportion to theirs.
    const weight = held.canaryWeight ?? spec.state?.canaryWeight ?? spec.canary.stepWeight;
    const others = destinations.reduce((sum, d) => sum + d.weight, 0);
    for (const d of destinations) d.weight = others > 0 ? (d.weight * (100 - weight)) / others : 0;
    destinations.push({ subset: spec.canary.subset, weight, ...subsetPlans(spec.canary.subset), canary: true });
  }
  const mirrorPercent = spec.mirror ? (held.mirrorPercent ?? spec.state?.mirrorPercent ?? spec.mirror.percent) : 0;
  return {
    name: spec.name,
    order: spec.order,
    spec,
    match: sharedMatch(spec.match),
    destinations,
    totalWeight: destinations.reduce((sum, d) => sum + d.weight, 0),
    mirror: spec.mirror && mirrorPercent > 0 ? { percent: mirrorPercent, ...subsetPlans(spec.mirror.subset) } : null,
    retryOn: spec.retries ? new Set(spec.retries.retryOn) : null,
  };
}

/**
 * Compiled matches are shared by every route with the same match in the snapshot (many services carry
 * the same rules): one compile, one RegExp, and less memory for the hot path to walk.
 */
let matchCache = new Map<string, CompiledMatch>();
function sharedMatch(match: RouteMatch): CompiledMatch {
  const key = JSON.stringify(match);
  let compiled = matchCache.get(key);
  if (!compiled) {
    compiled = compileMatch(match);
    if (matchCache.size >= MATCH_CACHE_MAX) matchCache = new Map();
    matchCache.set(key, compiled);
  }
  return compiled;
}
const MATCH_CACHE_MAX = 100_000;

/**
 * For a set of clusters (a service, or a subset of it): a plan per client region, per client region and
 * zone (only for the zones its clusters are in), and one for no region. Each is made the first time a
 * client needs it: an isolate holds plans only for where its clients are. A class with the makers as
 * methods, not closures: a snapshot holds one per service and subset, and a named closure costs a few
 * hundred bytes once bundled (esbuild's keepNames gives each its own `name` property).
 */
class Plans implements SubsetPlans {
  readonly byRegion: ReadonlyMap<string, RoutePlan>;
  readonly byZone: ZonePlans;
  #anyRegion: RoutePlan | undefined;
  readonly #spec: ServiceSpec;
  readonly #regions: ReadonlyMap<string, GeoPoint | null>;
  readonly #overrides: readonly OverrideSpec[];
  readonly #policy: ServicePolicy;

  constructor(
    spec: ServiceSpec,
    readonly clusters: Cluster[],
    regions: ReadonlyMap<string, GeoPoint | null>,
    overrides: readonly OverrideSpec[],
    policy: ServicePolicy,
  ) {
    this.#spec = spec;
    this.#regions = regions;
    this.#overrides = overrides;
    this.#policy = policy;
    this.byRegion = new LazyMap(regions, (region: string) => this.#regionPlan(region));
    const zones = zonesByRegion(clusters, regions, policy.distribute ?? []);
    this.byZone = zones ? new LazyMap(zones, (region: string) => this.#zonePlans(region, zones)) : NO_ZONES;
  }

  /** Made the first time a client of no known region asks (an isolate whose clients are all located never does). */
  get anyRegion(): RoutePlan {
    const { clusters } = this;
    this.#anyRegion ??= this.#plan({
      levels: clusters.length ? [{ region: null, clusters }] : [],
      reasons: clusters.length ? ['no-locality'] : [],
    });
    return this.#anyRegion;
  }

  #regionPlan(region: string): RoutePlan {
    const rules = this.#policy.distribute ?? [];
    return this.#plan(pinned(distributed(this.#listFor(region), rules, region, null), this.#pinIn(region)));
  }

  #zonePlans(region: string, zones: ReadonlyMap<string, ReadonlySet<string>>): Map<string, RoutePlan> {
    const rules = this.#policy.distribute ?? [];
    const list = this.#listFor(region);
    const pin = this.#pinIn(region);
    const plans = new Map<string, RoutePlan>();
    for (const zone of zones.get(region) ?? [])
      plans.set(zone, this.#plan(pinned(distributed(zonedList(list, zone), rules, region, zone), pin)));
    return plans;
  }

  #listFor(region: string): PriorityList {
    return priorityList(this.#spec, this.clusters, region, this.#regions.get(region) ?? null, this.#regions);
  }

  #pinIn(region: string): string | null {
    return this.#overrides.find((o) => o.action === 'pin' && o.region === region)?.cluster ?? null;
  }

  #plan(built: PriorityList): RoutePlan {
    const list = exactList(built);
    return { list, shares: computeShares(list, (c) => availability(c), this.#policy) };
  }
}

/**
 * The list with every array exactly as long as it is: an array grown by push keeps spare room (a small one
 * costs about three times its exact size), and a snapshot holds hundreds of thousands of them.
 */
function exactList(list: PriorityList): PriorityList {
  return {
    levels: list.levels.map((l) => ({ region: l.region, clusters: l.clusters.slice() })),
    reasons: list.reasons.slice(),
  };
}

/**
 * Istio's localityLbSetting.distribute for clients in `region` and `zone`: when a rule's `from` covers
 * them (the first that does), the clusters of its `to` localities form level 0, each locality's percent
 * spread over its clusters by weight; a locality with no cluster here gives its share to the others (as
 * Envoy normalises locality weights). The other clusters keep their order behind, so that when the
 * distributed ones fail, traffic fails over by priority (istio/istio#35124: distribute with failover).
 */
function distributed(
  list: PriorityList,
  rules: readonly LocalityDistribution[],
  region: string,
  zone: string | null,
): PriorityList {
  const rule = rules.find((r) => localityMatches(r.from, region, zone));
  if (!rule) return list;
  const all = list.levels.flatMap((l) => l.clusters);
  const taken = new Set<Cluster>();
  const weighted: Cluster[] = [];
  for (const [locality, percent] of Object.entries(rule.to)) {
    const members = all.filter((c) => !taken.has(c) && localityMatches(locality, c.region, c.zone));
    for (const c of members) taken.add(c);
    const total = members.reduce((sum, c) => sum + c.weight, 0);
    if (percent <= 0 || total <= 0) continue;
    // Every cluster of a compiled snapshot is a CompiledCluster (see compileService).
    for (const c of members) weighted.push((c as CompiledCluster).withWeight((percent * c.weight) / total));
  }
  if (weighted.length === 0) return list;
  const levels: Level[] = [{ region: null, clusters: weighted }];
  const reasons: LevelReason[] = ['distribute'];
  list.levels.forEach((level, i) => {
    const rest = level.clusters.filter((c) => !taken.has(c));
    if (rest.length === 0) return;
    levels.push({ region: level.region, clusters: rest });
    reasons.push(list.reasons[i] as LevelReason);
  });
  return { levels, reasons };
}

/**
 * Per region, the zones its clients get plans of their own for: those of its clusters and those a
 * distribute rule names; null when there are none (most services).
 */
function zonesByRegion(
  clusters: Cluster[],
  regions: ReadonlyMap<string, GeoPoint | null>,
  rules: readonly LocalityDistribution[],
): Map<string, Set<string>> | null {
  let out: Map<string, Set<string>> | null = null;
  for (const region of regions.keys()) {
    const zones = zonesIn(clusters, region);
    for (const rule of rules) {
      const named = patternZone(rule.from);
      if (named?.region === region) zones.add(named.zone);
    }
    if (zones.size > 0) (out ??= new Map()).set(region, zones);
  }
  return out;
}

/** The zones (as given, and the zone part of each `zone/subzone`) the clusters of `region` are in. */
function zonesIn(clusters: Cluster[], region: string): Set<string> {
  const zones = new Set<string>();
  for (const c of clusters) {
    if (c.region !== region || c.zone === null) continue;
    zones.add(c.zone);
    zones.add(zoneOf(c.zone));
  }
  return zones;
}

/**
 * A region's priority list for a client in `clientZone` (`zone` or `zone/subzone`): its same-region
 * level split as Istio orders localities, the client's subzone first (when it names one), then the rest
 * of its zone, then the rest of the region; the levels after are the region's.
 */
function zonedList(list: PriorityList, clientZone: string): PriorityList {
  const first = list.levels[0];
  if (!first || list.reasons[0] !== 'same-region') return list;
  const zone = zoneOf(clientZone);
  const hasSubzone = zone !== clientZone;
  const subzone: Cluster[] = [];
  const sameZone: Cluster[] = [];
  const rest: Cluster[] = [];
  for (const c of first.clusters) {
    if (hasSubzone && c.zone === clientZone) subzone.push(c);
    else if (c.zone !== null && zoneOf(c.zone) === zone) sameZone.push(c);
    else rest.push(c);
  }
  const levels: Level[] = [];
  const reasons: LevelReason[] = [];
  const add = (clusters: Cluster[], reason: LevelReason): void => {
    if (clusters.length === 0) return;
    levels.push({ region: first.region, clusters });
    reasons.push(reason);
  };
  add(subzone, 'same-subzone');
  add(sameZone, 'same-zone');
  add(rest, 'same-region');
  return { levels: [...levels, ...list.levels.slice(1)], reasons: [...reasons, ...list.reasons.slice(1)] };
}

/** A pin puts its cluster in a level of its own ahead of the others, so it is first while healthy. */
function pinned(list: PriorityList, cluster: string | null): PriorityList {
  const target = cluster === null ? undefined : list.levels.flatMap((l) => l.clusters).find((c) => c.name === cluster);
  if (!target) return list;
  const levels: Level[] = [{ region: target.region, clusters: [target] }];
  const reasons: LevelReason[] = ['pin'];
  list.levels.forEach((level, i) => {
    const rest = level.clusters.filter((c) => c !== target);
    if (rest.length === 0) return;
    levels.push({ region: level.region, clusters: rest });
    reasons.push(list.reasons[i] as LevelReason);
  });
  return { levels, reasons };
}

/**
 * A service's clusters in failover order for clients of `clientRegion`: the client's own region first,
 * then the regions of the first failover rule for it (in the order given), then the regions measured
 * latency ordered (when edges reported enough), then the rest by great-circle distance from the
 * client's region. When the client's region has no known location, the rest cannot
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
  for (const region of spec.latencyOrders?.[clientRegion] ?? []) take(region, 'latency');

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
