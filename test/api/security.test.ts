import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { putCluster } from '../../src/control/clusters.js';
import { putService } from '../../src/control/services.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';

/** Every admin route, with a body that would be valid for the writes. */
const ROUTES: { method: string; path: string; body?: unknown }[] = [
  { method: 'GET', path: '/services' },
  { method: 'GET', path: '/services/shop' },
  { method: 'PUT', path: '/services/shop', body: serviceBody(['shop.example.com', 'new.example.com']) },
  { method: 'PUT', path: '/services/blog', body: serviceBody(['blog.example.com']) },
  { method: 'DELETE', path: '/services/shop' },
  { method: 'GET', path: '/services/shop/clusters' },
  { method: 'GET', path: '/services/shop/clusters/eu' },
  { method: 'PUT', path: '/services/shop/clusters/eu', body: clusterBody('eu-west1', 'https://eu2.shop.internal') },
  { method: 'PUT', path: '/services/shop/clusters/us', body: clusterBody('us-east1', 'https://us.shop.internal') },
  { method: 'DELETE', path: '/services/shop/clusters/eu' },
  { method: 'GET', path: '/audit' },
  { method: 'GET', path: '/audit?target=services/shop' },
];

/** Seeds straight through the store, so it works whether or not the admin API is on. */
async function seed(server: TestServer): Promise<void> {
  const db = server.runtime.store.db;
  const actor = { name: 'seed', requestId: 'seed', now: 1 };
  await putService(db, actor, { name: 'shop', hosts: ['shop.example.com'], failover: [], policy: {}, subsets: {} });
  await putCluster(db, actor, {
    service: 'shop',
    name: 'eu',
    ...clusterBody('eu-west1', 'https://eu.shop.internal'),
    healthCheck: {
      path: '/health/ready',
      expectedStatuses: ['2xx'],
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
    },
  });
}

function call(server: TestServer, method: string, path: string, headers: Record<string, string>, body?: unknown) {
  return send(`${server.url}/_waymark/api/v1${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('security: no admin token configured', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ WAYMARK_ADMIN_TOKEN: '' });
    await seed(server);
  });

  afterAll(async () => {
    await server.close();
  });

  it.each(ROUTES)(
    '$method $path -> 503 naming WAYMARK_ADMIN_TOKEN, nothing written',
    async ({ method, path, body }) => {
      const before = await dbState(server.db);
      const headerSets: Record<string, string>[] = [
        {},
        { authorization: `Bearer ${ADMIN_TOKEN}` },
        { authorization: 'Bearer ' },
      ];
      for (const headers of headerSets) {
        const res = await call(server, method, path, headers, body);
        expectProblem(res, 503, 'admin-disabled');
        expect(res.json.detail).toContain('WAYMARK_ADMIN_TOKEN');
      }
      expect(await dbState(server.db)).toEqual(before);
      expect(before).toEqual({ services: 1, service_hosts: 1, clusters: 1, audit_log: 2, revision: 2 });
    },
  );

  it('health endpoints stay open', async () => {
    expect((await send(`${server.url}/_waymark/health/live`)).status).toBe(200);
    expect((await send(`${server.url}/_waymark/health/ready`)).status).toBe(200);
  });
});

describe('security: bearer token', () => {
  let server: TestServer;

  beforeEach(async () => {
    server = await startTestServer();
    await seed(server);
  });

  afterEach(async () => {
    await server.close();
  });

  it.each(ROUTES)(
    '$method $path without a token -> 401 with www-authenticate, nothing written',
    async ({ method, path, body }) => {
      const before = await dbState(server.db);
      const res = await call(server, method, path, {}, body);
      expectProblem(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="waymark"');
      expect(res.json.detail).toBe('an Authorization: Bearer token is required');
      expect(await dbState(server.db)).toEqual(before);
    },
  );

  it.each(ROUTES)('$method $path with a wrong token -> 401, nothing written', async ({ method, path, body }) => {
    const before = await dbState(server.db);
    for (const token of [
      'wrong-token-0123456789abcdef',
      ADMIN_TOKEN.slice(0, -1),
      `${ADMIN_TOKEN}x`,
      ADMIN_TOKEN.toUpperCase(),
    ]) {
      const res = await call(server, method, path, { authorization: `Bearer ${token}` }, body);
      expectProblem(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="waymark"');
      expect(res.json.detail).toBe('the bearer token is not valid');
    }
    expect(await dbState(server.db)).toEqual(before);
  });

  it.each([
    ['Basic scheme', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`],
    ['no scheme', ADMIN_TOKEN],
    ['another scheme', `Token ${ADMIN_TOKEN}`],
    ['scheme without a space', `Bearer${ADMIN_TOKEN}`],
    ['scheme only', 'Bearer'],
    ['two tokens', `Bearer ${ADMIN_TOKEN} ${ADMIN_TOKEN}`],
    ['token in quotes', `Bearer "${ADMIN_TOKEN}"`],
  ])('a malformed Authorization header (%s) -> 401, nothing written', async (_label, authorization) => {
    const before = await dbState(server.db);
    for (const { method, path, body } of ROUTES.filter((r) => r.method !== 'GET' || r.path === '/services')) {
      const res = await call(server, method, path, { authorization }, body);
      expectProblem(res, 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="waymark"');
    }
    expect(await dbState(server.db)).toEqual(before);
    expect((await server.admin('GET', '/services/shop')).json.hosts).toEqual(['shop.example.com']);
  });

  it('the right token is accepted, with the scheme in any case (RFC 9110 §11.1)', async () => {
    for (const authorization of [`Bearer ${ADMIN_TOKEN}`, `bearer ${ADMIN_TOKEN}`, `BEARER   ${ADMIN_TOKEN}`]) {
      const res = await call(server, 'GET', '/services', { authorization });
      expect(res.status, authorization).toBe(200);
      expect(res.json.services.map((s: { name: string }) => s.name)).toEqual(['shop']);
    }
  });
});

