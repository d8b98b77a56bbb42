import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import type { CommandResult } from '../../src/control/command.js';
import { deleteCluster, putCluster } from '../../src/control/clusters.js';
import { createOverride, endOverride } from '../../src/control/overrides.js';
import { deleteRoute, putRoute, setAutomation } from '../../src/control/routes.js';
import { deleteService, putService } from '../../src/control/services.js';
import { recordSyncRound, type SyncRound } from '../../src/control/sync-round.js';
import type { SnapshotSource } from '../../src/routing/types.js';
import { clusterHealth, services } from '../../src/store/schema.js';
import {
  loadSnapshotDelta,
  loadSnapshotSource,
  mergeSource,
  readRevision,
  snapshotPipeline,
} from '../../src/store/snapshots.js';
import { actor, clusterConfig, openTempStore, serviceConfig, type TempStore } from './temp-store.js';

/**
 * Partial reloads (issue 11, item 2): every write marks the services it changes with the revision its
 * transaction commits (triggers, migration 0010), and a delta read after a revision holds those
 * services whole and the names of the deleted ones. Checked against the real migrations and commands.
 */

const SERVICES = ['shop', 'pay', 'auth'];
let store: TempStore;
let clock = 1_000;
const at = () => actor((clock += 1_000));

function ok<T>(result: CommandResult<T>): T {
  if (!result.ok) throw new Error(result.problem.detail);
  return result.value;
}

/** Services by name, the overrides by id: what a source holds, in an order that does not depend on how it was built. */
function normalized(source: SnapshotSource) {
  return {
    version: source.version,
    services: [...source.services].sort((a, b) => (a.name < b.name ? -1 : 1)),
    overrides: [...source.overrides].sort((a, b) => (a.id < b.id ? -1 : 1)),
  };
}

function round(extra: Partial<SyncRound>): SyncRound {
  return {
    health: [],
    expired: [],
    routeStates: [],
    latencyOrders: [],
    events: [],
    lastReportId: 0,
    readAt: clock + 10_000,
    retention: { days: 14, auditDays: 365 },
    ...extra,
  };
}

function verdict(service: string, cluster: string, state: 'healthy' | 'unhealthy', successes: number) {
  return {
    service,
    cluster,
    record: { state, consecutiveSuccesses: successes, consecutiveFailures: 0, reason: null, changedAt: clock },
    probe: { ok: true, status: 200, latencyMs: 5, error: null },
    changed: true,
  };
}

const route = (service: string, name: string) => ({
  service,
  name,
  order: 1,
  match: { path: { prefix: '/api' } },
  destinations: [{ subset: { version: 'v1' }, weight: 100 }],
  mirror: {
    subset: { version: 'v1' },
    percent: 5,
    ramp: { step: 5, max: 50, minSamples: 10, maxErrorRateDelta: 0.01, maxLatencyRatio: 1.5 },
  },
});

beforeEach(async () => {
  store = await openTempStore();
  for (const name of SERVICES) {
    ok(await putService(store.db, at(), serviceConfig(name, [`${name}.example.com`])));
    ok(await putCluster(store.db, at(), clusterConfig(name, 'ue', 'us-east1')));
    ok(await putCluster(store.db, at(), clusterConfig(name, 'ew', 'eu-west1')));
  }
});

afterEach(() => store.dispose());

