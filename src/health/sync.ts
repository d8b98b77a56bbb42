import type { Logger } from '../observe/log.js';
import { compileSnapshot } from '../routing/compile.js';
import { failoverMatrix } from '../routing/matrix.js';
import { splitOrigin } from '../routing/origin.js';
import type { ClusterHealth, Snapshot, SnapshotSource } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { expiredOverrides, insertEvents, loadEdgeWindow, loadHealthRecords, saveSyncState, upsertHealth, type NewEvent } from '../store/health.js';
import { describeTarget, endOverrideWrites } from '../store/overrides.js';
import { commit, listAllClusters, loadSnapshotSource, type Actor, type Write } from '../store/queries.js';
import { automateRoutes, orderByLatency, type AutomationResult } from './automation.js';
import { evaluateHealth, NEW_CLUSTER } from './evaluate.js';
import { mapBounded, probeCluster, type ProbeTransport } from './probe.js';

/** Edge reports are kept this long for later analysis, then deleted by the sync. */
const REPORT_RETENTION_MS = 60 * 60 * 1000;
/**
 * How far back edge evidence counts. Longer than a Cron Trigger's minute, so that a cluster the edges
 * ejected (and so stopped sending to) still counts as failing at the next sync or two.
 */
export const EDGE_WINDOW_MS = 2 * 60 * 1000;
/** The actor the audit log names for what the sync does by itself. */
export const SYNC_ACTOR = 'health-sync';

export interface SyncDeps {
  db: Db;
  now: () => number;
  log: Logger;
  /** Probes in flight at once (Workers allow 6 simultaneous outbound connections). */
  probeConcurrency: number;
  /** How probes are sent: the runtime's transport. */
  transport: ProbeTransport;
  requestId?: string;
}

export interface SyncSummary {
  at: string;
  durationMs: number;
  probed: number;
  states: Record<ClusterHealth, number>;
  changes: { service: string; cluster: string; from: ClusterHealth; to: ClusterHealth; reason: string }[];
  overridesExpired: string[];
  sharesChanged: string[];
  reportsFolded: number;
  /** Mirror percent and canary weight moves, with why. */
  automation: AutomationResult['moves'];
  revisionBumped: boolean;
}

/**
 * The health sync: probe every cluster (bounded concurrency, timeouts), fold in what edges reported,
 * judge health with hysteresis, end expired overrides, move mirror percentages and canary weights from
 * what edges observed, and write it all in one batch with events that say what changed and why. The
 * revision moves (so edges reload) only when routing is affected.
 */
export async function runHealthSync(deps: SyncDeps): Promise<SyncSummary> {
  const { db, now } = deps;
  const started = now();
  const [source, clusters, records, edge, expired] = await Promise.all([
    loadSnapshotSource(db),
    listAllClusters(db),
    loadHealthRecords(db),
    loadEdgeWindow(db, started - EDGE_WINDOW_MS),
    expiredOverrides(db, started),
  ]);
  const probes = await mapBounded(clusters, deps.probeConcurrency, (c) => probeCluster(deps.transport, { ...splitOrigin(c.origin), originHost: c.originHost }, c.healthCheck, now));
  const at = now();
  const actor: Actor = { name: SYNC_ACTOR, requestId: deps.requestId ?? `sync-${at}`, now: at };

  const writes: Write[] = [];
  const newEvents: NewEvent[] = [];
  const changes: SyncSummary['changes'] = [];
  const states: Record<ClusterHealth, number> = { healthy: 0, unhealthy: 0, unknown: 0 };
  const nextState = new Map<string, ClusterHealth>();
  clusters.forEach((c, i) => {
    const key = `${c.service}/${c.name}`;
    const probe = probes[i] as NonNullable<(typeof probes)[number]>;
    const window = edge.windows.get(key);
    const verdict = evaluateHealth(records.get(key) ?? NEW_CLUSTER, probe, window, c.healthCheck, at);
    writes.push(upsertHealth(db, c.service, c.name, verdict.next, probe, at));
    nextState.set(key, verdict.next.state);
    states[verdict.next.state] += 1;
    if (!verdict.change) return;
    changes.push({ service: c.service, cluster: c.name, ...verdict.change });
    newEvents.push({
      at,
      service: c.service,
      cluster: c.name,
      kind: 'cluster-state',
      message: `${c.name} ${verdict.change.from} -> ${verdict.change.to}: ${verdict.change.reason}`,
      detail: { ...verdict.change, probe, edge: window ?? null },
    });
  });
  for (const o of expired) writes.push(...endOverrideWrites(db, actor, o, 'expired'));
  const automation = await automateRoutes(db, source, at);
  const latency = await orderByLatency(db, source, at);
  writes.push(...automation.writes, ...latency.writes);
  newEvents.push(...automation.events, ...latency.events);

  const after: SnapshotSource = {
    ...source,
    services: source.services.map((s) => ({
      ...s,
      clusters: s.clusters.map((c) => ({ ...c, health: nextState.get(`${s.name}/${c.name}`) ?? c.health })),
    })),
  };
  const shareEvents = shareChanges(compileSnapshot(source, edge.lastRunAt ?? started), compileSnapshot(after, at), at);
  newEvents.push(...shareEvents);

  writes.push(...insertEvents(db, newEvents), ...saveSyncState(db, at, edge.lastId, REPORT_RETENTION_MS));
  const routingChanged = changes.length > 0 || expired.length > 0 || automation.writes.length > 0 || latency.writes.length > 0;
  if (routingChanged) await commit(db, actor, writes);
  else await db.batch(writes as [Write, ...Write[]]);

  for (const c of changes) deps.log.log('info', 'cluster health changed', c);
  return {
    at: new Date(at).toISOString(),
    durationMs: now() - started,
    probed: clusters.length,
    states,
    changes,
    overridesExpired: expired.map((o) => `${o.id} (${o.action} ${describeTarget(o)})`),
    sharesChanged: shareEvents.map((e) => e.service),
    reportsFolded: edge.lastId - edge.previousId,
    automation: automation.moves,
    revisionBumped: routingChanged,
  };
}

/** One event per service whose traffic shares moved, with the regions that moved, before and after. */
function shareChanges(before: Snapshot, after: Snapshot, at: number): NewEvent[] {
  const out: NewEvent[] = [];
  for (const [name, service] of after.byName) {
    const previous = before.byName.get(name);
    if (!previous) continue;
    const was = failoverMatrix(before, previous).regions;
    const now = failoverMatrix(after, service).regions;
    const moved: Record<string, { before: Record<string, number>; after: Record<string, number> }> = {};
    for (const [region, entries] of Object.entries(now)) {
      const a = Object.fromEntries((was[region] ?? []).map((e) => [e.cluster, e.share]));
      const b = Object.fromEntries(entries.map((e) => [e.cluster, e.share]));
      if (JSON.stringify(a) !== JSON.stringify(b)) moved[region] = { before: a, after: b };
    }
    const regions = Object.keys(moved);
    if (regions.length === 0) continue;
    out.push({ at, service: name, cluster: null, kind: 'shares', message: `traffic shares moved for clients in ${regions.join(', ')}`, detail: moved });
  }
  return out;
}
