import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';

const HOST = 'shop.example.com';
const from = (region: string) => ({ 'x-waymark-client-region': region });

describe('Node runtime end to end', () => {
  let server: TestServer;
  let fleet: Fleet;

  beforeEach(async () => {
    fleet = await startFleet();
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '500' });
    await registerFleet(server, fleet);
  });
  afterEach(async () => {
    await server.close();
    await fleet.stop();
  });

  it.each([
    ['eu-west1', 'ew1'],
    ['us-east1', 'ue1'],
    ['ap-southeast1', 'as1'],
  ])('a client in %s is served by %s', async (region, cluster) => {
    const res = await server.request(HOST, '/items?id=1', { headers: from(region) });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ cluster, path: '/items?id=1' });
    expect(res.headers['x-waymark-cluster']).toBe(cluster);
    expect(res.headers['x-waymark-attempts']).toBe('1');
  });

  it('a client location (lat,lon) picks the nearest region', async () => {
    const res = await server.request(HOST, '/', { headers: { 'x-waymark-client-location': '35.7,139.7' } });
    expect(res.json.cluster).toBe('as1');
  });

  it('when the eu-west1 server is stopped, the next GET still gets a 200 from the next-nearest cluster in the same request', async () => {
    await fleet['eu-west1'].stop();
    const res = await server.request(HOST, '/after-stop', { headers: from('eu-west1') });
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('ue1');
    expect(res.headers['x-waymark-attempts']).toBe('2');
  });

  it.each([503, 502, 504])('an idempotent request that gets %i moves to the next cluster', async (status) => {
    fleet['eu-west1'].mode = 'fail';
    fleet['eu-west1'].failStatus = status;
    const res = await server.request(HOST, '/', { headers: from('eu-west1') });
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('ue1');
    expect(fleet['eu-west1'].served).toBe(1);
  });

  it('a per-try timeout moves the request on', async () => {
    fleet['eu-west1'].mode = 'hang';
    const res = await server.request(HOST, '/', { headers: from('eu-west1') });
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('ue1');
    expect(res.headers['x-waymark-attempts']).toBe('2');
  });

  it('a 500 is an answer, not a reason to try elsewhere', async () => {
    fleet['eu-west1'].mode = 'fail';
    fleet['eu-west1'].failStatus = 500;
    const res = await server.request(HOST, '/', { headers: from('eu-west1') });
    expect(res.status).toBe(500);
    expect(res.headers['x-waymark-cluster']).toBe('ew1');
    expect(fleet['us-east1'].served).toBe(0);
  });

  it('a POST is never sent twice: the failing answer comes back and no other cluster sees it', async () => {
    fleet['eu-west1'].mode = 'fail';
    const res = await server.request(HOST, '/orders', {
      method: 'POST',
      headers: { ...from('eu-west1'), 'content-type': 'application/json' },
      body: '{"qty":1}',
    });
    expect(res.status).toBe(503);
    expect(res.headers['x-waymark-attempts']).toBe('1');
    expect(fleet['eu-west1'].lastRequest?.body).toBe('{"qty":1}');
    expect(fleet['us-east1'].served + fleet['ap-southeast1'].served).toBe(0);
  });

  it('a small PUT body is buffered and replayed to the next cluster', async () => {
    await fleet['eu-west1'].stop();
    const res = await server.request(HOST, '/items/1', { method: 'PUT', headers: from('eu-west1'), body: 'hello' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ cluster: 'ue1', method: 'PUT', body: 'hello' });
  });

  it('every cluster down: 502 problem naming the attempts', async () => {
    await fleet.stop();
    const res = await server.request(HOST, '/', { headers: from('eu-west1') });
    expect(res.status).toBe(502);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.json.code).toBe('upstream-connect-failure');
    expect(res.headers['x-waymark-attempts']).toBe('3');
  });

  it('forwards headers the way a proxy should', async () => {
    const res = await server.request(HOST, '/h', {
      headers: {
        ...from('eu-west1'),
        'x-request-id': 'abc-123',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        'x-waymark-attempts': '99',
        'x-waymark-debug': '1',
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': 'drop me',
        'x-forwarded-for': '203.0.113.9',
        'x-custom': 'kept',
      },
    });
    expect(res.status).toBe(200);
    const seen = fleet['eu-west1'].lastRequest!.headers;
    expect(seen['x-request-id']).toBe('abc-123');
    expect(res.headers['x-request-id']).toBe('abc-123');
    expect(seen.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(seen.traceparent).not.toContain('b7ad6b7169203331');
    expect(seen['x-waymark-attempts']).toBeUndefined();
    expect(seen['x-waymark-debug']).toBeUndefined();
    expect(seen['x-waymark-client-region']).toBeUndefined();
    expect(seen['x-secret-hop']).toBeUndefined();
    // No trusted hops: a client's x-forwarded-for is replaced by the address Waymark saw.
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-forwarded-host']).toBe(HOST);
    expect(seen['x-forwarded-proto']).toBe('http');
    expect(seen['x-custom']).toBe('kept');
  });

  it('creates a request id and starts a trace when the client sent none', async () => {
    const res = await server.request(HOST, '/', {
      headers: { ...from('eu-west1'), 'x-request-id': 'bad id with spaces' },
    });
    const seen = fleet['eu-west1'].lastRequest!.headers;
    expect(seen['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(seen['x-request-id']);
    expect(seen.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  it('unknown host: 404 problem; no cluster: 503 problem', async () => {
    const unknown = await server.request('nope.example.com', '/');
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('unknown-host');
    await server.admin('PUT', '/services/empty', { hosts: ['empty.example.com'] });
    await server.runtime.snapshots.refresh();
    const empty = await server.request('empty.example.com', '/');
    expect(empty.status).toBe(503);
    expect(empty.headers['content-type']).toBe('application/problem+json');
    expect(empty.json.code).toBe('no-cluster');
  });

  it('proxies with zero store queries per request at steady state', async () => {
    await server.request(HOST, '/warm', { headers: from('eu-west1') });
    await server.runtime.snapshots.refresh();
    const before = server.storeQueries();
    const checkedAt = server.runtime.snapshots.checkedAt;
    for (let i = 0; i < 50; i++)
      expect((await server.request(HOST, `/n/${i}`, { headers: from('eu-west1') })).status).toBe(200);
    // Only a due version check may have run (at most one per refresh interval), never one per request.
    const due = server.runtime.snapshots.checkedAt !== checkedAt ? 1 : 0;
    expect(server.storeQueries() - before).toBe(due);
  });

  it('store unreachable: traffic keeps flowing on the last good snapshot, and ready says why', async () => {
    server.setStoreDown(true);
    await server.runtime.snapshots.refresh();
    expect(server.runtime.snapshots.lastError?.message).toContain('store unreachable');
    for (let i = 0; i < 10; i++) {
      const res = await server.request(HOST, '/', { headers: from('ap-southeast1') });
      expect(res.status).toBe(200);
      expect(res.json.cluster).toBe('as1');
    }
    const ready = await server.request('127.0.0.1', '/_waymark/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.json.storeUnreachableSince).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const write = await server.admin('PUT', '/services/other', { hosts: ['other.example.com'] });
    expect(write.status).toBe(503);
    expect(write.json.code).toBe('store-unavailable');
    expect(write.headers['content-type']).toBe('application/problem+json');
    server.setStoreDown(false);
    await server.runtime.snapshots.refresh();
    expect(server.runtime.snapshots.lastError).toBe(null);
  });
});

describe('Node runtime settings', () => {
  it('client-sent locality headers do not steer routing unless trusted; the node region decides', async () => {
    const fleet = await startFleet();
    const server = await startTestServer({ WAYMARK_TRUST_LOCALITY_HEADERS: 'false', WAYMARK_REGION: 'ap-southeast1' });
    try {
      await registerFleet(server, fleet);
      const res = await server.request(HOST, '/', {
        headers: { 'x-waymark-client-region': 'eu-west1', 'x-waymark-client-location': '53.3,-6.3' },
      });
      expect(res.json.cluster).toBe('as1');
    } finally {
      await server.close();
      await fleet.stop();
    }
  });

  it('a change made through one instance reaches another within its refresh interval', async () => {
    const fleet = await startFleet();
    const writer = await startTestServer();
    const reader = await startTestServer({
      WAYMARK_DATABASE_URL: `file:${writer.dir}/waymark.db`,
      WAYMARK_SNAPSHOT_REFRESH_MS: '200',
    });
    try {
      expect((await reader.request('shop.example.com', '/')).status).toBe(404);
      await registerFleet(writer, fleet);
      const started = Date.now();
      await eventually(
        async () => (await reader.request('shop.example.com', '/', { headers: from('eu-west1') })).status === 200,
        3_000,
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      await reader.close();
      await writer.close();
      await fleet.stop();
    }
  });
});
