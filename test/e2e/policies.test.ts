import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import type { SimpleResponse } from '../../scripts/http-client.js';
import { clusterBody, type RegionName } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

const HOST = 'shop.example.com';
const EU = { 'x-waymark-client-region': 'eu-west1' };
const SHADOW_DELAY_MS = 1_500;
const MIRROR_BODY_BYTES = 64;

/**
 * Service "shop" with clusters labelled by version: v1 in the EU and the US (so a v1 request has
 * somewhere to retry), v2 in the EU, and a shadow in the EU that only mirrors should reach.
 */
interface Upstreams {
  v1eu: Upstream;
  v1us: Upstream;
  v2eu: Upstream;
  shadow: Upstream;
}

const CLUSTERS: Record<keyof Upstreams, { region: RegionName; version: string }> = {
  v1eu: { region: 'eu-west1', version: 'v1' },
  v1us: { region: 'us-east1', version: 'v1' },
  v2eu: { region: 'eu-west1', version: 'v2' },
  shadow: { region: 'eu-west1', version: 'shadow' },
};

let server: TestServer;
let up: Upstreams;
/** The server's clock: real time plus an offset the tests can move forward. */
let offsetMs = 0;

beforeEach(async () => {
  offsetMs = 0;
  const started = await Promise.all(
    (Object.keys(CLUSTERS) as (keyof Upstreams)[]).map((name) => startUpstream(name, CLUSTERS[name].region)),
  );
  up = Object.fromEntries(started.map((u) => [u.name, u])) as unknown as Upstreams;
  server = await startTestServer(
    { WAYMARK_TRY_TIMEOUT_MS: '3000', WAYMARK_MIRROR_BODY_BYTES: String(MIRROR_BODY_BYTES) },
    { now: () => Date.now() + offsetMs },
  );
  // Outlier ejection would move traffic off a failing cluster by itself; these tests watch the policies alone.
  const service = await server.admin('PUT', '/services/shop', {
    hosts: [HOST],
    policy: { outlierDetection: { consecutiveFailures: 1000 } },
  });
  expect(service.status, service.body).toBe(201);
  for (const [name, c] of Object.entries(CLUSTERS)) {
    const res = await server.admin(
      'PUT',
      `/services/shop/clusters/${name}`,
      clusterBody(c.region, up[name as keyof Upstreams].url, { labels: { version: c.version } }),
    );
    expect(res.status, res.body).toBe(201);
  }
});

afterEach(async () => {
  await server.close();
  await Promise.all(Object.values(up).map((u) => u.stop()));
});

async function putRoute(name: string, body: Record<string, unknown>): Promise<void> {
  const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
  expect(res.status, res.body).toBeLessThan(300);
}

const v1 = [{ subset: { version: 'v1' }, weight: 100 }];
const served = () => Object.fromEntries(Object.entries(up).map(([name, u]) => [name, u.served]));
const totalServed = () => Object.values(up).reduce((n, u) => n + u.served, 0);

async function timed(send: () => Promise<SimpleResponse>): Promise<{ res: SimpleResponse; ms: number }> {
  const started = performance.now();
  const res = await send();
  return { res, ms: performance.now() - started };
}

describe('header routing', () => {
  it('a header-matched request reaches its subset; others take the catch-all', async () => {
    await putRoute('beta', {
      order: 10,
      match: { headers: { 'X-Beta': { exact: 'yes' } } },
      destinations: [{ subset: { version: 'v2' } }],
    });
    await putRoute('default', { order: 100, destinations: v1 });
    for (let i = 0; i < 10; i++) {
      const beta = await server.request(HOST, `/b/${i}`, { headers: { ...EU, 'x-beta': 'yes' } });
      expect(beta.status).toBe(200);
      expect(beta.json.cluster).toBe('v2eu');
      expect(beta.headers['x-waymark-route']).toBe('beta');
      const plain = await server.request(HOST, `/p/${i}`, { headers: { ...EU, 'x-beta': 'no' } });
      expect(plain.json.cluster).toBe('v1eu');
      expect(plain.headers['x-waymark-route']).toBe('default');
    }
    expect(served()).toEqual({ v1eu: 10, v1us: 0, v2eu: 10, shadow: 0 });
  });

  it('path, method and query conditions route together', async () => {
    await putRoute('api-v2', {
      order: 1,
      match: { path: { regex: '/api/v[0-9]+/.*' }, methods: ['get'], query: { beta: { present: true } } },
      destinations: [{ subset: { version: 'v2' } }],
    });
    await putRoute('default', { order: 2, destinations: v1 });
    expect((await server.request(HOST, '/api/v2/items?beta', { headers: EU })).json.cluster).toBe('v2eu');
    expect((await server.request(HOST, '/api/v2/items', { headers: EU })).json.cluster).toBe('v1eu');
    expect((await server.request(HOST, '/x/api/v2/items?beta', { headers: EU })).json.cluster).toBe('v1eu');
    expect((await server.request(HOST, '/api/v2/items?beta', { method: 'DELETE', headers: EU })).json.cluster).toBe(
      'v1eu',
    );
  });
});

