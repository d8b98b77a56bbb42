import { snapshotAvailability } from './compile.js';
import { distanceKm } from './geo.js';
import { computeShares, pickAttempts, type ShareTable } from './shares.js';
import type { Cluster, CompiledService, RandomSource, RequestFacts, RoutePlan, Snapshot } from './types.js';

/** What this instance saw itself: clusters it ejected after consecutive failures. */
export interface LocalHealth {
  /** Whether any cluster of the service is ejected here (the rare case that needs fresh shares). */
  affects(service: string): boolean;
  isEjected(clusterKey: string): boolean;
}

/** The outcome of routing one request. */
export type Decision =
  | {
      kind: 'route';
      service: CompiledService;
      /** The client's home region as routing understood it; null when unknown. */
      clientRegion: string | null;
      plan: RoutePlan;
      shares: ShareTable;
      /** Clusters to try, in order: the first is the pick, the rest are where retries go. */
      attempts: Cluster[];
    }
  | { kind: 'unknown-host'; host: string }
  | { kind: 'no-cluster'; service: CompiledService; clientRegion: string | null; failClosed: boolean };

/**
 * Routes a request: Host -> service, client -> home region, home region -> plan (priority levels with
 * traffic shares), then a draw by level load and weight, and the retry order after it. Clusters ejected
 * by this instance count as unhealthy. Pure: the same inputs and random sequence give the same decision.
 */
export function decide(snapshot: Snapshot, facts: RequestFacts, random: RandomSource, maxAttempts: number, local?: LocalHealth): Decision {
  const host = normalizeHost(facts.host);
  const service = snapshot.byHost.get(host);
  if (!service) return { kind: 'unknown-host', host };
  const clientRegion = resolveClientRegion(snapshot, facts);
  const plan = (clientRegion !== null && service.byRegion.get(clientRegion)) || service.anyRegion;
  const shares = local?.affects(service.name) ? sharesWithEjections(plan, service, local) : plan.shares;
  const attempts = pickAttempts(shares, random, maxAttempts);
  if (attempts.length === 0) return { kind: 'no-cluster', service, clientRegion, failClosed: shares.closed };
  return { kind: 'route', service, clientRegion, plan, shares, attempts };
}

function sharesWithEjections(plan: RoutePlan, service: CompiledService, local: LocalHealth): ShareTable {
  return computeShares(
    plan.list,
    (c) => {
      const a = snapshotAvailability(c);
      return a === 'healthy' && local.isEjected(c.key) ? 'unhealthy' : a;
    },
    service.policy,
  );
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
  const located = snapshot.locatedRegions;
  for (let i = 0; i < located.length; i++) {
    const { region, location } = located[i] as (typeof located)[number];
    const km = distanceKm(at, location);
    if (km < bestKm) {
      bestKm = km;
      best = region;
    }
  }
  return best;
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
