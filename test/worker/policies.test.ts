import { SELF } from 'cloudflare:test';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { admin, ctl, DUBLIN, eventually, upstreams } from './support.js';

/**
 * Traffic policies inside workerd, on a service of their own (host policies.example.com) so the other
 * worker files keep seeing "shop" as they left it. Its clusters reuse the global setup's upstreams:
 * v1 in eu-west1 (ew1) and us-east1 (ue1), v2 in ap-southeast1 (as1).
 */
const HOST = 'policies.example.com';
const CLUSTERS = {
  'p-ew1': { region: 'eu-west1', latitude: 50.4, longitude: 3.8, origin: upstreams.ew1, labels: { version: 'v1' } },
  'p-ue1': { region: 'us-east1', latitude: 33.2, longitude: -80.0, origin: upstreams.ue1, labels: { version: 'v1' } },
  'p-as1': {
    region: 'ap-southeast1',
    latitude: 1.35,
    longitude: 103.8,
    origin: upstreams.as1,
    labels: { version: 'v2' },
  },
} as const;

const v1 = [{ subset: { version: 'v1' }, weight: 100 }];
/** Each policy family gets a route selected by `x-policy`, so one family never leaks into another. */
const ROUTES: Record<string, Record<string, unknown>> = {
  'header-v2': {
    order: 10,
    match: { headers: { 'x-policy': { exact: 'header' }, 'x-version': { exact: 'v2' } } },
    destinations: [{ subset: { version: 'v2' } }],
  },
  split: {
    order: 20,
    match: { headers: { 'x-policy': { exact: 'split' } } },
    affinity: { header: 'x-user' },
    destinations: [
      { subset: { version: 'v1' }, weight: 80 },
      { subset: { version: 'v2' }, weight: 20 },
    ],
  },
  mirror: {
    order: 30,
    match: { headers: { 'x-policy': { exact: 'mirror' } } },
    destinations: v1,
    mirror: { subset: { version: 'v2' }, percent: 100 },
  },
  abort: {
    order: 40,
    match: { headers: { 'x-policy': { exact: 'abort' } } },
    destinations: v1,
    fault: { abort: { percent: 100, status: 503 } },
  },
  retry: {
    order: 50,
    match: { headers: { 'x-policy': { exact: 'retry' } } },
    destinations: v1,
    retries: { attempts: 1, retryOn: ['5xx'] },
  },
  'connect-retry': {
    order: 55,
    match: { headers: { 'x-policy': { exact: 'connect-retry' } } },
    destinations: v1,
    retries: { attempts: 1, retryOn: ['connect-failure'] },
  },
  delay: {
    order: 42,
    match: { headers: { 'x-policy': { exact: 'delay' } } },
    destinations: v1,
    fault: { delay: { percent: 100, ms: 300 } },
  },
  overflow: {
    order: 44,
    match: { headers: { 'x-policy': { exact: 'overflow' } } },
    destinations: v1,
    maxConcurrent: 1,
    retries: { attempts: 1, perTryTimeoutMs: 1500, retryOn: ['5xx'] },
  },
  deadline: { order: 46, match: { headers: { 'x-policy': { exact: 'deadline' } } }, destinations: v1, timeoutMs: 300 },
  'rate-limit': {
    order: 60,
    match: { headers: { 'x-policy': { exact: 'rate-limit' } } },
    destinations: v1,
    rateLimit: { requestsPerSecond: 0.001, burst: 2, key: { header: 'x-client' } },
  },
  default: { order: 1000, destinations: v1 },
};

interface Served {
  served: number;
  lastRequest: { method: string; path: string; headers: Record<string, string>; body: string } | null;
}

const served = (name: string) => ctl(`/served/${name}`) as Promise<Served>;
const totalServed = async () =>
  (await Promise.all(['ue1', 'ew1', 'as1'].map(served))).reduce((n, s) => n + s.served, 0);

function send(
  path: string,
  headers: Record<string, string>,
  init: { method?: string; body?: string } = {},
): Promise<Response> {
  return SELF.fetch(`https://${HOST}${path}`, { ...init, headers, cf: DUBLIN } as RequestInit);
}

beforeAll(async () => {
  expect((await admin('PUT', '/services/policies', { hosts: [HOST] })).status).toBeLessThan(300);
  for (const [name, c] of Object.entries(CLUSTERS)) {
    const res = await admin('PUT', `/services/policies/clusters/${name}`, {
      ...c,
      healthCheck: { path: '/health/ready' },
    });
    expect(res.status, await res.text()).toBeLessThan(300);
  }
  for (const [name, body] of Object.entries(ROUTES)) {
    const res = await admin('PUT', `/services/policies/routes/${name}`, body);
    expect(res.status, await res.text()).toBeLessThan(300);
  }
});

afterEach(async () => {
  await ctl('/ok/ew1');
  await ctl('/start/ew1');
});