describe('weighted split and affinity', () => {
  it('an 80/20 split holds within 4% over 1,000 requests', async () => {
    await putRoute('split', {
      order: 1,
      destinations: [
        { subset: { version: 'v1' }, weight: 80 },
        { subset: { version: 'v2' }, weight: 20 },
      ],
    });
    const counts: Record<string, number> = {};
    const N = 1_000;
    for (let batch = 0; batch < N / 20; batch++) {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => server.request(HOST, `/s/${batch}/${i}`, { headers: EU })),
      );
      for (const a of answers) {
        expect(a.status).toBe(200);
        counts[a.json.cluster] = (counts[a.json.cluster] ?? 0) + 1;
      }
    }
    expect(counts.shadow).toBeUndefined();
    expect((counts.v1eu ?? 0) + (counts.v1us ?? 0) + (counts.v2eu ?? 0)).toBe(N);
    expect(Math.abs((counts.v2eu ?? 0) / N - 0.2)).toBeLessThan(0.04);
    // v1 stays in the client's region.
    expect(counts.v1us ?? 0).toBe(0);
  });

  it('an affinity cookie keeps each key on one subset, and keys still split by weight', async () => {
    await putRoute('sticky', {
      order: 1,
      affinity: { cookie: 'session' },
      destinations: [
        { subset: { version: 'v1' }, weight: 50 },
        { subset: { version: 'v2' }, weight: 50 },
      ],
    });
    const byKey = new Map<string, Set<string>>();
    for (let k = 0; k < 60; k++) {
      for (let i = 0; i < 4; i++) {
        const res = await server.request(HOST, `/cart/${i}`, {
          headers: { ...EU, cookie: `theme=dark; session=s-${k}` },
        });
        expect(res.status).toBe(200);
        byKey.set(`s-${k}`, (byKey.get(`s-${k}`) ?? new Set()).add(res.json.cluster));
      }
    }
    for (const [key, clusters] of byKey) expect([...clusters], key).toHaveLength(1);
    const onV2 = [...byKey.values()].filter((s) => s.has('v2eu')).length;
    expect(onV2).toBeGreaterThan(15);
    expect(onV2).toBeLessThan(45);
  });
});

