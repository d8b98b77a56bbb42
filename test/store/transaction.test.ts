import { sql } from 'drizzle-orm';
import Database from 'libsql';
import { afterEach, describe, expect, it } from 'vitest';
import { FILE_BUSY_WAIT_MS } from '../../src/store/client.js';
import { isBusyError } from '../../src/store/errors.js';
import { serialized, transact } from '../../src/store/transaction.js';
import { openTempStore, type TempStore } from './temp-store.js';

/** Another process's connection to the same file, holding the write lock for `ms` (it never waits itself). */
async function holdWriteLock(path: string, ms: number): Promise<void> {
  const other = new Database(path);
  other.exec('PRAGMA busy_timeout = 0');
  other.exec('BEGIN EXCLUSIVE');
  await new Promise((resolve) => setTimeout(resolve, ms));
  other.exec('ROLLBACK');
  other.close();
}

/** The longest gap between ticks of a 10 ms interval while `work` runs: how long the thread was blocked. */
async function longestStall<T>(work: Promise<T>): Promise<{ value: T | Error; stallMs: number }> {
  let last = performance.now();
  let stallMs = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stallMs = Math.max(stallMs, now - last);
    last = now;
  }, 10);
  const value = await work.catch((e: unknown) => e as Error);
  clearInterval(timer);
  return { value, stallMs };
}

// Found by `npm run chaos` (scenario 2, store faults): a file store whose write lock another process held
// for seconds blocked the Node process's thread in SQLite's busy handler (up to 5 s per write, the sync's
// and the report flush's included), so every proxied request waited, and those in flight failed with a 504
// that blamed their cluster.
describe('writes on a file store another process has locked', () => {
  let store: TempStore;
  afterEach(() => store?.dispose());

  it('wait without blocking the thread, and commit once the lock is released', async () => {
    store = await openTempStore();
    const file = (await store.client.execute('pragma database_list')).rows[0]?.file as string;
    const held = holdWriteLock(file, 1_500);
    const write = transact(store.db, (tx) =>
      tx.run(sql`insert into revision (id, version, updated_at) values (7, 1, 0)`),
    );
    const single = serialized(store.db, () =>
      store.db.run(sql`insert into revision (id, version, updated_at) values (8, 1, 0)`),
    );
    const { value, stallMs } = await longestStall(Promise.all([write, single]));
    await held;
    expect(value).not.toBeInstanceOf(Error);
    expect(stallMs).toBeLessThan(250);
    const rows = await store.client.execute('select id from revision where id in (7, 8) order by id');
    expect(rows.rows.map((r) => r.id)).toEqual([7, 8]);
  });

  it(`give up with SQLITE_BUSY after ${FILE_BUSY_WAIT_MS} ms, without blocking the thread, and leave the client usable`, async () => {
    store = await openTempStore();
    const file = (await store.client.execute('pragma database_list')).rows[0]?.file as string;
    const held = holdWriteLock(file, FILE_BUSY_WAIT_MS + 1_000);
    const started = performance.now();
    const { value, stallMs } = await longestStall(
      transact(store.db, (tx) => tx.run(sql`insert into revision (id, version, updated_at) values (9, 1, 0)`)),
    );
    expect(isBusyError(value)).toBe(true);
    expect(performance.now() - started).toBeGreaterThanOrEqual(FILE_BUSY_WAIT_MS - 50);
    expect(stallMs).toBeLessThan(250);
    await held;
    await transact(store.db, (tx) => tx.run(sql`insert into revision (id, version, updated_at) values (10, 1, 0)`));
    const rows = await store.client.execute('select id from revision where id in (9, 10) order by id');
    expect(rows.rows.map((r) => r.id)).toEqual([10]);
  }, 20_000);
});
