import type { RouteState, ServiceSpec, SnapshotSource } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { loadLatencyOrders, loadRegionLatencies, saveLatencyOrder, type NewEvent } from '../store/health.js';
import { UNKNOWN_REGION } from '../observe/edge-reports.js';
import { latencyOrder } from './latency-order.js';
import type { Write } from '../store/queries.js';
import { loadRouteStates, saveRouteState } from '../store/route-state.js';
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
      const bookmark = stored.get(`${service.name}/${route.name}`)?.sampleBookmark ?? 0;
      const windows = await loadSampleWindows(db, service.name, route.name, { afterId: bookmark });
      const primary = evidence(windows.primary);
      let state: RouteState = route.state;
      let consumed = false;
      const moved: { kind: 'mirror' | 'canary'; move: RampMove }[] = [];

      if (route.mirror?.ramp && !held.mirror && state.mirrorPercent !== null) {
        const d = decideMirrorRamp(route.mirror.ramp, { value: state.mirrorPercent, phase: mirrorPhase(state) }, primary, evidence(windows.mirror));
        if (d.move) moved.push({ kind: 'mirror', move: d.move });
        state = { ...state, mirrorPercent: d.next.value, phase: route.canary ? state.phase : d.next.phase };
        consumed ||= d.consumed;
      }
      if (route.canary && !held.canary && state.canaryWeight !== null) {
        const d = decideCanary(route.canary, { value: state.canaryWeight, phase: state.phase }, primary, evidence(windows.canary));
        if (d.move) moved.push({ kind: 'canary', move: d.move });
        state = { ...state, canaryWeight: d.next.value, phase: d.next.phase };
        consumed ||= d.consumed;
      }
      if (!consumed) continue;
      const lastId = Math.max(bookmark, windows.primary.lastId, windows.mirror.lastId, windows.canary.lastId);
      result.writes.push(saveRouteState(db, service.name, route.name, state, lastId, at));
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
function mirrorPhase(state: RouteState): RouteState['phase'] {
  return state.phase === 'promoted' || state.phase === 'rolled-back' ? 'ramping' : state.phase;
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
  for (const [key, regions] of byKey) {
    const measured = [...regions].map(([region, s]) => ({ region, meanMs: Math.round((s.latencyMsSum / s.requests) * 10) / 10, samples: s.requests }));
    const before = current.get(key) ?? [];
    const order = latencyOrder(before, measured);
    if (order.map((o) => o.region).join() === before.join()) continue;
    const [service, clientRegion] = key.split('/') as [string, string];
    out.writes.push(saveLatencyOrder(db, service, clientRegion, order, at));
    out.events.push({
      at,
      service,
      cluster: null,
      kind: 'latency-order',
      message: `failover for clients in ${clientRegion} now by measured latency: ${order.map((o) => `${o.region} ${o.meanMs} ms (${o.samples})`).join(', ')}`,
      detail: { clientRegion, before, after: order },
    });
  }
  return out;
}
