import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';

const READ_TOKEN = 'read-token-0123456789abcdef';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer({ WAYMARK_READ_TOKENS: `viewer:${READ_TOKEN}` });
  expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']))).status).toBe(201);
  expect(
    (
      await server.admin(
        'PUT',
        '/services/shop/clusters/ew1',
        clusterBody('eu-west1', 'https://ew1.shop.internal', { labels: { version: 'v1' } }),
      )
    ).status,
  ).toBe(201);
  expect(
    (
      await server.admin(
        'PUT',
        '/services/shop/clusters/ew2',
        clusterBody('eu-west1', 'https://ew2.shop.internal', { labels: { version: 'v2' } }),
      )
    ).status,
  ).toBe(201);
});

afterEach(async () => {
  await server.close();
});

/** Everything a route write touches, to show that a refused write changed nothing. */
async function state() {
  const routes = await server.db.execute('select service, name, "order", spec from routes order by service, name');
  return { ...(await dbState(server.db)), routes: routes.rows.map((r) => ({ ...r })) };
}

const canary = {
  order: 10,
  match: {
    path: { prefix: '/api' },
    methods: ['get', 'POST'],
    headers: { 'X-Canary': { exact: '1' } },
    query: { beta: { present: true } },
  },
  destinations: [
    { subset: { version: 'v1' }, weight: 90 },
    { subset: { version: 'v2' }, weight: 10 },
  ],
  affinity: { cookie: 'session' },
  mirror: { subset: { version: 'v2' }, percent: 5 },
  fault: { delay: { percent: 1, ms: 100 }, abort: { percent: 0.5, status: 503 } },
  retries: { attempts: 2, retryOn: ['5xx', 409] },
  timeoutMs: 3000,
  maxConcurrent: 100,
  rateLimit: { requestsPerSecond: 50, burst: 100 },
};

