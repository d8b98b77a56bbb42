import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody, type RegionName } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';

const HOST = 'shop.example.com';
const READ_TOKEN = 'read-token-0123456789abcdef';

let server: TestServer;

const CLUSTERS: [string, RegionName, string][] = [
  ['v1eu', 'eu-west1', 'v1'],
  ['v1us', 'us-east1', 'v1'],
  ['v2eu', 'eu-west1', 'v2'],
  ['shadow', 'eu-west1', 'shadow'],
];

beforeEach(async () => {
  server = await startTestServer({ WAYMARK_READ_TOKENS: `viewer:${READ_TOKEN}` });
  expect((await server.admin('PUT', '/services/shop', serviceBody([HOST]))).status).toBe(201);
  for (const [name, region, version] of CLUSTERS) {
    const res = await server.admin(
      'PUT',
      `/services/shop/clusters/${name}`,
      clusterBody(region, `https://${name}.shop.internal`, { labels: { version } }),
    );
    expect(res.status, res.body).toBe(201);
  }
});

afterEach(async () => {
  await server.close();
});

async function putRoute(name: string, body: Record<string, unknown>): Promise<void> {
  const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
  expect(res.status, res.body).toBeLessThan(300);
}

async function explain(body: Record<string, unknown>) {
  const res = await server.admin('POST', '/explain', { host: HOST, clientRegion: 'eu-west1', ...body });
  expect(res.status, res.body).toBe(200);
  return res.json;
}

const v1 = [{ subset: { version: 'v1' }, weight: 100 }];

describe('explain: which route and why', () => {
  beforeEach(async () => {
    await putRoute('beta', {
      order: 10,
      match: { path: { prefix: '/api' }, headers: { 'x-beta': { exact: 'yes' } } },
      destinations: [{ subset: { version: 'v2' } }],
    });
    await putRoute('mobile', {
      order: 20,
      match: { methods: ['GET'], headers: { 'user-agent': { prefix: 'Mobile' } } },
      destinations: v1,
    });
    await putRoute('default', { order: 100, destinations: v1 });
  });

  it('the matched route, with every condition it matched', async () => {
    const out = await explain({ path: '/api/items?id=1', headers: { 'X-Beta': 'yes' } });
    expect(out.service).toBe('shop');
    expect(out.route).toBe('beta');
    expect(out.routes).toEqual([
      { route: 'beta', order: 10, matched: true, why: 'matched: path starts with "/api", header x-beta is "yes"' },
    ]);
  });

  it('routes that did not match name their first failing condition; routes after the match are not listed', async () => {
    const out = await explain({
      method: 'post',
      path: '/api/items',
      headers: { 'x-beta': 'no', 'user-agent': 'Desktop' },
    });
    expect(out.route).toBe('default');
    expect(out.routes).toEqual([
      { route: 'beta', order: 10, matched: false, why: 'not matched: needs header x-beta is "yes"' },
      // The method is checked first (cheapest), though the user agent would fail too.
      { route: 'mobile', order: 20, matched: false, why: 'not matched: needs method is GET' },
      { route: 'default', order: 100, matched: true, why: 'matched: the route matches every request' },
    ]);
  });

  it('no route matches: the service default', async () => {
    await server.admin('DELETE', '/services/shop/routes/default');
    const out = await explain({ path: '/home' });
    expect(out.route).toBeNull();
    expect(out.destination).toBeNull();
    expect(out.routes.map((r: { matched: boolean }) => r.matched)).toEqual([false, false]);
    expect(out.candidates.map((c: { cluster: string }) => c.cluster).sort()).toEqual([
      'shadow',
      'v1eu',
      'v1us',
      'v2eu',
    ]);
  });

  it('the query and path are matched apart', async () => {
    await putRoute('q', {
      order: 1,
      match: { path: { exact: '/search' }, query: { v: { exact: '2' } } },
      destinations: v1,
    });
    expect((await explain({ path: '/search?v=2' })).route).toBe('q');
    const miss = await explain({ path: '/search?v=3' });
    expect(miss.route).toBe('default');
    expect(miss.routes[0]).toEqual({ route: 'q', order: 1, matched: false, why: 'not matched: needs query v is "2"' });
  });
});

