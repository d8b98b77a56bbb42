import type { Actor, NewEvent } from '../control/command.js';
import { describeTarget } from '../control/overrides.js';
import type { Pruned, Retention } from '../control/retention.js';
import { recordSyncRound, type SyncRound } from '../control/sync-round.js';
import type { Logger } from '../observe/log.js';
import { compileSnapshot } from '../routing/compile.js';
import { failoverMatrix } from '../routing/matrix.js';
import { splitOrigin } from '../routing/origin.js';
import type { ClusterHealth, Snapshot, SnapshotSource } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { loadEdgeWindow, loadHealthRecords, loadLatencyOrders, loadRegionLatencies } from '../store/health.js';
import { acquireLease, releaseLease } from '../store/lease.js';
import { expiredOverrides } from '../store/overrides.js';
import { bookmarksOf, loadRouteStates } from '../store/route-state.js';
import { loadUnusedSamples } from '../store/routes.js';
import { listAllClusters } from '../store/services.js';
import type { SnapshotCache } from '../store/snapshots.js';
import { LATENCY_WINDOW_MS, planAutomation, planLatencyOrders, type AutomationPlan } from './automation.js';
import { evaluateHealth, NEW_CLUSTER } from './evaluate.js';
import { mapBounded, probeCluster, type ProbeTransport } from './probe.js';

/**
 * How far back edge evidence counts. Longer than a Cron Trigger's minute, so that a cluster the edges
 * ejected (and so stopped sending to) still counts as failing at the next sync or two.
 */
const EDGE_WINDOW_MS = 2 * 60 * 1000;
/** The actor the audit log names for what the sync does by itself. */
const SYNC_ACTOR = 'health-sync';
/** The lease's name in the store: one sync runs at a time, anywhere. */
const SYNC_LEASE = 'health-sync';
/** A sync that died holding the lease gives it up after this long. */
const SYNC_LEASE_TTL_MS = 5 * 60_000;

export interface SyncDeps {
  db: Db;
  /** The snapshot pipeline: the sync starts from the snapshot at the store's current revision. */
  snapshots: SnapshotCache;
  now: () => number;
  log: Logger;
  /** Probes in flight at once (Workers allow 6 simultaneous outbound connections). */
  probeConcurrency: number;
  /** How probes are sent: the runtime's transport. */
  transport: ProbeTransport;
  /** Who runs it, for the lease: this process or isolate. */
  holder: string;
  /** At most one sync per this interval across every process and isolate (0: whenever asked). */
  minIntervalMs: number;
  retention: Retention;
  requestId?: string;
}

/** What a sync did, or why it did not run. */
export type SyncSummary = SyncRan | SyncSkipped;

interface SyncSkipped {
  skipped: true;
  at: string;
  reason: string;
  /** Who holds the lease, and until when (ISO 8601). */
  holder: string;
  until: string;
}

interface SyncRan {
  skipped: false;
  at: string;
  durationMs: number;
  probed: number;
  states: Record<ClusterHealth, number>;
  changes: { service: string; cluster: string; from: ClusterHealth; to: ClusterHealth; reason: string }[];
  overridesExpired: string[];
  sharesChanged: string[];
  reportsFolded: number;
  /** Mirror percent and canary weight moves, with why. */
  automation: AutomationPlan['moves'];
  revisionBumped: boolean;
  /** Rows of history that went past their retention. */
  pruned: Pruned;
}

/**
 * The health sync: take the sync lease (one run per interval across every process and isolate; the
 * others skip and say who holds it), probe every cluster (bounded concurrency, timeouts), fold in what
 * edges reported, judge health with hysteresis, end expired overrides, move mirror percentages and
 * canary weights from what edges observed, order failover by measured latency, and write it all in one
 * transaction with events that say what changed and why.
 */
export async function runHealthSync(deps: SyncDeps): Promise<SyncSummary> {
  const { db, now } = deps;
  const started = now();
  const lease = await acquireLease(db, {
    name: SYNC_LEASE,
    holder: deps.holder,
    now: started,
    ttlMs: SYNC_LEASE_TTL_MS,
    minIntervalMs: deps.minIntervalMs,
  });
  if (!lease.ok) {
    const reason =
      lease.reason === 'held' ? 'another instance is running the sync' : 'the sync already ran in this interval';
    return {
      skipped: true,
      at: new Date(started).toISOString(),
      reason,
      holder: lease.holder,
      until: new Date(lease.until).toISOString(),
    };
  }
  try {
    return await syncOnce(deps, started);
  } finally {
    await releaseLease(db, { name: SYNC_LEASE, holder: deps.holder, now: now() }).catch((error: unknown) =>
      deps.log.log('warn', 'could not release the sync lease', { error: String(error) }),
    );
  }
}