describe('mirror', () => {
  it('a slow shadow does not slow the primary; the shadow sees x-waymark-mirror: 1 and its outcome shows in observed.mirror', async () => {
    up.shadow.delayMs = SHADOW_DELAY_MS;
    await putRoute('plain', { order: 1, match: { headers: { 'x-plain': { present: true } } }, destinations: v1 });
    await putRoute('mirrored', { order: 2, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 100 } });

    const without: number[] = [];
    const withMirror: number[] = [];
    for (let i = 0; i < 5; i++) {
      const plain = await timed(() => server.request(HOST, `/plain/${i}`, { headers: { ...EU, 'x-plain': '1' } }));
      expect(plain.res.headers['x-waymark-route']).toBe('plain');
      without.push(plain.ms);
      // A client cannot pose as mirror traffic: its own x-waymark-mirror never reaches the primary.
      const mirrored = await timed(() =>
        server.request(HOST, `/m/${i}`, { headers: { ...EU, 'x-waymark-mirror': '1' } }),
      );
      expect(mirrored.res.status).toBe(200);
      expect(mirrored.res.json.cluster).toBe('v1eu');
      expect(mirrored.res.headers['x-waymark-route']).toBe('mirrored');
      expect(up.v1eu.lastRequest?.headers['x-waymark-mirror']).toBeUndefined();
      withMirror.push(mirrored.ms);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(Math.max(...withMirror)).toBeLessThan(SHADOW_DELAY_MS / 3);
    expect(mean(withMirror) - mean(without)).toBeLessThan(200);

    await eventually(() => up.shadow.served === 5);
    expect(up.shadow.lastRequest?.headers['x-waymark-mirror']).toBe('1');
    expect(up.shadow.lastRequest?.path).toBe('/m/4');

    // Once the slow answers are in, the next flush carries the mirror's outcome next to the primary's.
    await eventually(
      async () => {
        await server.runtime.flushReports();
        const route = await server.admin('GET', '/services/shop/routes/mirrored');
        return route.json.observed.mirror.requests === 5;
      },
      10_000,
      100,
    );
    const { observed } = (await server.admin('GET', '/services/shop/routes/mirrored')).json;
    expect(observed.primary).toMatchObject({ requests: 5, errorRate: 0 });
    expect(observed.mirror).toMatchObject({ requests: 5, errorRate: 0 });
    expect(observed.mirror.meanMs).toBeGreaterThanOrEqual(SHADOW_DELAY_MS - 50);
    expect(observed.primary.meanMs).toBeLessThan(SHADOW_DELAY_MS / 3);
    expect(observed.canary.requests).toBe(0);
    const plain = (await server.admin('GET', '/services/shop/routes/plain')).json.observed;
    expect(plain.primary.requests).toBe(5);
    expect(plain.mirror.requests).toBe(0);
  });

  it('a failing shadow counts as mirror errors and never changes the primary answer', async () => {
    up.shadow.mode = 'fail';
    await putRoute('mirrored', { order: 1, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 100 } });
    for (let i = 0; i < 3; i++) expect((await server.request(HOST, `/f/${i}`, { headers: EU })).status).toBe(200);
    await eventually(async () => {
      await server.runtime.flushReports();
      return (await server.admin('GET', '/services/shop/routes/mirrored')).json.observed.mirror.requests === 3;
    });
    const { observed } = (await server.admin('GET', '/services/shop/routes/mirrored')).json;
    expect(observed.mirror.errorRate).toBe(1);
    expect(observed.primary.errorRate).toBe(0);
  });

  it(`a body above WAYMARK_MIRROR_BODY_BYTES (${MIRROR_BODY_BYTES}) is not mirrored; a small one is, with its body`, async () => {
    await putRoute('mirrored', { order: 1, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 100 } });
    const big = 'x'.repeat(MIRROR_BODY_BYTES + 1);
    const large = await server.request(HOST, '/orders', {
      method: 'POST',
      headers: { ...EU, 'content-type': 'text/plain' },
      body: big,
    });
    expect(large.status).toBe(200);
    expect(up.v1eu.lastRequest?.body).toBe(big);
    const small = await server.request(HOST, '/orders', {
      method: 'POST',
      headers: { ...EU, 'content-type': 'text/plain' },
      body: 'small',
    });
    expect(small.status).toBe(200);
    await eventually(() => up.shadow.served >= 1);
    expect(up.shadow.served).toBe(1);
    expect(up.shadow.lastRequest).toMatchObject({ method: 'POST', path: '/orders', body: 'small' });
  });

  it('the sample is deterministic per request id and agrees with explain', async () => {
    await putRoute('half', { order: 1, destinations: v1, mirror: { subset: { version: 'shadow' }, percent: 50 } });
    const ids = Array.from({ length: 30 }, (_, i) => `order-${i}`);
    const sampled: string[] = [];
    for (const requestId of ids) {
      const explained = await server.admin('POST', '/explain', { host: HOST, clientRegion: 'eu-west1', requestId });
      expect(explained.status, explained.body).toBe(200);
      if (explained.json.mirror.sampled) sampled.push(requestId);
    }
    expect(sampled.length).toBeGreaterThan(5);
    expect(sampled.length).toBeLessThan(25);
    // Each id twice: the shadow sees exactly the sampled ones, each twice.
    for (const requestId of [...ids, ...ids])
      await server.request(HOST, `/${requestId}`, { headers: { ...EU, 'x-request-id': requestId } });
    await eventually(() => up.shadow.served === 2 * sampled.length);
    const sentinel = sampled[0]!;
    await server.request(HOST, `/sentinel`, { headers: { ...EU, 'x-request-id': sentinel } });
    await eventually(() => up.shadow.served === 2 * sampled.length + 1);
    expect(up.shadow.lastRequest?.headers['x-request-id']).toBe(sentinel);
  });
});

