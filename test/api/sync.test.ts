import { describe, expect, it } from 'vitest';
import { clusterBody } from '../support/factories.js';
import { expectProblem } from './api-support.js';
import {
  entryFor,
  eventsFor,
  matrix,
  ONCALL_TOKEN,
  overrideState,
  READ_TOKEN,
  servedBy,
  shopPerTest,
} from './override-support.js';

const shop = shopPerTest();

async function sync(token?: string) {
  const res = await shop.server.admin('POST', '/sync', undefined, token);
  expect(res.status, res.body).toBe(200);
  return res.json as {
    probed: number;
    states: Record<string, number>;
    changes: { service: string; cluster: string; from: string; to: string; reason: string }[];
    sharesChanged: string[];
    revisionBumped: boolean;
  };
}

describe('sync: happy', () => {
  it('POST /sync probes every cluster and returns a summary; new clusters become healthy on their first pass', async () => {
    const first = await sync();
    expect(first).toMatchObject({ probed: 3, states: { healthy: 3, unhealthy: 0, unknown: 0 }, revisionBumped: true });
    expect(first.changes.map((c) => [c.cluster, c.from, c.to]).sort()).toEqual([
      ['as1', 'unknown', 'healthy'],
      ['ew1', 'unknown', 'healthy'],
      ['ue1', 'unknown', 'healthy'],
    ]);
    expect(entryFor(await matrix(shop.server), 'eu-west1', 'ew1')).toMatchObject({ health: 'healthy', share: 100 });

    const second = await sync();
    expect(second).toMatchObject({
      probed: 3,
      states: { healthy: 3, unhealthy: 0, unknown: 0 },
      changes: [],
      revisionBumped: false,
    });
  });

  it('a failing health check takes ew1 out after unhealthyThreshold (2) runs, says why, and two passing runs bring it back', async () => {
    await sync();
    shop.fleet['eu-west1'].healthy = false;

    const one = await sync();
    expect(one.changes).toEqual([]);
    expect(entryFor(await matrix(shop.server), 'eu-west1', 'ew1')).toMatchObject({ health: 'healthy', share: 100 });
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');

    const two = await sync();
    expect(two.states).toEqual({ healthy: 2, unhealthy: 1, unknown: 0 });
    expect(two.changes).toEqual([
      {
        service: 'shop',
        cluster: 'ew1',
        from: 'healthy',
        to: 'unhealthy',
        reason: expect.stringContaining('health check answered 503'),
      },
    ]);
    expect(two.sharesChanged).toEqual(['shop']);
    const down = await matrix(shop.server);
    expect(entryFor(down, 'eu-west1', 'ew1')).toMatchObject({ health: 'unhealthy', share: 0 });
    expect(entryFor(down, 'eu-west1', 'ue1').share).toBe(100);
    const servedBefore = shop.fleet['eu-west1'].served;
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ue1');
    expect(shop.fleet['eu-west1'].served).toBe(servedBefore);

    const events = await eventsFor(shop.server);
    const state = events.find((e) => e.kind === 'cluster-state' && e.cluster === 'ew1' && e.detail?.to === 'unhealthy');
    expect(state, JSON.stringify(events)).toBeDefined();
    expect(state?.message).toContain('healthy -> unhealthy');
    expect(state?.message).toContain('health check answered 503');
    expect(state?.detail).toMatchObject({ from: 'healthy', to: 'unhealthy', probe: { ok: false, status: 503 } });
    const shares = events.find((e) => e.kind === 'shares');
    expect(shares, JSON.stringify(events)).toBeDefined();
    expect(shares?.message).toContain('eu-west1');
    expect(shares?.detail['eu-west1']).toMatchObject({ before: { ew1: 100 }, after: { ew1: 0, ue1: 100 } });

    shop.fleet['eu-west1'].healthy = true;
    const three = await sync();
    expect(three.changes).toEqual([]);
    expect(entryFor(await matrix(shop.server), 'eu-west1', 'ew1')).toMatchObject({ health: 'unhealthy', share: 0 });
    const four = await sync();
    expect(four.changes).toEqual([
      {
        service: 'shop',
        cluster: 'ew1',
        from: 'unhealthy',
        to: 'healthy',
        reason: expect.stringContaining('health check passed'),
      },
    ]);
    expect(entryFor(await matrix(shop.server), 'eu-west1', 'ew1')).toMatchObject({ health: 'healthy', share: 100 });
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
    expect((await eventsFor(shop.server)).filter((e) => e.kind === 'shares')).toHaveLength(2);
  });

  it('probes a cluster whose origin has a base path at base path + health check path', async () => {
    const ew1 = shop.fleet['eu-west1'];
    const put = await shop.server.admin(
      'PUT',
      '/services/shop/clusters/ew1',
      clusterBody('eu-west1', `${ew1.url}/shop/`),
    );
    expect(put.status, put.body).toBe(200);
    expect(put.json.origin).toBe(`${ew1.url}/shop`);
    ew1.lastRequest = null;

    expect((await sync()).states).toEqual({ healthy: 3, unhealthy: 0, unknown: 0 });
    expect(ew1.lastRequest).toMatchObject({ method: 'GET', path: '/shop/health/ready' });

    // ew1's own /health/ready stays healthy: only what answers under the base path fails.
    ew1.mode = 'fail';
    await sync();
    const two = await sync();
    expect(two.changes).toEqual([
      {
        service: 'shop',
        cluster: 'ew1',
        from: 'healthy',
        to: 'unhealthy',
        reason: expect.stringContaining('health check answered 503'),
      },
    ]);
  });

  it('GET /events honours limit and service', async () => {
    await sync();
    const all = await shop.server.admin('GET', '/events?service=shop');
    expect(all.json.events).toHaveLength(3);
    const one = await shop.server.admin('GET', '/events?service=shop&limit=1');
    expect(one.json.events).toEqual([all.json.events[0]]);
    expect((await shop.server.admin('GET', '/events?service=blog')).json.events).toEqual([]);
  });
});