afterAll(async () => {
  expect((await admin('DELETE', '/services/policies')).status).toBe(204);
});

describe('traffic policies inside workerd', () => {
  it('header routing: a matching header reaches its subset, others take the default', async () => {
    const v2 = await send('/h', { 'x-policy': 'header', 'x-version': 'v2' });
    expect(v2.status).toBe(200);
    expect(v2.headers.get('x-waymark-route')).toBe('header-v2');
    expect(v2.headers.get('x-waymark-cluster')).toBe('p-as1');
    expect(await v2.json()).toMatchObject({ cluster: 'as1' });

    const other = await send('/h', { 'x-policy': 'header', 'x-version': 'v1' });
    expect(other.headers.get('x-waymark-route')).toBe('default');
    expect(other.headers.get('x-waymark-cluster')).toBe('p-ew1');
  });

  it('weighted split with affinity: each key keeps its subset and 100 keys split about 80/20', async () => {
    const byKey = new Map<string, string>();
    for (let k = 0; k < 100; k++) {
      const res = await send(`/s/${k}`, { 'x-policy': 'split', 'x-user': `user-${k}` });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-waymark-route')).toBe('split');
      byKey.set(`user-${k}`, res.headers.get('x-waymark-cluster') ?? '');
    }
    for (let k = 0; k < 100; k += 10)
      expect(
        (await send(`/again/${k}`, { 'x-policy': 'split', 'x-user': `user-${k}` })).headers.get('x-waymark-cluster'),
      ).toBe(byKey.get(`user-${k}`));
    const clusters = [...byKey.values()];
    expect(new Set(clusters)).toEqual(new Set(['p-ew1', 'p-as1']));
    const onV2 = clusters.filter((c) => c === 'p-as1').length;
    expect(onV2).toBeGreaterThanOrEqual(8);
    expect(onV2).toBeLessThanOrEqual(32);
  });

  it('mirror: the shadow gets a copy marked x-waymark-mirror: 1, the primary answers as usual', async () => {
    const before = (await served('as1')).served;
    const res = await send('/mirrored?x=1', { 'x-policy': 'mirror' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toBe('p-ew1');
    expect(await res.json()).toMatchObject({ cluster: 'ew1', path: '/mirrored?x=1' });
    await eventually(async () => (await served('as1')).served === before + 1);
    const shadow = (await served('as1')).lastRequest!;
    expect(shadow.path).toBe('/mirrored?x=1');
    expect(shadow.headers['x-waymark-mirror']).toBe('1');
    expect((await served('ew1')).lastRequest?.headers['x-waymark-mirror']).toBeUndefined();
  });

  it('mirror of a POST: the primary and the shadow both get the whole body', async () => {
    const before = (await served('as1')).served;
    const res = await send(
      '/orders',
      { 'x-policy': 'mirror', 'content-type': 'application/json' },
      { method: 'POST', body: '{"qty":7}' },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ cluster: 'ew1', method: 'POST', body: '{"qty":7}' });
    await eventually(async () => (await served('as1')).served === before + 1);
    expect((await served('as1')).lastRequest).toMatchObject({ method: 'POST', path: '/orders', body: '{"qty":7}' });
  });

  it('fault abort: 503 with x-waymark-fault: abort, and no upstream sees the request', async () => {
    const before = await totalServed();
    for (let i = 0; i < 3; i++) {
      const res = await send(`/a/${i}`, { 'x-policy': 'abort' });
      expect(res.status).toBe(503);
      expect(res.headers.get('x-waymark-fault')).toBe('abort');
      expect(res.headers.get('x-waymark-route')).toBe('abort');
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(await res.json()).toMatchObject({ code: 'fault-injected' });
    }
    expect(await totalServed()).toBe(before);
  });

  it('retry on 5xx: a 500 from the nearest cluster moves to the next one in the same request', async () => {
    await ctl('/fail/ew1');
    const before = await served('ew1');
    const res = await send('/r', { 'x-policy': 'retry' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toBe('p-ue1');
    expect(res.headers.get('x-waymark-attempts')).toBe('2');
    expect((await served('ew1')).served).toBe(before.served + 1);

    // The default route has no retry policy: its 500 comes back.
    const plain = await send('/r', { 'x-policy': 'none' });
    expect(plain.status).toBe(500);
    expect(plain.headers.get('x-waymark-attempts')).toBe('1');
  });

  // workerd's fetch does not say whether a failed connection was ever made ("Network connection lost."
  // either way), so Waymark cannot know that nothing was sent: on Workers a POST is never retried after
  // a fetch error (it is in Node, where ECONNREFUSED says so). Safe over sorry; the README says so.
  it('a POST to a stopped cluster is not sent twice on Workers: 502 upstream-reset, no other cluster sees it', async () => {
    await ctl('/stop/ew1');
    const before = await totalServed();
    const res = await send(
      '/orders',
      { 'x-policy': 'connect-retry', 'content-type': 'text/plain' },
      { method: 'POST', body: 'qty=1' },
    );
    expect(res.status).toBe(502);
    expect(((await res.json()) as { code: string }).code).toBe('upstream-reset');
    expect(await totalServed()).toBe(before);
  });

  it('a PUT body is replayed to the next cluster when the first cannot be reached', async () => {
    await ctl('/stop/ew1');
    const res = await send(
      '/items/1',
      { 'x-policy': 'none', 'content-type': 'text/plain' },
      { method: 'PUT', body: 'replayed' },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ cluster: 'ue1', method: 'PUT', body: 'replayed' });
  });

  it('rate limit: burst 2, then 429 with Retry-After; another key has its own bucket', async () => {
    const client = `c-${Date.now()}`;
    expect((await send('/1', { 'x-policy': 'rate-limit', 'x-client': client })).status).toBe(200);
    expect((await send('/2', { 'x-policy': 'rate-limit', 'x-client': client })).status).toBe(200);
    const before = await totalServed();
    const third = await send('/3', { 'x-policy': 'rate-limit', 'x-client': client });
    expect(third.status).toBe(429);
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(third.headers.get('x-waymark-route')).toBe('rate-limit');
    expect(await third.json()).toMatchObject({ code: 'rate-limited' });
    expect(await totalServed()).toBe(before);
    expect((await send('/4', { 'x-policy': 'rate-limit', 'x-client': `${client}-other` })).status).toBe(200);
  });

  it('fault delay: the answer waits the configured time and says so', async () => {
    const started = Date.now();
    const res = await send('/slow', { 'x-policy': 'delay' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-fault')).toBe('delay');
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it('maxConcurrent: with one request hanging at the cluster, the next gets 503 x-waymark-overflow at once', async () => {
    await ctl('/hang/ew1');
    const first = send('/hang', { 'x-policy': 'overflow' });
    await eventually(async () => (await served('ew1')).lastRequest?.path === '/hang');
    const second = await send('/second', { 'x-policy': 'overflow' });
    expect(second.status).toBe(503);
    expect(second.headers.get('x-waymark-overflow')).toBe('1');
    expect(await second.json()).toMatchObject({ code: 'overflow' });
    await ctl('/ok/ew1');
    await first.then((r) => r.body?.cancel());
  });

  it('timeoutMs: a hanging cluster answers 504 once the route deadline passes', async () => {
    await ctl('/hang/ew1');
    const res = await send('/deadline', { 'x-policy': 'deadline' });
    expect(res.status).toBe(504);
    expect(((await res.json()) as { code: string }).code).toMatch(/^upstream-(timeout|deadline)$/);
  });

  it('explain: the decision for a described request, step by step', async () => {
    const res = await admin('POST', '/explain', {
      host: HOST,
      path: '/x',
      headers: { 'x-policy': 'split', 'x-user': 'alice' },
      clientRegion: 'eu-west1',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      route: string;
      routes: { route: string; matched: boolean }[];
      destination: { chosenBy: string };
      candidates: unknown[];
    };
    expect(body.route).toBe('split');
    expect(body.routes.filter((r) => !r.matched).map((r) => r.route)).toEqual(['header-v2']);
    expect(body.destination.chosenBy).toContain('affinity key "alice"');
    expect(body.candidates.length).toBeGreaterThan(0);
  });

  it('Istio import: a dry run inside workerd maps a VirtualService and says what it cannot honour', async () => {
    const yaml = [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: policies}',
      'spec:',
      '  hosts: [policies.example.com]',
      '  http:',
      '  - name: staging',
      '    match: [{headers: {end-user: {exact: jason}}}]',
      '    rewrite: {uri: /v2}',
      '    route: [{destination: {host: policies.example.com, subset: v2}}]',
      '  - route: [{destination: {host: policies.example.com, subset: v1}}]',
      '---',
      'apiVersion: networking.istio.io/v1',
      'kind: DestinationRule',
      'metadata: {name: policies}',
      'spec:',
      '  host: policies.example.com',
      '  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]',
    ].join('\n');
    const res = await SELF.fetch('https://waymark.test/_waymark/api/v1/import/istio?dryRun=true', {
      method: 'POST',
      headers: { authorization: 'Bearer workerd-admin-token-0123456789', 'content-type': 'application/yaml' },
      body: yaml,
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const body = (await res.json()) as {
      dryRun: boolean;
      services: { name: string; routes: { name: string }[] }[];
      warnings: string[];
    };
    expect(body.dryRun).toBe(true);
    expect(body.services[0]?.routes.map((r) => r.name)).toContain('staging');
    expect(body.warnings.join('\n')).toContain('rewrite');
  });
});