async function syncOnce(deps: SyncDeps, started: number): Promise<SyncRan> {
  const { db, now } = deps;
  const before = await deps.snapshots.latest();
  if (!before) throw new Error('the routing table cannot be loaded from the store');
  const [clusters, records, edge, expired, samples, states, latencies, orders] = await Promise.all([
    listAllClusters(db),
    loadHealthRecords(db),
    loadEdgeWindow(db, started - EDGE_WINDOW_MS),
    expiredOverrides(db, started),
    loadUnusedSamples(db),
    loadRouteStates(db),
    loadRegionLatencies(db, started - LATENCY_WINDOW_MS),
    loadLatencyOrders(db),
  ]);
  const probes = await mapBounded(clusters, deps.probeConcurrency, (c) =>
    probeCluster(deps.transport, { ...splitOrigin(c.origin), originHost: c.originHost }, c.healthCheck, now),
  );
  const at = now();
  const actor: Actor = { name: SYNC_ACTOR, requestId: deps.requestId ?? `sync-${at}`, now: at };

  const events: NewEvent[] = [];
  const changes: SyncRan['changes'] = [];
  const counts: Record<ClusterHealth, number> = { healthy: 0, unhealthy: 0, unknown: 0 };
  const nextState = new Map<string, Map<string, ClusterHealth>>();
  const health: SyncRound['health'] = clusters.map((c, i) => {
    const probe = probes[i] as NonNullable<(typeof probes)[number]>;
    const window = edge.windows.get(c.service)?.get(c.name);
    const verdict = evaluateHealth(
      records.get(c.service)?.get(c.name) ?? NEW_CLUSTER,
      probe,
      window,
      c.healthCheck,
      at,
    );
    nextState.set(
      c.service,
      (nextState.get(c.service) ?? new Map<string, ClusterHealth>()).set(c.name, verdict.next.state),
    );
    counts[verdict.next.state] += 1;
    if (verdict.change) {
      changes.push({ service: c.service, cluster: c.name, ...verdict.change });
      events.push({
        at,
        service: c.service,
        cluster: c.name,
        kind: 'cluster-state',
        message: `${c.name} ${verdict.change.from} -> ${verdict.change.to}: ${verdict.change.reason}`,
        detail: { ...verdict.change, probe, edge: window ?? null },
      });
    }
    return { service: c.service, cluster: c.name, record: verdict.next, probe, changed: verdict.change !== null };
  });
  const automation = planAutomation(
    before,
    samples,
    (service, route) => bookmarksOf(states.get(service)?.get(route)),
    at,
  );
  const latency = planLatencyOrders(before, latencies, orders, at);
  events.push(...automation.events, ...latency.events);

  // The one compile of the run: the table as it will be after this round's health verdicts. Services
  // no verdict changed keep their spec objects, so their compiled form is reused as it is.
  const moved = new Set(changes.map((c) => c.service));
  const afterSource: SnapshotSource = {
    ...before.source,
    services: before.source.services.map((s) =>
      moved.has(s.name)
        ? {
            ...s,
            clusters: s.clusters.map((c) => ({ ...c, health: nextState.get(s.name)?.get(c.name) ?? c.health })),
          }
        : s,
    ),
  };
  // Shares can move only where a verdict changed or an override ended.
  const candidates = new Set([...moved, ...expired.map((o) => o.service)]);
  const shareEvents = shareChanges(before, compileSnapshot(afterSource, at, before), candidates, at);
  events.push(...shareEvents);

  const written = await recordSyncRound(db, actor, {
    health,
    expired,
    routeStates: automation.states,
    latencyOrders: latency.changes,
    events,
    lastReportId: edge.lastId,
    readAt: started,
    retention: deps.retention,
  });
  if (!written.ok) throw new Error(written.problem.detail);
  for (const c of changes) deps.log.log('info', 'cluster health changed', c);
  return {
    skipped: false,
    at: new Date(at).toISOString(),
    durationMs: now() - started,
    probed: clusters.length,
    states: counts,
    changes,
    overridesExpired: expired.map((o) => `${o.id} (${o.action} ${describeTarget(o)})`),
    sharesChanged: shareEvents.map((e) => e.service),
    reportsFolded: edge.lastId - edge.previousId,
    automation: automation.moves,
    revisionBumped: written.value.routingChanged,
    pruned: written.value.pruned,
  };
}

/** One event per service whose traffic shares moved, with the regions that moved, before and after. */
function shareChanges(before: Snapshot, after: Snapshot, candidates: ReadonlySet<string>, at: number): NewEvent[] {
  const out: NewEvent[] = [];
  for (const name of candidates) {
    const previous = before.byName.get(name);
    const service = after.byName.get(name);
    if (!previous || !service || previous === service) continue;
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
    out.push({
      at,
      service: name,
      cluster: null,
      kind: 'shares',
      message: `traffic shares moved for clients in ${regions.join(', ')}`,
      detail: moved,
    });
  }
  return out;
}
