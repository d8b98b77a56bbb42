import { createExecutionContext, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServiceSpec, SnapshotSource } from '../../src/routing/types.js';
import {
  type Catalog,
  decode,
  kvArchive,
  LATEST_KEY,
  REVISION_KEY_TTL_SECONDS,
  SHARD_TTL_SECONDS,
  snapshotKey,
} from '../../src/store/kv-archive.js';
import type { SourcePart } from '../../src/store/snapshots.js';
import { silentLogger } from '../../src/observe/log.js';
import { createWorker } from '../../src/worker.js';
import { admin, BASE, ctl, DUBLIN, registerShop, upstreams } from './support.js';

const kv = env.WAYMARK_SNAPSHOTS;
/** A loopback port nothing listens on, for clusters no test sends traffic to. */
const CLOSED_PORT = 59_999;

/** A catalog as kept in KV (gzipped JSON), or null. */
async function kvCatalog(key: string): Promise<Catalog | null> {
  const value = await kv.get(key, 'arrayBuffer');
  return value ? ((await decode(value)) as Catalog) : null;
}

/** Every service a catalog's shards hold. */
async function catalogServices(catalog: Catalog): Promise<ServiceSpec[]> {
  const parts = await Promise.all(
    catalog.shards.map(async (key) => (await decode((await kv.get(key, 'arrayBuffer')) as ArrayBuffer)) as SourcePart),
  );
  return parts.flatMap((p) => p.services);
}

/** A shard key as a catalog names it. */
const catalogShard = (key: string | undefined): boolean => key?.startsWith('shard/') === true;

/** The shard keys KV holds now. */
async function shardKeys(): Promise<Set<string>> {
  const names = new Set<string>();
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix: 'shard/', ...(cursor ? { cursor } : {}) });
    for (const k of page.keys) names.add(k.name);
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return names;
}

/** The store's pipeline requests so far (the Hrana test server counts them). */
async function storeRequests(): Promise<number> {
  return ((await ctl('/store-requests')) as { requests: number }).requests;
}

/** Rows the store's statements have returned so far (what Turso bills as rows read, near enough). */
async function storeRows(): Promise<number> {
  return ((await ctl('/store-requests')) as { rows: number }).rows;
}

/** The revision SELF (a warm isolate that has just written) serves. */
async function currentVersion(): Promise<number> {
  const ready = (await (await SELF.fetch(`${BASE}/_waymark/health/ready`)).json()) as { snapshotVersion: number };
  return ready.snapshotVersion;
}

/** A cold isolate: a fresh runtime with nothing loaded, as a new isolate of the deployed Worker starts. */
async function coldFetch(
  requests: Request[],
  bindings: Record<string, unknown> = env,
): Promise<{ responses: Response[]; requests: number }> {
  const worker = createWorker({ log: silentLogger });
  const before = await storeRequests();
  const responses: Response[] = [];
  for (const request of requests) {
    const ctx = createExecutionContext();
    responses.push(await worker.fetch(request, bindings, ctx));
    await waitOnExecutionContext(ctx);
  }
  return { responses, requests: (await storeRequests()) - before };
}

const proxied = (path: string) => new Request(`https://shop.example.com${path}`, { cf: DUBLIN } as RequestInit);
const ready = () => new Request(`${BASE}/_waymark/health/ready`);

beforeAll(registerShop);
afterEach(() => ctl('/store-up'));