describe('a delta after a revision', () => {
  // Each write, and the services its delta must hold (the others are untouched).
  const writes: [string, () => Promise<unknown>, string[], string[]][] = [
    [
      'a service changed',
      () => putService(store.db, at(), serviceConfig('pay', ['pay.example.com', 'p.example.com'])),
      ['pay'],
      [],
    ],
    ['a cluster added', () => putCluster(store.db, at(), clusterConfig('shop', 'as', 'ap-southeast1')), ['shop'], []],
    [
      'a cluster changed',
      () => putCluster(store.db, at(), clusterConfig('auth', 'ue', 'us-east1', { weight: 7 })),
      ['auth'],
      [],
    ],
    ['a cluster deleted', () => deleteCluster(store.db, at(), 'shop', 'ew'), ['shop'], []],
    [
      'an override created',
      () =>
        createOverride(store.db, at(), {
          service: 'pay',
          action: 'drain',
          cluster: 'ue',
          reason: 'test',
          ttlSeconds: 600,
          force: false,
        }),
      ['pay'],
      [],
    ],
    ['a route put', () => putRoute(store.db, at(), route('shop', 'api')), ['shop'], []],
    ['a service deleted', () => deleteService(store.db, at(), 'auth'), [], ['auth']],
    [
      'a health verdict that changes a state',
      () => recordSyncRound(store.db, at(), round({ health: [verdict('pay', 'ew', 'unhealthy', 0)] })),
      ['pay'],
      [],
    ],
    [
      'a latency order',
      () =>
        recordSyncRound(
          store.db,
          at(),
          round({
            latencyOrders: [
              {
                service: 'auth',
                clientRegion: 'ap-southeast1',
                order: [{ region: 'eu-west1', meanMs: 90, samples: 50 }],
              },
            ],
          }),
        ),
      ['auth'],
      [],
    ],
  ];

  it.each(writes)(
    '%s: holds exactly the services it changed, and merged equals a full load',
    async (_name, write, changed, removed) => {
      const before = await loadSnapshotSource(store.db);
      await write();
      const delta = await loadSnapshotDelta(store.db, before.version);
      expect(delta.services.map((s) => s.name).sort()).toEqual([...changed].sort());
      expect(delta.removed).toEqual(removed);
      expect(normalized(mergeSource(before, delta))).toEqual(normalized(await loadSnapshotSource(store.db)));
    },
  );

  it('a service deleted and created again is replaced whole, not removed', async () => {
    const before = await loadSnapshotSource(store.db);
    ok(await deleteService(store.db, at(), 'shop'));
    ok(await putService(store.db, at(), serviceConfig('shop', ['shop.example.com'])));
    const delta = await loadSnapshotDelta(store.db, before.version);
    expect(delta.removed).toEqual([]);
    expect(delta.services.map((s) => [s.name, s.clusters.length])).toEqual([['shop', 0]]);
    expect(normalized(mergeSource(before, delta))).toEqual(normalized(await loadSnapshotSource(store.db)));
  });

  it('over a long run of mixed writes, applying each delta in turn always equals a full load', async () => {
    ok(await putRoute(store.db, at(), route('pay', 'api')));
    let source = await loadSnapshotSource(store.db);
    const steps: (() => Promise<unknown>)[] = [
      () => putCluster(store.db, at(), clusterConfig('pay', 'as', 'ap-southeast1')),
      () => setAutomation(store.db, at(), 'pay', 'api', 'pause'),
      () =>
        createOverride(store.db, at(), {
          service: 'shop',
          action: 'pin',
          cluster: 'ew',
          region: 'us-east1',
          reason: 'x',
          ttlSeconds: 60,
          force: false,
        }),
      () => deleteService(store.db, at(), 'auth'),
      () => putService(store.db, at(), serviceConfig('auth', ['auth.example.com'])),
      () => putCluster(store.db, at(), clusterConfig('auth', 'ue', 'us-east1')),
      () => deleteRoute(store.db, at(), 'pay', 'api'),
      () => recordSyncRound(store.db, at(), round({ health: [verdict('shop', 'ue', 'healthy', 2)] })),
      async () => {
        const active = (await loadSnapshotSource(store.db)).overrides[0];
        if (active) ok(await endOverride(store.db, at(), active.id));
      },
      () => putService(store.db, at(), serviceConfig('new', ['new.example.com'])),
    ];
    for (const step of steps) {
      await step();
      source = mergeSource(source, await loadSnapshotDelta(store.db, source.version));
      expect(normalized(source)).toEqual(normalized(await loadSnapshotSource(store.db)));
    }
    expect(source.services.map((s) => s.name).sort()).toEqual(['auth', 'new', 'pay', 'shop']);
  });

  it('a probe round that moves only counters marks nothing; a state change marks its service', async () => {
    ok(await recordSyncRound(store.db, at(), round({ health: [verdict('shop', 'ue', 'healthy', 1)] })));
    const version = await readRevision(store.db);
    const marks = async () =>
      Object.fromEntries(
        (await store.db.select({ name: services.name, revision: services.revision }).from(services)).map((r) => [
          r.name,
          r.revision,
        ]),
      );
    const before = await marks();
    // The same state, another count: the sync's hysteresis bookkeeping, which routing does not read.
    await store.db
      .update(clusterHealth)
      .set({ consecutiveSuccesses: 5, lastProbeAt: clock })
      .where(eq(clusterHealth.service, 'shop'));
    expect(await marks()).toEqual(before);
    expect((await loadSnapshotDelta(store.db, version)).services).toEqual([]);

    ok(await recordSyncRound(store.db, at(), round({ health: [verdict('shop', 'ue', 'unhealthy', 0)] })));
    const after = await marks();
    expect(after.shop).toBeGreaterThan(version);
    expect(after.pay).toBe(before.pay);
  });

  it('rows read are in proportion to the change: one changed service of many reads that service only', async () => {
    for (let i = 0; i < 40; i++) {
      ok(await putService(store.db, at(), serviceConfig(`bulk-${i}`, [`bulk-${i}.example.com`])));
      ok(await putCluster(store.db, at(), clusterConfig(`bulk-${i}`, 'ue', 'us-east1')));
    }
    const before = await loadSnapshotSource(store.db);
    ok(await putCluster(store.db, at(), clusterConfig('bulk-7', 'ue', 'us-east1', { weight: 3 })));
    const counted = { rows: 0 };
    const batch = store.client.batch.bind(store.client);
    store.client.batch = async (...args: Parameters<typeof batch>) => {
      const results = await batch(...args);
      for (const r of results) counted.rows += r.rows.length;
      return results;
    };
    const delta = await loadSnapshotDelta(store.db, before.version);
    // revision, the service, its host, its cluster: four rows, whatever the size of the configuration.
    expect(delta.services.map((s) => s.name)).toEqual(['bulk-7']);
    expect(counted.rows).toBe(4);
  });
});

