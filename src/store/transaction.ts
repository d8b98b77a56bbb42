import type { Db } from './client.js';
import { isBusyError } from './errors.js';

/** A write transaction: the same query builders as the database, bound to one connection or stream. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** One queue per database: this process's writes take the write lock one after another. */
const queues = new WeakMap<Db, Promise<unknown>>();

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `work` (which writes) after this process's earlier writes to `db` have settled. Every write of
 * a process goes through here (commands, edge report flushes, leases), so a process never waits for
 * its own write lock: on a `file:` store SQLite's busy handler then only ever waits for another process
 * (libSQL's calls are synchronous; waiting on this process's own lock would stall its event loop).
 *
 * On a `file:` store each write waits for the next turn of the event loop: its statements run on the
 * thread that proxies, and queued writes run back to back would hold the proxy's requests for all of
 * them. (Admin writes are also paced: see api/write-pacing.ts.)
 */
export function serialized<T>(db: Db, work: () => Promise<T>): Promise<T> {
  const turn = db.$client.protocol === 'file' ? nextTurn : undefined;
  const run = (queues.get(db) ?? Promise.resolve()).then(turn).then(work);
  queues.set(
    db,
    run.catch(() => undefined),
  );
  return run;
}

/**
 * Runs `work` in one write transaction (BEGIN IMMEDIATE: the write lock is taken before the first read),
 * so what it reads is what it writes against: checks and writes cannot interleave with another writer's,
 * on a local file and on a remote (HTTP) store alike. Throwing rolls everything back.
 *
 * After SQLITE_BUSY on a `file:` store (another process held the lock past the busy timeout) the client
 * reconnects: libSQL leaves the failed statement in progress on its connection, and the writes that
 * follow there would not be committed (tursodatabase/libsql-client-ts#352).
 */
export function transact<T>(db: Db, work: (tx: Tx) => Promise<T>): Promise<T> {
  return serialized(db, async () => {
    try {
      return await db.transaction(work);
    } catch (error) {
      if (isBusyError(error) && db.$client.protocol === 'file') db.$client.reconnect();
      throw error;
    }
  });
}
