import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { migrate } from 'drizzle-orm/libsql/migrator';
import type { Store } from './client.js';
import { isBusyError } from './errors.js';
import { acquireLease, readLease, releaseLease, renewLease, type LeaseOutcome } from './lease.js';

/** migrations/ as drizzle-kit writes it. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

/** The lease every migrator takes, so one process at a time runs drizzle's migrator on a store. */
export const MIGRATE_LEASE = 'migrate';
/** Long enough for any migration here (renewed while a remote one runs): it runs out by itself only if its holder died. */
export const MIGRATE_LEASE_TTL_MS = 60_000;
/** How long a migrator waits for another by default: past one TTL, so a dead holder's lease runs out first. */
const MIGRATE_WAIT_MS = 90_000;
/** Polling back-off while another process holds the lease or the write lock. */
const POLL_BACKOFF_MS = [5, 10, 20, 50, 100, 200] as const;
/** How long one statement keeps being retried while another process holds the write lock. */
const BUSY_RETRY_MS = 10_000;

/**
 * The leases table as migration 0008 creates it (test/store/migrate.test.ts compares the two): it has to
 * exist before the migrator runs, since the migrator itself runs under a lease.
 */
export const LEASES_TABLE_SQL = `CREATE TABLE IF NOT EXISTS \`leases\` (
	\`name\` text PRIMARY KEY NOT NULL,
	\`holder\` text NOT NULL,
	\`acquired_at\` integer NOT NULL,
	\`expires_at\` integer NOT NULL
);`;

export interface MigrateOptions {
  /**
   * Who migrates, as operators read it in the leases table (a role, e.g. `node-server`). The host,
   * process id and a per-run nonce are appended, so two runs never share a holder.
   */
  holder: string;
  /** Wall clock in epoch milliseconds; Date.now unless a test injects one. */
  now?: () => number;
  /** How long to wait while another process holds the lease; MIGRATE_WAIT_MS by default. */
  waitMs?: number;
  /** migrations/ by default. */
  migrationsFolder?: string;
}

/**
 * Applied, or not within `waitMs` because another migrator held the lease: who (`holder`) and until when
 * (`until`, epoch ms). `message` says so in a sentence. Store errors (unreachable, a failing migration)
 * reject, as every other store call does.
 */
export type MigrateOutcome =
  | { ok: true; holder: string; waitedMs: number }
  | { ok: false; holder: string; until: number; waitedMs: number; message: string };

/**
 * Brings a store up to date with migrations/, safely when several processes start at once on one store
 * (the Node server, `npm run db:migrate`, `npm run dev`): drizzle's migrator reads which migrations were
 * applied and then applies the rest, so two of them at once both apply the same migration and the
 * later one fails ("table already exists") or hits SQLITE_BUSY. Here each takes the `migrate` lease
 * first, polling with back-off while another holds it, and the ones that follow find nothing to apply.
 *
 * For a `file:` database it turns on WAL (persistent): readers and the one writer of several processes
 * then proceed together. It sets no busy_timeout: libSQL's calls are synchronous, so a connection
 * waiting in SQLite's busy handler would stall this process's event loop, including a transaction of
 * this process that holds the lock being waited for; and the client pools connections, so a PRAGMA
 * would reach only one of them. SQLITE_BUSY is retried here instead, asynchronously.
 */
export async function migrateStore(store: Store, options: MigrateOptions): Promise<MigrateOutcome> {
  const now = options.now ?? Date.now;
  const started = now();
  const deadline = started + (options.waitMs ?? MIGRATE_WAIT_MS);
  const holder = `${options.holder}@${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const { db, client } = store;
  const local = client.protocol === 'file';
  // On a file, a statement that failed with SQLITE_BUSY stays in progress on its connection until it
  // is garbage-collected, and the writes that follow on that connection are never committed and keep
  // the write lock (tursodatabase/libsql-client-ts#352; measured here). Fresh connections are clean, so
  // every SQLITE_BUSY is followed by a reconnect: nothing else uses this client while it is migrated.
  const recover = local ? async () => client.reconnect() : async () => undefined;

  if (local) await retryBusy(() => client.execute('PRAGMA journal_mode=WAL'), now, recover);
  await retryBusy(() => db.run(sql.raw(LEASES_TABLE_SQL)), now, recover);

  for (let attempt = 0; ; attempt++) {
    const t = now();
    // Look before taking: a waiter that only reads takes no write lock from the one migrating.
    const seen = await busyAsNull(readLease(db, MIGRATE_LEASE), recover);
    const lease: LeaseOutcome | null =
      seen && seen.expiresAt > t
        ? { ok: false, holder: seen.holder, until: seen.expiresAt, reason: 'held' }
        : await busyAsNull(
            acquireLease(db, { name: MIGRATE_LEASE, holder, now: t, ttlMs: MIGRATE_LEASE_TTL_MS }),
            recover,
          );
    if (lease?.ok) break;
    if (t >= deadline) {
      const waitedMs = t - started;
      if (!lease) throw new Error(`migrations: the store stayed busy for ${waitedMs} ms`);
      const until = new Date(lease.until).toISOString();
      return {
        ok: false,
        holder: lease.holder,
        until: lease.until,
        waitedMs,
        message: `migrations: the ${MIGRATE_LEASE} lease is held by ${lease.holder} until ${until} (waited ${waitedMs} ms)`,
      };
    }
    await sleep(backoff(attempt));
  }

  const waitedMs = now() - started;
  // A remote migration waits on the network and may be slow; a local one runs its batch synchronously,
  // in milliseconds, and no timer could fire during it anyway.
  const renewal = local
    ? undefined
    : setInterval(
        () =>
          void renewLease(db, { name: MIGRATE_LEASE, holder, now: now(), ttlMs: MIGRATE_LEASE_TTL_MS }).catch(
            () => undefined,
          ),
        MIGRATE_LEASE_TTL_MS / 3,
      );
  renewal?.unref();
  try {
    const migrationsFolder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
    await retryBusy(() => migrate(db, { migrationsFolder }), now, recover);
  } finally {
    clearInterval(renewal);
    // When this fails too (the store went away), the lease runs out by itself after its TTL.
    await retryBusy(() => releaseLease(db, { name: MIGRATE_LEASE, holder, now: now() }), now, recover).catch(
      () => false,
    );
  }
  return { ok: true, holder, waitedMs };
}

/** The value, or null (after `recover`) when the store was busy (another process writing): "not now". */
async function busyAsNull<T>(pending: Promise<T>, recover: () => Promise<void>): Promise<T | null> {
  try {
    return await pending;
  } catch (error) {
    if (!isBusyError(error)) throw error;
    await recover();
    return null;
  }
}

/** Runs `attempt` again while it fails with SQLITE_BUSY (another process writing), for up to BUSY_RETRY_MS. */
async function retryBusy<T>(attempt: () => Promise<T>, now: () => number, recover: () => Promise<void>): Promise<T> {
  const deadline = now() + BUSY_RETRY_MS;
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isBusyError(error)) throw error;
      await recover();
      if (now() >= deadline) throw error;
      await sleep(backoff(i));
    }
  }
}

function backoff(attempt: number): number {
  return POLL_BACKOFF_MS[Math.min(attempt, POLL_BACKOFF_MS.length - 1)] as number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
