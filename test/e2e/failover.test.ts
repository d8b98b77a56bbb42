import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { clusterBody } from '../support/factories.js';
import { registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

const HOST = 'shop.example.com';
const from = (region: string) => ({ 'x-waymark-client-region': region });

async function served(server: TestServer, region: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await server.request(HOST, `/r/${i}`, { headers: from(region) });
    const key = res.status === 200 ? (res.headers['x-waymark-cluster'] as string) : `status-${res.status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe('failover end to end (Node runtime)', () => {
  let clock: number;
  let server: TestServer;
  let fleet: Fleet;
  let ue2: Upstream;

  beforeEach(async () => {
    clock = Date.UTC(2026, 10, 21, 12);
    fleet = await startFleet();
    ue2 = await startUpstream('ue2', 'us-east1');
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '1000' }, { now: () => clock });
    await registerFleet(server, fleet);
    await server.admin('PUT', '/services/shop/clusters/ue2', clusterBody('us-east1', ue2.url));
    await server.runtime.snapshots.refresh();
  });
  afterEach(async () => {
    await server.close();
    await fleet.stop();
    await ue2.stop();
  });

  it('half of a region failing its health checks: the matrix shows 70/30 and real traffic follows it', async () => {
    ue2.healthy = false;
    for (let i = 0; i < 2; i++) expect((await server.admin('POST', '/sync')).status).toBe(200);
    const matrix = await server.admin('GET', '/services/shop/failover');
    const us = Object.fromEntries(
      (matrix.json.regions['us-east1'] as { cluster: string; share: number }[]).map((e) => [e.cluster, e.share]),
    );
    expect(us).toEqual({ ue1: 70, ue2: 0, ew1: 30, as1: 0 });

    const counts = await served(server, 'us-east1', 1000);
    expect(counts.ue2 ?? 0).toBe(0);
    expect(counts.ue1).toBeGreaterThan(660);
    expect(counts.ue1).toBeLessThan(740);
    expect(counts.ew1).toBe(1000 - (counts.ue1 as number));
  });

  it('a gray-failing cluster (health endpoint fine, real requests failing) is ejected by the edge', async () => {
    fleet['eu-west1'].mode = 'fail';
    fleet['eu-west1'].failStatus = 500;
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await server.request(HOST, '/', { headers: from('eu-west1') })).status);
    // Five 500s in a row eject ew1 here; from then on its clients go to the next region.
    expect(statuses).toEqual([500, 500, 500, 500, 500, 200, 200, 200, 200, 200]);
    expect(server.runtime.outliers.ejected('shop')).toEqual(['shop/ew1']);
    expect((await server.admin('GET', '/services/shop/failover')).json.ejectedHere).toEqual(['shop/ew1']);

    // The ejection ends by itself after the base ejection time (30 s).
    clock += 30_001;
    fleet['eu-west1'].mode = 'ok';
    expect((await server.request(HOST, '/', { headers: from('eu-west1') })).headers['x-waymark-cluster']).toBe('ew1');
  });

  it('what edges report of a gray failure makes the health sync take the cluster out everywhere', async () => {
    expect((await server.admin('POST', '/sync')).json.states).toEqual({ healthy: 4, unhealthy: 0, unknown: 0 });
    fleet['eu-west1'].mode = 'fail';
    fleet['eu-west1'].failStatus = 500;
    for (let i = 0; i < 12; i++) await server.request(HOST, '/', { headers: from('eu-west1') });
    expect((await server.admin('POST', '/sync')).json.reportsFolded).toBeGreaterThan(0);
    for (let i = 0; i < 12; i++)
      await server.request(HOST, '/', { headers: { ...from('eu-west1'), 'x-i': String(i) } });
    const second = await server.admin('POST', '/sync');
    expect(second.json.changes).toEqual([
      expect.objectContaining({
        cluster: 'ew1',
        from: 'healthy',
        to: 'unhealthy',
        reason: expect.stringContaining('edges saw'),
      }),
    ]);
    const events = await server.admin('GET', '/events?service=shop');
    expect(events.json.events.map((e: { kind: string }) => e.kind)).toEqual(
      expect.arrayContaining(['cluster-state', 'shares']),
    );
  });

  it('drain takes effect at once, expires by itself, and the sync records its end', async () => {
    const drain = await server.admin('POST', '/overrides', {
      service: 'shop',
      cluster: 'ew1',
      action: 'drain',
      reason: 'bad deploy in eu',
      ttlSeconds: 60,
    });
    expect(drain.status).toBe(201);
    await server.runtime.snapshots.refresh();
    expect((await served(server, 'eu-west1', 20)).ew1 ?? 0).toBe(0);

    clock += 61_000;
    await server.runtime.snapshots.get(() => undefined);
    await server.runtime.snapshots.refresh();
    expect(await served(server, 'eu-west1', 5)).toEqual({ ew1: 5 });

    const sync = await server.admin('POST', '/sync');
    expect(sync.json.overridesExpired).toEqual([expect.stringContaining(drain.json.id)]);
    const audit = await server.admin('GET', `/audit?target=overrides/${drain.json.id}`);
    expect(audit.json.entries.map((e: { action: string; actor: string }) => `${e.action}:${e.actor}`)).toEqual([
      'override.expire:health-sync',
      'override.create:admin',
    ]);
  });

  it('pin sends a region to the pinned cluster first while it is healthy, then expires', async () => {
    const pin = await server.admin('POST', '/overrides', {
      service: 'shop',
      region: 'us-east1',
      cluster: 'as1',
      action: 'pin',
      reason: 'failover drill',
      ttlSeconds: 120,
    });
    expect(pin.status).toBe(201);
    await server.runtime.snapshots.refresh();
    expect(await served(server, 'us-east1', 10)).toEqual({ as1: 10 });
    expect(await served(server, 'eu-west1', 5)).toEqual({ ew1: 5 });

    fleet['ap-southeast1'].healthy = false;
    for (let i = 0; i < 2; i++) await server.admin('POST', '/sync');
    const spilled = await served(server, 'us-east1', 10);
    expect(spilled.as1 ?? 0).toBe(0);

    fleet['ap-southeast1'].healthy = true;
    clock += 121_000;
    await server.admin('POST', '/sync');
    const after = await served(server, 'us-east1', 20);
    expect(after.as1 ?? 0).toBe(0);
    expect((after.ue1 ?? 0) + (after.ue2 ?? 0)).toBe(20);
  });
});
