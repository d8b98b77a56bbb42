import { type Db, FILE_BUSY_WAIT_MS } from './client.js';
import { isBusyError } from './errors.js';

/** A write transaction: the same query builders as the database, bound to one connection or stream. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** One queue per database: this process's writes take the write lock one after another. */
const queues = new WeakMap<Db, Promise<unknown>>();

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `work` (which writes) after this process's earlier writes to `db` have settled. Every write of
 * a process goes through here (commands, edge report flushes, leases), so a process never waits for
 * its own write lock.
 *
 * On a `file:` store each write waits for the next turn of the event loop: its statements run on the
 * thread that proxies, and queued writes run back to back would hold the proxy's requests for all of
 * them. (Admin writes are also paced: see api/write-pacing.ts.) For the same reason a write that finds
 * another process's write lock is not left waiting in SQLite's busy handler, which blocks the thread
 * (libSQL's calls are synchronous): the native wait is a few milliseconds (src/store/client.ts), and
 * SQLITE_BUSY is tried again here, asynchronously with back-off, for up to FILE_BUSY_WAIT_MS. A lock
 * held for seconds by another process used to stall every proxied request for that long, and fail
 * those in flight with a 504 that blamed their cluster (found by `npm run chaos`, scenario 2).
 * `retryable` says whether a given failure may be tried again (nothing of it was written).
 */
export function serialized<T>(db: Db, work: () => Promise<T>, retryable: () => boolean = () => true): Promise<T> {
  const file = db.$client.protocol === 'file';
  const run = (queues.get(db) ?? Promise.resolve())
    .then(file ? nextTurn : undefined)
    .then(() => (file ? retryBusy(db, work, retryable) : work()));
  queues.set(
    db,
    run.catch(() => undefined),
  );
  return run;
}

/** Back-off between tries of a write that found the file locked, ms. */
const BUSY_BACKOFF_MS = [2, 5, 10, 20, 50, 100] as const;

/**
 * `work` again while it fails with SQLITE_BUSY on a `file:` store, for up to FILE_BUSY_WAIT_MS. SQLITE_BUSY
 * on a single statement or at BEGIN IMMEDIATE means nothing was written. After each, the client
 * reconnects: libSQL leaves the failed statement in progress on its connection, and the writes that
 * follow there would not be committed (tursodatabase/libsql-client-ts#352).
 */
async function retryBusy<T>(db: Db, work: () => Promise<T>, retryable: () => boolean): Promise<T> {
  const deadline = performance.now() + FILE_BUSY_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isBusyError(error)) throw error;
      db.$client.reconnect();
      const wait = BUSY_BACKOFF_MS[Math.min(attempt, BUSY_BACKOFF_MS.length - 1)] as number;
      if (!retryable() || performance.now() + wait > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/**
 * Runs `work` in one write transaction (BEGIN IMMEDIATE: the write lock is taken before the first read),
 * so what it reads is what it writes against: checks and writes cannot interleave with another writer's,
 * on a local file and on a remote (HTTP) store alike. Throwing rolls everything back.
 *
 * On a `file:` store, a transaction that could not begin because another process held the lock is tried
 * again (see `serialized`); once `work` has started it is not run twice, whatever happens.
 */
export function transact<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T> {
  let started = false;
  return serialized(
    db,
    () =>
      db.transaction((tx) => {
        started = true;
        return work(tx);
      }),
    () => !started,
  );
}
