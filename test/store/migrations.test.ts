import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '../../src/node/server.js';
import { openStore, type Store } from '../../src/store/client.js';
import { migrateStore } from '../../src/store/migrate.js';
import { putService } from '../../src/control/services.js';
import * as q from '../../src/store/services.js';
import { loadSnapshotSource } from '../../src/store/snapshots.js';

/** The migrations up to and including `tag`, as a folder of their own (journal trimmed to match). */
function migrationsUpTo(tag: string, dir: string): string {
  const folder = join(dir, 'migrations');
  cpSync(MIGRATIONS_FOLDER, folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { tag: string }[] };
  const last = journal.entries.findIndex((e) => e.tag === tag);
  expect(last, `migration ${tag}`).toBeGreaterThanOrEqual(0);
  writeFileSync(journalPath, JSON.stringify({ ...journal, entries: journal.entries.slice(0, last + 1) }));
  return folder;
}

describe('migrations: 0006_service_subsets', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-migrate-'));
    store = openStore(`file:${join(dir, 'waymark.db')}`);
  });
  afterEach(() => {
    store.client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is one ALTER TABLE ADD COLUMN with a default', () => {
    const sql = readFileSync(join(MIGRATIONS_FOLDER, '0006_service_subsets.sql'), 'utf8').trim();
    expect(sql).toBe("ALTER TABLE `services` ADD `subsets` text DEFAULT '{}' NOT NULL;");
  });

  it('a service stored before it loads with no subsets, and takes subsets after it', async () => {
    await migrate(store.db, { migrationsFolder: migrationsUpTo('0005_origin_host', dir) });
    await store.client.execute(
      `insert into services (name, failover, policy, created_at, updated_at) values ('shop', '[]', '{"failClosed":true}', 1, 1)`,
    );
    await store.client.execute(`insert into service_hosts (host, service) values ('shop.example.com', 'shop')`);

    await migrate(store.db, { migrationsFolder: MIGRATIONS_FOLDER });
    const old = await q.getService(store.db, 'shop');
    expect(old).toEqual({
      name: 'shop',
      hosts: ['shop.example.com'],
      failover: [],
      policy: { failClosed: true },
      subsets: {},
    });
    expect((await loadSnapshotSource(store.db)).services[0]?.subsets).toEqual({});

    const actor = { name: 'test', requestId: 'r', now: 2 };
    await putService(store.db, actor, { ...old!, subsets: { v1: { version: 'v1' } } });
    expect((await q.getService(store.db, 'shop'))?.subsets).toEqual({ v1: { version: 'v1' } });
  });
});

describe('migrations: 0008_leases', () => {
  let dir: string;
  let store: Store;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-migrate-'));
    store = openStore(`file:${join(dir, 'waymark.db')}`);
  });
  afterEach(() => {
    store.client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies on a store an older release left at 0007, after migrateStore created the table it adds', async () => {
    await migrate(store.db, { migrationsFolder: migrationsUpTo('0007_cluster_zone', dir) });
    expect(await migrateStore(store, { holder: 'test' })).toMatchObject({ ok: true });
    const applied = await store.client.execute('select count(*) as n from __drizzle_migrations');
    const journal = JSON.parse(readFileSync(join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')) as {
      entries: unknown[];
    };
    expect(Number(applied.rows[0]?.n)).toBe(journal.entries.length);
    const columns = await store.client.execute(`select name from pragma_table_info('leases') order by cid`);
    expect(columns.rows.map((r) => r.name)).toEqual(['name', 'holder', 'acquired_at', 'expires_at']);
  });
});
