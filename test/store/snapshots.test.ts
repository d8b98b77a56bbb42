import { afterEach, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import type { Snapshot } from '../../src/routing/types.js';
import { putService } from '../../src/control/services.js';
import { loadSnapshotSource, readRevision, SnapshotCache } from '../../src/store/snapshots.js';
import { actor, openTempStore, serviceConfig, type TempStore } from './temp-store.js';

const REFRESH_MS = 1_000;

function snapshot(version: number): Snapshot {
  return compileSnapshot({ version, services: [], overrides: [] }, 0);
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether `p` settles once pending I/O callbacks and microtasks have run, without waiting on anything else. */
async function settlesPromptly(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

/**
 * A cache over a fake store: `version` is what readVersion answers (or a pending/failing answer when
 * `nextVersion` is set), `load` builds a snapshot at the current version. Calls are counted.
 */
function fixture(initialVersion = 1) {
  const state = {
    clock: 0,
    version: initialVersion,
    readVersionCalls: 0,
    loadCalls: 0,
    errors: [] as unknown[],
    backgrounds: [] as Promise<unknown>[],
    /** When set, the next readVersion call returns this instead of `version` (then it is cleared). */
    nextVersion: null as Promise<number> | null,
    /** When set, the next load call returns this (then it is cleared). */
    nextLoad: null as Promise<Snapshot> | null,
  };
  const cache = new SnapshotCache({
    rebuild: (snap) => snap,
    readVersion: () => {
      state.readVersionCalls += 1;
      const next = state.nextVersion;
      state.nextVersion = null;
      return next ?? Promise.resolve(state.version);
    },
    load: () => {
      state.loadCalls += 1;
      const next = state.nextLoad;
      state.nextLoad = null;
      return next ?? Promise.resolve(snapshot(state.version));
    },
    refreshMs: REFRESH_MS,
    now: () => state.clock,
    onError: (error) => state.errors.push(error),
  });
  const background = (work: Promise<unknown>) => {
    state.backgrounds.push(work);
  };
  /** Waits for every background refresh handed out so far. */
  const drain = () => Promise.all(state.backgrounds);
  return { state, cache, background, drain };
}

describe('SnapshotCache', () => {
  it('the first get waits for the load and returns its snapshot', async () => {
    const { state, cache, background } = fixture(7);
    const load = deferred<Snapshot>();
    state.nextLoad = load.promise;

    const first = cache.get(background);
    expect(await settlesPromptly(first)).toBe(false);
    expect(state.loadCalls).toBe(1);

    load.resolve(snapshot(7));
    expect((await first)?.version).toBe(7);
    expect(cache.current?.version).toBe(7);
    expect(state.backgrounds).toHaveLength(0);
    expect(cache.checkedAt).toBe(0);
    expect(cache.lastError).toBeNull();
  });

  it('within refreshMs of the last check, get does not touch the store', async () => {
    const { state, cache, background } = fixture();
    await cache.get(background);
    expect(state.readVersionCalls).toBe(1);

    for (const t of [1, 500, REFRESH_MS - 1]) {
      state.clock = t;
      state.version = 2;
      expect((await cache.get(background))?.version).toBe(1);
    }
    expect(state.readVersionCalls).toBe(1);
    expect(state.loadCalls).toBe(1);
    expect(state.backgrounds).toHaveLength(0);
  });

  it('after refreshMs, get answers at once and starts one background check shared by concurrent gets', async () => {
    const { state, cache, background, drain } = fixture();
    await cache.get(background);
    state.clock = REFRESH_MS;
    const check = deferred<number>();
    state.nextVersion = check.promise;

    const gets = [cache.get(background), cache.get(background), cache.get(background)];
    for (const g of gets) expect(await settlesPromptly(g)).toBe(true);
    expect((await Promise.all(gets)).map((s) => s?.version)).toEqual([1, 1, 1]);
    expect(state.readVersionCalls).toBe(2);
    expect(state.backgrounds).toHaveLength(3);
    expect(new Set(state.backgrounds).size).toBe(1);

    check.resolve(1);
    await drain();
    expect(state.loadCalls).toBe(1);
    expect(cache.checkedAt).toBe(REFRESH_MS);

    // The next check is due only refreshMs after this one ended.
    state.clock = 2 * REFRESH_MS - 1;
    await cache.get(background);
    expect(state.readVersionCalls).toBe(2);
  });

  it('reloads only when the version moved', async () => {
    const { state, cache, background, drain } = fixture();
    await cache.get(background);

    state.clock = REFRESH_MS;
    await cache.get(background);
    await drain();
    expect(state.readVersionCalls).toBe(2);
    expect(state.loadCalls).toBe(1);

    state.version = 2;
    state.clock = 2 * REFRESH_MS;
    expect((await cache.get(background))?.version).toBe(1);
    await drain();
    expect(state.readVersionCalls).toBe(3);
    expect(state.loadCalls).toBe(2);
    expect(cache.current?.version).toBe(2);
    state.clock = 2 * REFRESH_MS + 1;
    expect((await cache.get(background))?.version).toBe(2);
  });

  it('when the version check fails it keeps serving the last good snapshot, reports, and recovers', async () => {
    const { state, cache, background, drain } = fixture();
    await cache.get(background);

    const outage = new Error('store unreachable');
    state.clock = REFRESH_MS;
    state.nextVersion = Promise.reject(outage);
    expect((await cache.get(background))?.version).toBe(1);
    await drain();
    expect(state.errors).toEqual([outage]);
    expect(cache.lastError).toEqual({ at: REFRESH_MS, message: 'store unreachable' });
    expect(cache.current?.version).toBe(1);
    expect(cache.checkedAt).toBe(REFRESH_MS);

    // Still serving, and not retrying before refreshMs has passed again.
    state.clock = REFRESH_MS + 1;
    expect((await cache.get(background))?.version).toBe(1);
    expect(state.readVersionCalls).toBe(2);

    state.version = 3;
    state.clock = 2 * REFRESH_MS;
    await cache.get(background);
    await drain();
    expect(cache.lastError).toBeNull();
    expect(cache.current?.version).toBe(3);
    expect(state.errors).toHaveLength(1);
  });

  it('when the reload fails the last good snapshot stays', async () => {
    const { state, cache, background, drain } = fixture();
    await cache.get(background);
    state.version = 2;
    state.clock = REFRESH_MS;
    state.nextLoad = Promise.reject(new Error('compile failed'));
    await cache.get(background);
    await drain();
    expect(cache.current?.version).toBe(1);
    expect(cache.lastError?.message).toBe('compile failed');
    expect(state.errors).toHaveLength(1);
  });

  it('when the very first load fails, get answers null with the error recorded, and loads on a later try', async () => {
    const { state, cache, background } = fixture();
    state.nextVersion = Promise.reject('boom');
    expect(await cache.get(background)).toBeNull();
    expect(cache.lastError).toEqual({ at: 0, message: 'boom' });
    expect(state.errors).toEqual(['boom']);

    state.clock = REFRESH_MS;
    // Nothing loaded yet: this get waits for the store instead of handing the check to the background.
    expect((await cache.get(background))?.version).toBe(1);
    expect(state.backgrounds).toHaveLength(0);
    expect(cache.lastError).toBeNull();
  });

  it('concurrent refresh() calls share one check', async () => {
    const { state, cache } = fixture();
    const check = deferred<number>();
    state.nextVersion = check.promise;
    const a = cache.refresh();
    const b = cache.refresh();
    expect(a).toBe(b);
    check.resolve(4);
    state.version = 4;
    await Promise.all([a, b]);
    expect(state.readVersionCalls).toBe(1);
    expect(state.loadCalls).toBe(1);
    expect(cache.current?.version).toBe(4);
    // Once settled, a new refresh starts a new check.
    await cache.refresh();
    expect(state.readVersionCalls).toBe(2);
  });

  it('refreshTo(revision) does not settle for a check that read the revision before the write committed', async () => {
    const { state, cache } = fixture(3);
    await cache.refresh();
    // A background check is running; it read revision 3 just before a write committed revision 4.
    const check = deferred<number>();
    state.nextVersion = check.promise;
    const running = cache.refresh();
    state.version = 4;
    const after = cache.refreshTo(4);
    check.resolve(3);
    await running;
    expect(cache.current?.version).toBe(3);
    await after;
    expect(cache.current?.version).toBe(4);
    expect(state.readVersionCalls).toBe(3);
    // Already there: one check, no second.
    await cache.refreshTo(4);
    expect(state.readVersionCalls).toBe(4);
  });

  it('writes that commit while a reload runs share the next reload', async () => {
    const { state, cache } = fixture(1);
    await cache.refresh();
    const check = deferred<number>();
    state.nextVersion = check.promise;
    state.nextLoad = Promise.resolve(snapshot(2));
    state.version = 2;
    const first = cache.refreshTo(2);
    // Ten more writes commit while that check is out.
    const more = Array.from({ length: 10 }, (_, i) => {
      state.version = 3 + i;
      return cache.refreshTo(3 + i);
    });
    check.resolve(2);
    await Promise.all([first, ...more]);
    expect(cache.current?.version).toBe(12);
    // The first load, the one that read revision 2, and one more for all ten.
    expect(state.readVersionCalls).toBe(3);
    expect(state.loadCalls).toBe(3);
  });
});

describe('SnapshotCache over the real store', () => {
  let store: TempStore | undefined;

  afterEach(() => {
    store?.dispose();
    store = undefined;
  });

  it('sees a write through putService after refresh()', async () => {
    store = await openTempStore();
    const db = store.db;
    let clock = 0;
    const errors: unknown[] = [];
    const cache = new SnapshotCache({
      readVersion: () => readRevision(db),
      load: async () => compileSnapshot(await loadSnapshotSource(db), clock),
      rebuild: (snap, at) => compileSnapshot(snap.source, at),
      refreshMs: REFRESH_MS,
      now: () => clock,
      onError: (error) => errors.push(error),
    });
    const none = () => {
      throw new Error('no background work expected');
    };

    const empty = await cache.get(none);
    expect(empty?.version).toBe(0);
    expect(empty?.byHost.size).toBe(0);

    await putService(db, actor(1), serviceConfig('shop', ['shop.example.com']));
    clock = 10;
    expect((await cache.get(none))?.version).toBe(0);

    await cache.refresh();
    const after = await cache.get(none);
    expect(after?.version).toBe(1);
    expect(after?.byHost.get('shop.example.com')?.name).toBe('shop');
    expect(errors).toEqual([]);
  });
});