describe('sync: errors', () => {
  it.each(['0', '1001', 'ten', '1.5'])('GET /events?limit=%s -> 400 naming limit', async (limit) => {
    expectProblem(await shop.server.admin('GET', `/events?limit=${limit}`), 400, 'invalid-request', ['query.limit']);
  });

  it('GET /events with an unknown parameter or a bad service -> 400 naming it', async () => {
    expectProblem(await shop.server.admin('GET', '/events?kind=shares'), 400, 'invalid-request', ['query.kind']);
    expectProblem(await shop.server.admin('GET', '/events?service=Shop!'), 400, 'invalid-request', ['query.service']);
  });
});

describe('sync: security', () => {
  it('no token -> 401 on POST /sync and GET /events, nothing written', async () => {
    const before = await overrideState(shop.server.db);
    expectProblem(await shop.server.admin('POST', '/sync', undefined, null), 401, 'unauthorized');
    expectProblem(await shop.server.admin('GET', '/events', undefined, null), 401, 'unauthorized');
    expect(await overrideState(shop.server.db)).toEqual(before);
  });

  it('a read token may read events but POST /sync is 403 and probes nothing', async () => {
    const before = await overrideState(shop.server.db);
    const res = await shop.server.admin('POST', '/sync', undefined, READ_TOKEN);
    expectProblem(res, 403, 'forbidden');
    expect(res.json.detail).toContain('override');
    expect(await overrideState(shop.server.db)).toEqual(before);
    expect(Number((await shop.server.db.execute('select count(*) as n from cluster_health')).rows[0]?.n)).toBe(0);
    expect((await shop.server.admin('GET', '/events', undefined, READ_TOKEN)).status).toBe(200);
  });

  it('an on-call token may run the sync', async () => {
    const summary = await sync(ONCALL_TOKEN);
    expect(summary.probed).toBe(3);
    expect(Number((await shop.server.db.execute('select count(*) as n from cluster_health')).rows[0]?.n)).toBe(3);
  });
});
