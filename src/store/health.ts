import { and, desc, eq, gte, isNull, lt, lte, sql } from 'drizzle-orm';
import type { EdgeWindow, HealthRecord, ProbeResult } from '../health/evaluate.js';
import type { EdgeReport } from '../observe/edge-reports.js';
import type { Db } from './client.js';
import type { Write } from './queries.js';
import { clusterHealth, edgeReports, events, latencyOrders, overrides, syncState } from './schema.js';

/** An event as stored and listed. */
export interface EventEntry {
  id: number;
  at: number;
  service: string;
  cluster: string | null;
  kind: string;
  message: string;
  detail: unknown;
}

export type NewEvent = Omit<EventEntry, 'id'>;

export async function loadHealthRecords(db: Db): Promise<Map<string, HealthRecord>> {
  const rows = await db.select().from(clusterHealth);
  return new Map(
    rows.map((r) => [
      `${r.service}/${r.cluster}`,
      { state: r.state, consecutiveSuccesses: r.consecutiveSuccesses, consecutiveFailures: r.consecutiveFailures, reason: r.reason, changedAt: r.changedAt },
    ]),
  );
}

/** One batch insert of what an instance observed; nothing when there is nothing to say. */
export async function insertEdgeReports(db: Db, instance: string, at: number, rows: EdgeReport[]): Promise<void> {
  if (rows.length === 0) return;
  await db.insert(edgeReports).values(rows.map((r) => ({ ...r, at, instance })));
}

/**
 * Edge reports flushed since `since`, summed per cluster (a sliding window, so consecutive syncs see
 * the same recent evidence); and the sync's bookmark, to say how many reports are new.
 */
export async function loadEdgeWindow(
  db: Db,
  since: number,
): Promise<{ windows: Map<string, EdgeWindow>; lastId: number; previousId: number; lastRunAt: number | null }> {
  const [state] = await db.select().from(syncState).where(eq(syncState.id, 1));
  const previousId = state?.lastReportId ?? 0;
  const rows = await db
    .select({
      service: edgeReports.service,
      cluster: edgeReports.cluster,
      requests: sql<number>`sum(${edgeReports.requests})`,
      failures: sql<number>`sum(${edgeReports.failures})`,
    })
    .from(edgeReports)
    .where(gte(edgeReports.at, since))
    .groupBy(edgeReports.service, edgeReports.cluster);
  const windows = new Map(rows.map((r) => [`${r.service}/${r.cluster}`, { requests: Number(r.requests), failures: Number(r.failures) }]));
  const [newest] = await db.select({ id: sql<number>`coalesce(max(${edgeReports.id}), 0)` }).from(edgeReports);
  const lastId = Math.max(previousId, Number(newest?.id ?? 0));
  return { windows, lastId, previousId, lastRunAt: state?.lastRunAt ?? null };
}

export function upsertHealth(db: Db, service: string, cluster: string, record: HealthRecord, probe: ProbeResult, at: number): Write {
  const values = {
    service,
    cluster,
    state: record.state,
    consecutiveSuccesses: record.consecutiveSuccesses,
    consecutiveFailures: record.consecutiveFailures,
    lastProbeAt: at,
    lastStatus: probe.status,
    lastLatencyMs: probe.latencyMs,
    lastError: probe.error,
    reason: record.reason,
    changedAt: record.changedAt,
  };
  const { service: _s, cluster: _c, ...set } = values;
  return db.insert(clusterHealth).values(values).onConflictDoUpdate({ target: [clusterHealth.service, clusterHealth.cluster], set });
}

export function insertEvents(db: Db, rows: NewEvent[]): Write[] {
  return rows.length ? [db.insert(events).values(rows)] : [];
}

export function saveSyncState(db: Db, at: number, lastReportId: number, retainReportsMs: number): Write[] {
  return [
    db
      .insert(syncState)
      .values({ id: 1, lastRunAt: at, lastReportId })
      .onConflictDoUpdate({ target: syncState.id, set: { lastRunAt: at, lastReportId } }),
    db.delete(edgeReports).where(lt(edgeReports.at, at - retainReportsMs)),
  ];
}

/** Overrides whose time ran out but that nobody has marked ended yet. */
export async function expiredOverrides(db: Db, now: number) {
  return db
    .select()
    .from(overrides)
    .where(and(isNull(overrides.endedAt), lte(overrides.expiresAt, now)));
}

/** The newest events first, for one service or all. */
export async function listEvents(db: Db, opts: { service?: string; limit: number }): Promise<EventEntry[]> {
  return db
    .select()
    .from(events)
    .where(opts.service ? eq(events.service, opts.service) : undefined)
    .orderBy(desc(events.id))
    .limit(opts.limit);
}

/** Mean latency and samples per (service, client region, cluster) from edge reports since `since`. */
export async function loadRegionLatencies(db: Db, since: number) {
  const rows = await db
    .select({
      service: edgeReports.service,
      clientRegion: edgeReports.clientRegion,
      cluster: edgeReports.cluster,
      requests: sql<number>`sum(${edgeReports.requests})`,
      latencyMsSum: sql<number>`sum(${edgeReports.latencyMsSum})`,
    })
    .from(edgeReports)
    .where(gte(edgeReports.at, since))
    .groupBy(edgeReports.service, edgeReports.clientRegion, edgeReports.cluster);
  return rows.map((r) => ({ ...r, requests: Number(r.requests), latencyMsSum: Number(r.latencyMsSum) }));
}

export async function loadLatencyOrders(db: Db) {
  return db.select().from(latencyOrders);
}

export function saveLatencyOrder(db: Db, service: string, clientRegion: string, regions: { region: string; meanMs: number; samples: number }[], at: number): Write {
  return db
    .insert(latencyOrders)
    .values({ service, clientRegion, regions, updatedAt: at })
    .onConflictDoUpdate({ target: [latencyOrders.service, latencyOrders.clientRegion], set: { regions, updatedAt: at } });
}

export function deleteLatencyOrder(db: Db, service: string, clientRegion: string): Write {
  return db.delete(latencyOrders).where(and(eq(latencyOrders.service, service), eq(latencyOrders.clientRegion, clientRegion)));
}
