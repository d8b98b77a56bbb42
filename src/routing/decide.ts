import { availability } from './availability.js';
import { distanceKm } from './geo.js';
import { unitHash } from './hash.js';
import type { CompiledMatch, RequestView } from './match.js';
import { computeShares, pickAttempts, type ShareTable } from './shares.js';
import { zoneOf } from './zone.js';
import type {
  Cluster,
  CompiledRoute,
  CompiledService,
  RandomSource,
  RequestFacts,
  RoutePlan,
  Snapshot,
  SubsetPlans,
} from './types.js';

/** What this instance saw itself: clusters it ejected after consecutive failures. */
export interface LocalHealth {
  /** Whether any cluster of the service is ejected here (the rare case that needs fresh shares). */
  affects(service: string): boolean;
  isEjected(clusterKey: string): boolean;
}

/** Faults to inject into this request, drawn from the route's percentages. */
interface FaultDecision {
  delayMs: number | null;
  abortStatus: number | null;
}

const NO_FAULT: FaultDecision = { delayMs: null, abortStatus: null };

/** The outcome of routing one request. */
export type Decision =
  | {
      kind: 'route';
      service: CompiledService;
      /** The client's home region as routing understood it; null when unknown. */
      clientRegion: string | null;
      /** The client's zone when its region is known and routing used a zone plan for it; else null. */
      clientZone: string | null;
      /** The route that matched; null: the service's default (every cluster). */
      route: CompiledRoute | null;
      /** Index of the destination the route chose. */
      destination: number | null;
      plan: RoutePlan;
      shares: ShareTable;
      /** Clusters to try, in order: the first is the pick, the rest are where retries go. */
      attempts: Cluster[];
      /** Where a copy of the request goes (the route's mirror, when this request is in its sample). */
      mirror: Cluster | null;
      fault: FaultDecision;
    }
  | { kind: 'unknown-host'; host: string }
  | {
      kind: 'no-cluster';
      service: CompiledService;
      clientRegion: string | null;
      route: CompiledRoute | null;
      failClosed: boolean;
    };

/**
 * Routes a request: Host -> service, then the first route whose match takes the request, then one of
 * its destinations (by weight, or by the affinity key's hash so a key keeps its subset), then inside
 * that subset: client -> home region -> plan (priority levels with traffic shares) -> a draw by level
 * load and weight, and the retry order after it. Clusters ejected by this instance count as unhealthy.
 * Pure: the same inputs and random sequence give the same decision.
 */
export function decide(
  snapshot: Snapshot,
  facts: RequestFacts,
  random: RandomSource,
  maxAttempts: number,
  local?: LocalHealth,
): Decision {
  const host = normalizeHost(facts.host);
  const service = snapshot.byHost.get(host);
  if (!service) return { kind: 'unknown-host', host };
  const clientRegion = resolveClientRegion(snapshot, facts);
  const clientZone = clientRegion !== null ? (facts.clientZone ?? null) : null;
  const route = facts.request && service.routes.length ? matchRoute(service, facts.request) : null;
  let plans: SubsetPlans = service;
  let destination: number | null = null;
  let attemptsAllowed = maxAttempts;
  let mirror: Cluster | null = null;
  let fault = NO_FAULT;
  if (route) {
    const key = affinityKey(route, facts.request);
    destination = pickDestination(route, key, random);
    plans = (route.destinations[destination] as CompiledRoute['destinations'][number]).plans;
    if (route.spec.retries) attemptsAllowed = Math.min(route.spec.retries.attempts + 1, MAX_TRIES);
    if (route.mirror && unitHash(key ?? facts.sampleKey ?? '', MIRROR_SEED) * 100 < route.mirror.percent) {
      mirror = pickAttempts(planFor(route.mirror.plans, clientRegion, clientZone).shares, random, 1)[0] ?? null;
    }
    fault = drawFault(route, random);
  }
  const plan = planFor(plans, clientRegion, clientZone);
  const shares = local?.affects(service.name) ? sharesWithEjections(plan, service, local) : plan.shares;
  const attempts = pickAttempts(shares, random, attemptsAllowed);
  if (attempts.length === 0) return { kind: 'no-cluster', service, clientRegion, route, failClosed: shares.closed };
  return {
    kind: 'route',
    service,
    clientRegion,
    clientZone: zonePlanKey(plans, clientRegion, clientZone),
    route,
    destination,
    plan,
    shares,
    attempts,
    mirror,
    fault,
  };
}