describe('security: the admin API is never proxied', () => {
  let server: TestServer;
  let upstream: Server;
  let seen: { url: string | undefined; headers: IncomingHttpHeaders }[];

  beforeEach(async () => {
    seen = [];
    upstream = createServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' }).end('from upstream');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

    server = await startTestServer();
    expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']))).status).toBe(201);
    expect((await server.admin('PUT', '/services/shop/clusters/local', clusterBody('eu-west1', origin))).status).toBe(
      201,
    );
    await server.runtime.snapshots.refresh();
  });

  afterEach(async () => {
    await server.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('a request for the service host reaches the upstream (control)', async () => {
    const res = await server.request('shop.example.com', '/_waymarkish/page');
    expect(res.status).toBe(200);
    expect(res.body).toBe('from upstream');
    expect(res.headers['x-waymark-cluster']).toBe('local');
    expect(seen.map((s) => s.url)).toEqual(['/_waymarkish/page']);
  });

  it('/_waymark/api/v1 with the Host of a configured service reaches the admin API, not the upstream', async () => {
    const noToken = await server.request('shop.example.com', '/_waymark/api/v1/services');
    expectProblem(noToken, 401, 'unauthorized');
    expect(noToken.headers['x-waymark-cluster']).toBeUndefined();

    const before = await dbState(server.db);
    const write = await server.request('shop.example.com', '/_waymark/api/v1/services/shop', { method: 'DELETE' });
    expectProblem(write, 401, 'unauthorized');
    expect(await dbState(server.db)).toEqual(before);

    const withToken = await server.request('shop.example.com', '/_waymark/api/v1/services', {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(withToken.status).toBe(200);
    expect(withToken.json.services.map((s: { name: string }) => s.name)).toEqual(['shop']);

    const health = await server.request('shop.example.com', '/_waymark/health/live');
    expect(health.json).toEqual({ status: 'live' });

    expect(seen).toEqual([]);
  });
});

describe('security: slow clients (slowloris)', () => {
  let server: TestServer;

  beforeEach(async () => {
    server = await startTestServer({ WAYMARK_HEADERS_TIMEOUT_MS: '1000' });
  });

  afterEach(() => server.close());

  it('a client that trickles its request head gets 408 and its connection closed after WAYMARK_HEADERS_TIMEOUT_MS', async () => {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())));
    const started = Date.now();
    socket.write('GET / HTTP/1.1\r\nHost: shop.example.com\r\n');
    // One more header byte every 200 ms: never the blank line that ends the head.
    const trickle = setInterval(() => socket.writable && socket.write('X'), 200);
    try {
      const at = await closed;
      expect(received).toMatch(/^HTTP\/1\.1 408 /);
      // Closed within the timeout plus Node's one-second check, not after Node's default 60 s.
      expect(at - started).toBeLessThan(5_000);
    } finally {
      clearInterval(trickle);
      socket.destroy();
    }
  });
});