describe('faults', () => {
  it('abort at 100% answers the status with x-waymark-fault: abort, and no upstream (nor the mirror) sees the request', async () => {
    await putRoute('broken', {
      order: 1,
      destinations: v1,
      fault: { abort: { percent: 100, status: 503 } },
      mirror: { subset: { version: 'shadow' }, percent: 100 },
    });
    for (let i = 0; i < 5; i++) {
      const res = await server.request(HOST, `/a/${i}`, { headers: EU });
      expect(res.status).toBe(503);
      expect(res.headers['x-waymark-fault']).toBe('abort');
      expect(res.headers['x-waymark-route']).toBe('broken');
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.json.code).toBe('fault-injected');
    }
    // The server's own answer went out first; give a stray background mirror a chance to land.
    await server.request(HOST, '/', { headers: EU });
    expect(totalServed()).toBe(0);
  });

  it.each([400, 418, 500, 599])('abort with status %i', async (status) => {
    await putRoute('broken', { order: 1, destinations: v1, fault: { abort: { percent: 100, status } } });
    const res = await server.request(HOST, '/', { headers: EU });
    expect(res.status).toBe(status);
    expect(res.headers['x-waymark-fault']).toBe('abort');
    expect(totalServed()).toBe(0);
  });

  it.each([204, 205, 304])(
    'abort with status %i (the schema accepts it) answers that status, never a 500',
    async (status) => {
      const put = await server.admin('PUT', '/services/shop/routes/broken', {
        order: 1,
        destinations: v1,
        fault: { abort: { percent: 100, status } },
      });
      if (put.status === 400) {
        // Refusing the status up front is a fix too, as long as the field is named.
        expect(put.json.errors.map((e: { field: string }) => e.field)).toEqual(['fault.abort.status']);
        return;
      }
      const res = await server.request(HOST, '/', { headers: EU });
      expect(res.status, res.body).toBe(status);
      expect(res.headers['x-waymark-fault']).toBe('abort');
      expect(totalServed()).toBe(0);
    },
  );

  it('delay at 100% adds the delay and marks the answer x-waymark-fault: delay', async () => {
    await putRoute('plain', { order: 1, match: { headers: { 'x-plain': { present: true } } }, destinations: v1 });
    await putRoute('slow', { order: 2, destinations: v1, fault: { delay: { percent: 100, ms: 400 } } });
    const quick = await timed(() => server.request(HOST, '/', { headers: { ...EU, 'x-plain': '1' } }));
    const slow = await timed(() => server.request(HOST, '/', { headers: EU }));
    expect(slow.res.status).toBe(200);
    expect(slow.res.json.cluster).toBe('v1eu');
    expect(slow.res.headers['x-waymark-fault']).toBe('delay');
    expect(quick.res.headers['x-waymark-fault']).toBeUndefined();
    expect(slow.ms).toBeGreaterThanOrEqual(395);
    expect(slow.ms - quick.ms).toBeGreaterThanOrEqual(350);
    expect(slow.ms).toBeLessThan(1_500);
  });

  it('faults scoped by a header match only hit requests with that header', async () => {
    await putRoute('chaos', {
      order: 1,
      match: { headers: { 'x-chaos': { exact: 'on' } } },
      destinations: v1,
      fault: { abort: { percent: 100, status: 500 } },
    });
    await putRoute('default', { order: 2, destinations: v1 });
    for (let i = 0; i < 5; i++) {
      const hit = await server.request(HOST, '/', { headers: { ...EU, 'x-chaos': 'on' } });
      expect(hit.status).toBe(500);
      expect(hit.headers['x-waymark-fault']).toBe('abort');
      const spared = await server.request(HOST, '/', { headers: { ...EU, 'x-chaos': 'off' } });
      expect(spared.status).toBe(200);
      expect(spared.headers['x-waymark-fault']).toBeUndefined();
    }
    expect(up.v1eu.served).toBe(5);
  });
});

