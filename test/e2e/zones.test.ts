import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { clusterBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';

const HOST = 'shop.example.com';
const inZone = (zone: string) => ({ 'x-waymark-client-region': 'us-east1', 'x-waymark-client-zone': zone });

describe('zones end to end (Node runtime, trusted locality headers)', () => {
  let server: TestServer;
  let up: Record<'ub' | 'ua' | 'ew', Upstream>;

  beforeEach(async () => {
    up = {
      ub: await startUpstream('ub', 'us-east1'),
      ua: await startUpstream('ua', 'us-east1'),
      ew: await startUpstream('ew', 'eu-west1'),
    };
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '1000' });
    expect((await server.admin('PUT', '/services/shop', { hosts: [HOST] })).status).toBe(201);
    await server.admin('PUT', '/services/shop/clusters/ub', clusterBody('us-east1', up.ub.url, { zone: 'us-east1-b' }));
    await server.admin('PUT', '/services/shop/clusters/ua', clusterBody('us-east1', up.ua.url, { zone: 'us-east1-a' }));
    await server.admin('PUT', '/services/shop/clusters/ew', clusterBody('eu-west1', up.ew.url, { zone: 'eu-west1-a' }));
    await server.runtime.snapshots.refresh();
  });
  afterEach(async () => {
    await server.close();
    await Promise.all(Object.values(up).map((u) => u.stop()));
  });

  it("x-waymark-client-zone: the zone's cluster answers; stopped, the other zone of the region in the same request; then the other region", async () => {
    for (let i = 0; i < 20; i++) {
      const res = await server.request(HOST, `/z/${i}`, { headers: inZone('us-east1-b') });
      expect(res.headers['x-waymark-cluster']).toBe('ub');
    }
    for (let i = 0; i < 20; i++)
      expect(
        (await server.request(HOST, `/z/${i}`, { headers: inZone('us-east1-a') })).headers['x-waymark-cluster'],
      ).toBe('ua');

    await up.ub.stop();
    const sameRegion = await server.request(HOST, '/after-b', { headers: inZone('us-east1-b') });
    expect(sameRegion.status).toBe(200);
    expect(sameRegion.headers['x-waymark-cluster']).toBe('ua');
    expect(sameRegion.headers['x-waymark-attempts']).toBe('2');

    await up.ua.stop();
    const otherRegion = await server.request(HOST, '/after-a', { headers: inZone('us-east1-b') });
    expect(otherRegion.status).toBe(200);
    expect(otherRegion.headers['x-waymark-cluster']).toBe('ew');
    expect(otherRegion.headers['x-waymark-attempts']).toBe('3');
  });

  it('without a zone the region spreads over both zones; an invalid zone header is ignored', async () => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < 60; i++) {
      const cluster = (await server.request(HOST, `/r/${i}`, { headers: inZone('Not A Zone') })).headers[
        'x-waymark-cluster'
      ] as string;
      counts[cluster] = (counts[cluster] ?? 0) + 1;
    }
    expect(Object.keys(counts).sort()).toEqual(['ua', 'ub']);
  });

  it("the zone header is not trusted unless WAYMARK_TRUST_LOCALITY_HEADERS is true; WAYMARK_ZONE is the node's zone", async () => {
    const node = await startTestServer({
      WAYMARK_TRUST_LOCALITY_HEADERS: 'false',
      WAYMARK_REGION: 'us-east1',
      WAYMARK_ZONE: 'us-east1-a',
      WAYMARK_DATABASE_URL: `file:${server.dir}/waymark.db`,
    });
    try {
      await node.runtime.snapshots.refresh();
      for (let i = 0; i < 20; i++)
        expect(
          (await node.request(HOST, `/n/${i}`, { headers: inZone('us-east1-b') })).headers['x-waymark-cluster'],
        ).toBe('ua');
    } finally {
      await node.close();
    }
  });

  it('the matrix and explain show the zone', async () => {
    const matrix = await server.admin('GET', '/services/shop/failover');
    expect(
      matrix.json.zones['us-east1']['us-east1-b'].map(
        (e: { cluster: string; levelReason: string }) => `${e.cluster}:${e.levelReason}`,
      ),
    ).toEqual(['ub:same-zone', 'ua:same-region', 'ew:distance']);
    expect(matrix.json.zoneSummary['us-east1']['us-east1-b']).toEqual({
      totalHealth: 100,
      panic: false,
      closed: false,
    });
    expect(matrix.json.regions['us-east1'][0].zone).toBe('us-east1-a');

    const explained = await server.admin('POST', '/explain', {
      host: HOST,
      clientRegion: 'us-east1',
      clientZone: 'us-east1-b',
    });
    expect(explained.status).toBe(200);
    expect(explained.json.clientZone).toMatchObject({ zone: 'us-east1-b', plan: 'us-east1-b' });
    expect(explained.json.clientZone.how).toContain('x-waymark-client-zone');
    expect(explained.json.attempts[0]).toBe('ub');
    const bad = await server.admin('POST', '/explain', { host: HOST, clientZone: 'a/b/c' });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(bad.json.errors)).toContain('clientZone');
  });
});
