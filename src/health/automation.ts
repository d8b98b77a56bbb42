import type { RampPolicy, RouteState, ServiceSpec, Snapshot, SnapshotSource } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { compileSnapshot } from '../routing/compile.js';
import { deleteLatencyOrder, loadLatencyOrders, loadRegionLatencies, saveLatencyOrder, type NewEvent } from '../store/health.js';
import { UNKNOWN_REGION } from '../observe/edge-reports.js';
import { latencyOrder } from './latency-order.js';
import type { Write } from '../store/queries.js';
import { bookmarksOf, loadRouteStates, saveRouteState } from '../store/route-state.js';
import { loadSampleWindows, summarizeWindow, type SampleWindow } from '../store/routes.js';
import { decideCanary, decideMirrorRamp, type Evidence, type RampMove } from './ramp.js';

export interface AutomationResult {
  writes: Write[];
  events: NewEvent[];
  moves: { service: string; route: string; kind: 'mirror' | 'canary'; from: number; to: number; phase: string; reason: string }[];
}

/**
 * One automation round for every route with a mirror ramp or a canary: load the samples since the
 * route's last step, let the pure decisions (src/health/ramp.ts) move mirror percent and canary weight,
 * and return the writes and events for the sync's batch. Paused routes, frozen ones and values held by
 * an override are left alone.
 */