describe('routes: happy', () => {
  it('PUT creates (201) with defaults filled in and normalised, the same PUT updates (200), GET reads it', async () => {
    const created = await server.admin('PUT', '/services/shop/routes/canary', canary);
    expect(created.status, created.body).toBe(201);
    const expected = {
      service: 'shop',
      name: 'canary',
      ...canary,
      // Methods upper-cased, header names lower-cased, retry defaults filled in, statuses as strings.
      match: { ...canary.match, methods: ['GET', 'POST'], headers: { 'x-canary': { exact: '1' } } },
      retries: { attempts: 2, perTryTimeoutMs: 2000, retryOn: ['5xx', '409'], budgetPercent: 20, nonIdempotent: false },
      rateLimit: { requestsPerSecond: 50, burst: 100, key: 'client-ip' },
    };
    expect(created.json).toMatchObject({ ...expected, warnings: [] });

    const again = await server.admin('PUT', '/services/shop/routes/canary', canary);
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject(expected);

    const got = await server.admin('GET', '/services/shop/routes/canary');
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject(expected);
    expect(got.json.observed).toMatchObject({ windowMinutes: 15, primary: { requests: 0 }, mirror: { requests: 0 } });
  });

  it('a minimal route gets every default: match everything, one destination of every cluster', async () => {
    const res = await server.admin('PUT', '/services/shop/routes/all', { order: 0 });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({
      service: 'shop',
      name: 'all',
      order: 0,
      match: {},
      destinations: [{ subset: {}, weight: 100 }],
      warnings: [],
    });
    for (const key of ['affinity', 'mirror', 'fault', 'retries', 'timeoutMs', 'maxConcurrent', 'rateLimit'])
      expect(res.json).not.toHaveProperty(key);
  });

  it('a subset that matches no cluster yet is accepted with a warning', async () => {
    const res = await server.admin('PUT', '/services/shop/routes/r', {
      order: 1,
      destinations: [{ subset: { version: 'v3' } }],
      mirror: { subset: { version: 'v9' }, percent: 1 },
    });
    expect(res.status).toBe(201);
    expect(res.json.warnings).toEqual([
      'destinations.0.subset {"version":"v3"} matches no cluster yet',
      'mirror.subset {"version":"v9"} matches no cluster yet',
    ]);
  });

  it('GET lists the routes in matching order (order, then name)', async () => {
    await server.admin('PUT', '/services/shop/routes/zeta', { order: 5 });
    await server.admin('PUT', '/services/shop/routes/late', { order: 100 });
    await server.admin('PUT', '/services/shop/routes/alpha', { order: 5 });
    await server.admin('PUT', '/services/shop/routes/first', { order: 1 });
    const list = await server.admin('GET', '/services/shop/routes');
    expect(list.status).toBe(200);
    expect(list.json.routes.map((r: { name: string; order: number }) => `${r.order}:${r.name}`)).toEqual([
      '1:first',
      '5:alpha',
      '5:zeta',
      '100:late',
    ]);
    // Reordering moves a route.
    await server.admin('PUT', '/services/shop/routes/late', { order: 0 });
    expect(
      (await server.admin('GET', '/services/shop/routes')).json.routes.map((r: { name: string }) => r.name),
    ).toEqual(['late', 'first', 'alpha', 'zeta']);
  });

  it('a service without routes lists none', async () => {
    const list = await server.admin('GET', '/services/shop/routes');
    expect(list.status).toBe(200);
    expect(list.json).toEqual({ routes: [] });
  });

  it('writes take effect at once: the snapshot this instance routes with has the route', async () => {
    await server.admin('PUT', '/services/shop/routes/v2', { order: 1, destinations: [{ subset: { version: 'v2' } }] });
    const snapshot = server.runtime.snapshots.current!;
    expect(snapshot.byName.get('shop')!.routes.map((r) => r.name)).toEqual(['v2']);
    await server.admin('DELETE', '/services/shop/routes/v2');
    expect(server.runtime.snapshots.current!.byName.get('shop')!.routes).toEqual([]);
  });

  it('DELETE removes the route (204), then GET is 404 and a second DELETE is 404', async () => {
    await server.admin('PUT', '/services/shop/routes/canary', canary);
    const before = await state();
    const del = await server.admin('DELETE', '/services/shop/routes/canary');
    expect(del.status).toBe(204);
    expect(del.body).toBe('');
    expectProblem(await server.admin('GET', '/services/shop/routes/canary'), 404, 'not-found');
    expectProblem(await server.admin('DELETE', '/services/shop/routes/canary'), 404, 'not-found');
    const after = await state();
    expect(after.routes).toEqual([]);
    expect(after.audit_log).toBe(before.audit_log + 1);
    expect(after.revision).toBe(before.revision + 1);
  });

  it('every write leaves an audit entry with who, what, before and after', async () => {
    await server.admin('PUT', '/services/shop/routes/r', { order: 1 });
    await server.admin('PUT', '/services/shop/routes/r', { order: 2 });
    await server.admin('DELETE', '/services/shop/routes/r');
    const audit = await server.admin('GET', '/audit?target=services/shop/routes/r');
    expect(audit.status).toBe(200);
    const entries = audit.json.entries as {
      actor: string;
      action: string;
      target: string;
      before: { order: number } | null;
      after: { order: number } | null;
      requestId: string;
    }[];
    expect(entries.map((e) => e.action)).toEqual(['route.delete', 'route.update', 'route.create']);
    expect(entries.every((e) => e.actor === 'admin' && e.target === 'services/shop/routes/r' && e.requestId)).toBe(
      true,
    );
    expect(entries.map((e) => [e.before?.order ?? null, e.after?.order ?? null])).toEqual([
      [2, null],
      [1, 2],
      [null, 1],
    ]);
  });

  it('deleting the service deletes its routes', async () => {
    await server.admin('PUT', '/services/shop/routes/r', { order: 1 });
    expect((await server.admin('DELETE', '/services/shop')).status).toBe(204);
    expect((await state()).routes).toEqual([]);
  });

  it('a read token may read routes', async () => {
    await server.admin('PUT', '/services/shop/routes/r', { order: 1 });
    expect((await server.admin('GET', '/services/shop/routes', undefined, READ_TOKEN)).status).toBe(200);
    expect((await server.admin('GET', '/services/shop/routes/r', undefined, READ_TOKEN)).status).toBe(200);
  });
});