/** Workers allow 6 simultaneous outbound connections per invocation; no request tries more clusters. */
const MAX_TRIES = 6;
/** Seeds the mirror sample's hash apart from the destination's, so the two draws are independent. */
const MIRROR_SEED = 0x6d;

/**
 * The plan for a client: its (region, zone) plan when its zone has clusters in its region (its subzone's
 * first, else its zone's, as Istio matches region/zone/subzone), else its region's, else no locality.
 */
function planFor(plans: SubsetPlans, clientRegion: string | null, clientZone: string | null): RoutePlan {
  if (clientRegion === null) return plans.anyRegion;
  if (clientZone !== null) {
    const key = zonePlanKey(plans, clientRegion, clientZone);
    const zoned = key !== null ? plans.byZone.get(clientRegion)?.get(key) : undefined;
    if (zoned) return zoned;
  }
  return plans.byRegion.get(clientRegion) ?? plans.anyRegion;
}

/** Which zone plan a client in `clientZone` gets: the zone as given, else its zone part; null: none. */
function zonePlanKey(plans: SubsetPlans, clientRegion: string | null, clientZone: string | null): string | null {
  if (clientRegion === null || clientZone === null) return null;
  const zones = plans.byZone.get(clientRegion);
  if (!zones) return null;
  if (zones.has(clientZone)) return clientZone;
  const zone = zoneOf(clientZone);
  return zones.has(zone) ? zone : null;
}

/** The first route, in order, whose match takes the request (path and header gates first, without a call). */
export function matchRoute(service: CompiledService, request: RequestView): CompiledRoute | null {
  const { routeGates, routeHeaderGates, routeMatches } = service;
  const path = request.path;
  for (let i = 0; i < routeMatches.length; i++) {
    const gate = routeGates[i];
    if (gate) {
      if (!path.startsWith(gate)) continue;
    } else {
      const header = routeHeaderGates[i];
      if (header && request.header(header) === null) continue;
    }
    if ((routeMatches[i] as CompiledMatch).test(request)) return service.routes[i] as CompiledRoute;
  }
  return null;
}

/** The request's affinity key (a cookie's or a header's value), when the route has affinity. */
export function affinityKey(route: CompiledRoute, request: RequestView | undefined): string | null {
  const affinity = route.spec.affinity;
  if (!affinity || !request) return null;
  if ('header' in affinity) return request.header(affinity.header);
  return cookieValue(request.header('cookie'), affinity.cookie);
}

/**
 * A destination by weight: with an affinity key, the key's hash picks (so a key keeps its destination
 * while weights stay, and many keys still split by weight); without, the random source does.
 */
export function pickDestination(route: CompiledRoute, key: string | null, random: RandomSource): number {
  if (route.destinations.length === 1) return 0;
  let r = (key !== null ? unitHash(key) : random()) * route.totalWeight;
  for (let i = 0; i < route.destinations.length; i++) {
    const w = (route.destinations[i] as CompiledRoute['destinations'][number]).weight;
    if (w <= 0) continue;
    if (r < w) return i;
    r -= w;
  }
  return Math.max(
    0,
    route.destinations.findLastIndex((d) => d.weight > 0),
  );
}

function drawFault(route: CompiledRoute, random: RandomSource): FaultDecision {
  const fault = route.spec.fault;
  if (!fault) return NO_FAULT;
  const delayMs = fault.delay && random() * 100 < fault.delay.percent ? fault.delay.ms : null;
  const abortStatus = fault.abort && random() * 100 < fault.abort.percent ? fault.abort.status : null;
  return delayMs === null && abortStatus === null ? NO_FAULT : { delayMs, abortStatus };
}

/** One cookie's value from a Cookie header; null when absent. */
export function cookieValue(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function sharesWithEjections(plan: RoutePlan, service: CompiledService, local: LocalHealth): ShareTable {
  return computeShares(
    plan.list,
    (c) => availability(c, { ejectedHere: (x) => local.isEjected(x.key) }),
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

/**
 * Lowercases a Host header value and drops its port (IPv6 literals keep their brackets) and a trailing
 * dot: `shop.test.` is the fully qualified form of `shop.test` (RFC 1034 §3.1), the same host.
 */
export function normalizeHost(value: string): string {
  const host = value.toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  const name = colon < 0 ? host : host.slice(0, colon);
  return name.endsWith('.') ? name.slice(0, -1) : name;
}