describe('explain: destination and candidates', () => {
  it('the destination, its subset and weights, and candidate clusters with levels, shares and health', async () => {
    await putRoute('r', {
      order: 1,
      destinations: v1,
      retries: { attempts: 1 },
      timeoutMs: 1500,
      maxConcurrent: 10,
      rateLimit: { requestsPerSecond: 5, burst: 10 },
    });
    const out = await explain({});
    expect(out.clientRegion).toEqual({ region: 'eu-west1', how: 'named by the request' });
    expect(out.destination).toEqual({
      index: 0,
      subset: { version: 'v1' },
      labels: { version: 'v1' },
      weights: [100],
      chosenBy: 'the only destination',
    });
    expect(out.candidates).toEqual([
      expect.objectContaining({
        cluster: 'v1eu',
        region: 'eu-west1',
        share: 100,
        level: 0,
        levelReason: 'same-region',
        health: 'unknown',
      }),
      expect.objectContaining({
        cluster: 'v1us',
        region: 'us-east1',
        share: 0,
        level: 1,
        levelReason: 'distance',
        health: 'unknown',
      }),
    ]);
    expect(out.attempts).toEqual(['v1eu', 'v1us']);
    expect(out.outcome).toBe('sent to v1eu, then v1us on retry');
    expect(out.panic).toBe(false);
    expect(out.limits).toMatchObject({
      retries: { attempts: 1 },
      timeoutMs: 1500,
      maxConcurrent: 10,
      rateLimit: { requestsPerSecond: 5, burst: 10, key: 'client-ip' },
    });
    expect(out.snapshotVersion).toEqual(expect.any(Number));
  });

  it('a drained cluster shows as drained with no share; traffic moves to the next level', async () => {
    await putRoute('r', { order: 1, destinations: v1 });
    const drain = await server.admin('POST', '/overrides', {
      service: 'shop',
      action: 'drain',
      cluster: 'v1eu',
      reason: 'maintenance window',
      ttlSeconds: 600,
    });
    expect(drain.status, drain.body).toBe(201);
    const out = await explain({});
    expect(out.candidates).toEqual([
      expect.objectContaining({ cluster: 'v1eu', share: 0, level: 0, health: 'drained' }),
      expect.objectContaining({ cluster: 'v1us', share: 100, level: 1 }),
    ]);
    expect(out.attempts[0]).toBe('v1us');
  });

  it('a client location resolves to the nearest region', async () => {
    await putRoute('r', { order: 1, destinations: v1 });
    const out = await explain({ clientRegion: undefined, clientLocation: '40.7,-74.0' });
    expect(out.clientRegion.region).toBe('us-east1');
    expect(out.clientRegion.how).toMatch(/^nearest known region to 40.7,-74 \(\d+ km\)$/);
    expect(out.candidates[0]).toMatchObject({ cluster: 'v1us', level: 0, levelReason: 'same-region' });
  });

  it('a weighted split says it drew at random; explanation is repeatable per request id', async () => {
    await putRoute('split', {
      order: 1,
      destinations: [
        { subset: { version: 'v1' }, weight: 50 },
        { subset: { version: 'v2' }, weight: 50 },
      ],
    });
    const seen = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const a = await explain({ requestId: `req-${i}` });
      const b = await explain({ requestId: `req-${i}` });
      expect(a.destination.chosenBy).toBe('weighted random draw');
      expect(a.destination.weights).toEqual([50, 50]);
      expect(b.destination.index).toBe(a.destination.index);
      expect(b.attempts).toEqual(a.attempts);
      seen.add(a.destination.index);
    }
    expect(seen).toEqual(new Set([0, 1]));
  });

  it('an affinity key picks the destination: the same key, the same destination', async () => {
    await putRoute('sticky', {
      order: 1,
      affinity: { cookie: 'session' },
      destinations: [
        { subset: { version: 'v1' }, weight: 50 },
        { subset: { version: 'v2' }, weight: 50 },
      ],
    });
    for (let k = 0; k < 10; k++) {
      const first = await explain({ headers: { cookie: `session=s${k}` }, requestId: `a${k}` });
      expect(first.destination.chosenBy).toBe(`affinity key "s${k}" (hash of it, stable while the weights stay)`);
      for (let i = 0; i < 3; i++)
        expect(
          (await explain({ headers: { cookie: `session=s${k}` }, requestId: `b${k}-${i}` })).destination.index,
        ).toBe(first.destination.index);
    }
  });
});

