import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteCluster, putCluster } from '../../src/control/clusters.js';
import type { CommandResult } from '../../src/control/command.js';
import { deleteService, putService } from '../../src/control/services.js';
import { compileSnapshot } from '../../src/routing/compile.js';
import { decide } from '../../src/routing/decide.js';
import { DEFAULT_POLICY } from '../../src/routing/policy.js';
import { seededRandom } from '../../src/routing/random.js';
import { listAudit } from '../../src/store/audit.js';
import { getCluster, getService, hostsTakenByOthers, listClusters, listServices } from '../../src/store/services.js';
import { loadSnapshotSource, readRevision } from '../../src/store/snapshots.js';
import { actor, clusterConfig, openTempStore, serviceConfig, storeState, type TempStore } from '../store/temp-store.js';

/**
 * The admin writes as commands (src/control/): each runs its checks and writes in one transaction, with
 * one audit entry and the revision up by one; an expected refusal is a `{ ok: false }` result that
 * wrote nothing, not an exception. Ported from test/store/queries.test.ts (src/store/queries.ts).
 */

let store: TempStore;

beforeEach(async () => {
  store = await openTempStore();
});

afterEach(() => {
  store.dispose();
});

/** The value of a command that must have succeeded (the refusal's detail otherwise). */
function accepted<T>(result: CommandResult<T>): T {
  if (!result.ok) throw new Error(`refused: ${result.problem.code}: ${result.problem.detail}`);
  return result.value;
}

describe('services round-trip', () => {
  it('a fresh store has revision 0, no services and no audit entries', async () => {
    expect(await readRevision(store.db)).toBe(0);
    expect(await listServices(store.db)).toEqual([]);
    expect(await getService(store.db, 'shop')).toBeNull();
    expect(await listAudit(store.db, { limit: 10 })).toEqual({ entries: [], next: 0 });
  });

  it('putService then getService and listServices return what was written (hosts sorted, services by name)', async () => {
    const shop = serviceConfig(
      'shop',
      ['www.shop.example.com', 'shop.example.com'],
      [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }],
    );
    const blog = serviceConfig('blog', ['blog.example.com']);
    expect(accepted(await putService(store.db, actor(1_000), shop))).toEqual({ config: shop, created: true });
    expect(accepted(await putService(store.db, actor(2_000), blog))).toEqual({ config: blog, created: true });

    expect(await getService(store.db, 'shop')).toEqual({
      policy: {},
      subsets: {},
      name: 'shop',
      hosts: ['shop.example.com', 'www.shop.example.com'],
      failover: [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }],
    });
    expect(await listServices(store.db)).toEqual([
      { name: 'blog', hosts: ['blog.example.com'], failover: [], policy: {}, subsets: {} },
      {
        name: 'shop',
        hosts: ['shop.example.com', 'www.shop.example.com'],
        failover: [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }],
        policy: {},
        subsets: {},
      },
    ]);
  });

  it('putService on an existing service replaces its hosts and failover, keeps created_at, moves updated_at', async () => {
    await putService(
      store.db,
      actor(1_000),
      serviceConfig('shop', ['shop.example.com', 'old.shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]),
    );
    const second = accepted(await putService(store.db, actor(5_000), serviceConfig('shop', ['new.shop.example.com'])));
    expect(second.created).toBe(false);

    expect(await getService(store.db, 'shop')).toEqual({
      name: 'shop',
      hosts: ['new.shop.example.com'],
      failover: [],
      policy: {},
      subsets: {},
    });
    const rows = await store.client.execute('select created_at, updated_at from services where name = ?', ['shop']);
    expect(rows.rows.map((r) => [Number(r.created_at), Number(r.updated_at)])).toEqual([[1_000, 5_000]]);
    const hosts = await store.client.execute('select host, service from service_hosts order by host');
    expect(hosts.rows.map((r) => `${r.host}=${r.service}`)).toEqual(['new.shop.example.com=shop']);
  });

  it('a host given up by one service can be taken by another', async () => {
    await putService(store.db, actor(1_000), serviceConfig('shop', ['shop.example.com', 'promo.example.com']));
    await putService(store.db, actor(2_000), serviceConfig('shop', ['shop.example.com']));
    accepted(await putService(store.db, actor(3_000), serviceConfig('promo', ['promo.example.com'])));
    expect((await getService(store.db, 'promo'))?.hosts).toEqual(['promo.example.com']);
  });
});

