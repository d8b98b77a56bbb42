import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { insertEdgeReports } from '../../src/store/health.js';
import { insertRouteSamples } from '../../src/store/routes.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * What the health sync and the edges derive from a cluster, route or service (health verdicts and
 * hysteresis counters, automation state, samples, latency orders, overrides naming it) goes with it
 * when it is deleted: a namesake created later starts clean. Admin API on a real Node server, real
 * upstreams, real health syncs (POST /sync).
 */

const HOST = 'shop.example.com';
const SLOW = 60_000;
/** Outlier ejection would take failing clusters out by itself; these tests watch the sync alone. */
const NO_EJECTION = { outlierDetection: { consecutiveFailures: 1000 } };
const LOOSE = { maxLatencyRatio: 100, maxErrorRateDelta: 0.05 };

type Override = { id: string; active: boolean; endedBy: string | null; endReason: string | null };
type Entry = { cluster: string; share: number; health: string; levelReason: string };

async function count(server: TestServer, sql: string, args: (string | number)[] = []): Promise<number> {
  return Number((await server.db.execute({ sql, args })).rows[0]?.n);
}

async function sync(server: TestServer): Promise<{
  changes: { cluster: string; from: string; to: string; reason: string }[];
  automation: { route: string; kind: string; from: number; to: number; phase: string }[];
}> {
  const res = await server.admin('POST', '/sync');
  expect(res.status, res.body).toBe(200);
  return res.json;
}

async function override(server: TestServer, id: string): Promise<Override> {
  const res = await server.admin('GET', `/overrides/${id}`);
  expect(res.status, res.body).toBe(200);
  return res.json;
}

async function createOverride(server: TestServer, body: Record<string, unknown>): Promise<string> {
  const res = await server.admin('POST', '/overrides', {
    service: 'shop',
    reason: 'on-call test',
    ttlSeconds: 3600,
    ...body,
  });
  expect(res.status, res.body).toBe(201);
  return res.json.id as string;
}

async function matrixEntry(server: TestServer, region: string, cluster: string): Promise<Entry> {
  const res = await server.admin('GET', '/services/shop/failover');
  expect(res.status, res.body).toBe(200);
  const entry = (res.json.regions[region] as Entry[] | undefined)?.find((e) => e.cluster === cluster);
  expect(entry, JSON.stringify(res.json.regions)).toBeDefined();
  return entry as Entry;
}

async function servedBy(server: TestServer, region: string, host = HOST): Promise<string> {
  const res = await server.request(host, '/who', { headers: { 'x-waymark-client-region': region } });
  expect(res.status, res.body).toBe(200);
  return res.headers['x-waymark-cluster'] as string;
}

