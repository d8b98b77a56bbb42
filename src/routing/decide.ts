import { distanceKm } from './geo.js';
import type { Cluster, CompiledService, PriorityList, RandomSource, RequestFacts, Snapshot } from './types.js';

/** The outcome of routing one request. */
export type Decision =
  | {
      kind: 'route';
      service: CompiledService;
      /** The client's home region as routing understood it; null when unknown. */
      clientRegion: string | null;
      list: PriorityList;
      /** Clusters to try, in order: the first is the pick, the rest are where retries go. */
      attempts: Cluster[];
    }
  | { kind: 'unknown-host'; host: string }
  | { kind: 'no-cluster'; service: CompiledService; clientRegion: string | null };

/**
 * Routes a request: Host -> service, client -> home region, home region -> priority list, then a
 * weighted choice inside each level, level by level, for up to `maxAttempts` clusters.
 * Pure: the same snapshot, facts and random sequence give the same decision.
 */
export function decide(snapshot: Snapshot, facts: RequestFacts, random: RandomSource, maxAttempts: number): Decision {
  const host = normalizeHost(facts.host);
  const service = snapshot.byHost.get(host);
  if (!service) return { kind: 'unknown-host', host };
  const clientRegion = resolveClientRegion(snapshot, facts);
  const list = (clientRegion !== null && service.byRegion.get(clientRegion)) || service.anyRegion;
  const attempts = planAttempts(list, random, maxAttempts);
  if (attempts.length === 0) return { kind: 'no-cluster', service, clientRegion };
  return { kind: 'route', service, clientRegion, list, attempts };
}

/**
 * The client's home region: the region it names when routing knows it, else the known region nearest
 * to its location by great-circle distance, else null.
 */
export function resolveClientRegion(snapshot: Snapshot, facts: RequestFacts): string | null {
  if (facts.clientRegion !== undefined && snapshot.regions.has(facts.clientRegion)) return facts.clientRegion;
  const at = facts.clientLocation;
  if (!at) return null;
  let best: string | null = null;
  let bestKm = Number.POSITIVE_INFINITY;
  for (const [region, location] of snapshot.regions) {
    if (!location) continue;
    const km = distanceKm(at, location);
    if (km < bestKm) {
      bestKm = km;
      best = region;
    }
  }
  return best;
}

/**
 * Up to `max` distinct clusters in the order they should be tried: levels in priority order, and inside
 * a level a weighted draw without replacement (weight-0 clusters come last in their level).
 */
export function planAttempts(list: PriorityList, random: RandomSource, max: number): Cluster[] {
  const out: Cluster[] = [];
  for (const level of list.levels) {
    if (out.length >= max) break;
    const members = level.clusters;
    if (members.length === 1) {
      out.push(members[0] as Cluster);
      continue;
    }
    const pool = members.slice();
    let total = 0;
    for (const c of pool) total += c.weight;
    while (pool.length > 0 && out.length < max) {
      let index = 0;
      if (total > 0) {
        let r = random() * total;
        while (index < pool.length - 1 && r >= (pool[index] as Cluster).weight) {
          r -= (pool[index] as Cluster).weight;
          index += 1;
        }
      }
      const [picked] = pool.splice(index, 1) as [Cluster];
      total -= picked.weight;
      out.push(picked);
    }
  }
  return out;
}

/** Lowercases a Host header value and drops its port (IPv6 literals keep their brackets). */
export function normalizeHost(value: string): string {
  const host = value.toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}
