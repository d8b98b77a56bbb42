import { and, eq, lte, sql, type SQL } from 'drizzle-orm';
import type { LatencyOrderChange, RouteStateChange } from '../health/automation.js';
import type { HealthRecord, ProbeResult } from '../health/evaluate.js';
import type { Db } from '../store/client.js';
import { getOverride, type OverrideRow } from '../store/overrides.js';
import { clusterHealth, clusters, latencyOrders, routes, services, syncState } from '../store/schema.js';
import { done, runCommand, type Actor, type CommandResult, type NewEvent } from './command.js';
import { recordEnd } from './overrides.js';
import { pruneHistory, type Pruned, type Retention } from './retention.js';
import { saveRouteState } from './routes.js';

/** What one health sync concluded, to be written together. */
export interface SyncRound {
  health: { service: string; cluster: string; record: HealthRecord; probe: ProbeResult; changed: boolean }[];
  expired: OverrideRow[];
  routeStates: RouteStateChange[];
  latencyOrders: LatencyOrderChange[];
  events: NewEvent[];
  /** The newest edge report folded in. */
  lastReportId: number;
  /** When the sync read what it planned from: anything created later is not what it judged. */
  readAt: number;
  retention: Retention;
}

/**
 * Writes a health sync's round in one transaction. What was deleted while the sync probed is not
 * brought back, and a namesake created meanwhile does not inherit what was planned for its predecessor:
 * health verdicts only for clusters, automation state only for routes, latency orders only for
 * services that existed when the sync read them (created at or before `readAt`) and still do; expiry
 * only for overrides nobody ended meanwhile. The revision moves only when
 * routing changed (a cluster's state, an override's end, a traffic move, a latency order); history is
 * pruned to its retention in the same transaction.
 */
export function recordSyncRound(
  db: Db,
  actor: Actor,
  round: SyncRound,
): Promise<CommandResult<{ routingChanged: boolean; pruned: Pruned }>> {
  return runCommand(db, actor, async (c) => {
    const { tx } = c;
    const at = actor.now;
    const judged = lte(clusters.createdAt, round.readAt);
    const clusterRows = await tx
      .select({ service: clusters.service, name: clusters.name })
      .from(clusters)
      .where(judged);
    const exists = (service: string, name: string) => clusterRows.some((r) => r.service === service && r.name === name);
    const serviceRows = await tx
      .select({ name: services.name })
      .from(services)
      .where(lte(services.createdAt, round.readAt));
    const serviceExists = (name: string) => serviceRows.some((r) => r.name === name);
    // One statement for every verdict: a remote store answers it in one round trip.
    const verdicts = round.health.filter((h) => exists(h.service, h.cluster));
    if (verdicts.length) {
      await tx
        .insert(clusterHealth)
        .values(
          verdicts.map((h) => ({
            service: h.service,
            cluster: h.cluster,
            state: h.record.state,
            consecutiveSuccesses: h.record.consecutiveSuccesses,
            consecutiveFailures: h.record.consecutiveFailures,
            lastProbeAt: at,
            lastStatus: h.probe.status,
            lastLatencyMs: h.probe.latencyMs,
            lastError: h.probe.error,
            reason: h.record.reason,
            changedAt: h.record.changedAt,
          })),
        )
        .onConflictDoUpdate({
          target: [clusterHealth.service, clusterHealth.cluster],
          set: excluded(clusterHealth, UPDATED_HEALTH_COLUMNS),
        });
    }
    let routingChanged = verdicts.some((h) => h.changed);
    for (const o of round.expired) {
      const row = await getOverride(tx, o.id);
      if (!row || row.endedAt !== null) continue;
      await recordEnd(c, row, 'expired');
      routingChanged = true;
    }
    for (const s of round.routeStates) {
      const [route] = await tx
        .select({ name: routes.name })
        .from(routes)
        .where(and(eq(routes.service, s.service), eq(routes.name, s.route), lte(routes.createdAt, round.readAt)));
      if (!route) continue;
      await saveRouteState(c, s.service, s.route, s.state, s.bookmarks);
      routingChanged ||= s.moved;
    }
    for (const l of round.latencyOrders) {
      if (!serviceExists(l.service)) continue;
      const key = and(eq(latencyOrders.service, l.service), eq(latencyOrders.clientRegion, l.clientRegion));
      if (l.order === null) await tx.delete(latencyOrders).where(key);
      else {
        await tx
          .insert(latencyOrders)
          .values({ service: l.service, clientRegion: l.clientRegion, regions: l.order, updatedAt: at })
          .onConflictDoUpdate({
            target: [latencyOrders.service, latencyOrders.clientRegion],
            set: { regions: l.order, updatedAt: at },
          });
      }
      routingChanged = true;
    }
    for (const e of round.events) {
      if (
        !serviceExists(e.service) ||
        (e.kind === 'cluster-state' && e.cluster !== null && !exists(e.service, e.cluster))
      )
        continue;
      await c.event(e);
    }
    await tx
      .insert(syncState)
      .values({ id: 1, lastRunAt: at, lastReportId: round.lastReportId })
      .onConflictDoUpdate({ target: syncState.id, set: { lastRunAt: at, lastReportId: round.lastReportId } });
    const pruned = await pruneHistory(tx, at, round.retention);
    return done({ routingChanged, pruned }, routingChanged);
  });
}

const UPDATED_HEALTH_COLUMNS = [
  'state',
  'consecutiveSuccesses',
  'consecutiveFailures',
  'lastProbeAt',
  'lastStatus',
  'lastLatencyMs',
  'lastError',
  'reason',
  'changedAt',
] as const;

/** `set` for a multi-row upsert: each column takes the value the conflicting row brought (`excluded.x`). */
function excluded<K extends keyof typeof clusterHealth.$inferInsert>(
  table: typeof clusterHealth,
  columns: readonly K[],
): Record<K, SQL> {
  return Object.fromEntries(columns.map((k) => [k, sql.raw(`excluded.${table[k].name}`)])) as Record<K, SQL>;
}
