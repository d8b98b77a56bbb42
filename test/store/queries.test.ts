import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { DEFAULT_POLICY } from '../../src/routing/policy.js';
import { decide } from '../../src/routing/decide.js';
import { seededRandom } from '../../src/routing/random.js';
import * as q from '../../src/store/queries.js';
import { actor, clusterConfig, openTempStore, serviceConfig, storeState, type TempStore } from './temp-store.js';

let store: TempStore;

beforeEach(async () => {
  store = await openTempStore();
});

afterEach(() => {
  store.dispose();
});

describe('services round-trip', () => {
  it('a fresh store has revision 0, no services and no audit entries', async () => {
    expect(await q.readRevision(store.db)).toBe(0);
    expect(await q.listServices(store.db)).toEqual([]);
    expect(await q.getService(store.db, 'shop')).toBeNull();
    expect(await q.listAudit(store.db, { limit: 10 })).toEqual([]);
  });

  it('putService then getService and listServices return what was written (hosts sorted, services by name)', async () => {
    const shop = serviceConfig('shop', ['www.shop.example.com', 'shop.example.com'], [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }]);
    const blog = serviceConfig('blog', ['blog.example.com']);
    await q.putService(store.db, actor(1_000), null, shop);
    await q.putService(store.db, actor(2_000), null, blog);

    expect(await q.getService(store.db, 'shop')).toEqual({
      policy: {},
      subsets: {},
      name: 'shop',
      hosts: ['shop.example.com', 'www.shop.example.com'],
      failover: [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }],
    });
    expect(await q.listServices(store.db)).toEqual([
      { name: 'blog', hosts: ['blog.example.com'], failover: [], policy: {}, subsets: {} },
      { name: 'shop', hosts: ['shop.example.com', 'www.shop.example.com'], failover: [{ from: 'eu-west1', to: ['us-east1', 'ap-southeast1'] }], policy: {}, subsets: {} },
    ]);
  });

  it('putService on an existing service replaces its hosts and failover, keeps created_at, moves updated_at', async () => {
    const first = serviceConfig('shop', ['shop.example.com', 'old.shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]);
    await q.putService(store.db, actor(1_000), null, first);
    await q.putService(store.db, actor(5_000), first, serviceConfig('shop', ['new.shop.example.com']));

    expect(await q.getService(store.db, 'shop')).toEqual({ name: 'shop', hosts: ['new.shop.example.com'], failover: [], policy: {}, subsets: {} });
    const rows = await store.client.execute('select created_at, updated_at from services where name = ?', ['shop']);
    expect(rows.rows.map((r) => [Number(r.created_at), Number(r.updated_at)])).toEqual([[1_000, 5_000]]);
    const hosts = await store.client.execute('select host, service from service_hosts order by host');
    expect(hosts.rows.map((r) => `${r.host}=${r.service}`)).toEqual(['new.shop.example.com=shop']);
  });

  it('a host given up by one service can be taken by another', async () => {
    const shop = serviceConfig('shop', ['shop.example.com', 'promo.example.com']);
    await q.putService(store.db, actor(1_000), null, shop);
    await q.putService(store.db, actor(2_000), shop, serviceConfig('shop', ['shop.example.com']));
    await q.putService(store.db, actor(3_000), null, serviceConfig('promo', ['promo.example.com']));
    expect((await q.getService(store.db, 'promo'))?.hosts).toEqual(['promo.example.com']);
  });
});

