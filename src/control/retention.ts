import { lt, sql, type SQL } from 'drizzle-orm';
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { auditLog, edgeReports, events, routeSamples, webhookDeliveries } from '../store/schema.js';
import type { Tx } from '../store/transaction.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** Rows deleted per statement, and statements per table per sync: pruning never holds the store long. */
const PRUNE_BATCH_ROWS = 1_000;
const PRUNE_BATCHES_PER_SYNC = 5;
/** Edge reports are kept this long for later analysis (the sync reads the last minutes only). */
const REPORT_RETENTION_MS = 60 * 60 * 1000;

/** How long history is kept (WAYMARK_RETENTION_DAYS, WAYMARK_AUDIT_RETENTION_DAYS). */
export interface Retention {
  days: number;
  auditDays: number;
}

/** Rows each log lost to retention in one sync. */
export interface Pruned {
  events: number;
  routeSamples: number;
  auditLog: number;
  edgeReports: number;
  webhookDeliveries: number;
}

/**
 * Deletes history older than its retention, oldest first, in bounded batches (at most 5,000 rows per
 * table per sync; a backlog goes over the next syncs): events and route samples after `days`, the audit
 * log after `auditDays`, edge reports after an hour, webhook deliveries (made at least) `days` ago.
 */
export async function pruneHistory(tx: Tx, now: number, retention: Retention): Promise<Pruned> {
  const before = now - retention.days * DAY_MS;
  return {
    events: await prune(tx, events, events.id, lt(events.at, before)),
    routeSamples: await prune(tx, routeSamples, routeSamples.id, lt(routeSamples.at, before)),
    auditLog: await prune(tx, auditLog, auditLog.id, lt(auditLog.at, now - retention.auditDays * DAY_MS)),
    edgeReports: await prune(tx, edgeReports, edgeReports.id, lt(edgeReports.at, now - REPORT_RETENTION_MS)),
    webhookDeliveries: await prune(
      tx,
      webhookDeliveries,
      webhookDeliveries.id,
      lt(webhookDeliveries.createdAt, before),
    ),
  };
}

async function prune(tx: Tx, table: SQLiteTable, id: SQLiteColumn, old: SQL): Promise<number> {
  let total = 0;
  for (let i = 0; i < PRUNE_BATCHES_PER_SYNC; i++) {
    const result = await tx.run(
      sql`delete from ${table} where ${id} in (select ${id} from ${table} where ${old} order by ${id} limit ${PRUNE_BATCH_ROWS})`,
    );
    total += result.rowsAffected;
    if (result.rowsAffected < PRUNE_BATCH_ROWS) break;
  }
  return total;
}
