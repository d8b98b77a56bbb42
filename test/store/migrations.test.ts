import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '../../src/node/server.js';
import { openStore, type Store } from '../../src/store/client.js';
import * as q from '../../src/store/queries.js';

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
    await store.client.execute(`insert into services (name, failover, policy, created_at, updated_at) values ('shop', '[]', '{"failClosed":true}', 1, 1)`);
    await store.client.execute(`insert into service_hosts (host, service) values ('shop.example.com', 'shop')`);

    await migrate(store.db, { migrationsFolder: MIGRATIONS_FOLDER });
    const old = await q.getService(store.db, 'shop');
    expect(old).toEqual({ name: 'shop', hosts: ['shop.example.com'], failover: [], policy: { failClosed: true }, subsets: {} });
    expect((await q.loadSnapshotSource(store.db)).services[0]?.subsets).toEqual({});

    const actor = { name: 'test', requestId: 'r', now: 2 };
    await q.putService(store.db, actor, old, { ...old!, subsets: { v1: { version: 'v1' } } });
    expect((await q.getService(store.db, 'shop'))?.subsets).toEqual({ v1: { version: 'v1' } });
  });
});
