import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { is } from 'drizzle-orm';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { getTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/client.js';
import { acquireLease, readLease } from '../../src/store/lease.js';
import {
  LEASES_TABLE_SQL,
  MIGRATE_LEASE,
  MIGRATE_LEASE_TTL_MS,
  MIGRATIONS_FOLDER,
  migrateStore,
  type MigrateOutcome,
} from '../../src/store/migrate.js';
import * as schema from '../../src/store/schema.js';
import { startHranaServer } from '../support/hrana-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const JOURNAL = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
  entries: { tag: string }[];
};
const T0 = 1_800_000_000_000;

let dir: string;
let url: string;
const opened: Store[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'waymark-migrate-'));
  url = `file:${join(dir, 'waymark.db')}`;
});
afterEach(() => {
  for (const s of opened.splice(0)) s.client.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(storeUrl = url): Store {
  const store = openStore(storeUrl);
  opened.push(store);
  return store;
}

/** Every table of src/store/schema.ts with its columns, as the database has them (sorted). */
async function schemaSeen(store: Store): Promise<Record<string, string[]>> {
  const seen: Record<string, string[]> = {};
  for (const table of Object.values<unknown>(schema).filter((t): t is SQLiteTable => is(t, SQLiteTable))) {
    const { name } = getTableConfig(table);
    const rows = await store.client.execute(`select name from pragma_table_info('${name}')`);
    seen[name] = rows.rows.map((r) => String(r.name)).sort();
  }
  return seen;
}

/** What schema.ts declares: the same shape as schemaSeen. */
function schemaDeclared(): Record<string, string[]> {
  const declared: Record<string, string[]> = {};
  for (const table of Object.values<unknown>(schema).filter((t): t is SQLiteTable => is(t, SQLiteTable))) {
    const { name, columns } = getTableConfig(table);
    declared[name] = columns.map((c) => c.name).sort();
  }
  return declared;
}

async function appliedMigrations(store: Store): Promise<number> {
  return Number((await store.client.execute('select count(*) as n from __drizzle_migrations')).rows[0]?.n);
}

async function hasTable(store: Store, name: string): Promise<boolean> {
  return (
    (await store.client.execute({ sql: `select 1 from sqlite_schema where type = 'table' and name = ?`, args: [name] }))
      .rows.length > 0
  );
}

describe('migrateStore', () => {
  it('creates the leases table with the same SQL as migration 0008', () => {
    expect(readFileSync(join(MIGRATIONS_FOLDER, '0008_leases.sql'), 'utf8').trim()).toBe(LEASES_TABLE_SQL);
  });

  it('migrates a fresh file completely, in WAL mode, and releases its lease', async () => {
    const store = open();
    const outcome = await migrateStore(store, { holder: 'test' });
    expect(outcome).toMatchObject({ ok: true, waitedMs: expect.any(Number) });
    expect(await schemaSeen(store)).toEqual(schemaDeclared());
    expect(await appliedMigrations(store)).toBe(JOURNAL.entries.length);
    expect((await store.client.execute('PRAGMA journal_mode')).rows[0]?.journal_mode).toBe('wal');

    const lease = await readLease(store.db, MIGRATE_LEASE);
    expect(lease?.holder).toBe(outcome.holder);
    expect(lease?.holder).toMatch(/^test@.+:\d+:[0-9a-f]{8}$/);
    expect(lease!.expiresAt).toBeLessThanOrEqual(Date.now());

    // A second run finds nothing to apply.
    expect(await migrateStore(store, { holder: 'test' })).toMatchObject({ ok: true });
    expect(await appliedMigrations(store)).toBe(JOURNAL.entries.length);
  });

  it('waits while another process holds the lease, and migrates once it is released', async () => {
    const other = open();
    await other.client.execute(LEASES_TABLE_SQL);
    expect(
      await acquireLease(other.db, {
        name: MIGRATE_LEASE,
        holder: 'other',
        now: Date.now(),
        ttlMs: MIGRATE_LEASE_TTL_MS,
      }),
    ).toEqual({ ok: true });

    const store = open();
    let settled: MigrateOutcome | undefined;
    const migrating = migrateStore(store, { holder: 'test', waitMs: 10_000 }).then((o) => (settled = o));
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(settled).toBeUndefined();
    expect(await hasTable(other, 'services')).toBe(false);

    await other.client.execute({
      sql: 'update leases set expires_at = ? where name = ?',
      args: [Date.now(), MIGRATE_LEASE],
    });
    const outcome = await migrating;
    expect(outcome.ok).toBe(true);
    expect(outcome.waitedMs).toBeGreaterThanOrEqual(150);
    expect(await schemaSeen(other)).toEqual(schemaDeclared());
  });

  it('gives up after waitMs and says who holds the lease and until when', async () => {
    const store = open();
    await store.client.execute(LEASES_TABLE_SQL);
    await acquireLease(store.db, { name: MIGRATE_LEASE, holder: 'other', now: T0, ttlMs: MIGRATE_LEASE_TTL_MS });

    // The clock moves 1 s per reading: the 5 s wait is over after a few polls, long before the lease ends.
    let clock = T0;
    const outcome = await migrateStore(store, { holder: 'test', now: () => (clock += 1_000), waitMs: 5_000 });
    expect(outcome).toEqual({
      ok: false,
      holder: 'other',
      until: T0 + MIGRATE_LEASE_TTL_MS,
      waitedMs: expect.any(Number),
      message: `migrations: the migrate lease is held by other until ${new Date(T0 + MIGRATE_LEASE_TTL_MS).toISOString()} (waited ${outcome.waitedMs} ms)`,
    });
    expect(outcome.waitedMs).toBeGreaterThanOrEqual(5_000);
    expect(await hasTable(store, 'services')).toBe(false);
    expect(await readLease(store.db, MIGRATE_LEASE)).toEqual({
      name: MIGRATE_LEASE,
      holder: 'other',
      acquiredAt: T0,
      expiresAt: T0 + MIGRATE_LEASE_TTL_MS,
    });
  });

  it('takes over the lease of a migrator that died holding it, once it expired', async () => {
    const store = open();
    await store.client.execute(LEASES_TABLE_SQL);
    await acquireLease(store.db, { name: MIGRATE_LEASE, holder: 'dead', now: T0, ttlMs: MIGRATE_LEASE_TTL_MS });

    const outcome = await migrateStore(store, { holder: 'test', now: () => T0 + MIGRATE_LEASE_TTL_MS, waitMs: 0 });
    expect(outcome).toMatchObject({ ok: true, waitedMs: 0 });
    expect(await readLease(store.db, MIGRATE_LEASE)).toEqual({
      name: MIGRATE_LEASE,
      holder: outcome.holder,
      acquiredAt: T0 + MIGRATE_LEASE_TTL_MS,
      expiresAt: T0 + MIGRATE_LEASE_TTL_MS,
    });
  });

  it('a failing migration rejects, applies nothing, and releases the lease', async () => {
    const folder = join(dir, 'migrations');
    cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
    writeFileSync(
      join(folder, '0008_leases.sql'),
      `${LEASES_TABLE_SQL}\n--> statement-breakpoint\nALTER TABLE \`no_such_table\` ADD \`x\` integer;`,
    );

    const store = open();
    await expect(migrateStore(store, { holder: 'test', migrationsFolder: folder })).rejects.toThrow(/no_such_table/);
    expect(await hasTable(store, 'services')).toBe(false);
    expect((await readLease(store.db, MIGRATE_LEASE))!.expiresAt).toBeLessThanOrEqual(Date.now());
  });
});

describe('several migrators at once on one fresh store', () => {
  it("without the lease, drizzle's migrator fails for all but one", async () => {
    // In one process this is not a race: libSQL's calls are synchronous, so each migrator reads "nothing
    // applied" before the first one's batch runs, and the later batches fail. Across processes it fails
    // too, by timing (measured with 4 processes released together, 10 runs: every run had 3 failures,
    // "SQLITE_BUSY: database is locked" or "table ... already exists").
    const stores = Array.from({ length: 4 }, () => open());
    const outcomes = await Promise.allSettled(
      stores.map((s) => migrate(s.db, { migrationsFolder: MIGRATIONS_FOLDER })),
    );
    const failures = outcomes.filter((o) => o.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0);
    expect(String((failures[0] as PromiseRejectedResult).reason)).toMatch(/already exists/);
  });

  it('6 clients in this process and 2 other Node processes, released together, all succeed', {
    timeout: 60_000,
  }, async () => {
    const children = [spawnMigrator(url, 'child-1'), spawnMigrator(url, 'child-2')];
    try {
      await Promise.all(children.map((c) => c.ready));
      const stores = Array.from({ length: 6 }, () => open());
      for (const c of children) c.go();
      const outcomes = await Promise.all([
        ...stores.map((s, i) => migrateStore(s, { holder: `local-${i}` })),
        ...children.map((c) => c.outcome),
      ]);

      expect(outcomes.map((o) => o.ok)).toEqual(Array(8).fill(true));
      expect(new Set(outcomes.map((o) => o.holder)).size).toBe(8);
      const check = open();
      expect(await schemaSeen(check)).toEqual(schemaDeclared());
      expect(await appliedMigrations(check)).toBe(JOURNAL.entries.length);
    } finally {
      for (const c of children) c.kill();
    }
  });

  it('6 clients over libSQL HTTP (Hrana), all succeed', { timeout: 30_000 }, async () => {
    const hrana = await startHranaServer({ dbPath: join(dir, 'waymark.db') });
    try {
      const stores = Array.from({ length: 6 }, () => open(hrana.url));
      const outcomes = await Promise.all(stores.map((s, i) => migrateStore(s, { holder: `remote-${i}` })));
      expect(outcomes.map((o) => o.ok)).toEqual(Array(6).fill(true));
      const check = open(hrana.url);
      expect(await schemaSeen(check)).toEqual(schemaDeclared());
      expect(await appliedMigrations(check)).toBe(JOURNAL.entries.length);
    } finally {
      for (const s of opened.splice(0)) s.client.close();
      await hrana.close();
    }
  });
});

/** The script a child process runs: open the store, say "ready", wait for a line, migrate, print the outcome. */
const CHILD_SCRIPT = `
import { createInterface } from 'node:readline';
import { openStore } from ${JSON.stringify(join(ROOT, 'src/store/client.ts'))};
import { migrateStore } from ${JSON.stringify(join(ROOT, 'src/store/migrate.ts'))};
const [url, holder] = process.argv.slice(2);
const store = openStore(url);
console.log('ready');
await new Promise((resolve) => createInterface({ input: process.stdin }).once('line', resolve));
try {
  console.log(JSON.stringify(await migrateStore(store, { holder })));
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error) }));
}
store.client.close();
`;

interface ChildMigrator {
  ready: Promise<void>;
  go: () => void;
  outcome: Promise<MigrateOutcome>;
  kill: () => void;
}

/** A separate Node process (tsx) that migrates `storeUrl` when told to go. */
function spawnMigrator(storeUrl: string, holder: string): ChildMigrator {
  const script = join(dir, `${holder}.mts`);
  writeFileSync(script, CHILD_SCRIPT);
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', script, storeUrl, holder], {
    cwd: ROOT,
    stdio: 'pipe',
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${holder} exited (${code}) early: ${stderr}`))),
  );
  const next = () => Promise.race([new Promise<string>((resolve) => lines.once('line', resolve)), exited]);
  const ready = next().then((line) => expect(line).toBe('ready'));
  const outcome = ready.then(next).then((line) => JSON.parse(line) as MigrateOutcome);
  // Awaited by the test only once all are ready; a child that dies first fails `ready` instead.
  outcome.catch(() => undefined);
  return {
    ready: ready.then(() => undefined),
    go: () => child.stdin.write('go\n'),
    outcome,
    kill: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}