describe('host uniqueness', () => {
  beforeEach(async () => {
    await putService(store.db, actor(1_000), serviceConfig('shop', ['shop.example.com']));
    await putService(store.db, actor(2_000), serviceConfig('blog', ['blog.example.com']));
  });

  it("hostsTakenByOthers names hosts of other services, not the service's own", async () => {
    expect(
      await hostsTakenByOthers(store.db, 'blog', ['blog.example.com', 'shop.example.com', 'free.example.com']),
    ).toEqual([{ host: 'shop.example.com', service: 'shop' }]);
    expect(await hostsTakenByOthers(store.db, 'shop', ['shop.example.com'])).toEqual([]);
    expect(await hostsTakenByOthers(store.db, 'new', [])).toEqual([]);
  });

  it("creating a service with another service's host is refused ('host-taken', naming the field) and writes nothing", async () => {
    const before = await storeState(store);
    const result = await putService(
      store.db,
      actor(3_000),
      serviceConfig('thief', ['thief.example.com', 'shop.example.com']),
    );

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problem).toMatchObject({
      code: 'host-taken',
      status: 409,
      detail: 'shop.example.com belongs to service "shop"',
    });
    expect(result.problem.errors).toEqual([{ field: 'hosts.1', message: 'already belongs to service "shop"' }]);
    expect(await storeState(store)).toEqual(before);
    expect(before).toMatchObject({ services: 2, service_hosts: 2, audit_log: 2, revision: 2 });
    expect(await getService(store.db, 'thief')).toBeNull();
    expect(await getService(store.db, 'shop')).toEqual({
      name: 'shop',
      hosts: ['shop.example.com'],
      failover: [],
      policy: {},
      subsets: {},
    });
  });

  it('updating a service to steal a host is refused and keeps its own hosts and failover', async () => {
    const blog = serviceConfig('blog', ['blog.example.com']);
    const before = await storeState(store);
    const result = await putService(
      store.db,
      actor(3_000),
      serviceConfig('blog', ['shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]),
    );

    expect(result).toMatchObject({ ok: false, problem: { code: 'host-taken' } });
    expect(await storeState(store)).toEqual(before);
    expect(await getService(store.db, 'blog')).toEqual(blog);
    expect(await readRevision(store.db)).toBe(2);
  });
});

describe('refusals for what does not exist write nothing', () => {
  it.each([
    [
      'putCluster into a missing service',
      (s: TempStore) => putCluster(s.db, actor(5), clusterConfig('nope', 'eu', 'eu-west1')),
    ],
    ['deleteCluster of a missing cluster', (s: TempStore) => deleteCluster(s.db, actor(5), 'shop', 'nope')],
    ['deleteService of a missing service', (s: TempStore) => deleteService(s.db, actor(5), 'nope')],
  ])('%s: not-found', async (_label, write) => {
    await putService(store.db, actor(1), serviceConfig('shop', ['shop.example.com']));
    const before = await storeState(store);
    const result = await write(store);
    expect(result).toMatchObject({ ok: false, problem: { code: 'not-found', status: 404 } });
    expect(await storeState(store)).toEqual(before);
  });
});

describe('every write bumps the revision by one and writes one audit entry', () => {
  const shopV1 = serviceConfig('shop', ['shop.example.com']);
  const shopV2 = serviceConfig(
    'shop',
    ['shop.example.com', 'www.shop.example.com'],
    [{ from: 'eu-west1', to: ['us-east1'] }],
  );
  const euV1 = clusterConfig('shop', 'eu', 'eu-west1');
  const euV2 = clusterConfig('shop', 'eu', 'eu-west1', { weight: 50, labels: { version: 'v2' } });
  const us = clusterConfig('shop', 'us', 'us-east1');

  const steps: {
    label: string;
    write: (s: TempStore, now: number) => Promise<CommandResult<unknown>>;
    action: string;
    target: string;
    before: unknown;
    after: unknown;
  }[] = [
    {
      label: 'create service',
      write: (s, now) => putService(s.db, actor(now), shopV1),
      action: 'service.create',
      target: 'services/shop',
      before: null,
      after: shopV1,
    },
    {
      label: 'update service',
      write: (s, now) => putService(s.db, actor(now), shopV2),
      action: 'service.update',
      target: 'services/shop',
      before: shopV1,
      after: shopV2,
    },
    {
      label: 'create cluster eu',
      write: (s, now) => putCluster(s.db, actor(now), euV1),
      action: 'cluster.create',
      target: 'services/shop/clusters/eu',
      before: null,
      after: euV1,
    },
    {
      label: 'update cluster eu',
      write: (s, now) => putCluster(s.db, actor(now), euV2),
      action: 'cluster.update',
      target: 'services/shop/clusters/eu',
      before: euV1,
      after: euV2,
    },
    {
      label: 'create cluster us',
      write: (s, now) => putCluster(s.db, actor(now), us),
      action: 'cluster.create',
      target: 'services/shop/clusters/us',
      before: null,
      after: us,
    },
    {
      label: 'delete cluster us',
      write: (s, now) => deleteCluster(s.db, actor(now), 'shop', 'us'),
      action: 'cluster.delete',
      target: 'services/shop/clusters/us',
      before: us,
      after: null,
    },
    {
      label: 'delete service',
      write: (s, now) => deleteService(s.db, actor(now), 'shop'),
      action: 'service.delete',
      target: 'services/shop',
      before: { ...shopV2, clusters: [euV2] },
      after: null,
    },
  ];

  it('in sequence, with actor, action, target, before, after, time and request id; the result names the new revision', async () => {
    for (const [i, step] of steps.entries()) {
      const now = 10_000 + i;
      const revisionBefore = await readRevision(store.db);
      const auditBefore = (await listAudit(store.db, { limit: 1000 })).entries;

      const result = await step.write(store, now);

      expect(result, step.label).toMatchObject({ ok: true, revision: revisionBefore + 1 });
      expect(await readRevision(store.db), step.label).toBe(revisionBefore + 1);
      const audit = (await listAudit(store.db, { limit: 1000 })).entries;
      expect(audit, step.label).toHaveLength(auditBefore.length + 1);
      expect(audit[0], step.label).toEqual({
        id: expect.any(Number),
        at: new Date(now).toISOString(),
        actor: 'alice',
        action: step.action,
        target: step.target,
        before: step.before,
        after: step.after,
        requestId: `req-${now}`,
      });
    }
    const rev = await store.client.execute('select version, updated_at from revision');
    expect(rev.rows.map((r) => [Number(r.version), Number(r.updated_at)])).toEqual([
      [steps.length, 10_000 + steps.length - 1],
    ]);
  });

  it('listAudit filters by target prefix, newest first, and honours the limit', async () => {
    for (const [i, step] of steps.entries()) accepted(await step.write(store, 20_000 + i));
    const clusterEu = (await listAudit(store.db, { target: 'services/shop/clusters/eu', limit: 100 })).entries;
    expect(clusterEu.map((e) => e.action)).toEqual(['cluster.update', 'cluster.create']);
    const all = (await listAudit(store.db, { target: 'services/shop', limit: 100 })).entries;
    expect(all.map((e) => e.at)).toEqual(
      [20_006, 20_005, 20_004, 20_003, 20_002, 20_001, 20_000].map((t) => new Date(t).toISOString()),
    );
    expect((await listAudit(store.db, { limit: 2 })).entries.map((e) => e.action)).toEqual([
      'service.delete',
      'cluster.delete',
    ]);
  });
});

describe('deleteService', () => {
  it('removes the service, its hosts and its clusters, and leaves other services alone', async () => {
    const blog = serviceConfig('blog', ['blog.example.com']);
    await putService(store.db, actor(1), serviceConfig('shop', ['shop.example.com', 'www.shop.example.com']));
    await putService(store.db, actor(2), blog);
    const blogEu = clusterConfig('blog', 'eu', 'eu-west1');
    for (const [i, c] of [
      clusterConfig('shop', 'eu', 'eu-west1'),
      clusterConfig('shop', 'us', 'us-east1'),
      blogEu,
    ].entries())
      accepted(await putCluster(store.db, actor(10 + i), c));

    accepted(await deleteService(store.db, actor(20), 'shop'));

    expect(await getService(store.db, 'shop')).toBeNull();
    expect(await listClusters(store.db, 'shop')).toEqual([]);
    expect(await getCluster(store.db, 'shop', 'eu')).toBeNull();
    expect(await listServices(store.db)).toEqual([blog]);
    expect(await listClusters(store.db, 'blog')).toEqual([blogEu]);
    const rows = await store.client.execute("select count(*) as n from service_hosts where service = 'shop'");
    expect(Number(rows.rows[0]?.n)).toBe(0);
    expect(await storeState(store)).toEqual({ services: 1, service_hosts: 1, clusters: 1, audit_log: 6, revision: 6 });
    // Its hosts are free again.
    expect(await hostsTakenByOthers(store.db, 'other', ['shop.example.com', 'www.shop.example.com'])).toEqual([]);
  });
});

describe('clusters', () => {
  it('putCluster/getCluster/listClusters round-trip labels, health check and coordinates', async () => {
    await putService(store.db, actor(1), serviceConfig('shop', ['shop.example.com']));
    const us = clusterConfig('shop', 'us', 'us-east1', {
      labels: { version: 'v2', tier: 'gold' },
      healthCheck: {
        path: '/healthz',
        expectedStatuses: [204],
        timeoutMs: 500,
        healthyThreshold: 1,
        unhealthyThreshold: 3,
      },
      weight: 0,
    });
    const eu = clusterConfig('shop', 'eu', 'eu-west1');
    expect(accepted(await putCluster(store.db, actor(2), us))).toEqual({ config: us, created: true });
    expect(accepted(await putCluster(store.db, actor(3), eu))).toEqual({ config: eu, created: true });
    expect(await getCluster(store.db, 'shop', 'us')).toEqual(us);
    expect(await listClusters(store.db, 'shop')).toEqual([eu, us]);
    expect(await getCluster(store.db, 'shop', 'ap')).toBeNull();
    expect(await getCluster(store.db, 'other', 'us')).toBeNull();
  });
});

describe('loadSnapshotSource and compileSnapshot', () => {
  beforeEach(async () => {
    await putService(
      store.db,
      actor(1),
      serviceConfig(
        'shop',
        ['shop.example.com', 'www.shop.example.com'],
        [{ from: 'ap-southeast1', to: ['us-east1'] }],
      ),
    );
    await putService(store.db, actor(2), serviceConfig('blog', ['blog.example.com']));
    await putCluster(store.db, actor(3), clusterConfig('shop', 'eu', 'eu-west1'));
    await putCluster(store.db, actor(4), clusterConfig('shop', 'us', 'us-east1', { weight: 5 }));
  });

  it('returns the revision and every service with its hosts and clusters', async () => {
    const source = await loadSnapshotSource(store.db);
    expect(source.version).toBe(4);
    const byName = new Map(source.services.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['blog', 'shop']);
    expect(byName.get('blog')).toEqual({
      name: 'blog',
      hosts: ['blog.example.com'],
      failover: [],
      policy: DEFAULT_POLICY,
      subsets: {},
      clusters: [],
      routes: [],
    });
    const shop = byName.get('shop');
    expect(shop?.failover).toEqual([{ from: 'ap-southeast1', to: ['us-east1'] }]);
    expect([...(shop?.hosts ?? [])].sort()).toEqual(['shop.example.com', 'www.shop.example.com']);
    expect([...(shop?.clusters ?? [])].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      // The source keeps clusters lean: no health check, no service name, no empty zone or origin host.
      {
        name: 'eu',
        region: 'eu-west1',
        origin: 'https://eu.shop.internal',
        latitude: 50.4,
        longitude: 3.8,
        weight: 100,
        labels: { version: 'v1' },
        health: 'unknown',
      },
      {
        name: 'us',
        region: 'us-east1',
        origin: 'https://us.shop.internal',
        latitude: 33.2,
        longitude: -80,
        weight: 5,
        labels: { version: 'v1' },
        health: 'unknown',
      },
    ]);
  });

  it('compiles into a snapshot that routes a host by region and failover rule', async () => {
    const snapshot = compileSnapshot(await loadSnapshotSource(store.db), 0);
    expect(snapshot.version).toBe(4);
    expect(snapshot.byHost.get('www.shop.example.com')?.name).toBe('shop');

    const eu = decide(snapshot, { host: 'WWW.Shop.Example.com:443', clientRegion: 'eu-west1' }, seededRandom(1), 3);
    expect(eu.kind).toBe('route');
    if (eu.kind !== 'route') return;
    expect(eu.service.name).toBe('shop');
    expect(eu.attempts.map((c) => `${c.name}@${c.origin}`)).toEqual([
      'eu@https://eu.shop.internal',
      'us@https://us.shop.internal',
    ]);

    // ap-southeast1 holds no cluster, so it has no location: the rule decides, the rest share one level.
    const ap = decide(snapshot, { host: 'shop.example.com', clientRegion: 'ap-southeast1' }, seededRandom(1), 3);
    expect(ap.kind === 'route' && ap.plan.list.reasons).toEqual(['failover-rule', 'no-locality']);
    expect(ap.kind === 'route' && ap.attempts.map((c) => c.name)).toEqual(['us', 'eu']);

    expect(decide(snapshot, { host: 'blog.example.com' }, seededRandom(1), 3).kind).toBe('no-cluster');
    expect(decide(snapshot, { host: 'nope.example.com' }, seededRandom(1), 3)).toEqual({
      kind: 'unknown-host',
      host: 'nope.example.com',
    });
  });
});