describe('retries', () => {
  const retry = (extra: Record<string, unknown> = {}) => ({ attempts: 1, retryOn: ['5xx'], ...extra });

  it("retryOn ['5xx'] moves a 500 to the next cluster", async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    await putRoute('r', { order: 1, destinations: v1, retries: retry() });
    const res = await server.request(HOST, '/', { headers: EU });
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('v1us');
    expect(res.headers['x-waymark-attempts']).toBe('2');
    expect(served()).toMatchObject({ v1eu: 1, v1us: 1 });
  });

  it('without a retry policy a 500 comes back as it is', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    await putRoute('r', { order: 1, destinations: v1 });
    const res = await server.request(HOST, '/', { headers: EU });
    expect(res.status).toBe(500);
    expect(res.headers['x-waymark-cluster']).toBe('v1eu');
    expect(res.headers['x-waymark-attempts']).toBe('1');
    expect(up.v1us.served).toBe(0);
  });

  it('a status named in retryOn is retried; others are not', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 429;
    await putRoute('r', { order: 1, destinations: v1, retries: retry({ retryOn: [429] }) });
    expect((await server.request(HOST, '/', { headers: EU })).json.cluster).toBe('v1us');
    up.v1eu.failStatus = 500;
    expect((await server.request(HOST, '/', { headers: EU })).status).toBe(500);
  });

  it('a POST to a cluster that answers 500 is not retried', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    await putRoute('r', { order: 1, destinations: v1, retries: retry() });
    const res = await server.request(HOST, '/orders', { method: 'POST', headers: EU, body: '{"qty":1}' });
    expect(res.status).toBe(500);
    expect(res.headers['x-waymark-attempts']).toBe('1');
    expect(up.v1us.served).toBe(0);
  });

  it('a POST to a stopped cluster (connect failure: nothing was sent) is retried with its body', async () => {
    await up.v1eu.stop();
    await putRoute('r', { order: 1, destinations: v1, retries: retry({ retryOn: ['5xx', 'connect-failure'] }) });
    const res = await server.request(HOST, '/orders', { method: 'POST', headers: EU, body: '{"qty":2}' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ cluster: 'v1us', method: 'POST', body: '{"qty":2}' });
    expect(res.headers['x-waymark-attempts']).toBe('2');
  });

  it('a POST to a stopped cluster is retried under the default retry policy too', async () => {
    await up.v1eu.stop();
    await putRoute('r', { order: 1, destinations: v1 });
    const res = await server.request(HOST, '/orders', { method: 'POST', headers: EU, body: 'b' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ cluster: 'v1us', body: 'b' });
  });

  it('nonIdempotent: true retries a POST after a 500', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    await putRoute('r', { order: 1, destinations: v1, retries: retry({ nonIdempotent: true }) });
    const res = await server.request(HOST, '/orders', { method: 'POST', headers: EU, body: '{"qty":3}' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ cluster: 'v1us', body: '{"qty":3}' });
    expect(up.v1eu.lastRequest?.body).toBe('{"qty":3}');
  });

  it('a quiet service always gets its retry: 20 GETs one after another to a failing cluster are all retried (Envoy: min_retry_concurrency 3)', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    await putRoute('r', { order: 1, destinations: v1, retries: retry({ budgetPercent: 10 }) });
    for (let i = 0; i < 20; i++) expect((await server.request(HOST, `/${i}`, { headers: EU })).status).toBe(200);
    expect(up.v1eu.served).toBe(20);
    expect(up.v1us.served).toBe(20);
  });

  it('a busy route cannot amplify an outage: of 20 concurrent failing requests at 10%, only min_retry_concurrency (3) are retried at once', async () => {
    up.v1eu.mode = 'fail';
    up.v1eu.failStatus = 500;
    // The failures come back together while all 20 are in flight; the retries stay in flight a while.
    up.v1eu.delayMs = 200;
    up.v1us.delayMs = 400;
    await putRoute('r', { order: 1, destinations: v1, retries: retry({ budgetPercent: 10 }) });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => (await server.request(HOST, `/${i}`, { headers: EU })).status),
    );
    expect(up.v1eu.served).toBe(20);
    expect(up.v1us.served).toBe(3);
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 500)).toHaveLength(17);
  });

  it('a burst of connect failures is retried whatever the budget: nothing reached the stopped cluster, so nothing is amplified (chaos scenario 1)', async () => {
    await up.v1eu.stop();
    // The retries stay in flight a while, so at 10% only min_retry_concurrency (3) would be let through.
    up.v1us.delayMs = 400;
    await putRoute('r', {
      order: 1,
      destinations: v1,
      retries: retry({ retryOn: ['connect-failure'], budgetPercent: 10 }),
    });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => server.request(HOST, `/${i}`, { headers: EU })),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(up.v1us.served).toBe(20);
  });

  it('a per-try timeout under a second fires on time, not on a coarse timer (chaos scenario 1: 300 ms fired after 500-1000 ms)', async () => {
    up.v1eu.delayMs = 2_000;
    await putRoute('r', {
      order: 1,
      destinations: v1,
      retries: retry({ retryOn: ['timeout'], perTryTimeoutMs: 150 }),
    });
    // Warm the connections first, so the figure is the timeout's alone.
    up.v1eu.delayMs = 0;
    expect((await server.request(HOST, '/warm', { headers: EU })).status).toBe(200);
    up.v1eu.delayMs = 2_000;
    const { res, ms } = await timed(() => server.request(HOST, '/', { headers: EU }));
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('v1us');
    expect(ms).toBeGreaterThanOrEqual(150);
    expect(ms).toBeLessThan(450);
  });

  it('timeoutMs is the whole request deadline: a hanging cluster gives 504 in about that time, without reaching the next', async () => {
    up.v1eu.mode = 'hang';
    await putRoute('r', {
      order: 1,
      destinations: v1,
      timeoutMs: 300,
      retries: retry({ attempts: 3, retryOn: ['timeout', '5xx'], perTryTimeoutMs: 5_000 }),
    });
    const { res, ms } = await timed(() => server.request(HOST, '/', { headers: EU }));
    expect(res.status).toBe(504);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.json.code).toBe('upstream-deadline');
    expect(res.json.detail).toContain("the route's 300 ms deadline passed");
    expect(res.headers['x-waymark-route']).toBe('r');
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(1_500);
    expect(up.v1us.served).toBe(0);
  });
});

