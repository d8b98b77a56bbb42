import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { HELLOWORLD_LOCALITY_DISTRIBUTE, HELLOWORLD_LOCALITY_FAILOVER } from './docs-tasks-fixtures.js';

/**
 * Istio's locality failover task, through real requests: helloworld runs in region1/zone1,
 * region1/zone2, region2/zone3 and region3/zone4; the client (sleep) is in region1/zone1. The task
 * stops each answering locality in turn and checks the next answers: zone2 of the same region, then
 * region2 (the DestinationRule's failover rule, although region3 is nearer), then region3.
 */
const HOST = 'helloworld.sample.svc.cluster.local';
const LOCALITIES = [
  { name: 'hello-r1z1', region: 'region1', zone: 'zone1', latitude: 50, longitude: 0 },
  { name: 'hello-r1z2', region: 'region1', zone: 'zone2', latitude: 50.5, longitude: 0.5 },
  { name: 'hello-r2z3', region: 'region2', zone: 'zone3', latitude: 0, longitude: 100 },
  { name: 'hello-r3z4', region: 'region3', zone: 'zone4', latitude: 52, longitude: 5 },
] as const;
const SLEEP = { 'x-waymark-client-region': 'region1', 'x-waymark-client-zone': 'zone1' };

describe("Istio's locality load balancing tasks (docs-locality-failover-dr, docs-locality-distribute-dr)", () => {
  let server: TestServer;
  let up: Record<string, Upstream>;

  beforeEach(async () => {
    up = Object.fromEntries(
      await Promise.all(LOCALITIES.map(async (l) => [l.name, await startUpstream(l.name, l.region)] as const)),
    );
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '1000', WAYMARK_MAX_ATTEMPTS: '4' });
    expect((await server.admin('PUT', '/services/helloworld', { hosts: [HOST] })).status).toBe(201);
    for (const l of LOCALITIES) {
      const { name, region, zone, latitude, longitude } = l;
      const res = await server.admin('PUT', `/services/helloworld/clusters/${name}`, {
        region,
        zone,
        latitude,
        longitude,
        origin: up[name]!.url,
      });
      expect(res.status, res.body).toBe(201);
    }
  });
  afterEach(async () => {
    await server.close();
    await Promise.all(Object.values(up).map((u) => u.stop()));
  });

  it('imports the DestinationRule, then each stopped locality fails over as the task says', async () => {
    const imported = await server.admin('POST', '/import/istio', HELLOWORLD_LOCALITY_FAILOVER);
    expect(imported.status, imported.body).toBe(200);
    expect((await server.admin('GET', '/services/helloworld')).json.failover).toEqual([
      { from: 'region1', to: ['region2'] },
    ]);
    await server.runtime.snapshots.refresh();

    const answer = async () => {
      const res = await server.request(HOST, '/hello', { headers: SLEEP });
      expect(res.status, res.body).toBe(200);
      return res.headers['x-waymark-cluster'];
    };
    for (let i = 0; i < 10; i++) expect(await answer()).toBe('hello-r1z1');
    await up['hello-r1z1']!.stop();
    expect(await answer()).toBe('hello-r1z2');
    await up['hello-r1z2']!.stop();
    expect(await answer()).toBe('hello-r2z3');
    await up['hello-r2z3']!.stop();
    expect(await answer()).toBe('hello-r3z4');

    const matrix = await server.admin('GET', '/services/helloworld/failover');
    expect(
      matrix.json.zones.region1.zone1.map(
        (e: { cluster: string; levelReason: string }) => `${e.cluster}:${e.levelReason}`,
      ),
    ).toEqual(['hello-r1z1:same-zone', 'hello-r1z2:same-region', 'hello-r2z3:failover-rule', 'hello-r3z4:distance']);
  });

  /** `n` requests from sleep in region1/zone1, counted by the cluster that answered. */
  async function servedBy(n: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (let batch = 0; batch < n; batch += 20) {
      const answers = await Promise.all(
        Array.from({ length: Math.min(20, n - batch) }, (_, i) =>
          server.request(HOST, `/hello/${batch + i}`, { headers: SLEEP }),
        ),
      );
      for (const a of answers) {
        expect(a.status, a.body).toBe(200);
        const cluster = a.headers['x-waymark-cluster'] as string;
        counts[cluster] = (counts[cluster] ?? 0) + 1;
      }
    }
    return counts;
  }

  it("distribute: 70/20/10 over region1/zone1, region1/zone2 and region3/zone4; a failed locality's share goes to the healthy ones, then by priority", async () => {
    const imported = await server.admin('POST', '/import/istio', HELLOWORLD_LOCALITY_DISTRIBUTE);
    expect(imported.status, imported.body).toBe(200);
    expect(imported.json.warnings.join('\n')).not.toContain('distribute');
    expect((await server.admin('GET', '/services/helloworld')).json.policy.distribute).toEqual([
      { from: 'region1/zone1/*', to: { 'region1/zone1/*': 70, 'region1/zone2/*': 20, 'region3/zone4/*': 10 } },
    ]);
    await server.runtime.snapshots.refresh();

    const before = await servedBy(1000);
    expect(before['hello-r2z3'] ?? 0).toBe(0);
    expect(before['hello-r1z1']).toBeGreaterThan(650);
    expect(before['hello-r1z1']).toBeLessThan(750);
    expect(before['hello-r1z2']).toBeGreaterThan(160);
    expect(before['hello-r1z2']).toBeLessThan(240);
    expect(before['hello-r3z4']).toBeGreaterThan(70);
    expect(before['hello-r3z4']).toBeLessThan(130);

    const matrix = await server.admin('GET', '/services/helloworld/failover');
    expect(
      matrix.json.zones.region1.zone1.map(
        (e: { cluster: string; levelReason: string; share: number }) => `${e.cluster}:${e.levelReason}:${e.share}`,
      ),
    ).toEqual([
      'hello-r1z1:distribute:70',
      'hello-r1z2:distribute:20',
      'hello-r3z4:distribute:10',
      'hello-r2z3:distance:0',
    ]);

    // region1/zone1 goes down: its health checks fail twice, so the sync marks it unhealthy; level 0
    // keeps 93% (Envoy's 1.4 x 2/3), spread 2:1 by the remaining percents, and 7% fails over to region2.
    await up['hello-r1z1']!.stop();
    for (let i = 0; i < 2; i++) expect((await server.admin('POST', '/sync')).status).toBe(200);
    const after = await servedBy(1000);
    expect(after['hello-r1z1'] ?? 0).toBe(0);
    expect(after['hello-r2z3']).toBeGreaterThan(40);
    expect(after['hello-r2z3']).toBeLessThan(110);
    expect(after['hello-r1z2']! / after['hello-r3z4']!).toBeGreaterThan(1.6);
    expect(after['hello-r1z2']! / after['hello-r3z4']!).toBeLessThan(2.5);

    // Every distributed locality down: region2 takes it all, in the same request.
    await up['hello-r1z2']!.stop();
    await up['hello-r3z4']!.stop();
    const last = await server.request(HOST, '/hello', { headers: SLEEP });
    expect(last.status).toBe(200);
    expect(last.headers['x-waymark-cluster']).toBe('hello-r2z3');
  });
});