describe('explain: faults and mirror', () => {
  it('a 100% abort: the fault and the outcome say the request never reaches a cluster', async () => {
    await putRoute('broken', {
      order: 1,
      destinations: v1,
      fault: { abort: { percent: 100, status: 503 }, delay: { percent: 0, ms: 200 } },
    });
    const out = await explain({});
    expect(out.fault).toEqual({
      delay: '0% of requests wait 200 ms (this draw: not delayed)',
      abort: '100% of requests get 503 (this draw: aborted)',
    });
    expect(out.outcome).toBe('503: aborted by fault injection before reaching a cluster');
  });

  it('a 100% delay is drawn every time; no fault says null', async () => {
    await putRoute('slow', {
      order: 1,
      match: { headers: { 'x-slow': { present: true } } },
      destinations: v1,
      fault: { delay: { percent: 100, ms: 250 } },
    });
    await putRoute('default', { order: 2, destinations: v1 });
    expect((await explain({ headers: { 'x-slow': '1' } })).fault).toEqual({
      delay: '100% of requests wait 250 ms (this draw: delayed)',
      abort: null,
    });
    expect((await explain({})).fault).toEqual({ delay: null, abort: null });
  });

  it('the mirror decision: subset, percent, whether this request id is sampled and where the copy goes', async () => {
    await putRoute('m', { order: 1, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 100 } });
    expect((await explain({})).mirror).toEqual({
      subset: { version: 'shadow' },
      labels: { version: 'shadow' },
      percent: 100,
      sampled: true,
      cluster: 'shadow',
    });
    await putRoute('m', { order: 1, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 30 } });
    let sampled = 0;
    for (let i = 0; i < 60; i++) {
      const a = (await explain({ requestId: `id-${i}` })).mirror;
      const b = (await explain({ requestId: `id-${i}` })).mirror;
      expect(b).toEqual(a);
      expect(a.cluster).toBe(a.sampled ? 'shadow' : null);
      if (a.sampled) sampled += 1;
    }
    expect(sampled).toBeGreaterThan(5);
    expect(sampled).toBeLessThan(35);
  });

  it('a route without a mirror says null', async () => {
    await putRoute('r', { order: 1, destinations: v1 });
    expect((await explain({})).mirror).toBeNull();
  });
});

describe('explain: unknown host and bad input', () => {
  it('an unknown host: no service, 404 outcome', async () => {
    const out = await explain({ host: 'nope.example.com' });
    expect(out).toMatchObject({ host: 'nope.example.com', service: null, route: null, candidates: [], attempts: [] });
    expect(out.outcome).toBe('404: no service has host "nope.example.com"');
  });

  it('bad input -> 400 naming every field', async () => {
    const res = await server.admin('POST', '/explain', {
      path: 'items',
      method: 'G E',
      clientRegion: 'EU West',
      clientLocation: 'somewhere',
      extra: 1,
    });
    expectProblem(res, 400, 'invalid-request', ['host', 'path', 'method', 'clientRegion', 'clientLocation', 'extra']);
  });

  it('a body that is not JSON -> 400', async () => {
    expectProblem(await server.admin('POST', '/explain', 'host='), 400, 'invalid-request', ['(body)']);
  });

  it.each<[string, Record<string, string>]>([
    ['a header name with a space', { 'bad header': 'x' }],
    ['a header value with a line break', { 'x-a': 'one\r\ntwo' }],
  ])('%s -> 400 naming headers (not a 500)', async (_name, headers) => {
    const res = await server.admin('POST', '/explain', { host: HOST, headers });
    expect(res.status, res.body).toBe(400);
    expect(res.json.code).toBe('invalid-request');
    expect(
      (res.json.errors as { field: string }[]).every((e) => e.field.startsWith('headers')),
      res.body,
    ).toBe(true);
  });

  it('a header value outside Latin-1 -> 400 naming headers.<name> (new Headers would throw: a 500)', async () => {
    const res = await server.admin('POST', '/explain', { host: HOST, headers: { 'x-ok': 'Zoë', 'X-Name': 'check ✓' } });
    expectProblem(res, 400, 'invalid-request', ['headers.X-Name']);
  });

  it('Latin-1 header values are explained like any other', async () => {
    await putRoute('accented', { order: 10, match: { headers: { 'x-name': { exact: 'Zoë' } } }, destinations: v1 });
    expect((await explain({ headers: { 'X-Name': 'Zoë' } })).route).toBe('accented');
  });

  it('needs a token with read scope', async () => {
    expectProblem(await server.admin('POST', '/explain', { host: HOST }, null), 401, 'unauthorized');
    expect((await server.admin('POST', '/explain', { host: HOST }, READ_TOKEN)).status).toBe(200);
  });
});
