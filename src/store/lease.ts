import { and, eq, gt, lte, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import { serialized } from './transaction.js';
import { leases } from './schema.js';

/** What an acquire asks for: which lease, for whom, at what time, for how long. */
export interface LeaseRequest {
  /** The job the lease guards, e.g. `migrate` or `health-sync`. */
  name: string;
  /** Who asks: unique per run, since the lease is not re-entrant (a holder cannot take it twice). */
  holder: string;
  /** The caller's clock, in epoch milliseconds. */
  now: number;
  /** How long the lease lasts unless released or renewed. */
  ttlMs: number;
  /**
   * The least time between two acquisitions, whoever made them: "one run per interval". A holder that
   * releases early still blocks the next acquire until `acquired_at + minIntervalMs`. Default 0.
   */
  minIntervalMs?: number;
}

/**
 * The outcome of an acquire. Not acquired: `holder` is who took it last, `until` the earliest time the
 * lease can be taken again (its expiry or the end of the minimum interval, whichever is later), and
 * `reason` says which one blocks now: `held` (not expired) or `too-soon` (released or expired, but the
 * minimum interval since it was taken has not passed).
 */
export type LeaseOutcome = { ok: true } | { ok: false; holder: string; until: number; reason: 'held' | 'too-soon' };

/** A lease as stored: who took it last, when (epoch ms), and when it ends (or ended). */
export type Lease = typeof leases.$inferSelect;

/** Attempts before an acquire reports what it saw: a lease seen free after a lost upsert is tried again. */
const ACQUIRE_ATTEMPTS = 3;

/**
 * Takes the lease `name` for `holder` when it is free: missing, or expired with its minimum interval
 * since the last acquisition passed. One conditional upsert decides it, so two acquirers can never both
 * win, on a local file (SQLite runs the statement under its write lock) and on a remote store alike
 * (sqld runs each statement atomically). When it was not taken, a read says who holds it; if the lease
 * turned free in between (released, or expired by the caller's clock), the upsert is tried again.
 *
 * Both statements run on their own, not in one batch: on a local file, a batch that fails with
 * SQLITE_BUSY leaves its connection reading an old snapshot (SQLITE_BUSY_SNAPSHOT on every write
 * until the failed statement is garbage-collected), while a lone statement that fails can simply run
 * again. A store error (unreachable, or SQLITE_BUSY from a writer in another process) rejects; callers
 * that poll treat it as "not now". On a `file:` store, reconnect the client after SQLITE_BUSY before
 * using it again: the failed statement stays in progress on its connection until it is
 * garbage-collected, and writes that follow there are not committed and keep the write lock
 * (tursodatabase/libsql-client-ts#352; migrateStore does so).
 */
export async function acquireLease(db: Db, request: LeaseRequest): Promise<LeaseOutcome> {
  const { name, holder, now, ttlMs, minIntervalMs = 0 } = request;
  if (!(ttlMs > 0) || !(minIntervalMs >= 0))
    throw new RangeError(`lease ${name}: ttlMs must be > 0 and minIntervalMs >= 0`);
  const taken = { holder, acquiredAt: now, expiresAt: now + ttlMs };
  for (let attempt = 1; ; attempt++) {
    const won = await serialized(db, () =>
      db
        .insert(leases)
        .values({ name, ...taken })
        .onConflictDoUpdate({
          target: leases.name,
          set: taken,
          setWhere: and(lte(leases.expiresAt, now), lte(sql`${leases.acquiredAt} + ${minIntervalMs}`, now)),
        })
        .returning({ holder: leases.holder }),
    );
    if (won.length > 0) return { ok: true };
    const lease = await readLease(db, name);
    const until = lease ? Math.max(lease.expiresAt, lease.acquiredAt + minIntervalMs) : now;
    if (lease && (until > now || attempt >= ACQUIRE_ATTEMPTS)) {
      return { ok: false, holder: lease.holder, until, reason: lease.expiresAt > now ? 'held' : 'too-soon' };
    }
    if (attempt >= ACQUIRE_ATTEMPTS) throw new Error(`lease ${name}: the upsert took nothing, yet no lease is stored`);
  }
}

/** The lease `name` as stored, or null if nobody ever took it. A plain read: it takes no lock. */
export async function readLease(db: Db, name: string): Promise<Lease | null> {
  const [lease] = await db.select().from(leases).where(eq(leases.name, name));
  return lease ?? null;
}

/**
 * Ends the lease `name` early (it expires `now`) if `holder` still holds it; the minimum interval an
 * acquire asks for still counts from when it was taken. True if it was released; false if it had
 * expired or someone else holds it (nothing changes then).
 */
export async function releaseLease(
  db: Db,
  { name, holder, now }: { name: string; holder: string; now: number },
): Promise<boolean> {
  const released = await serialized(db, () =>
    db
      .update(leases)
      .set({ expiresAt: now })
      .where(and(eq(leases.name, name), eq(leases.holder, holder), gt(leases.expiresAt, now)))
      .returning({ name: leases.name }),
  );
  return released.length > 0;
}

/**
 * Extends the lease `name` to `now + ttlMs` if `holder` still holds it (not expired): for jobs that
 * may outlast their TTL. False if it had expired or someone else holds it; the holder must then
 * acquire it again like anyone else.
 */
export async function renewLease(
  db: Db,
  { name, holder, now, ttlMs }: { name: string; holder: string; now: number; ttlMs: number },
): Promise<boolean> {
  const renewed = await serialized(db, () =>
    db
      .update(leases)
      .set({ expiresAt: now + ttlMs })
      .where(and(eq(leases.name, name), eq(leases.holder, holder), gt(leases.expiresAt, now)))
      .returning({ name: leases.name }),
  );
  return renewed.length > 0;
}
