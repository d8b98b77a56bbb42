import { and, asc, desc, eq, gt, gte, sql } from 'drizzle-orm';
import type { EdgeWindow, HealthRecord } from '../health/evaluate.js';
import type { EdgeReport } from '../observe/edge-reports.js';
import { addBuckets, emptyBuckets } from '../observe/latency.js';
import { cursorAfter, type Page } from './audit.js';
import type { Db } from './client.js';
import { byServiceThen, type Reader } from './reader.js';
import { serialized } from './transaction.js';
import { serviceIn } from './tokens.js';
import { clusterHealth, edgeReports, events, latencyOrders, syncState } from './schema.js';

/** An event as the API lists it. */
export interface EventEntry {
  id: number;
  /** ISO 8601 UTC. */
  at: string;
  service: string;
  cluster: string | null;
  kind: string;
  message: string;
  detail: unknown;
}

/** The health sync's last verdicts and hysteresis counters, by service then cluster. */
export async function loadHealthRecords(db: Reader): Promise<Map<string, Map<string, HealthRecord>>> {
  const rows = await db.select().from(clusterHealth);
  return byServiceThen(
    rows,
    (r) => r.cluster,
    (r) => ({
      state: r.state,
      consecutiveSuccesses: r.consecutiveSuccesses,
      consecutiveFailures: r.consecutiveFailures,
      reason: r.reason,
      changedAt: r.changedAt,
    }),
  );
}

/** One batch insert of what an instance observed; nothing when there is nothing to say. */
export async function insertEdgeReports(db: Db, instance: string, at: number, rows: EdgeReport[]): Promise<void> {
  if (rows.length === 0) return;
  await serialized(db, () => db.insert(edgeReports).values(rows.map((r) => ({ ...r, at, instance }))));
}

/**
 * Edge reports flushed since `since`, summed per cluster (a sliding window, so consecutive syncs see
 * the same recent evidence); and the sync's bookmark, to say how many reports are new.
 */
export async function loadEdgeWindow(
  db: Reader,
  since: number,
): Promise<{
  windows: Map<string, Map<string, EdgeWindow>>;
  lastId: number;
  previousId: number;
  lastRunAt: number | null;
}> {
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
  const windows = byServiceThen(
    rows,
    (r) => r.cluster,
    (r) => ({ requests: Number(r.requests), failures: Number(r.failures) }),
  );
  const [newest] = await db.select({ id: sql<number>`coalesce(max(${edgeReports.id}), 0)` }).from(edgeReports);
  const lastId = Math.max(previousId, Number(newest?.id ?? 0));
  return { windows, lastId, previousId, lastRunAt: state?.lastRunAt ?? null };
}

/**
 * Events for one service or all. Without `after`: the newest first. With `after` (a poller's cursor):
 * the events after that id, oldest first.
 */
export async function listEvents(
  db: Reader,
  opts: { service?: string; kind?: string; services?: readonly string[] | null; after?: number; limit: number },
): Promise<Page<EventEntry>> {
  const rows = await db
    .select()
    .from(events)
    .where(
      and(
        opts.service ? eq(events.service, opts.service) : undefined,
        opts.kind ? eq(events.kind, opts.kind) : undefined,
        serviceIn(events.service, opts.services ?? null),
        opts.after === undefined ? undefined : gt(events.id, opts.after),
      ),
    )
    .orderBy(opts.after === undefined ? desc(events.id) : asc(events.id))
    .limit(opts.limit);
  return {
    entries: rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
    next: cursorAfter(rows, opts.after),
  };
}

/** What edges saw of one cluster during one bucket of time, summed over instances and client regions. */
export interface EdgeBucket {
  cluster: string;
  /** The bucket's start, ms since the epoch (a multiple of the bucket width). */
  at: number;
  requests: number;
  failures: number;
  latencyMsSum: number;
  /** Requests per latency bucket (observe/latency.ts): what percentiles are taken from. */
  latencyBuckets: number[];
}

/** A service's edge reports since `since`, summed per cluster and per `bucketMs` of flush time. */
export async function loadEdgeBuckets(
  db: Reader,
  service: string,
  since: number,
  bucketMs: number,
): Promise<EdgeBucket[]> {
  const rows = await db
    .select({
      cluster: edgeReports.cluster,
      at: edgeReports.at,
      requests: edgeReports.requests,
      failures: edgeReports.failures,
      latencyMsSum: edgeReports.latencyMsSum,
      latencyBuckets: edgeReports.latencyBuckets,
    })
    .from(edgeReports)
    .where(and(eq(edgeReports.service, service), gte(edgeReports.at, since)));
  // Summed here, not in SQL: the latency buckets are a JSON list per report.
  const sums = new Map<string, EdgeBucket>();
  for (const r of rows) {
    const at = Math.floor(r.at / bucketMs) * bucketMs;
    const key = `${r.cluster}\u0000${at}`;
    let sum = sums.get(key);
    if (!sum) {
      sum = { cluster: r.cluster, at, requests: 0, failures: 0, latencyMsSum: 0, latencyBuckets: emptyBuckets() };
      sums.set(key, sum);
    }
    sum.requests += r.requests;
    sum.failures += r.failures;
    sum.latencyMsSum += r.latencyMsSum;
    addBuckets(sum.latencyBuckets, r.latencyBuckets);
  }
  return [...sums.values()];
}

/** Mean latency and samples per (service, client region, cluster) from edge reports since `since`. */
export async function loadRegionLatencies(db: Reader, since: number) {
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

export async function loadLatencyOrders(db: Reader) {
  return db.select().from(latencyOrders);
}
