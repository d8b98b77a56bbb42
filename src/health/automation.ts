import { UNKNOWN_REGION } from '../observe/edge-reports.js';
import { priorityList } from '../routing/compile.js';
import { routeHolds } from '../routing/holds.js';
import type { RampPolicy, RouteState, Snapshot } from '../routing/types.js';
import type { RouteSampleRow, SampleWindow } from '../store/routes.js';
import { summarizeWindow, sumWindows } from '../store/routes.js';
import type { NewEvent } from '../control/command.js';
import { latencyOrder, type RegionLatency } from './latency-order.js';
import { decideCanary, decideMirrorRamp, type Evidence, type RampMove } from './ramp.js';

/** A route's next automation state, with the evidence bookmarks its next steps start after. */
export interface RouteStateChange {
  service: string;
  route: string;
  state: RouteState;
  bookmarks: { mirror: number; canary: number };
  /** Whether traffic moves (a new percent, weight or phase), or only the evidence was used up. */
  moved: boolean;
}

export interface AutomationPlan {
  states: RouteStateChange[];
  events: NewEvent[];
  moves: {
    service: string;
    route: string;
    kind: 'mirror' | 'canary';
    from: number;
    to: number;
    phase: string;
    reason: string;
  }[];
}

/**
 * One automation round for every route with a mirror ramp or a canary: from the samples since the
 * route's last steps (`samples`, by service then route), the pure decisions (src/health/ramp.ts) move
 * mirror percent and canary weight. Paused routes, frozen ones and values held by an override are left
 * alone. Pure: the sync writes what it returns.
 */
export function planAutomation(
  snapshot: Snapshot,
  samples: ReadonlyMap<string, ReadonlyMap<string, readonly RouteSampleRow[]>>,
  bookmarksOf: (service: string, route: string) => { mirror: number; canary: number },
  at: number,
): AutomationPlan {
  const plan: AutomationPlan = { states: [], events: [], moves: [] };
  const { source } = snapshot;
  for (const service of source.services) {
    for (const route of service.routes ?? []) {
      if (!route.state || !(route.mirror?.ramp || route.canary)) continue;
      const held = routeHolds(source.overrides, service.name, route.name, at);
      if (route.state.paused || held.frozen) continue;
      const rows = samples.get(service.name)?.get(route.name) ?? [];
      const bookmarks = bookmarksOf(service.name, route.name);
      let state: RouteState = route.state;
      const next = { ...bookmarks };
      const moved: { kind: 'mirror' | 'canary'; move: RampMove }[] = [];

      // The mirror and the canary each move on their own evidence since their own last step.
      if (route.mirror?.ramp && held.mirrorPercent === null && state.mirrorPercent !== null) {
        const w = sumWindows(rows, bookmarks.mirror);
        const phase = route.canary ? mirrorPhase(route.mirror.ramp, state.mirrorPercent) : state.phase;
        const d = decideMirrorRamp(
          route.mirror.ramp,
          { value: state.mirrorPercent, phase },
          evidence(w.primary),
          evidence(w.mirror),
        );
        if (d.move) moved.push({ kind: 'mirror', move: d.move });
        state = { ...state, mirrorPercent: d.next.value, phase: route.canary ? state.phase : d.next.phase };
        if (d.consumed) next.mirror = Math.max(bookmarks.mirror, w.primary.lastId, w.mirror.lastId);
      }
      if (route.canary && held.canaryWeight === null && state.canaryWeight !== null) {
        const w = sumWindows(rows, bookmarks.canary);
        const d = decideCanary(
          route.canary,
          { value: state.canaryWeight, phase: state.phase },
          evidence(w.primary),
          evidence(w.canary),
        );
        if (d.move) moved.push({ kind: 'canary', move: d.move });
        state = { ...state, canaryWeight: d.next.value, phase: d.next.phase };
        if (d.consumed) next.canary = Math.max(bookmarks.canary, w.primary.lastId, w.canary.lastId);
      }
      if (moved.length === 0 && next.mirror === bookmarks.mirror && next.canary === bookmarks.canary) continue;
      plan.states.push({ service: service.name, route: route.name, state, bookmarks: next, moved: moved.length > 0 });
      for (const { kind, move } of moved) {
        plan.moves.push({
          service: service.name,
          route: route.name,
          kind,
          from: move.from,
          to: move.to,
          phase: move.phase,
          reason: move.reason,
        });
        plan.events.push({
          at,
          service: service.name,
          cluster: null,
          kind: kind === 'mirror' ? 'mirror-ramp' : 'canary',
          message: `route ${route.name}: ${kind === 'mirror' ? 'mirror percent' : 'canary weight'} ${move.from} -> ${move.to} (${move.phase}): ${move.reason}`,
          detail: { route: route.name, ...move },
        });
      }
    }
  }
  return plan;
}

