import { affinityKey, decide, resolveClientRegion, type LocalHealth } from './decide.js';
import { distanceKm } from './geo.js';
import { unitHash } from './hash.js';
import { planEntries, type MatrixEntry } from './matrix.js';
import type { RequestView } from './match.js';
import { seededRandom } from './random.js';
import type { RequestFacts, Snapshot, Subset, SubsetRef } from './types.js';

/** The decision for a described request, step by step, in words an operator can follow. */
export interface Explanation {
  host: string;
  service: string | null;
  clientRegion: { region: string | null; how: string };
  /** The zone the client was taken to be in (null: none) and how; `plan` is the zone plan used, if any. */
  clientZone: { zone: string | null; plan: string | null; how: string };
  routes: { route: string; order: number; matched: boolean; why: string }[];
  route: string | null;
  /** `subset` as the route names it; `labels` what it selects (null: a subset name the service does not define). */
  destination: { index: number; subset: SubsetRef; labels: Subset | null; weights: number[]; chosenBy: string } | null;
  candidates: MatrixEntry[];
  panic: boolean;
  failClosed: boolean;
  attempts: string[];
  fault: { delay: string | null; abort: string | null };
  mirror: {
    subset: SubsetRef;
    labels: Subset | null;
    percent: number;
    sampled: boolean;
    cluster: string | null;
  } | null;
  limits: { retries: unknown; timeoutMs: number | null; maxConcurrent: number | null; rateLimit: unknown };
  outcome: string;
}

/**
 * Explains how the edge would route a request: the same pure decision the hot path makes (with a random
 * source seeded from the request id, so an explanation is repeatable), plus why each route did or did
 * not match and the candidate clusters with levels, shares and health.
 */
export function explainDecision(
  snapshot: Snapshot,
  facts: RequestFacts & { request: RequestView; sampleKey: string },
  maxAttempts: number,
  local?: LocalHealth,
): Explanation {
  const random = seededRandom(Math.floor(unitHash(facts.sampleKey) * 2 ** 31));
  const decision = decide(snapshot, facts, random, maxAttempts, local);
  const region = resolveClientRegion(snapshot, facts);
  const how = clientRegionHow(snapshot, facts, region);
  const base: Explanation = {
    host: facts.host,
    service: null,
    clientRegion: { region, how },
    clientZone: clientZoneOf(facts, region, decision.kind === 'route' ? decision.clientZone : null),
    routes: [],
    route: null,
    destination: null,
    candidates: [],
    panic: false,
    failClosed: false,
    attempts: [],
    fault: { delay: null, abort: null },
    mirror: null,
    limits: { retries: null, timeoutMs: null, maxConcurrent: null, rateLimit: null },
    outcome: '',
  };
  if (decision.kind === 'unknown-host') return { ...base, outcome: `404: no service has host "${decision.host}"` };
  const service = decision.service;
  const routes = [];
  for (const r of service.routes) {
    const failed = r.match.conditions.find((c) => !c.test(facts.request));
    routes.push({
      route: r.name,
      order: r.order,
      matched: !failed,
      why: failed
        ? `not matched: needs ${failed.describe}`
        : r.match.conditions.length
          ? `matched: ${r.match.conditions.map((c) => c.describe).join(', ')}`
          : 'matched: the route matches every request',
    });
    if (!failed) break;
  }
  const route = decision.route;
  const explained: Explanation = {
    ...base,
    service: service.name,
    routes,
    route: route?.name ?? null,
    limits: {
      retries: route?.spec.retries ?? null,
      timeoutMs: route?.spec.timeoutMs ?? null,
      maxConcurrent: route?.spec.maxConcurrent ?? null,
      rateLimit: route?.spec.rateLimit ?? null,
    },
  };
  if (decision.kind === 'no-cluster') {
    return {
      ...explained,
      failClosed: decision.failClosed,
      outcome: `503: ${decision.failClosed ? 'too few healthy clusters and the service fails closed' : 'no cluster can take this request'}`,
    };
  }
  const key = route ? affinityKey(route, facts.request) : null;
  const chosen = route && decision.destination !== null ? route.destinations[decision.destination] : undefined;
  const destination =
    route && chosen && decision.destination !== null
      ? {
          index: decision.destination,
          subset: chosen.subset,
          labels: chosen.labels,
          weights: route.destinations.map((d) => d.weight),
          chosenBy:
            key !== null
              ? `affinity key "${key}" (hash of it, stable while the weights stay)`
              : route.destinations.length > 1
                ? 'weighted random draw'
                : 'the only destination',
        }
      : null;
  const fault = route?.spec.fault;
  return {
    ...explained,
    destination,
    candidates: planEntries(decision.plan, decision.shares),
    panic: decision.shares.panic,
    attempts: decision.attempts.map((c) => c.name),
    fault: {
      delay: fault?.delay
        ? `${fault.delay.percent}% of requests wait ${fault.delay.ms} ms${decision.fault.delayMs !== null ? ' (this draw: delayed)' : ' (this draw: not delayed)'}`
        : null,
      abort: fault?.abort
        ? `${fault.abort.percent}% of requests get ${fault.abort.status}${decision.fault.abortStatus !== null ? ' (this draw: aborted)' : ' (this draw: not aborted)'}`
        : null,
    },
    mirror: route?.mirror
      ? {
          subset: route.spec.mirror?.subset ?? {},
          labels: route.mirror.labels,
          percent: route.mirror.percent,
          sampled: decision.mirror !== null,
          cluster: decision.mirror?.name ?? null,
        }
      : null,
    outcome:
      decision.fault.abortStatus !== null
        ? `${decision.fault.abortStatus}: aborted by fault injection before reaching a cluster`
        : `sent to ${decision.attempts[0]?.name}${
            decision.attempts.length > 1
              ? `, then ${decision.attempts
                  .slice(1)
                  .map((c) => c.name)
                  .join(', ')} on retry`
              : ''
          }`,
  };
}

function clientRegionHow(snapshot: Snapshot, facts: RequestFacts, region: string | null): string {
  if (region === null)
    return facts.clientRegion
      ? `region "${facts.clientRegion}" is unknown to routing and no location was given: every cluster in one level`
      : 'no region or location: every cluster in one level';
  if (facts.clientRegion === region) return 'named by the request';
  const at = facts.clientLocation;
  const location = snapshot.regions.get(region);
  return at && location
    ? `nearest known region to ${at.lat},${at.lon} (${Math.round(distanceKm(at, location))} km)`
    : 'nearest known region';
}

const ZONE_SOURCES = {
  header: 'named by the request (x-waymark-client-zone)',
  colo: "the edge colo's zone (WAYMARK_COLO_ZONES)",
  node: "this node's zone (WAYMARK_ZONE)",
} as const;

function clientZoneOf(facts: RequestFacts, region: string | null, plan: string | null): Explanation['clientZone'] {
  const zone = facts.clientZone ?? null;
  if (zone === null) return { zone, plan, how: "no zone known: the region's levels" };
  const source = facts.clientZoneSource ? ZONE_SOURCES[facts.clientZoneSource] : 'named by the request';
  if (region === null) return { zone, plan, how: `${source}; ignored: the client's region is unknown` };
  if (plan === null) return { zone, plan, how: `${source}; no cluster of ${region} is in it: the region's levels` };
  return {
    zone,
    plan,
    how: `${source}; ${plan === zone ? 'its' : `its zone ${plan}'s`} clusters first, then the rest of ${region}`,
  };
}