describe('limits', () => {
  it('maxConcurrent: 1 with a hanging upstream: a second concurrent request gets 503 overflow at once', async () => {
    up.v1eu.mode = 'hang';
    await putRoute('r', {
      order: 1,
      destinations: v1,
      maxConcurrent: 1,
      retries: { attempts: 1, retryOn: ['timeout'], perTryTimeoutMs: 1_000 },
    });
    const first = server.request(HOST, '/first', { headers: EU });
    await eventually(() => up.v1eu.served === 1);

    const { res: second, ms } = await timed(() => server.request(HOST, '/second', { headers: EU }));
    expect(second.status).toBe(503);
    expect(second.headers['x-waymark-overflow']).toBe('1');
    expect(second.json.detail).toContain('maxConcurrent 1');
    expect(second.headers['x-waymark-route']).toBe('r');
    expect(second.json.code).toBe('overflow');
    expect(ms).toBeLessThan(500);
    expect(up.v1eu.served).toBe(1);

    // The first times out on v1eu, gives its slot back and is answered by the next cluster.
    const done = await first;
    expect(done.status).toBe(200);
    expect(done.json.cluster).toBe('v1us');
    up.v1eu.mode = 'ok';
    const third = await server.request(HOST, '/third', { headers: EU });
    expect(third.status).toBe(200);
    expect(third.json.cluster).toBe('v1eu');
  });

  it('the slot is released once a response has been streamed: sequential requests never overflow', async () => {
    await putRoute('r', { order: 1, destinations: v1, maxConcurrent: 1 });
    for (let i = 0; i < 20; i++) expect((await server.request(HOST, `/${i}`, { headers: EU })).status).toBe(200);
    expect(server.runtime.concurrency.inflight('shop/r/v1eu')).toBe(0);
  });

  it('rateLimit burst 2: the third request gets 429 with Retry-After, and no upstream sees it', async () => {
    await putRoute('r', { order: 1, destinations: v1, rateLimit: { requestsPerSecond: 0.5, burst: 2 } });
    expect((await server.request(HOST, '/1', { headers: EU })).status).toBe(200);
    expect((await server.request(HOST, '/2', { headers: EU })).status).toBe(200);
    const third = await server.request(HOST, '/3', { headers: EU });
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('2');
    expect(third.headers['x-waymark-route']).toBe('r');
    expect(third.headers['content-type']).toBe('application/problem+json');
    expect(third.json.code).toBe('rate-limited');
    expect(up.v1eu.served).toBe(2);

    offsetMs += 2_000;
    expect((await server.request(HOST, '/4', { headers: EU })).status).toBe(200);
    expect((await server.request(HOST, '/5', { headers: EU })).status).toBe(429);
  });

  it('rateLimit keyed by a header: each key has its own bucket', async () => {
    await putRoute('r', {
      order: 1,
      destinations: v1,
      rateLimit: { requestsPerSecond: 0.001, burst: 1, key: { header: 'X-Api-Key' } },
    });
    expect((await server.request(HOST, '/', { headers: { ...EU, 'x-api-key': 'a' } })).status).toBe(200);
    expect((await server.request(HOST, '/', { headers: { ...EU, 'x-api-key': 'a' } })).status).toBe(429);
    expect((await server.request(HOST, '/', { headers: { ...EU, 'x-api-key': 'b' } })).status).toBe(200);
  });
});
