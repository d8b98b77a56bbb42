import { and, asc, desc, gt, sql, type SQL } from 'drizzle-orm';
import type { Reader } from './reader.js';
import { auditLog } from './schema.js';
import { serviceIn } from './tokens.js';

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
 * The service an audit entry is about, in SQL: the name after `services/` in its target, or an override's
 * `service`; NULL for the rest (keys, imports of nothing), which only a token for every service sees.
 */
const entryService = sql`(case
  when substr(${auditLog.target}, 1, 9) = 'services/' then
    substr(${auditLog.target}, 10, case when instr(substr(${auditLog.target}, 10), '/') > 0
      then instr(substr(${auditLog.target}, 10), '/') - 1 else length(${auditLog.target}) end)
  when substr(${auditLog.target}, 1, 10) = 'overrides/' then
    coalesce(json_extract(${auditLog.after}, '$.service'), json_extract(${auditLog.before}, '$.service'))
  end)`;

/**
 * Audit entries, optionally only those about `target` and what lies under it (`services/shop` matches
 * `services/shop/clusters/ew1`, not `services/shop-eu`, matched literally). Without `after`: the newest
 * first. With `after` (a poller's cursor): the entries after that id, oldest first. With `services`
 * (a key's patterns), only the entries about a service matching one of them.
 */
export async function listAudit(
  db: Reader,
  opts: { target?: string; services?: readonly string[] | null; after?: number; limit: number },
): Promise<Page<AuditEntry>> {
  const t = opts.target?.replace(/\/+$/, '');
  const about: SQL | undefined = t
    ? sql`(${auditLog.target} = ${t} or substr(${auditLog.target}, 1, ${t.length + 1}) = ${`${t}/`})`
    : undefined;
  const rows = await db
    .select()
    .from(auditLog)
    .where(
      and(
        about,
        serviceIn(entryService, opts.services ?? null),
        opts.after === undefined ? undefined : gt(auditLog.id, opts.after),
      ),
    )
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
