import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CommandResult } from '../../src/control/command.js';
import { putCluster } from '../../src/control/clusters.js';
import { deleteService, putService } from '../../src/control/services.js';
import { compileSnapshot } from '../../src/routing/compile.js';
import type { SnapshotSource } from '../../src/routing/types.js';
import {
  loadSnapshotSource,
  type SnapshotArchive,
  type SnapshotCache,
  snapshotPipeline,
} from '../../src/store/snapshots.js';
import { actor, clusterConfig, openTempStore, serviceConfig, type TempStore } from './temp-store.js';

/**
 * Partial snapshots (issue 11, items 1 and 3): a cold instance whose archive gives a catalog (where each
 * host's service is, and the region catalog) instead of the configuration takes one shard per host the
 * first time a request needs it; admin views and publishing read the whole configuration. The archive
 * here keeps one service per shard in memory (Workers KV's layout is tested in test/worker/kv-snapshots).
 */

const SERVICES = ['shop', 'pay', 'auth', 'cart'];
let store: TempStore;
let clock = 1_000;
const at = () => actor((clock += 1_000));

function ok<T>(result: CommandResult<T>): T {
  if (!result.ok) throw new Error(result.problem.detail);
  return result.value;
}

interface MemoryArchive extends SnapshotArchive {
  reads: string[];
  failing: Set<string>;
  published: SnapshotSource[];
}

/** A catalog of `whole` (one shard per service, `shard/<name>`) and its shards. */
function memoryArchive(whole: SnapshotSource): MemoryArchive {
  const regions = [...compileSnapshot(whole, clock).regions];
  const archive: MemoryArchive = {
    reads: [],
    failing: new Set(),
    published: [],
    async get() {
      const shardOf = new Map(whole.services.flatMap((s) => s.hosts.map((h) => [h, `shard/${s.name}`] as const)));
      return {
        version: whole.version,
        services: [],
        overrides: [],
        partial: { regions, shardOf, loaded: new Set(), removed: new Set() },
      };
    },
    async shard(key) {
      archive.reads.push(key);
      await new Promise((r) => setTimeout(r, 5));
      if (archive.failing.has(key)) throw new Error(`shard ${key} unreadable`);
      const name = key.slice('shard/'.length);
      return {
        services: whole.services.filter((s) => s.name === name),
        overrides: whole.overrides.filter((o) => o.service === name),
      };
    },
    async put(source) {
      archive.published.push(source);
    },
  };
  return archive;
}

function pipeline(archive: SnapshotArchive): SnapshotCache {
  return snapshotPipeline(store.db, { now: () => clock, refreshMs: 0, onError: () => undefined, archive });
}

beforeEach(async () => {
  store = await openTempStore();
  for (const name of SERVICES) {
    ok(await putService(store.db, at(), serviceConfig(name, [`${name}.example.com`])));
    ok(await putCluster(store.db, at(), clusterConfig(name, 'ue', 'us-east1')));
    ok(await putCluster(store.db, at(), clusterConfig(name, 'ew', 'eu-west1')));
  }
});
afterEach(() => store.dispose());