describe('host uniqueness', () => {
  beforeEach(async () => {
    await q.putService(store.db, actor(1_000), null, serviceConfig('shop', ['shop.example.com']));
    await q.putService(store.db, actor(2_000), null, serviceConfig('blog', ['blog.example.com']));
  });

  it('hostsTakenByOthers names hosts of other services, not the service\'s own', async () => {
    expect(await q.hostsTakenByOthers(store.db, 'blog', ['blog.example.com', 'shop.example.com', 'free.example.com'])).toEqual([
      { host: 'shop.example.com', service: 'shop' },
    ]);
    expect(await q.hostsTakenByOthers(store.db, 'shop', ['shop.example.com'])).toEqual([]);
    expect(await q.hostsTakenByOthers(store.db, 'new', [])).toEqual([]);
  });

  it('creating a service with another service\'s host fails in the store and changes nothing', async () => {
    const before = await storeState(store);
    await expect(
      q.putService(store.db, actor(3_000), null, serviceConfig('thief', ['thief.example.com', 'shop.example.com'])),
    ).rejects.toThrow(/UNIQUE|PRIMARY KEY|constraint/i);

    expect(await storeState(store)).toEqual(before);
    expect(before).toMatchObject({ services: 2, service_hosts: 2, audit_log: 2, revision: 2 });
    expect(await q.getService(store.db, 'thief')).toBeNull();
    expect(await q.getService(store.db, 'shop')).toEqual({ name: 'shop', hosts: ['shop.example.com'], failover: [], policy: {}, subsets: {} });
  });

  it('updating a service to steal a host fails and keeps its own hosts', async () => {
    const blog = serviceConfig('blog', ['blog.example.com']);
    const before = await storeState(store);
    await expect(
      q.putService(store.db, actor(3_000), blog, serviceConfig('blog', ['shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }])),
    ).rejects.toThrow();

    expect(await storeState(store)).toEqual(before);
    expect(await q.getService(store.db, 'blog')).toEqual(blog);
    expect(await q.readRevision(store.db)).toBe(2);
  });
});

describe('every write bumps the revision by one and writes one audit entry', () => {
  const shopV1 = serviceConfig('shop', ['shop.example.com']);
  const shopV2 = serviceConfig('shop', ['shop.example.com', 'www.shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]);
  const euV1 = clusterConfig('shop', 'eu', 'eu-west1');
  const euV2 = clusterConfig('shop', 'eu', 'eu-west1', { weight: 50, labels: { version: 'v2' } });
  const us = clusterConfig('shop', 'us', 'us-east1');

  const steps: { label: string; write: (s: TempStore, now: number) => Promise<void>; action: string; target: string; before: unknown; after: unknown }[] = [
    { label: 'create service', write: (s, now) => q.putService(s.db, actor(now), null, shopV1), action: 'service.create', target: 'services/shop', before: null, after: shopV1 },
    { label: 'update service', write: (s, now) => q.putService(s.db, actor(now), shopV1, shopV2), action: 'service.update', target: 'services/shop', before: shopV1, after: shopV2 },
    { label: 'create cluster eu', write: (s, now) => q.putCluster(s.db, actor(now), null, euV1), action: 'cluster.create', target: 'services/shop/clusters/eu', before: null, after: euV1 },
    { label: 'update cluster eu', write: (s, now) => q.putCluster(s.db, actor(now), euV1, euV2), action: 'cluster.update', target: 'services/shop/clusters/eu', before: euV1, after: euV2 },
    { label: 'create cluster us', write: (s, now) => q.putCluster(s.db, actor(now), null, us), action: 'cluster.create', target: 'services/shop/clusters/us', before: null, after: us },
    { label: 'delete cluster us', write: (s, now) => q.deleteCluster(s.db, actor(now), us), action: 'cluster.delete', target: 'services/shop/clusters/us', before: us, after: null },
    {
      label: 'delete service',
      write: (s, now) => q.deleteService(s.db, actor(now), shopV2, [euV2]),
      action: 'service.delete',
      target: 'services/shop',
      before: { ...shopV2, clusters: [euV2] },
      after: null,
    },
  ];

  it('in sequence, with actor, action, target, before, after, time and request id', async () => {
    for (const [i, step] of steps.entries()) {
      const now = 10_000 + i;
      const revisionBefore = await q.readRevision(store.db);
      const auditBefore = await q.listAudit(store.db, { limit: 1000 });

      await step.write(store, now);

      expect(await q.readRevision(store.db), step.label).toBe(revisionBefore + 1);
      const audit = await q.listAudit(store.db, { limit: 1000 });
      expect(audit, step.label).toHaveLength(auditBefore.length + 1);
      expect(audit[0], step.label).toEqual({
        id: expect.any(Number),
        at: now,
        actor: 'alice',
        action: step.action,
        target: step.target,
        before: step.before,
        after: step.after,
        requestId: `req-${now}`,
      });
    }
    const rev = await store.client.execute('select version, updated_at from revision');
    expect(rev.rows.map((r) => [Number(r.version), Number(r.updated_at)])).toEqual([[steps.length, 10_000 + steps.length - 1]]);
  });

  it('listAudit filters by target prefix, newest first, and honours the limit', async () => {
    for (const [i, step] of steps.entries()) await step.write(store, 20_000 + i);
    const clusterEu = await q.listAudit(store.db, { target: 'services/shop/clusters/eu', limit: 100 });
    expect(clusterEu.map((e) => e.action)).toEqual(['cluster.update', 'cluster.create']);
    const all = await q.listAudit(store.db, { target: 'services/shop', limit: 100 });
    expect(all.map((e) => e.at)).toEqual([20_006, 20_005, 20_004, 20_003, 20_002, 20_001, 20_000]);
    expect((await q.listAudit(store.db, { limit: 2 })).map((e) => e.action)).toEqual(['service.delete', 'cluster.delete']);
  });
});

describe('deleteService', () => {
  it('removes the service, its hosts and its clusters, and leaves other services alone', async () => {
    const shop = serviceConfig('shop', ['shop.example.com', 'www.shop.example.com']);
    const blog = serviceConfig('blog', ['blog.example.com']);
    await q.putService(store.db, actor(1), null, shop);
    await q.putService(store.db, actor(2), null, blog);
    const shopEu = clusterConfig('shop', 'eu', 'eu-west1');
    const shopUs = clusterConfig('shop', 'us', 'us-east1');
    const blogEu = clusterConfig('blog', 'eu', 'eu-west1');
    for (const [i, c] of [shopEu, shopUs, blogEu].entries()) await q.putCluster(store.db, actor(10 + i), null, c);

    await q.deleteService(store.db, actor(20), shop, await q.listClusters(store.db, 'shop'));

    expect(await q.getService(store.db, 'shop')).toBeNull();
    expect(await q.listClusters(store.db, 'shop')).toEqual([]);
    expect(await q.getCluster(store.db, 'shop', 'eu')).toBeNull();
    expect(await q.listServices(store.db)).toEqual([blog]);
    expect(await q.listClusters(store.db, 'blog')).toEqual([blogEu]);
    const rows = await store.client.execute("select count(*) as n from service_hosts where service = 'shop'");
    expect(Number(rows.rows[0]?.n)).toBe(0);
    expect(await storeState(store)).toEqual({ services: 1, service_hosts: 1, clusters: 1, audit_log: 6, revision: 6 });
    // Its hosts are free again.
    expect(await q.hostsTakenByOthers(store.db, 'other', ['shop.example.com', 'www.shop.example.com'])).toEqual([]);
  });
});

describe('clusters', () => {
  it('putCluster/getCluster/listClusters round-trip labels, health check and coordinates', async () => {
    await q.putService(store.db, actor(1), null, serviceConfig('shop', ['shop.example.com']));
    const us = clusterConfig('shop', 'us', 'us-east1', { labels: { version: 'v2', tier: 'gold' }, healthCheck: { path: '/healthz', expectedStatuses: [204], timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 3 }, weight: 0 });
    const eu = clusterConfig('shop', 'eu', 'eu-west1');
    await q.putCluster(store.db, actor(2), null, us);
    await q.putCluster(store.db, actor(3), null, eu);
    expect(await q.getCluster(store.db, 'shop', 'us')).toEqual(us);
    expect(await q.listClusters(store.db, 'shop')).toEqual([eu, us]);
    expect(await q.getCluster(store.db, 'shop', 'ap')).toBeNull();
    expect(await q.getCluster(store.db, 'other', 'us')).toBeNull();
  });
});

describe('loadSnapshotSource and compileSnapshot', () => {
  beforeEach(async () => {
    await q.putService(store.db, actor(1), null, serviceConfig('shop', ['shop.example.com', 'www.shop.example.com'], [{ from: 'ap-southeast1', to: ['us-east1'] }]));
    await q.putService(store.db, actor(2), null, serviceConfig('blog', ['blog.example.com']));
    await q.putCluster(store.db, actor(3), null, clusterConfig('shop', 'eu', 'eu-west1'));
    await q.putCluster(store.db, actor(4), null, clusterConfig('shop', 'us', 'us-east1', { weight: 5 }));
  });

  it('returns the revision and every service with its hosts and clusters', async () => {
    const source = await q.loadSnapshotSource(store.db);
    expect(source.version).toBe(4);
    const byName = new Map(source.services.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(['blog', 'shop']);
    expect(byName.get('blog')).toEqual({ name: 'blog', hosts: ['blog.example.com'], failover: [], policy: DEFAULT_POLICY, subsets: {}, clusters: [], routes: [] });
    const shop = byName.get('shop');
    expect(shop?.failover).toEqual([{ from: 'ap-southeast1', to: ['us-east1'] }]);
    expect([...(shop?.hosts ?? [])].sort()).toEqual(['shop.example.com', 'www.shop.example.com']);
    expect([...(shop?.clusters ?? [])].sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { ...clusterConfig('shop', 'eu', 'eu-west1'), health: 'unknown' },
      { ...clusterConfig('shop', 'us', 'us-east1', { weight: 5 }), health: 'unknown' },
    ]);
  });

  it('compiles into a snapshot that routes a host by region and failover rule', async () => {
    const snapshot = compileSnapshot(await q.loadSnapshotSource(store.db), 0);
    expect(snapshot.version).toBe(4);
    expect(snapshot.byHost.get('www.shop.example.com')?.name).toBe('shop');

    const eu = decide(snapshot, { host: 'WWW.Shop.Example.com:443', clientRegion: 'eu-west1' }, seededRandom(1), 3);
    expect(eu.kind).toBe('route');
    if (eu.kind !== 'route') return;
    expect(eu.service.name).toBe('shop');
    expect(eu.attempts.map((c) => `${c.name}@${c.origin}`)).toEqual(['eu@https://eu.shop.internal', 'us@https://us.shop.internal']);

    // ap-southeast1 holds no cluster, so it has no location: the rule decides, the rest share one level.
    const ap = decide(snapshot, { host: 'shop.example.com', clientRegion: 'ap-southeast1' }, seededRandom(1), 3);
    expect(ap.kind === 'route' && ap.plan.list.reasons).toEqual(['failover-rule', 'no-locality']);
    expect(ap.kind === 'route' && ap.attempts.map((c) => c.name)).toEqual(['us', 'eu']);

    expect(decide(snapshot, { host: 'blog.example.com' }, seededRandom(1), 3).kind).toBe('no-cluster');
    expect(decide(snapshot, { host: 'nope.example.com' }, seededRandom(1), 3)).toEqual({ kind: 'unknown-host', host: 'nope.example.com' });
  });
});
