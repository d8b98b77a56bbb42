import { and, desc, eq, gt, isNotNull, isNull, lte, or, type SQL } from 'drizzle-orm';
import type { OverrideAction, OverrideSpec } from '../routing/types.js';
import type { Db } from './client.js';
import { audit, commit, type Actor } from './queries.js';
import { events, overrides } from './schema.js';

export type OverrideRow = typeof overrides.$inferSelect;

/** Who ends an override whose time ran out. */
const EXPIRY = 'expiry';

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
export function toOverrideSpecRow(row: OverrideRow): OverrideSpec {
  return { id: row.id, service: row.service, action: row.action, cluster: row.cluster, region: row.region, route: row.route, value: row.value, expiresAt: row.expiresAt };
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
    endedAt: row.endedAt !== null ? new Date(row.endedAt).toISOString() : row.expiresAt <= now ? new Date(row.expiresAt).toISOString() : null,
    endedBy: row.endedBy ?? (row.endedAt === null && row.expiresAt <= now ? EXPIRY : null),
    endReason: row.endReason ?? (row.endedAt === null && row.expiresAt <= now ? 'expired' : null),
  };
}

/** Overrides newest first; `active` keeps only those in force at `now` (true) or only those ended (false). */
export async function listOverrides(db: Db, opts: { service?: string; active?: { now: number; active: boolean }; limit: number }): Promise<OverrideRow[]> {
  const conditions: (SQL | undefined)[] = [];
  if (opts.service) conditions.push(eq(overrides.service, opts.service));
  if (opts.active?.active === true) conditions.push(isNull(overrides.endedAt), gt(overrides.expiresAt, opts.active.now));
  if (opts.active?.active === false) conditions.push(or(isNotNull(overrides.endedAt), lte(overrides.expiresAt, opts.active.now)));
  return db
    .select()
    .from(overrides)
    .where(conditions.length ? and(...conditions) : undefined)
    .orderBy(desc(overrides.createdAt))
    .limit(opts.limit);
}

export async function getOverride(db: Db, id: string): Promise<OverrideRow | null> {
  const rows = await db.select().from(overrides).where(eq(overrides.id, id));
  return rows[0] ?? null;
}

/** Records an override, its audit entry and an event, and bumps the revision so edges pick it up. */
export async function createOverride(db: Db, actor: Actor, row: OverrideRow): Promise<void> {
  await commit(db, actor, [
    db.insert(overrides).values(row),
    audit(db, actor, 'override.create', `overrides/${row.id}`, null, row),
    db.insert(events).values({
      at: actor.now,
      service: row.service,
      cluster: row.cluster,
      kind: 'override-applied',
      message: `${row.action} ${describeTarget(row)} by ${row.actor} until ${new Date(row.expiresAt).toISOString()}: ${row.reason}`,
      detail: row,
    }),
  ]);
}

/** Ends an override (deleted by an operator, or expired as seen by the health sync). */
export function endOverrideWrites(db: Db, actor: Actor, row: OverrideRow, endReason: 'expired' | 'deleted') {
  // An expired override ended at its expiry, by the expiry, whoever noticed it (the sync's actor is audited).
  const endedAt = endReason === 'expired' ? row.expiresAt : actor.now;
  const endedBy = endReason === 'expired' ? EXPIRY : actor.name;
  const ended: OverrideRow = { ...row, endedAt, endedBy, endReason };
  return [
    db.update(overrides).set({ endedAt, endedBy, endReason }).where(and(eq(overrides.id, row.id), isNull(overrides.endedAt))),
    audit(db, actor, endReason === 'expired' ? 'override.expire' : 'override.delete', `overrides/${row.id}`, row, ended),
    db.insert(events).values({
      at: actor.now,
      service: row.service,
      cluster: row.cluster,
      kind: endReason === 'expired' ? 'override-expired' : 'override-ended',
      message: `${row.action} ${describeTarget(row)} ${endReason === 'expired' ? 'expired' : `ended by ${actor.name}`}`,
      detail: ended,
    }),
  ] as const;
}

export async function endOverride(db: Db, actor: Actor, row: OverrideRow): Promise<void> {
  await commit(db, actor, [...endOverrideWrites(db, actor, row, 'deleted')]);
}

export function describeTarget(row: Pick<OverrideRow, 'service' | 'cluster' | 'region' | 'route' | 'value'>): string {
  if (row.route) return `${row.service} route ${row.route}${row.value !== null ? ` at ${row.value}` : ''}`;
  if (row.cluster && row.region) return `${row.service}/${row.cluster} for clients in ${row.region}`;
  if (row.cluster) return `${row.service}/${row.cluster}`;
  return `${row.service} in ${row.region}`;
}