describe('the snapshot archive in Workers KV', () => {
  it('a write through the admin API publishes its revision: the revision key and latest hold its catalog, shards its services', async () => {
    const put = await admin('PUT', '/services/kv-published', { hosts: ['kv-published.example.com'] });
    expect(put.status).toBeLessThan(300);
    const version = await currentVersion();

    const revision = await kvCatalog(snapshotKey(version));
    expect(revision).toMatchObject({ format: 2, version });
    expect(revision?.hosts).toMatchObject({
      'shop.example.com': expect.any(Number),
      'kv-published.example.com': expect.any(Number),
    });
    expect(revision?.regions.map(([region]) => region)).toEqual(expect.arrayContaining(['us-east1', 'eu-west1']));
    expect((await catalogServices(revision as Catalog)).map((s) => s.name)).toEqual(
      expect.arrayContaining(['shop', 'kv-published']),
    );
    expect(await kvCatalog(LATEST_KEY)).toEqual(revision);
    // Revision keys expire (KV would otherwise grow with every write); latest does not; shards expire unless written again.
    const listed = await kv.list({ prefix: snapshotKey(version) });
    const key = listed.keys.find((k) => k.name === snapshotKey(version));
    expect(key?.expiration).toBeGreaterThan(Date.now() / 1000 + REVISION_KEY_TTL_SECONDS - 120);
    expect((await kv.list({ prefix: LATEST_KEY })).keys[0]?.expiration).toBeUndefined();
    const shard = (await kv.list({ prefix: 'shard/' })).keys[0];
    expect(shard?.expiration).toBeGreaterThan(Date.now() / 1000 + SHARD_TTL_SECONDS - 120);
  });

  it('a publish writes only the shards whose services changed', async () => {
    const version = await currentVersion();
    const before = await shardKeys();
    const catalogBefore = (await kvCatalog(snapshotKey(version))) as Catalog;
    const put = await admin('PUT', '/services/kv-published', {
      hosts: ['kv-published.example.com', 'kv-2.example.com'],
    });
    expect(put.status).toBe(200);
    const catalog = (await kvCatalog(snapshotKey(await currentVersion()))) as Catalog;
    const added = [...(await shardKeys())].filter((k) => !before.has(k));
    expect(added).toEqual([catalog.shards[catalog.hosts['kv-2.example.com'] as number]]);
    expect(catalog.shards.filter((k) => !catalogBefore.shards.includes(k))).toEqual(added);
  });

  it("a large configuration is sharded: 8,000 services (over KV's 25 MiB as JSON) publish as a small catalog and small shards, read back whole", async () => {
    // 8,000 services x 20 clusters: about 30 MB of JSON.
    const services = Array.from({ length: 8_000 }, (_, i) => ({
      name: `big-${i}`,
      hosts: [`big-${i}.example.com`],
      failover: [],
      clusters: Array.from({ length: 20 }, (_, j) => ({
        name: `c-${j}`,
        region: `region-${j % 10}`,
        origin: upstreams.ew1 as string,
        latitude: 10 + j / 7,
        longitude: 20 + i / 1000,
        weight: 100,
        labels: { version: 'v1' },
        health: 'healthy' as const,
      })),
    }));
    const big: SnapshotSource = { version: 987_654, services, overrides: [] };
    expect(JSON.stringify(big).length).toBeGreaterThan(25 * 1024 * 1024);
    const latestBefore = await kv.get(LATEST_KEY, 'arrayBuffer');
    const shardsBefore = await shardKeys();
    const archive = kvArchive(kv);
    await archive.put(big);
    const catalog = (await kv.get(snapshotKey(987_654), 'arrayBuffer')) as ArrayBuffer;
    // The catalog names every host (8,000) and shard; gzipped, a few tens of KB.
    expect(catalog.byteLength).toBeLessThan(200 * 1024);
    const back = await archive.get(987_654);
    expect(back).toMatchObject({ version: 987_654, services: [], overrides: [] });
    // Every host is found in one of the catalog's shards; no other name is, Object.prototype's included.
    const shardOf = back?.partial?.shardOf;
    expect(services.filter((s) => catalogShard(shardOf?.get(s.hosts[0] as string))).length).toBe(8_000);
    for (const host of ['nothing.example.com', 'constructor', '__proto__', 'toString', 'hasOwnProperty'])
      expect(shardOf?.get(host)).toBeUndefined();
    const key = back?.partial?.shardOf.get('big-7999.example.com') as string;
    const shard = await archive.shard?.(key);
    // About 32 services per shard.
    expect(shard?.services.length).toBeGreaterThan(10);
    expect(shard?.services.length).toBeLessThan(64);
    expect(shard?.services.find((s) => s.name === 'big-7999')).toEqual(services[7_999]);

    // A cold isolate with the store down starts from that catalog and takes one shard for its first request.
    await ctl('/store-down');
    const cold = await coldFetch([
      new Request('https://big-7999.example.com/cold', { cf: DUBLIN } as RequestInit),
      ready(),
    ]);
    const [res, readiness] = cold.responses as [Response, Response];
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toMatch(/^c-\d+$/);
    const body = (await readiness.json()) as { services: number; snapshotVersion: number };
    expect(body.snapshotVersion).toBe(987_654);
    // It holds the services of that shard, not the 8,000.
    expect(body.services).toBe(shard?.services.length);
    await ctl('/store-up');
    // A whole source published before the catalog layout (plain JSON) still reads, whole.
    const plain = { version: 987_655, services: [], overrides: [] };
    await kv.put(snapshotKey(987_655), JSON.stringify(plain));
    expect(await kvArchive(kv).get(987_655)).toEqual(plain);
    await kv.delete(snapshotKey(987_654));
    await kv.delete(snapshotKey(987_655));
    for (const k of await shardKeys()) if (!shardsBefore.has(k)) await kv.delete(k);
    if (latestBefore) await kv.put(LATEST_KEY, latestBefore);
  });

  it('a cold isolate with the store unreachable serves from KV latest, and says it is degraded', async () => {
    const version = await currentVersion();
    expect((await kvCatalog(LATEST_KEY))?.version).toBe(version);
    await ctl('/store-down');

    const cold = await coldFetch([proxied('/from-kv'), ready()]);
    const [res, readiness] = cold.responses as [Response, Response];
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toBe('ew1');
    expect(readiness.status).toBe(200);
    const body = (await readiness.json()) as Record<string, unknown>;
    // Still ready (it routes), but serving a snapshot that did not come from the store.
    expect(body).toMatchObject({ status: 'degraded', degraded: true, snapshotVersion: version });
    expect(body.storeUnreachableSince).toEqual(expect.any(String));
  });

  it('a cold isolate that started from the catalog reads the whole configuration for an admin view', async () => {
    const version = await currentVersion();
    expect((await kvCatalog(snapshotKey(version)))?.version).toBe(version);
    const cold = await coldFetch([
      proxied('/partial-first'),
      new Request(`${BASE}/_waymark/api/v1/services/kv-published/failover`, {
        headers: { authorization: 'Bearer workerd-admin-token-0123456789' },
      }),
    ]);
    const [res, failover] = cold.responses as [Response, Response];
    expect(res.status).toBe(200);
    expect(failover.status).toBe(200);
    expect(await failover.json()).toMatchObject({ service: 'kv-published' });
  });

  it('a cold isolate with the store unreachable and no archive binding is not ready', async () => {
    await ctl('/store-down');
    const cold = await coldFetch([ready()], { ...env, WAYMARK_SNAPSHOTS: undefined });
    expect(cold.responses[0]?.status).toBe(503);
  });

  it('a cold isolate with the store up reads the configuration from KV when it holds the current revision', async () => {
    const version = await currentVersion();
    expect(await kv.get(snapshotKey(version))).not.toBeNull();
    const fromKv = await coldFetch([proxied('/kv-hit')]);
    expect(fromKv.responses[0]?.status).toBe(200);
    expect(fromKv.responses[0]?.headers.get('x-waymark-cluster')).toBe('ew1');

    // The same cold start without the archive reads the whole configuration from the store.
    const fromStore = await coldFetch([proxied('/no-archive')], { ...env, WAYMARK_SNAPSHOTS: undefined });
    expect(fromStore.responses[0]?.status).toBe(200);
    // With KV: the revision query alone (one pipeline request); without: that and the configuration's batch.
    expect(fromKv.requests).toBe(1);
    expect(fromStore.requests).toBeGreaterThan(fromKv.requests);
  });

  it('a revision bump reaches a warm isolate as a partial reload: it reads the changed service only', async () => {
    for (let i = 0; i < 8; i++) {
      const name = `bulk-${i}`;
      expect((await admin('PUT', `/services/${name}`, { hosts: [`${name}.example.com`] })).status).toBeLessThan(300);
      for (const region of ['us-east1', 'eu-west1'])
        expect(
          (
            await admin('PUT', `/services/${name}/clusters/${region}`, {
              region,
              latitude: 10,
              longitude: 10,
              // Nothing listens there: a sync probing it is refused at once (no DNS lookup for workerd to log).
              origin: `http://127.0.0.1:${CLOSED_PORT}/${name}/${region}`,
              healthCheck: { path: '/health/ready' },
            })
          ).status,
        ).toBeLessThan(300);
    }
    // A warm isolate of its own, checking the revision on every request.
    const worker = createWorker({ log: silentLogger });
    const bindings = { ...env, WAYMARK_SNAPSHOT_REFRESH_MS: '100' };
    const send = async (request: Request): Promise<Response> => {
      const ctx = createExecutionContext();
      const res = await worker.fetch(request, bindings, ctx);
      await waitOnExecutionContext(ctx);
      return res;
    };
    const versionOf = async () => ((await (await send(ready())).json()) as { snapshotVersion: number }).snapshotVersion;
    expect((await send(proxied('/warm'))).status).toBe(200);
    expect(await versionOf()).toBe(await currentVersion());

    // The whole configuration, as a cold isolate without an archive reads it.
    const full = await storeRows();
    await coldFetch([proxied('/full')], { ...env, WAYMARK_SNAPSHOTS: undefined });
    const fullRows = (await storeRows()) - full;

    expect(
      (
        await admin('PUT', '/services/bulk-3/clusters/us-east1', {
          region: 'us-east1',
          latitude: 10,
          longitude: 10,
          weight: 7,
          origin: `http://127.0.0.1:${CLOSED_PORT}/bulk-3/us-east1`,
          healthCheck: { path: '/health/ready' },
        })
      ).status,
    ).toBe(200);
    const version = await currentVersion();
    const before = await storeRows();
    await new Promise((r) => setTimeout(r, 150));
    // This request starts the check (in the background); the next one routes on what it loaded.
    expect((await send(proxied('/after-write'))).status).toBe(200);
    const partialRows = (await storeRows()) - before;
    expect(await versionOf()).toBe(version);
    // The version check's row, then the revision, bulk-3's row, its host and its two clusters: not the configuration.
    expect(partialRows).toBe(6);
    expect(fullRows).toBeGreaterThan(8 * 4);
  });

  it('a cold isolate with KV empty falls back to the store', async () => {
    const { keys } = await kv.list();
    await Promise.all(keys.map((k) => kv.delete(k.name)));
    try {
      const withoutKv = await coldFetch([proxied('/no-archive')], { ...env, WAYMARK_SNAPSHOTS: undefined });
      const emptyKv = await coldFetch([proxied('/kv-empty'), ready()]);
      const [res, readiness] = emptyKv.responses as [Response, Response];
      expect(res.status).toBe(200);
      expect(res.headers.get('x-waymark-cluster')).toBe('ew1');
      expect(await readiness.json()).toMatchObject({
        status: 'ready',
        degraded: false,
        snapshotVersion: await currentVersion(),
      });
      // As many store reads as a cold start without an archive: the whole configuration came from the store.
      expect(emptyKv.requests).toBe(withoutKv.requests);
      // Only writers publish: a reader's load leaves KV as it was.
      expect((await kv.list()).keys).toEqual([]);
    } finally {
      // A write publishes again, for whatever runs next.
      expect((await admin('DELETE', '/services/kv-published')).status).toBeLessThan(300);
      expect((await kvCatalog(LATEST_KEY))?.version).toBe(await currentVersion());
    }
  });
});