describe("routes: naming the service's subsets", () => {
  const CANARY_BOUNDS = { stepWeight: 10, maxWeight: 50 };
  beforeEach(async () => {
    const res = await server.admin('PUT', '/services/shop', {
      ...serviceBody(['shop.example.com']),
      subsets: { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } },
    });
    expect(res.status, res.body).toBe(200);
  });

  it('destinations, the mirror and the canary may name a subset; the snapshot routes to its labels', async () => {
    const body = {
      order: 1,
      destinations: [
        { subset: 'v1', weight: 90 },
        { subset: { version: 'v2' }, weight: 10 },
      ],
      mirror: { subset: 'v2', percent: 5 },
      canary: { subset: 'v2', ...CANARY_BOUNDS },
    };
    const res = await server.admin('PUT', '/services/shop/routes/r', body);
    expect(res.status, res.body).toBe(201);
    expect(res.json).toMatchObject({
      destinations: body.destinations,
      mirror: { subset: 'v2', percent: 5 },
      canary: { subset: 'v2' },
      warnings: [],
    });
    const compiled = server.runtime.snapshots.current!.byName.get('shop')!.routes[0]!;
    expect(compiled.destinations.map((d) => [d.subset, d.labels, d.plans.clusters.map((c) => c.name)])).toEqual([
      ['v1', { version: 'v1' }, ['ew1']],
      [{ version: 'v2' }, { version: 'v2' }, ['ew2']],
      ['v2', { version: 'v2' }, ['ew2']],
    ]);
  });

  it('a defined subset whose labels match no cluster yet is accepted with a warning', async () => {
    const res = await server.admin('PUT', '/services/shop/routes/r', { order: 1, destinations: [{ subset: 'v3' }] });
    expect(res.status).toBe(201);
    expect(res.json.warnings).toEqual(['destinations.0.subset "v3" ({"version":"v3"}) matches no cluster yet']);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ['a destination', { destinations: [{ subset: 'v1' }, { subset: 'v9' }] }, 'destinations.1.subset'],
    ['the mirror', { mirror: { subset: 'shadow', percent: 1 } }, 'mirror.subset'],
    ['the canary', { canary: { subset: 'v4', ...CANARY_BOUNDS } }, 'canary.subset'],
  ])(
    '%s naming a subset the service does not define -> 400 naming the field and the subsets it has, nothing written',
    async (_name, extra, field) => {
      const before = await state();
      const res = await server.admin('PUT', '/services/shop/routes/r', { order: 1, ...extra });
      expectProblem(res, 400, 'invalid-request', [field]);
      expect(res.json.errors[0].message).toMatch(
        /^names subset "[a-z0-9]+", which service "shop" does not define: expected one of "v1", "v2", "v3", or a label selector like \{"version": "v1"\}$/,
      );
      expect(await state()).toEqual(before);
    },
  );

  it.each<[string, unknown, string]>([
    [
      'a string that is no subset name',
      'V1 beta',
      'must be a subset name: 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit (like "v1")',
    ],
    [
      'neither a string nor a selector',
      42,
      'must be the name of one of the service\'s subsets (like "v1") or a label selector (like {"version": "v1"})',
    ],
  ])('%s -> 400 saying what is expected', async (_name, subset, message) => {
    const res = await server.admin('PUT', '/services/shop/routes/r', { order: 1, destinations: [{ subset }] });
    expectProblem(res, 400, 'invalid-request', ['destinations.0.subset']);
    expect(res.json.errors[0].message).toBe(message);
  });

  it('a subset removed from the service later: the route compiles to no cluster, GET warns, requests get 503, nothing crashes', async () => {
    expect(
      (await server.admin('PUT', '/services/shop/routes/r', { order: 1, destinations: [{ subset: 'v2' }] })).status,
    ).toBe(201);
    const removed = await server.admin('PUT', '/services/shop', {
      ...serviceBody(['shop.example.com']),
      subsets: { v1: { version: 'v1' } },
    });
    expect(removed.status, removed.body).toBe(200);
    const got = await server.admin('GET', '/services/shop/routes/r');
    expect(got.status).toBe(200);
    expect(got.json.warnings).toEqual([
      'destinations.0.subset "v2" is not a subset of the service: it selects no cluster until the service defines it (expected one of "v1")',
    ]);
    const compiled = server.runtime.snapshots.current!.byName.get('shop')!.routes[0]!;
    expect(compiled.destinations[0]).toMatchObject({ subset: 'v2', labels: null });
    expect(compiled.destinations[0]!.plans.clusters).toEqual([]);
    const proxied = await server.request('shop.example.com', '/x', {
      headers: { 'x-waymark-client-region': 'eu-west1' },
    });
    expect(proxied.status).toBe(503);
    const explained = await server.admin('POST', '/explain', { host: 'shop.example.com', clientRegion: 'eu-west1' });
    expect(explained.status, explained.body).toBe(200);
    expect(explained.json.outcome).toMatch(/^503/);
  });
});

