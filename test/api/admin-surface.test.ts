import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, type SimpleResponse } from '../../scripts/http-client.js';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { isWaymarkRequest } from '../../src/app.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';

const ADMIN_HOSTS = new Set(['admin.test']);

describe('isWaymarkRequest', () => {
  it.each<[string, string, string[], ReadonlySet<string> | undefined, boolean]>([
    ['any host when WAYMARK_ADMIN_HOSTS is unset', '/_waymark/api/v1/services', ['shop.test'], undefined, true],
    ['an admin host', '/_waymark/api/v1/services', ['admin.test'], ADMIN_HOSTS, true],
    [
      'an admin host in another case, with a port and a trailing dot',
      '/_waymark/api/v1/services?x=1',
      ['Admin.TEST.:8443'],
      ADMIN_HOSTS,
      true,
    ],
    ['another host', '/_waymark/api/v1/services', ['shop.test'], ADMIN_HOSTS, false],
    ['a host that ends like an admin host', '/_waymark/api/v1/services', ['evil-admin.test'], ADMIN_HOSTS, false],
    ['the dashboard, another host', '/_waymark/dashboard', ['shop.test'], ADMIN_HOSTS, false],
    ['the bare prefix, another host', '/_waymark', ['shop.test'], ADMIN_HOSTS, false],
    [
      'two Host headers, one of them an admin host',
      '/_waymark/api/v1/services',
      ['admin.test', 'shop.test'],
      ADMIN_HOSTS,
      false,
    ],
    ['no Host header', '/_waymark/api/v1/services', [], ADMIN_HOSTS, false],
    ['not a host', '/_waymark/api/v1/services', ['admin.test/x'], ADMIN_HOSTS, false],
    ['live, another host', '/_waymark/health/live', ['shop.test'], ADMIN_HOSTS, true],
    ['ready with a query, another host', '/_waymark/health/ready?full=1', ['shop.test'], ADMIN_HOSTS, true],
    [
      'a dot segment after a health path, another host',
      '/_waymark/health/../api/v1/services',
      ['shop.test'],
      ADMIN_HOSTS,
      false,
    ],
    ['an escaped admin path, another host', '/_waymark/%61pi/v1/services', ['shop.test'], ADMIN_HOSTS, false],
    ['a path of the service', '/_waymarks/api', ['admin.test'], ADMIN_HOSTS, false],
    ['a path of the service, any host', '/shop', ['admin.test'], undefined, false],
  ])('%s', (_name, path, hosts, adminHosts, expected) => {
    expect(isWaymarkRequest(path, hosts, adminHosts)).toBe(expected);
  });
});

describe('WAYMARK_ADMIN_HOSTS on Node', () => {
  let server: TestServer;
  let upstream: Upstream;

  /** A request to the server with `host` and the admin token; `path` is sent as is (no URL normalisation). */
  function call(host: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<SimpleResponse> {
    const body = init.body === undefined ? undefined : JSON.stringify(init.body);
    return send(`${server.url}${path}`, {
      host,
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body } : {}),
    });
  }

  /** Like `call`, with the request target written byte for byte (send() would resolve dot segments). */
  function raw(host: string, path: string): Promise<SimpleResponse> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: server.port, path, headers: { host, authorization: `Bearer ${ADMIN_TOKEN}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  beforeAll(async () => {
    upstream = await startUpstream('ew1', 'eu-west1');
    server = await startTestServer({ WAYMARK_ADMIN_HOSTS: 'admin.test' });
    expect(
      (
        await call('admin.test', '/_waymark/api/v1/services/shop', {
          method: 'PUT',
          body: serviceBody(['shop.example.com']),
        })
      ).status,
    ).toBe(201);
    const cluster = await call('admin.test', '/_waymark/api/v1/services/shop/clusters/ew1', {
      method: 'PUT',
      body: clusterBody('eu-west1', upstream.url),
    });
    expect(cluster.status, cluster.body).toBe(201);
    await server.runtime.snapshots.refresh();
  });

  afterAll(async () => {
    await server?.close();
    await upstream?.stop();
  });

  it('Host: admin.test with a valid token reaches the API (any case, with a port)', async () => {
    for (const host of ['admin.test', 'ADMIN.test:443']) {
      const res = await call(host, '/_waymark/api/v1/services');
      expect(res.status, res.body).toBe(200);
      expect(res.json.services.map((s: { name: string }) => s.name)).toEqual(['shop']);
    }
  });

  it('Host: shop.test with a valid token never reaches the API: the proxy answers unknown host', async () => {
    const res = await call('shop.test', '/_waymark/api/v1/services');
    expectProblem(res, 404, 'unknown-host');
    expect(res.json.detail).toContain('shop.test');
  });

  it("on a service's host the admin path is that service's: proxied to its cluster", async () => {
    const before = upstream.served;
    const res = await call('shop.example.com', '/_waymark/api/v1/services');
    expect(res.status, res.body).toBe(200);
    expect(res.headers['x-waymark-cluster']).toBe('ew1');
    expect(res.json).toMatchObject({ cluster: 'ew1', path: '/_waymark/api/v1/services' });
    expect(upstream.served).toBe(before + 1);
  });

  it('no write reaches the API from another host', async () => {
    const res = await call('shop.test', '/_waymark/api/v1/services/blog', {
      method: 'PUT',
      body: serviceBody(['blog.example.com']),
    });
    expectProblem(res, 404, 'unknown-host');
    expect((await call('admin.test', '/_waymark/api/v1/services/blog')).status).toBe(404);
  });

  it('dot segments and escapes do not lead from a health path to the API', async () => {
    for (const path of [
      '/_waymark/health/../api/v1/services',
      '/_waymark/health/live/../../api/v1/services',
      '/_waymark/%61pi/v1/services',
    ]) {
      const res = await raw('shop.test', path);
      expect(res.status, `${path}: ${res.body}`).toBe(404);
      expect(res.json.code, path).toBe('unknown-host');
    }
  });

  it('live and ready answer on every host', async () => {
    for (const host of ['shop.test', 'shop.example.com', 'admin.test']) {
      expect((await call(host, '/_waymark/health/live')).json, host).toEqual({ status: 'live' });
      const ready = await call(host, '/_waymark/health/ready');
      expect(ready.status, host).toBe(200);
      expect(ready.json.status, host).toBe('ready');
    }
  });
});