describe('the pipeline of a warm instance', () => {
  it('reloads only what changed: the services it did not change keep their compiled objects', async () => {
    const errors: unknown[] = [];
    const pipeline = snapshotPipeline(store.db, { now: () => clock, refreshMs: 1_000, onError: (e) => errors.push(e) });
    const first = await pipeline.latest();
    const [shop, pay] = [first?.byName.get('shop'), first?.byName.get('pay')];
    ok(await putCluster(store.db, at(), clusterConfig('pay', 'ue', 'us-east1', { weight: 9 })));
    const second = await pipeline.latest();
    expect(second?.version).toBeGreaterThan(first?.version ?? 0);
    expect(second?.source.services.find((s) => s.name === 'shop')).toBe(
      first?.source.services.find((s) => s.name === 'shop'),
    );
    expect(second?.byName.get('shop')).toBe(shop);
    expect(second?.byName.get('pay')).not.toBe(pay);
    expect(second?.byName.get('pay')?.clusters.find((c) => c.name === 'ue')?.weight).toBe(9);
    ok(await deleteService(store.db, at(), 'shop'));
    const third = await pipeline.latest();
    expect(third?.byHost.get('shop.example.com')).toBeUndefined();
    expect(third?.byName.get('pay')).toBe(second?.byName.get('pay'));
    expect(errors).toEqual([]);
  });
});