export async function automateRoutes(db: Db, source: SnapshotSource, at: number): Promise<AutomationResult> {
  const result: AutomationResult = { writes: [], events: [], moves: [] };
  const stored = await loadRouteStates(db);
  for (const service of source.services) {
    for (const route of service.routes ?? []) {
      if (!route.state || !(route.mirror?.ramp || route.canary)) continue;
      const held = heldBy(source, service, route.name, at);
      if (route.state.paused || held.frozen) continue;
      const bookmarks = bookmarksOf(stored.get(`${service.name}/${route.name}`));
      let state: RouteState = route.state;
      const next = { ...bookmarks };
      const moved: { kind: 'mirror' | 'canary'; move: RampMove }[] = [];

      // The mirror and the canary each move on their own evidence since their own last step.
      if (route.mirror?.ramp && !held.mirror && state.mirrorPercent !== null) {
        const w = await loadSampleWindows(db, service.name, route.name, { afterId: bookmarks.mirror });
        const phase = route.canary ? mirrorPhase(route.mirror.ramp, state.mirrorPercent) : state.phase;
        const d = decideMirrorRamp(route.mirror.ramp, { value: state.mirrorPercent, phase }, evidence(w.primary), evidence(w.mirror));
        if (d.move) moved.push({ kind: 'mirror', move: d.move });
        state = { ...state, mirrorPercent: d.next.value, phase: route.canary ? state.phase : d.next.phase };
        if (d.consumed) next.mirror = Math.max(bookmarks.mirror, w.primary.lastId, w.mirror.lastId);
      }
      if (route.canary && !held.canary && state.canaryWeight !== null) {
        const w = await loadSampleWindows(db, service.name, route.name, { afterId: bookmarks.canary });
        const d = decideCanary(route.canary, { value: state.canaryWeight, phase: state.phase }, evidence(w.primary), evidence(w.canary));
        if (d.move) moved.push({ kind: 'canary', move: d.move });
        state = { ...state, canaryWeight: d.next.value, phase: d.next.phase };
        if (d.consumed) next.canary = Math.max(bookmarks.canary, w.primary.lastId, w.canary.lastId);
      }
      if (moved.length === 0) continue;
      result.writes.push(saveRouteState(db, service.name, route.name, state, next, at));
      for (const { kind, move } of moved) {
        result.moves.push({ service: service.name, route: route.name, kind, from: move.from, to: move.to, phase: move.phase, reason: move.reason });
        result.events.push({
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
  return result;
}

/** The mirror's own phase when the route also has a canary (whose phase the route shows). */
function mirrorPhase(ramp: RampPolicy, percent: number): RouteState['phase'] {
  if (percent >= ramp.max) return 'complete';
  return percent === 0 ? 'halted' : 'ramping';
}

function heldBy(source: SnapshotSource, service: ServiceSpec, route: string, at: number): { frozen: boolean; mirror: boolean; canary: boolean } {
  const mine = source.overrides.filter((o) => o.expiresAt > at && o.service === service.name && (o.route === route || (o.action === 'freeze' && !o.route)));
  return {
    frozen: mine.some((o) => o.action === 'freeze'),
    mirror: mine.some((o) => o.action === 'mirror-percent'),
    canary: mine.some((o) => o.action === 'canary-weight'),
  };
}

function evidence(w: SampleWindow): Evidence {
  const s = summarizeWindow(w);
  return { samples: s.requests, errorRate: s.errorRate, p95Ms: s.p95Ms };
}

/** How far back edge latencies count for ordering failover. */
export const LATENCY_WINDOW_MS = 10 * 60_000;

/**
 * Latency-aware failover: per service and client region, the regions beyond the client's own ordered by
 * what edges measured (enough samples, hysteresis), written only when the order changes.
 */
export async function orderByLatency(db: Db, source: SnapshotSource, at: number): Promise<Pick<AutomationResult, 'writes' | 'events'>> {
  const [latencies, stored] = await Promise.all([loadRegionLatencies(db, at - LATENCY_WINDOW_MS), loadLatencyOrders(db)]);
  const current = new Map(stored.map((s) => [`${s.service}/${s.clientRegion}`, s.regions.map((r) => r.region)]));
  const out: Pick<AutomationResult, 'writes' | 'events'> = { writes: [], events: [] };
  const byKey = new Map<string, Map<string, { requests: number; latencyMsSum: number }>>();
  for (const l of latencies) {
    const service = source.services.find((s) => s.name === l.service);
    const region = service?.clusters.find((c) => c.name === l.cluster)?.region;
    if (!region || region === l.clientRegion || l.clientRegion === UNKNOWN_REGION) continue;
    const key = `${l.service}/${l.clientRegion}`;
    const regions = byKey.get(key) ?? new Map();
    const sum = regions.get(region) ?? { requests: 0, latencyMsSum: 0 };
    sum.requests += l.requests;
    sum.latencyMsSum += l.latencyMsSum;
    regions.set(region, sum);
    byKey.set(key, regions);
  }
  // Without a stored order, measured regions start from the order distance gives them, so the first
  // latency order too needs a clear (hysteresis) margin to move a region ahead.
  const byDistance = compileSnapshot({ ...source, services: source.services.map((s) => ({ ...s, latencyOrders: {} })) }, at);
  for (const key of new Set([...byKey.keys(), ...current.keys()])) {
    const [service, clientRegion] = key.split('/') as [string, string];
    const measured = [...(byKey.get(key) ?? [])].map(([region, s]) => ({ region, meanMs: Math.round((s.latencyMsSum / s.requests) * 10) / 10, samples: s.requests }));
    const before = current.get(key);
    const start = before ?? distanceOrder(byDistance, service, clientRegion);
    const order = latencyOrder(start, measured);
    // A first order is written even when it agrees with distance: the matrix then says latency placed it.
    const changed = before ? order.map((o) => o.region).join() !== before.join() : order.length > 0;
    if (!changed) continue;
    if (order.length === 0) {
      // The evidence aged out: distance orders this client region again.
      out.writes.push(deleteLatencyOrder(db, service, clientRegion));
      out.events.push({ at, service, cluster: null, kind: 'latency-order', message: `failover for clients in ${clientRegion} back to distance: too few recent samples`, detail: { clientRegion, before, after: [] } });
      continue;
    }
    out.writes.push(saveLatencyOrder(db, service, clientRegion, order, at));
    out.events.push({
      at,
      service,
      cluster: null,
      kind: 'latency-order',
      message: `failover for clients in ${clientRegion} now by measured latency: ${order.map((o) => `${o.region} ${o.meanMs} ms (${o.samples})`).join(', ')}`,
      detail: { clientRegion, before: before ?? [], after: order },
    });
  }
  return out;
}

/** The regions beyond a client's own and its failover rule, in the order distance gives them. */
function distanceOrder(snapshot: Snapshot, service: string, clientRegion: string): string[] {
  const list = snapshot.byName.get(service)?.byRegion.get(clientRegion)?.list;
  if (!list) return [];
  return list.levels.flatMap((level, i) => (list.reasons[i] === 'distance' && level.region ? [level.region] : []));
}