describe('routes: errors change nothing', () => {
  beforeEach(async () => {
    expect(
      (
        await server.admin('PUT', '/services/shop/routes/existing', {
          order: 1,
          destinations: [{ subset: { version: 'v1' } }],
        })
      ).status,
    ).toBe(201);
  });

  it.each<[string, unknown, string[]]>([
    ['a bad regex', { order: 1, match: { path: { regex: '(unclosed' } } }, ['match.path.regex']],
    ['a bad header regex', { order: 1, match: { headers: { 'x-a': { regex: '[' } } } }, ['match.headers.x-a.regex']],
    ['an unknown top-level key', { order: 1, colour: 'red' }, ['colour']],
    ['an unknown key in match', { order: 1, match: { host: 'x' } }, ['match.host']],
    ['an unknown key in retries', { order: 1, retries: { attempts: 1, backoff: 10 } }, ['retries.backoff']],
    [
      'two forms in one StringMatch',
      { order: 1, match: { headers: { 'x-a': { exact: 'a', prefix: 'a' } } } },
      ['match.headers.x-a'],
    ],
    ['two forms in a path match', { order: 1, match: { path: { exact: '/a', prefix: '/a' } } }, ['match.path']],
    ['present: false', { order: 1, match: { query: { q: { present: false } } } }, ['match.query.q']],
    ['a path that does not start with /', { order: 1, match: { path: { prefix: 'api' } } }, ['match.path.prefix']],
    [
      'no destination with a positive weight',
      { order: 1, destinations: [{ subset: { version: 'v1' }, weight: 0 }] },
      ['destinations'],
    ],
    ['an empty destination list', { order: 1, destinations: [] }, ['destinations', 'destinations']],
    ['attempts above 6', { order: 1, retries: { attempts: 7 } }, ['retries.attempts']],
    ['attempts below 1', { order: 1, retries: { attempts: 0 } }, ['retries.attempts']],
    [
      'an unknown retryOn',
      { order: 1, retries: { attempts: 1, retryOn: ['5xx', 'sometimes'] } },
      ['retries.retryOn.1'],
    ],
    ['a retryOn status outside 400-599', { order: 1, retries: { attempts: 1, retryOn: [302] } }, ['retries.retryOn.0']],
    [
      'a bad header name in match',
      { order: 1, match: { headers: { 'bad header': { exact: 'a' } } } },
      ['match.headers.bad header'],
    ],
    ['a bad affinity header name', { order: 1, affinity: { header: 'bad header' } }, ['affinity.header']],
    [
      'a bad rate-limit header name',
      { order: 1, rateLimit: { requestsPerSecond: 1, burst: 1, key: { header: 'a:b' } } },
      ['rateLimit.key.header'],
    ],
    ['a percent above 100', { order: 1, mirror: { subset: {}, percent: 101 } }, ['mirror.percent']],
    ['a negative order', { order: -1 }, ['order']],
    ['a missing order', {}, ['order']],
    ['a bad method', { order: 1, match: { methods: ['GET POST'] } }, ['match.methods.0']],
    ['a fault status below 200', { order: 1, fault: { abort: { percent: 1, status: 101 } } }, ['fault.abort.status']],
  ])('%s -> 400 naming the field', async (_name, body, fields) => {
    const before = await state();
    expectProblem(await server.admin('PUT', '/services/shop/routes/new', body), 400, 'invalid-request', fields);
    expectProblem(await server.admin('PUT', '/services/shop/routes/existing', body), 400, 'invalid-request', fields);
    expect(await state()).toEqual(before);
  });

  it.each<[string, unknown, string]>([
    [
      'a backreference in a header regex',
      { order: 1, match: { headers: { 'x-a': { regex: '(a)\\1' } } } },
      'match.headers.x-a.regex',
    ],
    ['a lookahead in a path regex', { order: 1, match: { path: { regex: '/(?=admin)[a-z]+' } } }, 'match.path.regex'],
    [
      'a negative lookahead in a query regex',
      { order: 1, match: { query: { v: { regex: '(?!1)[0-9]' } } } },
      'match.query.v.regex',
    ],
    [
      'a lookbehind in a header regex',
      { order: 1, match: { headers: { 'x-b': { regex: '(?<=a)b' } } } },
      'match.headers.x-b.regex',
    ],
  ])(
    '%s, which JavaScript takes and RE2 does not -> 400 naming the field and why, nothing written',
    async (_name, body, field) => {
      const before = await state();
      const res = await server.admin('PUT', '/services/shop/routes/new', body);
      expectProblem(res, 400, 'invalid-request', [field]);
      expect(res.json.errors[0].message).toMatch(
        /^is not supported by the RE2 syntax: .+ \(RE2 has no backreferences or lookarounds\)$/,
      );
      expectProblem(await server.admin('PUT', '/services/shop/routes/existing', body), 400, 'invalid-request', [field]);
      expect(await state()).toEqual(before);
      expectProblem(await server.admin('GET', '/services/shop/routes/new'), 404, 'not-found');
      const existing = await server.admin('GET', '/services/shop/routes/existing');
      expect(existing.json.match).toEqual({});
    },
  );

  it('a body that is not JSON -> 400', async () => {
    const before = await state();
    expectProblem(await server.admin('PUT', '/services/shop/routes/new', '{"order":'), 400, 'invalid-request', [
      '(body)',
    ]);
    expect(await state()).toEqual(before);
  });

  it('a bad route name -> 400 naming it', async () => {
    const before = await state();
    expectProblem(await server.admin('PUT', '/services/shop/routes/Bad_Name', { order: 1 }), 400, 'invalid-request', [
      'route',
    ]);
    expect(await state()).toEqual(before);
  });

  it('a missing service -> 404 for every verb, nothing written', async () => {
    const before = await state();
    expectProblem(await server.admin('PUT', '/services/nope/routes/r', { order: 1 }), 404, 'not-found');
    expectProblem(await server.admin('GET', '/services/nope/routes'), 404, 'not-found');
    expectProblem(await server.admin('GET', '/services/nope/routes/r'), 404, 'not-found');
    expectProblem(await server.admin('DELETE', '/services/nope/routes/r'), 404, 'not-found');
    expect(await state()).toEqual(before);
  });

  it('a missing route -> 404', async () => {
    expectProblem(await server.admin('GET', '/services/shop/routes/nope'), 404, 'not-found');
  });
});

