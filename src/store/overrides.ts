import { and, desc, eq, gt, isNotNull, isNull, lte, or, type SQL } from 'drizzle-orm';
import type { OverrideAction, OverrideSpec } from '../routing/types.js';
import type { Reader } from './reader.js';
import { overrides } from './schema.js';
import { serviceIn } from './tokens.js';

export type OverrideRow = typeof overrides.$inferSelect;

/** Who ends an override whose time ran out. */
export const EXPIRY = 'expiry';

/** An override as the API shows it. */
export interface OverrideView {
  id: string;
  service: string;
  action: OverrideAction;
  route: string | null;
  value: number | null;
  cluster: string | null;
  region: string | null;
  reason: string;
  actor: string;
  forced: boolean;
  createdAt: string;
  expiresAt: string;
  active: boolean;
  endedAt: string | null;
  endedBy: string | null;
  endReason: 'expired' | 'deleted' | null;
}

/** The part of an override routing uses. */
export function toOverrideSpec(row: OverrideRow): OverrideSpec {
  return {
    id: row.id,
    service: row.service,
    action: row.action,
    cluster: row.cluster,
    region: row.region,
    route: row.route,
    value: row.value,
    expiresAt: row.expiresAt,
  };
}

export function viewOverride(row: OverrideRow, now: number): OverrideView {
  return {
    id: row.id,
    service: row.service,
    action: row.action,
    route: row.route,
    value: row.value,
    cluster: row.cluster,
    region: row.region,
    reason: row.reason,
    actor: row.actor,
    forced: row.forced,
    createdAt: new Date(row.createdAt).toISOString(),
    expiresAt: new Date(row.expiresAt).toISOString(),
    active: row.endedAt === null && row.expiresAt > now,
    endedAt:
      row.endedAt !== null
        ? new Date(row.endedAt).toISOString()
        : row.expiresAt <= now
          ? new Date(row.expiresAt).toISOString()
          : null,
    endedBy: row.endedBy ?? (row.endedAt === null && row.expiresAt <= now ? EXPIRY : null),
    endReason: row.endReason ?? (row.endedAt === null && row.expiresAt <= now ? 'expired' : null),
  };
}

/** Overrides newest first; `active` keeps only those in force at `now` (true) or only those ended (false). */
export async function listOverrides(
  db: Reader,
  opts: {
    service?: string;
    /** Only overrides of services matching these patterns (a key's `services`); null or absent: all. */
    services?: readonly string[] | null;
    active?: { now: number; active: boolean };
    limit: number;
  },
): Promise<OverrideRow[]> {
  const conditions: (SQL | undefined)[] = [];
  if (opts.service) conditions.push(eq(overrides.service, opts.service));
  conditions.push(serviceIn(overrides.service, opts.services ?? null));
  if (opts.active?.active === true)
    conditions.push(isNull(overrides.endedAt), gt(overrides.expiresAt, opts.active.now));
  if (opts.active?.active === false)
    conditions.push(or(isNotNull(overrides.endedAt), lte(overrides.expiresAt, opts.active.now)));
  return db
    .select()
    .from(overrides)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(overrides.createdAt))
    .limit(opts.limit);
}

/** Overrides whose time ran out but that nobody has marked ended yet. */
export async function expiredOverrides(db: Reader, now: number): Promise<OverrideRow[]> {
  return db
    .select()
    .from(overrides)
    .where(and(isNull(overrides.endedAt), lte(overrides.expiresAt, now)));
}

export async function getOverride(db: Reader, id: string): Promise<OverrideRow | null> {
  const rows = await db.select().from(overrides).where(eq(overrides.id, id));
  return rows[0] ?? null;
}