describe('partial snapshots from an archive catalog', () => {
  it("a cold start holds no service; a host's first requests take its shard once and route with it", async () => {
    const archive = memoryArchive(await loadSnapshotSource(store.db));
    const cache = pipeline(archive);
    const cold = (await cache.get(() => undefined)) as NonNullable<Awaited<ReturnType<SnapshotCache['get']>>>;
    expect(cold.source.partial).toBeDefined();
    expect(cold.byName.size).toBe(0);

    const [a, b] = await Promise.all([
      cache.withHost(cold, 'pay.example.com'),
      cache.withHost(cold, 'pay.example.com'),
    ]);
    expect(archive.reads).toEqual(['shard/pay']);
    expect(a).toBe(b);
    expect([...(a?.byName.keys() ?? [])]).toEqual(['pay']);
    expect(a?.byHost.get('pay.example.com')?.clusters.map((c) => c.name)).toEqual(['ew', 'ue']);
    // The region catalog is the whole configuration's, as a whole snapshot has it.
    expect([...(a?.regions ?? [])]).toEqual([...compileSnapshot(await loadSnapshotSource(store.db), clock).regions]);
    // A host it holds, or one no shard has, reads nothing more.
    expect(await cache.withHost(a as never, 'pay.example.com')).toBe(a);
    expect(await cache.withHost(a as never, 'nowhere.example.com')).toBe(a);
    expect(archive.reads).toEqual(['shard/pay']);
  });

  it('a shard that cannot be read: the whole configuration comes from the store', async () => {
    const archive = memoryArchive(await loadSnapshotSource(store.db));
    archive.failing.add('shard/auth');
    const cache = pipeline(archive);
    const cold = await cache.get(() => undefined);
    const served = await cache.withHost(cold as never, 'auth.example.com');
    expect(served?.source.partial).toBeUndefined();
    expect(served?.byName.size).toBe(SERVICES.length);
  });

  it('a service deleted after the catalog is not brought back by its shard', async () => {
    const archive = memoryArchive(await loadSnapshotSource(store.db));
    const cache = pipeline(archive);
    await cache.get(() => undefined);
    ok(await deleteService(store.db, at(), 'cart'));
    await cache.refresh();
    const after = cache.current;
    expect(after?.source.partial?.removed).toEqual(new Set(['cart']));
    const served = await cache.withHost(after as never, 'cart.example.com');
    expect(archive.reads).toEqual(['shard/cart']);
    expect(served?.byHost.get('cart.example.com')).toBeUndefined();
  });

  it('a service changed after the catalog keeps the change when its shard is taken later', async () => {
    const archive = memoryArchive(await loadSnapshotSource(store.db));
    const cache = pipeline(archive);
    await cache.get(() => undefined);
    ok(await putCluster(store.db, at(), clusterConfig('shop', 'ue', 'us-east1', { weight: 7 })));
    await cache.refresh();
    const served = await cache.withHost(cache.current as never, 'shop.example.com');
    expect(served?.byHost.get('shop.example.com')?.clusters.find((c) => c.name === 'ue')?.weight).toBe(7);
  });

  it('an admin view (latest) and a publish read the whole configuration', async () => {
    const archive = memoryArchive(await loadSnapshotSource(store.db));
    const cache = pipeline(archive);
    await cache.get(() => undefined);
    const latest = await cache.latest();
    expect(latest?.source.partial).toBeUndefined();
    expect(latest?.byName.size).toBe(SERVICES.length);

    const writerArchive = memoryArchive(await loadSnapshotSource(store.db));
    const writer = pipeline(writerArchive);
    await writer.get(() => undefined);
    const put = await putService(store.db, at(), serviceConfig('new', ['new.example.com']));
    await writer.refreshAndPublish((put.ok && put.revision) || undefined);
    expect(writerArchive.published.map((s) => [s.version, s.partial, s.services.length])).toEqual([
      [writer.current?.version, undefined, SERVICES.length + 1],
    ]);
  });

  it('the store as its own catalog: the region catalog as a whole compile makes it, one service read per host', async () => {
    ok(
      await putCluster(
        store.db,
        at(),
        clusterConfig('pay', 'as', 'ap-southeast1', { latitude: -33.3, longitude: 151.2 }),
      ),
    );
    const whole = compileSnapshot(await loadSnapshotSource(store.db), clock);
    const cache = snapshotPipeline(store.db, {
      now: () => clock,
      refreshMs: 0,
      onError: () => undefined,
      partialAbove: 1,
    });
    const cold = await cache.get(() => undefined);
    expect(cold?.source.partial).toBeDefined();
    expect([...(cold?.regions ?? [])]).toEqual([...whole.regions]);
    const served = await cache.withHost(cold as never, 'pay.example.com');
    expect([...(served?.byName.keys() ?? [])]).toEqual(['pay']);
    expect(served?.byName.get('pay')?.spec).toEqual(whole.byName.get('pay')?.spec);
    // Over the threshold only: a store of as many services as the threshold is read whole.
    const small = snapshotPipeline(store.db, {
      now: () => clock,
      refreshMs: 0,
      onError: () => undefined,
      partialAbove: SERVICES.length,
    });
    expect((await small.get(() => undefined))?.source.partial).toBeUndefined();
  });
});