describe('routes: security', () => {
  it.each<[string, string, unknown]>([
    ['GET', '/services/shop/routes', undefined],
    ['GET', '/services/shop/routes/existing', undefined],
    ['PUT', '/services/shop/routes/new', { order: 1 }],
    ['DELETE', '/services/shop/routes/existing', undefined],
  ])('%s %s without a token -> 401, with a wrong token -> 401', async (method, path, body) => {
    await server.admin('PUT', '/services/shop/routes/existing', { order: 1 });
    const before = await state();
    const none = await server.admin(method, path, body, null);
    expectProblem(none, 401, 'unauthorized');
    expect(none.headers['www-authenticate']).toContain('Bearer');
    expectProblem(await server.admin(method, path, body, 'not-a-token-0123456789abcdef'), 401, 'unauthorized');
    expect(await state()).toEqual(before);
  });

  it.each<[string, string, unknown]>([
    ['PUT', '/services/shop/routes/new', { order: 1 }],
    ['PUT', '/services/shop/routes/existing', { order: 2 }],
    ['DELETE', '/services/shop/routes/existing', undefined],
  ])('%s %s with a read token -> 403, nothing written', async (method, path, body) => {
    await server.admin('PUT', '/services/shop/routes/existing', { order: 1 });
    const before = await state();
    expectProblem(await server.admin(method, path, body, READ_TOKEN), 403, 'forbidden');
    expect(await state()).toEqual(before);
  });

  it('a read token cannot use POST /explain to write anything either (read scope only reads)', async () => {
    const before = await state();
    expect((await server.admin('POST', '/explain', { host: 'shop.example.com' }, READ_TOKEN)).status).toBe(200);
    expect(await state()).toEqual(before);
  });
});