/** The mirror's own phase when the route also has a canary (whose phase the route shows). */
function mirrorPhase(ramp: RampPolicy, percent: number): RouteState['phase'] {
  if (percent >= ramp.max) return 'complete';
  return percent === 0 ? 'halted' : 'ramping';
}

function evidence(w: SampleWindow): Evidence {
  const s = summarizeWindow(w);
  return { samples: s.requests, errorRate: s.errorRate, p95Ms: s.p95Ms };
}

/** How far back edge latencies count for ordering failover. */
export const LATENCY_WINDOW_MS = 10 * 60_000;

/** A client region's failover order by latency: the new one, or null to drop it (distance orders again). */
export interface LatencyOrderChange {
  service: string;
  clientRegion: string;
  order: RegionLatency[] | null;
}

/**
 * Latency-aware failover: per service and client region, the regions beyond the client's own ordered by
 * what edges measured (enough samples, hysteresis), changed only when the order changes. `latencies`
 * are per (service, client region, cluster); `stored` the orders in force.
 */
export function planLatencyOrders(
  snapshot: Snapshot,
  latencies: readonly {
    service: string;
    clientRegion: string;
    cluster: string;
    requests: number;
    latencyMsSum: number;
  }[],
  stored: readonly { service: string; clientRegion: string; regions: { region: string }[] }[],
  at: number,
): { changes: LatencyOrderChange[]; events: NewEvent[] } {
  const out: { changes: LatencyOrderChange[]; events: NewEvent[] } = { changes: [], events: [] };
  // By service, then client region, then cluster region: summed requests and latency.
  const measured = new Map<string, Map<string, Map<string, { requests: number; latencyMsSum: number }>>>();
  for (const l of latencies) {
    const region = snapshot.byName.get(l.service)?.clusters.find((c) => c.name === l.cluster)?.region;
    if (!region || region === l.clientRegion || l.clientRegion === UNKNOWN_REGION) continue;
    const byClient =
      measured.get(l.service) ?? new Map<string, Map<string, { requests: number; latencyMsSum: number }>>();
    measured.set(l.service, byClient);
    const regions = byClient.get(l.clientRegion) ?? new Map<string, { requests: number; latencyMsSum: number }>();
    byClient.set(l.clientRegion, regions);
    const sum = regions.get(region) ?? { requests: 0, latencyMsSum: 0 };
    sum.requests += l.requests;
    sum.latencyMsSum += l.latencyMsSum;
    regions.set(region, sum);
  }
  const keys = new Map<string, Set<string>>();
  for (const [service, byClient] of measured) keys.set(service, new Set(byClient.keys()));
  for (const s of stored) keys.set(s.service, (keys.get(s.service) ?? new Set<string>()).add(s.clientRegion));
  for (const [service, clientRegions] of keys) {
    for (const clientRegion of clientRegions) {
      const samples = [...(measured.get(service)?.get(clientRegion) ?? [])].map(([region, s]) => ({
        region,
        meanMs: Math.round((s.latencyMsSum / s.requests) * 10) / 10,
        samples: s.requests,
      }));
      const before = stored
        .find((s) => s.service === service && s.clientRegion === clientRegion)
        ?.regions.map((r) => r.region);
      // Without a stored order, measured regions start from the order distance gives them, so the first
      // latency order too needs a clear (hysteresis) margin to move a region ahead.
      const order = latencyOrder(before ?? distanceOrder(snapshot, service, clientRegion), samples);
      // A first order is written even when it agrees with distance: the matrix then says latency placed it.
      const changed = before ? order.map((o) => o.region).join() !== before.join() : order.length > 0;
      if (!changed) continue;
      if (order.length === 0) {
        // The evidence aged out: distance orders this client region again.
        out.changes.push({ service, clientRegion, order: null });
        out.events.push({
          at,
          service,
          cluster: null,
          kind: 'latency-order',
          message: `failover for clients in ${clientRegion} back to distance: too few recent samples`,
          detail: { clientRegion, before, after: [] },
        });
        continue;
      }
      out.changes.push({ service, clientRegion, order });
      out.events.push({
        at,
        service,
        cluster: null,
        kind: 'latency-order',
        message: `failover for clients in ${clientRegion} now by measured latency: ${order.map((o) => `${o.region} ${o.meanMs} ms (${o.samples})`).join(', ')}`,
        detail: { clientRegion, before: before ?? [], after: order },
      });
    }
  }
  return out;
}

/** The regions beyond a client's own and its failover rule, in the order distance gives them. */
function distanceOrder(snapshot: Snapshot, service: string, clientRegion: string): string[] {
  const compiled = snapshot.byName.get(service);
  const spec = snapshot.source.services.find((s) => s.name === service);
  if (!compiled || !spec) return [];
  const list = priorityList(
    { ...spec, latencyOrders: {} },
    compiled.clusters,
    clientRegion,
    snapshot.regions.get(clientRegion) ?? null,
    snapshot.regions,
  );
  return list.levels.flatMap((level, i) => (list.reasons[i] === 'distance' && level.region ? [level.region] : []));
}