describe('a deleted cluster created again with the same name', () => {
  let server: TestServer;
  let ew1: Upstream;
  let ue1: Upstream;

  beforeEach(async () => {
    [ew1, ue1] = (await Promise.all([startUpstream('ew1', 'eu-west1'), startUpstream('ue1', 'us-east1')])) as [
      Upstream,
      Upstream,
    ];
    server = await startTestServer();
    expect((await server.admin('PUT', '/services/shop', { ...serviceBody([HOST]), policy: NO_EJECTION })).status).toBe(
      201,
    );
  });

  afterEach(async () => {
    await server.close();
    await Promise.all([ew1.stop(), ue1.stop()]);
  });

  // The health check asks for /ready, which the upstream answers like any request: 500 in 'fail' mode.
  const check = {
    path: '/ready',
    expectedStatuses: ['2xx'],
    timeoutMs: 2000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };

  it(
    'comes back unknown (not unhealthy), without hysteresis counters or the drain and pin that named its namesake',
    async () => {
      // The old code (src/store/queries.ts deleteCluster) deleted only the clusters row: the namesake
      // inherited cluster_health (unhealthy, 2 failing rounds) and the active drain and pin, so it came
      // back drained/unhealthy, took 2 passing syncs to recover and us-east1 clients stayed pinned to it.
      ew1.mode = 'fail';
      ew1.failStatus = 500;
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ew1',
            clusterBody('eu-west1', ew1.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ue1',
            clusterBody('us-east1', ue1.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect((await sync(server)).changes.map((c) => `${c.cluster} ${c.from}->${c.to}`)).toEqual([
        'ue1 unknown->healthy',
      ]);
      const second = await sync(server);
      expect(second.changes).toEqual([
        {
          service: 'shop',
          cluster: 'ew1',
          from: 'unknown',
          to: 'unhealthy',
          reason: expect.stringContaining('health check answered 500'),
        },
      ]);
      expect(
        (
          await server.db.execute("select state, consecutive_failures as f from cluster_health where cluster = 'ew1'")
        ).rows.map((r) => [r.state, Number(r.f)]),
      ).toEqual([['unhealthy', 2]]);
      expect((await matrixEntry(server, 'eu-west1', 'ew1')).health).toBe('unhealthy');

      const drain = await createOverride(server, { action: 'drain', cluster: 'ew1' });
      const pin = await createOverride(server, { action: 'pin', region: 'us-east1', cluster: 'ew1', force: true });
      // An override that does not name the cluster is not the cluster's to end.
      const freeze = await createOverride(server, { action: 'freeze' });

      const deleted = await server.admin('DELETE', '/services/shop/clusters/ew1');
      expect(deleted.status, deleted.body).toBe(204);
      expect(
        await count(server, "select count(*) as n from cluster_health where service = 'shop' and cluster = 'ew1'"),
      ).toBe(0);
      for (const id of [drain, pin])
        expect(await override(server, id)).toMatchObject({ active: false, endedBy: 'admin', endReason: 'deleted' });
      expect(await override(server, freeze)).toMatchObject({ active: true, endReason: null });
      const audit = await server.admin('GET', '/audit?limit=10');
      expect(
        audit.json.entries
          .slice(0, 3)
          .map((e: { action: string; target: string }) => `${e.action} ${e.target}`)
          .sort(),
      ).toEqual(
        [
          'cluster.delete services/shop/clusters/ew1',
          `override.delete overrides/${drain}`,
          `override.delete overrides/${pin}`,
        ].sort(),
      );
      const events = await server.admin('GET', '/events?service=shop&limit=10');
      const ended = (events.json.events as { kind: string; message: string }[]).filter(
        (e) => e.kind === 'override-ended',
      );
      expect(ended.map((e) => e.message).sort()).toEqual(
        [
          'drain shop/ew1 ended by admin: cluster ew1 was deleted',
          'pin shop/ew1 for clients in us-east1 ended by admin: cluster ew1 was deleted',
        ].sort(),
      );

      // The namesake, its origin answering again.
      ew1.mode = 'ok';
      const again = await server.admin(
        'PUT',
        '/services/shop/clusters/ew1',
        clusterBody('eu-west1', ew1.url, { healthCheck: check }),
      );
      expect(again.status, again.body).toBe(201);
      expect(
        await count(server, "select count(*) as n from cluster_health where service = 'shop' and cluster = 'ew1'"),
      ).toBe(0);
      expect(await matrixEntry(server, 'eu-west1', 'ew1')).toMatchObject({ health: 'unknown', share: 100 });
      expect(await servedBy(server, 'eu-west1')).toBe('ew1');
      expect(await servedBy(server, 'us-east1')).toBe('ue1');

      // No counters of its namesake: a never-probed cluster is healthy on its first passing probe.
      const first = await sync(server);
      expect(first.changes).toEqual([
        {
          service: 'shop',
          cluster: 'ew1',
          from: 'unknown',
          to: 'healthy',
          reason: expect.stringContaining('threshold 1'),
        },
      ]);
      expect((await matrixEntry(server, 'eu-west1', 'ew1')).health).toBe('healthy');
    },
    SLOW,
  );

  it(
    'a healthy cluster with one failing round, deleted and created again, does not go unhealthy on its next failing round',
    async () => {
      // The old code kept the namesake's counters (healthy, 1 consecutive failure): the next failing
      // round made 2 of 2 and took the new cluster out at once.
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ew1',
            clusterBody('eu-west1', ew1.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ue1',
            clusterBody('us-east1', ue1.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      await sync(server);
      ew1.mode = 'fail';
      ew1.failStatus = 500;
      expect((await sync(server)).changes).toEqual([]);
      expect(
        (
          await server.db.execute("select state, consecutive_failures as f from cluster_health where cluster = 'ew1'")
        ).rows.map((r) => [r.state, Number(r.f)]),
      ).toEqual([['healthy', 1]]);

      expect((await server.admin('DELETE', '/services/shop/clusters/ew1')).status).toBe(204);
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ew1',
            clusterBody('eu-west1', ew1.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect((await sync(server)).changes).toEqual([]);
      expect(
        (
          await server.db.execute("select state, consecutive_failures as f from cluster_health where cluster = 'ew1'")
        ).rows.map((r) => [r.state, Number(r.f)]),
      ).toEqual([['unknown', 1]]);
      expect(await matrixEntry(server, 'eu-west1', 'ew1')).toMatchObject({ health: 'unknown', share: 100 });
    },
    SLOW,
  );
});

describe('a deleted route created again with the same name', () => {
  let server: TestServer;
  let up: { v1: Upstream; v2: Upstream; shadow: Upstream };
  let round = 0;
  /** Mirror copies whose samples went with a deleted route. */
  let forgotten = 0;

  beforeEach(async () => {
    round = 0;
    forgotten = 0;
    const [v1, v2, shadow] = (await Promise.all([
      startUpstream('v1', 'eu-west1'),
      startUpstream('v2', 'eu-west1'),
      startUpstream('shadow', 'eu-west1'),
    ])) as [Upstream, Upstream, Upstream];
    up = { v1, v2, shadow };
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '3000' });
    expect((await server.admin('PUT', '/services/shop', { hosts: [HOST], policy: NO_EJECTION })).status).toBe(201);
    for (const name of ['v1', 'v2', 'shadow'] as const) {
      const res = await server.admin(
        'PUT',
        `/services/shop/clusters/${name}`,
        clusterBody('eu-west1', up[name].url, { labels: { version: name } }),
      );
      expect(res.status, res.body).toBe(201);
    }
  });

  afterEach(async () => {
    await server.close();
    await Promise.all(Object.values(up).map((u) => u.stop()));
  });

  /** Mirror copies the store has from this server (after a flush). */
  async function flushedMirrors(): Promise<number> {
    await server.runtime.flushReports();
    return count(server, "select coalesce(sum(requests), 0) as n from route_samples where kind = 'mirror'");
  }

  /** `n` EU requests under `path` with deterministic ids; waits until every mirror copy is flushed. */
  async function traffic(n: number, path: string): Promise<Record<string, number>> {
    round += 1;
    const byCluster: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const res = await server.request(HOST, `${path}/${i}`, {
        headers: { 'x-waymark-client-region': 'eu-west1', 'x-request-id': `r${round}-${i}` },
      });
      const cluster = (res.headers['x-waymark-cluster'] as string | undefined) ?? '(none)';
      byCluster[cluster] = (byCluster[cluster] ?? 0) + 1;
    }
    await eventually(async () => {
      const seen = up.shadow.served;
      await new Promise((r) => setTimeout(r, 40));
      return seen === up.shadow.served && (await flushedMirrors()) === up.shadow.served - forgotten;
    });
    return byCluster;
  }

  async function status(route: string) {
    const res = await server.admin('GET', `/services/shop/routes/${route}`);
    expect(res.status, res.body).toBe(200);
    return res.json.status as {
      mirrorPercent: number | null;
      canaryWeight: number | null;
      phase: string | null;
      paused: boolean;
    };
  }

  const rows = (table: string, route: string) =>
    count(server, `select count(*) as n from ${table} where service = 'shop' and route = ?`, [route]);

  const checkout = {
    order: 1,
    match: { path: { prefix: '/c' } },
    destinations: [{ subset: { version: 'v1' }, weight: 100 }],
    mirror: { subset: { version: 'shadow' }, percent: 50, ramp: { step: 25, max: 100, minSamples: 10, ...LOOSE } },
    canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
  };

  it(
    'starts at its first step (ramping, canary at stepWeight, mirror at its percent), without the state or samples of its namesake',
    async () => {
      // The old code (src/store/routes.ts deleteRoute) deleted only the routes row: route_state and
      // route_samples stayed, so the namesake came back rolled-back at 0 with the mirror at 0.
      expect((await server.admin('PUT', '/services/shop/routes/checkout', checkout)).status).toBe(201);
      expect(
        (
          await server.admin('PUT', '/services/shop/routes/static', {
            order: 2,
            match: { path: { prefix: '/s' } },
            destinations: [{ subset: { version: 'v1' }, weight: 100 }],
          })
        ).status,
      ).toBe(201);
      up.v2.mode = 'fail';
      up.v2.failStatus = 500;
      up.shadow.mode = 'fail';
      up.shadow.failStatus = 500;
      const bad = await traffic(100, '/c');
      expect(bad.v2, 'premise: the canary got enough requests to be judged').toBeGreaterThanOrEqual(10);
      await traffic(5, '/s');
      const moves = (await sync(server)).automation;
      expect(moves.map((m) => `${m.kind} ${m.from}->${m.to} ${m.phase}`).sort()).toEqual([
        'canary 20->0 rolled-back',
        'mirror 50->0 halted',
      ]);
      expect(await status('checkout')).toMatchObject({ mirrorPercent: 0, canaryWeight: 0, phase: 'rolled-back' });
      expect(await rows('route_state', 'checkout')).toBe(1);
      expect(await rows('route_samples', 'checkout')).toBeGreaterThan(0);
      const staticSamples = await rows('route_samples', 'static');
      expect(staticSamples).toBeGreaterThan(0);

      const deleted = await server.admin('DELETE', '/services/shop/routes/checkout');
      expect(deleted.status, deleted.body).toBe(204);
      expect(await rows('route_state', 'checkout')).toBe(0);
      expect(await rows('route_samples', 'checkout')).toBe(0);
      forgotten = up.shadow.served;
      // Another route's evidence stays.
      expect(await rows('route_samples', 'static')).toBe(staticSamples);

      const again = await server.admin('PUT', '/services/shop/routes/checkout', checkout);
      expect(again.status, again.body).toBe(201);
      expect(await status('checkout')).toEqual({
        mirrorPercent: 50,
        canaryWeight: 20,
        phase: 'ramping',
        paused: false,
        heldBy: [],
      });
      // No evidence of its namesake is judged: a sync without traffic moves nothing.
      expect((await sync(server)).automation).toEqual([]);
      expect(await status('checkout')).toMatchObject({ canaryWeight: 20, phase: 'ramping' });

      // With good evidence of its own, it steps from its first step.
      up.v2.mode = 'ok';
      up.shadow.mode = 'ok';
      const good = await traffic(100, '/c');
      expect(good.v2, 'the new route sends the canary its share again').toBeGreaterThanOrEqual(10);
      expect((await sync(server)).automation.map((m) => `${m.kind} ${m.from}->${m.to} ${m.phase}`).sort()).toEqual([
        'canary 20->40 ramping',
        'mirror 50->75 ramping',
      ]);
    },
    SLOW,
  );
});

describe('a deleted service created again with the same name', () => {
  let server: TestServer;
  let fleet: Fleet;

  beforeEach(async () => {
    fleet = await startFleet();
    server = await startTestServer();
    await registerFleet(server, fleet);
  });

  afterEach(async () => {
    await server.close();
    await fleet.stop();
  });

  const TABLES = ['cluster_health', 'route_state', 'route_samples', 'latency_orders'] as const;

  async function derived(service: string): Promise<Record<(typeof TABLES)[number] | 'active_overrides', number>> {
    const out = {} as Record<(typeof TABLES)[number] | 'active_overrides', number>;
    for (const t of TABLES) out[t] = await count(server, `select count(*) as n from ${t} where service = ?`, [service]);
    out.active_overrides = await count(
      server,
      'select count(*) as n from overrides where service = ? and ended_at is null',
      [service],
    );
    return out;
  }

  it(
    'leaves no health, route state, samples or latency orders of its namesake, and its overrides were ended',
    async () => {
      // The old code (src/store/queries.ts deleteService) deleted route_state and latency_orders but
      // kept cluster_health and route_samples (and the overrides): the namesake's clusters came back
      // with the old verdicts and counters, its routes with the old evidence.
      const ew1 = fleet['eu-west1'];
      expect((await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']))).status).toBe(201);
      expect((await server.admin('PUT', '/services/blog/clusters/b1', clusterBody('eu-west1', ew1.url))).status).toBe(
        201,
      );
      for (const service of ['shop', 'blog']) {
        const route = await server.admin('PUT', `/services/${service}/routes/all`, {
          order: 1,
          canary: { subset: { version: 'v1' }, stepWeight: 20, maxWeight: 60, minSamples: 1000, ...LOOSE },
        });
        expect(route.status, route.body).toBe(201);
        // A pause is stored as route state.
        expect((await server.admin('POST', `/services/${service}/routes/all/pause`)).status).toBe(200);
      }
      for (const host of [HOST, 'blog.example.com'])
        for (let i = 0; i < 3; i++) await servedBy(server, 'eu-west1', host);
      await insertEdgeReports(server.runtime.store.db, 'test-edge', server.runtime.now(), [
        {
          service: 'shop',
          cluster: 'ue1',
          clientRegion: 'eu-west1',
          requests: 30,
          failures: 0,
          latencyMsSum: 30 * 200,
        },
        { service: 'shop', cluster: 'as1', clientRegion: 'eu-west1', requests: 30, failures: 0, latencyMsSum: 30 * 60 },
      ]);
      const drain = await createOverride(server, { action: 'drain', cluster: 'ue1' });
      await sync(server);
      expect(await derived('shop')).toEqual({
        cluster_health: 3,
        route_state: 1,
        route_samples: expect.any(Number),
        latency_orders: 1,
        active_overrides: 1,
      });
      expect((await derived('shop')).route_samples).toBeGreaterThan(0);
      const blogBefore = await derived('blog');
      expect(blogBefore).toMatchObject({ cluster_health: 1, route_state: 1 });
      expect(blogBefore.route_samples).toBeGreaterThan(0);

      expect((await server.admin('DELETE', '/services/shop')).status).toBe(204);
      expect(await derived('shop')).toEqual({
        cluster_health: 0,
        route_state: 0,
        route_samples: 0,
        latency_orders: 0,
        active_overrides: 0,
      });
      expect(await override(server, drain)).toMatchObject({ active: false, endedBy: 'admin', endReason: 'deleted' });
      // Another service keeps its own.
      expect(await derived('blog')).toEqual(blogBefore);

      await registerFleet(server, fleet);
      expect(await derived('shop')).toEqual({
        cluster_health: 0,
        route_state: 0,
        route_samples: 0,
        latency_orders: 0,
        active_overrides: 0,
      });
      const eu = await server.admin('GET', '/services/shop/failover');
      expect((eu.json.regions['eu-west1'] as Entry[]).map((e) => [e.cluster, e.health, e.levelReason])).toEqual([
        ['ew1', 'unknown', 'same-region'],
        ['ue1', 'unknown', 'distance'],
        ['as1', 'unknown', 'distance'],
      ]);
    },
    SLOW,
  );
});

describe('a cluster and a route deleted and created again while a health sync is probing', () => {
  /** An origin whose health check can be held open: the sync has read the store and waits on the probe. */
  interface HeldOrigin {
    url: string;
    status: number;
    hold: boolean;
    /** Resolves when a probe arrives while held. */
    probed: Promise<void>;
    release: () => void;
    stop: () => Promise<void>;
  }

  async function startHeldOrigin(): Promise<HeldOrigin> {
    const pending: ServerResponse[] = [];
    let arrived: () => void = () => {};
    const origin: HeldOrigin = {
      url: '',
      status: 500,
      hold: false,
      probed: new Promise<void>((resolve) => (arrived = resolve)),
      release: () => {
        for (const res of pending.splice(0)) res.writeHead(origin.status).end('held');
      },
      stop: async () => {},
    };
    const server = createServer((req, res) => {
      req.resume();
      if (!origin.hold) return void res.writeHead(req.url === '/health/ready' ? origin.status : 200).end('ok');
      pending.push(res);
      arrived();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    origin.stop = () =>
      new Promise<void>((resolve) => {
        origin.release();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    return origin;
  }

  let server: TestServer;
  let old: HeldOrigin;
  let fresh: Upstream;

  beforeEach(async () => {
    old = await startHeldOrigin();
    fresh = (await startUpstream('ew1-new', 'eu-west1')) as Upstream;
    server = await startTestServer();
    expect((await server.admin('PUT', '/services/shop', { ...serviceBody([HOST]), policy: NO_EJECTION })).status).toBe(
      201,
    );
  });

  afterEach(async () => {
    await server.close();
    await Promise.all([old.stop(), fresh.stop()]);
  });

  const check = {
    path: '/health/ready',
    expectedStatuses: ['2xx'],
    timeoutMs: 10_000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  };
  const checkout = {
    order: 1,
    destinations: [{ subset: { version: 'v1' }, weight: 100 }],
    canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
  };

  it(
    'the sync that was probing does not write the namesakes the verdict and automation state it planned for the deleted ones',
    async () => {
      // SUSPECTED BUG (src/control/sync-round.ts recordSyncRound): the round is matched to clusters and
      // routes by name only. A cluster (or route) deleted and created again between the sync's reads
      // and its write receives the verdict (or automation state) planned for its namesake: here the new
      // ew1, never probed, comes back unhealthy with 3 failing rounds of the old origin, and the new
      // route starts rolled-back at 0. putCluster/putRoute promise a namesake starts clean.
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ew1',
            clusterBody('eu-west1', old.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect((await server.admin('PUT', '/services/shop/routes/checkout', checkout)).status).toBe(201);
      await sync(server);
      expect((await sync(server)).changes).toEqual([
        expect.objectContaining({ cluster: 'ew1', from: 'unknown', to: 'unhealthy' }),
      ]);
      // Edges saw the canary fail: the next sync plans a rollback.
      const buckets = (n: number) => [n, ...new Array<number>(20).fill(0)];
      await insertRouteSamples(server.runtime.store.db, 'test-edge', server.runtime.now(), [
        {
          service: 'shop',
          route: 'checkout',
          kind: 'primary',
          requests: 80,
          errors: 0,
          latencyMsSum: 80,
          latencyBuckets: buckets(80),
        },
        {
          service: 'shop',
          route: 'checkout',
          kind: 'canary',
          requests: 20,
          errors: 20,
          latencyMsSum: 20,
          latencyBuckets: buckets(20),
        },
      ]);

      old.hold = true;
      const running = server.admin('POST', '/sync');
      await old.probed;
      // While the sync waits on the old origin's probe, an operator replaces both.
      expect((await server.admin('DELETE', '/services/shop/clusters/ew1')).status).toBe(204);
      expect((await server.admin('DELETE', '/services/shop/routes/checkout')).status).toBe(204);
      expect(
        (
          await server.admin(
            'PUT',
            '/services/shop/clusters/ew1',
            clusterBody('eu-west1', fresh.url, { healthCheck: check }),
          )
        ).status,
      ).toBe(201);
      expect((await server.admin('PUT', '/services/shop/routes/checkout', checkout)).status).toBe(201);
      old.release();
      const summary = await running;
      expect(summary.status, summary.body).toBe(200);

      const health = await server.db.execute(
        "select state, consecutive_failures as f from cluster_health where service = 'shop' and cluster = 'ew1'",
      );
      // Soft: the report shows the cluster's and the route's side of it.
      expect
        .soft(
          health.rows.map((r) => [r.state, Number(r.f)]),
          'the new ew1 was never probed',
        )
        .toEqual([]);
      expect.soft(await matrixEntry(server, 'eu-west1', 'ew1')).toMatchObject({ health: 'unknown', share: 100 });
      const route = await server.admin('GET', '/services/shop/routes/checkout');
      expect
        .soft(route.json.status, 'the new route starts at its first step')
        .toMatchObject({ canaryWeight: 20, phase: 'ramping' });
    },
    SLOW,
  );
  it(
    'the sync that was probing writes no latency order for a service deleted (and created again) meanwhile',
    async () => {
      // SUSPECTED BUG, same cause: recordSyncRound writes latency orders without checking that their
      // service still exists, so the deleted service's order lands on its namesake (the leftover
      // latency_orders row that deleteService had just removed).
      const [ue1, as1] = (await Promise.all([
        startUpstream('ue1', 'us-east1'),
        startUpstream('as1', 'ap-southeast1'),
      ])) as [Upstream, Upstream];
      try {
        const clusters = async () => {
          expect(
            (
              await server.admin(
                'PUT',
                '/services/shop/clusters/ew1',
                clusterBody('eu-west1', old.url, { healthCheck: check }),
              )
            ).status,
          ).toBe(201);
          expect(
            (await server.admin('PUT', '/services/shop/clusters/ue1', clusterBody('us-east1', ue1.url))).status,
          ).toBe(201);
          expect(
            (await server.admin('PUT', '/services/shop/clusters/as1', clusterBody('ap-southeast1', as1.url))).status,
          ).toBe(201);
        };
        await clusters();
        await insertEdgeReports(server.runtime.store.db, 'test-edge', server.runtime.now(), [
          {
            service: 'shop',
            cluster: 'ue1',
            clientRegion: 'eu-west1',
            requests: 30,
            failures: 0,
            latencyMsSum: 30 * 200,
          },
          {
            service: 'shop',
            cluster: 'as1',
            clientRegion: 'eu-west1',
            requests: 30,
            failures: 0,
            latencyMsSum: 30 * 60,
          },
        ]);

        old.hold = true;
        const running = server.admin('POST', '/sync');
        await old.probed;
        expect((await server.admin('DELETE', '/services/shop')).status).toBe(204);
        expect(await count(server, "select count(*) as n from latency_orders where service = 'shop'")).toBe(0);
        expect(
          (await server.admin('PUT', '/services/shop', { ...serviceBody([HOST]), policy: NO_EJECTION })).status,
        ).toBe(201);
        old.release();
        expect((await running).status).toBe(200);

        expect(
          await count(server, "select count(*) as n from latency_orders where service = 'shop'"),
          'no latency order for the new service',
        ).toBe(0);
      } finally {
        await Promise.all([ue1.stop(), as1.stop()]);
      }
    },
    SLOW,
  );
});
