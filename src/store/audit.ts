import { and, asc, desc, gt, sql, type SQL } from 'drizzle-orm';
import type { Reader } from './reader.js';
import { auditLog } from './schema.js';

/** An audit entry as the API shows it. */
export interface AuditEntry {
  id: number;
  /** ISO 8601 UTC. */
  at: string;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
}

/** A page of a log read with a cursor: the entries, and the id to ask `after` next time. */
export interface Page<T> {
  entries: T[];
  /** The cursor for the next poll: the newest id seen (or the one given, when nothing is newer). */
  next: number;
}

/**
 * Audit entries, optionally only those about `target` and what lies under it (`services/shop` matches
 * `services/shop/clusters/ew1`, not `services/shop-eu`, matched literally). Without `after`: the newest
 * first. With `after` (a poller's cursor): the entries after that id, oldest first.
 */
export async function listAudit(
  db: Reader,
  opts: { target?: string; after?: number; limit: number },
): Promise<Page<AuditEntry>> {
  const t = opts.target?.replace(/\/+$/, '');
  const about: SQL | undefined = t
    ? sql`(${auditLog.target} = ${t} or substr(${auditLog.target}, 1, ${t.length + 1}) = ${`${t}/`})`
    : undefined;
  const rows = await db
    .select()
    .from(auditLog)
    .where(and(about, opts.after === undefined ? undefined : gt(auditLog.id, opts.after)))
    .orderBy(opts.after === undefined ? desc(auditLog.id) : asc(auditLog.id))
    .limit(opts.limit);
  return {
    entries: rows.map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
    next: cursorAfter(rows, opts.after),
  };
}

/** The newest id among `rows`, or `after` (0 for none) when there are none. */
export function cursorAfter(rows: readonly { id: number }[], after: number | undefined): number {
  return rows.reduce((max, r) => Math.max(max, r.id), after ?? 0);
}
