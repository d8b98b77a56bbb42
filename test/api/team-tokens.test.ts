import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startHranaServer } from '../../scripts/hrana-server.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';
import { ONCALL_TOKEN, READ_TOKEN, TOKEN_ENV } from './override-support.js';

/**
 * Team keys kept in the store (POST/GET/DELETE /tokens): created with scopes, service patterns and an
 * expiry, shown once, kept as a SHA-256 hash, revoked at once on every instance, and limited to their
 * services on every endpoint. The old code knew only the settings' tokens: every call here but the
 * settings-token ones answered 404 (no /tokens) or 401 (a `wmk_` key was never valid).
 */

const T0 = Date.UTC(2026, 11, 1, 12, 0, 0);
const KEY = /^wmk_[A-Za-z0-9_-]{43}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** Nothing listens there: a probe is refused at once. */
const CLOSED_ORIGIN = 'http://127.0.0.1:59999';

let clock = T0;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Created {
  id: string;
  name: string;
  key: string;
  scopes: string[];
  services: string[] | null;
  expiresAt: string | null;
}

/** Creates a key (with the admin token unless `token` says otherwise), asserting 201. */
async function createKey(server: TestServer, body: Record<string, unknown>, token = ADMIN_TOKEN): Promise<Created> {
  const res = await server.admin('POST', '/tokens', body, token);
  expect(res.status, res.body).toBe(201);
  return res.json;
}

/** Row counts a refused token write must leave as they were. */
async function tokenState(server: TestServer) {
  const tokens = Number((await server.db.execute('select count(*) as n from api_tokens')).rows[0]?.n);
  const revoked = Number(
    (await server.db.execute('select count(*) as n from api_tokens where revoked_at is not null')).rows[0]?.n,
  );
  return { ...(await dbState(server.db)), tokens, revoked };
}

describe('team tokens: happy', () => {
  let server: TestServer;

  beforeEach(async () => {
    clock = T0;
    server = await startTestServer(TOKEN_ENV, { now: () => clock });
    expect((await server.admin('PUT', '/services/shop', serviceBody())).status).toBe(201);
    expect(
      (await server.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', CLOSED_ORIGIN))).status,
    ).toBe(201);
  });

  afterEach(async () => {
    await server.close();
  });

  it('creates a key: 201 with the key, once; GET /tokens and GET /tokens/{id} never show it nor its hash', async () => {
    const res = await server.admin('POST', '/tokens', { name: 'ci', scopes: ['read', 'write'] });
    expect(res.status, res.body).toBe(201);
    const created = res.json;
    expect(created).toEqual({
      id: expect.stringMatching(/\S/),
      name: 'ci',
      scopes: ['read', 'write'],
      services: null,
      createdAt: new Date(T0).toISOString(),
      createdBy: 'admin',
      expiresAt: null,
      revokedAt: null,
      active: true,
      key: expect.stringMatching(KEY),
    });
    const { key, ...view } = created;
    const list = await server.admin('GET', '/tokens');
    expect(list.status, list.body).toBe(200);
    expect(list.json).toEqual({ tokens: [view] });
    const one = await server.admin('GET', `/tokens/${created.id}`);
    expect(one.status, one.body).toBe(200);
    expect(one.json).toEqual(view);
    for (const body of [list.body, one.body]) {
      expect(body).not.toContain(key);
      expect(body).not.toContain(sha256(key));
      expect(body).not.toContain('hash');
    }
  });

  it('the store keeps the SHA-256 of the key, never the key; the audit log has neither', async () => {
    const { id, key } = await createKey(server, { name: 'ci', scopes: ['read'] });
    const rows = (await server.db.execute({ sql: 'select * from api_tokens where id = ?', args: [id] })).rows;
    expect(rows).toHaveLength(1);
    expect(rows[0]?.hash).toBe(sha256(key));
    expect(JSON.stringify(rows)).not.toContain(key);
    expect(JSON.stringify(rows)).not.toContain(key.slice(4));
    const audit = JSON.stringify((await server.db.execute('select * from audit_log')).rows);
    expect(audit).not.toContain(key.slice(4));
    expect(audit).not.toContain(sha256(key));
  });

  it('two keys are never the same', async () => {
    const a = await createKey(server, { name: 'a', scopes: ['read'] });
    const b = await createKey(server, { name: 'b', scopes: ['read'] });
    expect(a.key).not.toBe(b.key);
    expect(a.id).not.toBe(b.id);
  });

  it('a key authenticates; what it writes is audited as key:<name>, and so is the key creation by its creator', async () => {
    const { id, key } = await createKey(server, { name: 'deployer', scopes: ['read', 'write'] });
    expect((await server.admin('GET', '/services', undefined, key)).status).toBe(200);
    const put = await server.admin('PUT', '/services/pay-eu', serviceBody(['pay-eu.example.com']), key);
    expect(put.status, put.body).toBe(201);
    const audit = await server.admin('GET', '/audit');
    expect(audit.json.entries[0]).toMatchObject({
      actor: 'key:deployer',
      action: 'service.create',
      target: 'services/pay-eu',
    });
    const creation = (await server.admin('GET', `/audit?target=tokens/${id}`)).json.entries;
    expect(creation).toEqual([
      expect.objectContaining({
        actor: 'admin',
        action: 'token.create',
        before: null,
        after: expect.objectContaining({ id, name: 'deployer', scopes: ['read', 'write'] }),
      }),
    ]);
  });

  it('a key made by a key names its maker: createdBy and the audit say key:<name>', async () => {
    const maker = await createKey(server, { name: 'maker', scopes: ['read', 'write'] });
    const made = await createKey(server, { name: 'made', scopes: ['read'] }, maker.key);
    expect(made).toMatchObject({ createdBy: 'key:maker' });
    const entries = (await server.admin('GET', `/audit?target=tokens/${made.id}`)).json.entries;
    expect(entries.map((e: { actor: string }) => e.actor)).toEqual(['key:maker']);
  });

  it.each([
    ['ISO 8601', new Date(T0 + 3_600_000).toISOString()],
    ['ISO 8601 with an offset', '2026-12-01T14:00:00+01:00'],
    ['epoch milliseconds', T0 + 3_600_000],
  ])('expiresAt as %s', async (_kind, expiresAt) => {
    const created = await createKey(server, { name: 'temp', scopes: ['read'], expiresAt });
    expect(created.expiresAt).toBe(new Date(T0 + 3_600_000).toISOString());
    expect(created.expiresAt).toMatch(ISO);
  });

  it('an expired key is 401 from its expiry on, and shows active: false', async () => {
    const { id, key } = await createKey(server, { name: 'temp', scopes: ['read'], expiresAt: T0 + 60_000 });
    clock = T0 + 59_999;
    expect((await server.admin('GET', '/services', undefined, key)).status).toBe(200);
    clock = T0 + 60_000;
    const res = await server.admin('GET', '/services', undefined, key);
    expectProblem(res, 401, 'unauthorized');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="waymark"');
    expect((await server.admin('GET', `/tokens/${id}`)).json).toMatchObject({ active: false, revokedAt: null });
  });

  it('revoking: 204, the key is 401 on the very next request, GET shows revokedAt; audited', async () => {
    const { id, key } = await createKey(server, { name: 'ci', scopes: ['read'] });
    expect((await server.admin('GET', '/services', undefined, key)).status).toBe(200);
    clock = T0 + 1000;
    const del = await server.admin('DELETE', `/tokens/${id}`);
    expect(del.status, del.body).toBe(204);
    expectProblem(await server.admin('GET', '/services', undefined, key), 401, 'unauthorized');
    expect((await server.admin('GET', `/tokens/${id}`)).json).toMatchObject({
      revokedAt: new Date(T0 + 1000).toISOString(),
      active: false,
    });
    const entries = (await server.admin('GET', `/audit?target=tokens/${id}`)).json.entries;
    expect(entries.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
      ['token.revoke', 'admin'],
      ['token.create', 'admin'],
    ]);
    expect(entries[0].after).toMatchObject({ id, revokedAt: new Date(T0 + 1000).toISOString() });
  });

  it('a key may revoke itself; it is 401 at once', async () => {
    const { id, key } = await createKey(server, { name: 'self', scopes: ['read', 'write'] });
    expect((await server.admin('DELETE', `/tokens/${id}`, undefined, key)).status).toBe(204);
    expectProblem(await server.admin('GET', '/tokens', undefined, key), 401, 'unauthorized');
  });

  it('the name of a revoked or expired key may be used again', async () => {
    const first = await createKey(server, { name: 'ci', scopes: ['read'], expiresAt: T0 + 1000 });
    clock = T0 + 1000;
    const second = await createKey(server, { name: 'ci', scopes: ['read'] });
    expect((await server.admin('DELETE', `/tokens/${second.id}`)).status).toBe(204);
    const third = await createKey(server, { name: 'ci', scopes: ['read'] });
    expect(new Set([first.id, second.id, third.id]).size).toBe(3);
    expect((await server.admin('GET', '/tokens')).json.tokens.map((t: { active: boolean }) => t.active)).toEqual([
      true,
      false,
      false,
    ]);
  });

  it('scopes are enforced: read, override and write keys each do what their scopes say, no more', async () => {
    const read = await createKey(server, { name: 'r', scopes: ['read'] });
    const oncall = await createKey(server, { name: 'o', scopes: ['read', 'override'] });
    const write = await createKey(server, { name: 'w', scopes: ['read', 'write'] });
    expect((await server.admin('GET', '/services/shop', undefined, read.key)).status).toBe(200);
    const cases: [Created, string, string, unknown, number][] = [
      [read, 'PUT', '/services/shop', serviceBody(), 403],
      [read, 'POST', '/overrides', { service: 'shop', action: 'freeze', reason: 'scope test', ttlSeconds: 60 }, 403],
      [read, 'POST', '/tokens', { name: 'x', scopes: ['read'] }, 403],
      [oncall, 'PUT', '/services/shop', serviceBody(), 403],
      [oncall, 'POST', '/overrides', { service: 'shop', action: 'freeze', reason: 'scope test', ttlSeconds: 60 }, 201],
      [write, 'POST', '/overrides', { service: 'shop', action: 'freeze', reason: 'scope test', ttlSeconds: 60 }, 403],
      [write, 'PUT', '/services/shop', serviceBody(), 200],
    ];
    for (const [key, method, path, body, status] of cases) {
      const res = await server.admin(method, path, body, key.key);
      expect(res.status, `${key.name} ${method} ${path}: ${res.body}`).toBe(status);
      if (status === 403) expect(res.json.code).toBe('forbidden');
    }
  });
});

describe('team tokens: errors change nothing', () => {
  let server: TestServer;

  beforeAll(async () => {
    clock = T0;
    server = await startTestServer(TOKEN_ENV, { now: () => clock });
  });

  afterAll(async () => {
    await server.close();
  });

  const BAD: [string, unknown, string[]][] = [
    ['an empty object', {}, ['name', 'scopes']],
    ['no scopes', { name: 'ci', scopes: [] }, ['scopes']],
    ['an unknown scope', { name: 'ci', scopes: ['read', 'admin'] }, ['scopes.1']],
    ['scopes not a list', { name: 'ci', scopes: 'read' }, ['scopes']],
    ['a name with a space', { name: 'the ci', scopes: ['read'] }, ['name']],
    ['a name too long', { name: 'x'.repeat(64), scopes: ['read'] }, ['name']],
    ['no service pattern', { name: 'ci', scopes: ['read'], services: [] }, ['services']],
    ['a bad service pattern', { name: 'ci', scopes: ['read'], services: ['shop', 'Pay_*'] }, ['services.1']],
    ['expiresAt in words', { name: 'ci', scopes: ['read'], expiresAt: 'tomorrow' }, ['expiresAt']],
    ['expiresAt without an offset', { name: 'ci', scopes: ['read'], expiresAt: '2027-01-01T00:00:00' }, ['expiresAt']],
    ['expiresAt in the past', { name: 'ci', scopes: ['read'], expiresAt: T0 - 1 }, ['expiresAt']],
    ['expiresAt now', { name: 'ci', scopes: ['read'], expiresAt: new Date(T0).toISOString() }, ['expiresAt']],
    ['expiresAt not whole milliseconds', { name: 'ci', scopes: ['read'], expiresAt: T0 + 0.5 }, ['expiresAt']],
    ['a key of its own', { name: 'ci', scopes: ['read'], key: 'wmk_mine' }, ['key']],
    [
      'several fields wrong',
      { name: '', scopes: ['root'], services: ['*'], expiresAt: -1 },
      ['name', 'scopes.0', 'expiresAt'],
    ],
  ];

  it.each(BAD)('%s -> 400 naming %j, nothing written', async (_name, body, fields) => {
    const before = await tokenState(server);
    const res = await server.admin('POST', '/tokens', body);
    expectProblem(res, 400, 'invalid-request', fields);
    expect(await tokenState(server)).toEqual(before);
  });

  it('a body that is not JSON -> 400 naming (body)', async () => {
    const before = await tokenState(server);
    expectProblem(await server.admin('POST', '/tokens', '{"name": "ci",'), 400, 'invalid-request', ['(body)']);
    expect(await tokenState(server)).toEqual(before);
  });

  it('a name another active key has -> 409 naming name, nothing written', async () => {
    await createKey(server, { name: 'taken', scopes: ['read'] });
    const before = await tokenState(server);
    expectProblem(await server.admin('POST', '/tokens', { name: 'taken', scopes: ['write'] }), 409, 'conflict', [
      'name',
    ]);
    expect(await tokenState(server)).toEqual(before);
  });

  it('GET and DELETE of an unknown key -> 404', async () => {
    const before = await tokenState(server);
    expectProblem(await server.admin('GET', '/tokens/nope'), 404, 'not-found');
    expectProblem(await server.admin('DELETE', '/tokens/00000000-0000-0000-0000-000000000000'), 404, 'not-found');
    expect(await tokenState(server)).toEqual(before);
  });

  it('revoking twice -> 409 already-revoked, nothing written', async () => {
    const { id } = await createKey(server, { name: 'twice', scopes: ['read'] });
    expect((await server.admin('DELETE', `/tokens/${id}`)).status).toBe(204);
    const before = await tokenState(server);
    expectProblem(await server.admin('DELETE', `/tokens/${id}`), 409, 'already-revoked');
    expect(await tokenState(server)).toEqual(before);
  });
});

describe('team tokens: security', () => {
  let server: TestServer;

  beforeAll(async () => {
    clock = T0;
    server = await startTestServer(TOKEN_ENV, { now: () => clock });
  });

  afterAll(async () => {
    await server.close();
  });

  it.each([
    ['no token', null],
    ['a key that was never made', `wmk_${'A'.repeat(43)}`],
    ['a key with a letter changed', 'CHANGED'],
    ['the hash of a real key', 'HASH'],
    ['a real key without its prefix', 'UNPREFIXED'],
  ])('%s -> 401, nothing written', async (_name, which) => {
    const { key } = await createKey(server, { name: `k${Math.random().toString(36).slice(2, 8)}`, scopes: ['read'] });
    const token =
      which === 'CHANGED'
        ? `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`
        : which === 'HASH'
          ? sha256(key)
          : which === 'UNPREFIXED'
            ? key.slice(4)
            : which;
    const before = await tokenState(server);
    for (const [method, path] of [
      ['GET', '/tokens'],
      ['POST', '/tokens'],
      ['GET', '/services'],
    ] as const) {
      const res = await server.admin(
        method,
        path,
        method === 'POST' ? { name: 'x', scopes: ['read'] } : undefined,
        token,
      );
      expectProblem(res, 401, 'unauthorized');
    }
    expect(await tokenState(server)).toEqual(before);
  });

  it('settings tokens: read and on-call tokens may list keys but not create or revoke them', async () => {
    const { id } = await createKey(server, { name: 'listed', scopes: ['read'] });
    for (const token of [READ_TOKEN, ONCALL_TOKEN]) {
      expect((await server.admin('GET', '/tokens', undefined, token)).status).toBe(200);
      const before = await tokenState(server);
      const post = await server.admin('POST', '/tokens', { name: 'x', scopes: ['read'] }, token);
      expectProblem(post, 403, 'forbidden');
      expect(post.json.detail).toContain('"write"');
      expectProblem(await server.admin('DELETE', `/tokens/${id}`, undefined, token), 403, 'forbidden');
      expect(await tokenState(server)).toEqual(before);
    }
  });

  it('a key cannot give a new key a scope it lacks (403 naming scopes), nothing written', async () => {
    const { key } = await createKey(server, { name: 'writer', scopes: ['read', 'write'] });
    const before = await tokenState(server);
    const res = await server.admin('POST', '/tokens', { name: 'x', scopes: ['read', 'override'] }, key);
    expectProblem(res, 403, 'forbidden', ['scopes']);
    expect(res.json.detail).toContain('override');
    expect(await tokenState(server)).toEqual(before);
  });

  it('a key limited to some services may not list, read, create or revoke keys (403), nothing written', async () => {
    const other = await createKey(server, { name: 'other', scopes: ['read'] });
    const { key, id } = await createKey(server, {
      name: 'limited',
      scopes: ['read', 'override', 'write'],
      services: ['shop'],
    });
    const before = await tokenState(server);
    for (const [method, path, body] of [
      ['GET', '/tokens', undefined],
      ['GET', `/tokens/${other.id}`, undefined],
      ['POST', '/tokens', { name: 'x', scopes: ['read'] }],
      ['POST', '/tokens', { name: 'x', scopes: ['read'], services: ['shop'] }],
      ['DELETE', `/tokens/${other.id}`, undefined],
      ['DELETE', `/tokens/${id}`, undefined],
    ] as const) {
      const res = await server.admin(method, path, body, key);
      expectProblem(res, 403, 'forbidden');
      expect(res.json.detail, `${method} ${path}`).toContain('key:limited is limited to shop');
    }
    expect(await tokenState(server)).toEqual(before);
  });
});

/** A key limited to `shop` and `pay-*`: 403 naming the service on `blog`, on every endpoint; 2xx on `pay-eu`. */
describe('team tokens: service scoping', () => {
  let server: TestServer;
  let limited: Created;
  const ALLOWED = 'pay-eu';
  const OTHER = 'blog';
  const MIRROR_ROUTE = {
    order: 10,
    mirror: {
      subset: { version: 'v1' },
      percent: 10,
      ramp: { step: 10, max: 100, minSamples: 50, maxErrorRateDelta: 0.01, maxLatencyRatio: 1.5 },
    },
  };
  const freeze = (service: string) => ({ service, action: 'freeze', reason: 'scope test', ttlSeconds: 600 });
  const destinationRule = (service: string) =>
    `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: ${service}\nspec:\n  host: ${service}\n  subsets:\n  - name: stable\n    labels:\n      version: v1\n`;

  /** A service with two clusters and a mirror-ramped route; idempotent, so a test may delete parts of it. */
  async function seed(service: string): Promise<void> {
    const calls: [string, unknown][] = [
      [`/services/${service}`, serviceBody([`${service}.example.com`])],
      [`/services/${service}/clusters/ew1`, clusterBody('eu-west1', CLOSED_ORIGIN)],
      [`/services/${service}/clusters/ue1`, clusterBody('us-east1', CLOSED_ORIGIN)],
      [`/services/${service}/routes/api`, MIRROR_ROUTE],
    ];
    for (const [path, body] of calls) {
      const res = await server.admin('PUT', path, body);
      expect(res.status, `${path}: ${res.body}`).toBeLessThan(300);
    }
  }

  /** An active override on `service`, made by the admin: its id. */
  async function overrideOn(service: string): Promise<string> {
    const res = await server.admin('POST', '/overrides', freeze(service));
    expect(res.status, res.body).toBe(201);
    return res.json.id;
  }

  /** What a refused call must leave as it was: the admin tables, routes, overrides and route state. */
  async function everything() {
    const count = async (table: string) =>
      Number((await server.db.execute(`select count(*) as n from ${table}`)).rows[0]?.n);
    const ended = Number(
      (await server.db.execute('select count(*) as n from overrides where ended_at is not null')).rows[0]?.n,
    );
    return {
      ...(await tokenState(server)),
      routes: await count('routes'),
      overrides: await count('overrides'),
      ended,
      routeState: JSON.stringify((await server.db.execute('select * from route_state order by service, route')).rows),
      services: JSON.stringify((await server.db.execute('select * from services order by name')).rows),
    };
  }

  beforeAll(async () => {
    clock = T0;
    server = await startTestServer(TOKEN_ENV, { now: () => clock });
    for (const service of ['shop', ALLOWED, OTHER]) await seed(service);
    for (const service of [ALLOWED, OTHER]) await overrideOn(service);
    limited = await createKey(server, {
      name: 'team-pay',
      scopes: ['read', 'override', 'write'],
      services: ['shop', 'pay-*'],
    });
  });

  afterAll(async () => {
    await server.close();
  });

  interface Case {
    method: string;
    path: (service: string, override: string) => string;
    body?: (service: string) => unknown;
    /** Made by the admin first (an override to read or end, a paused route to resume). */
    prepare?: (service: string) => Promise<string | undefined>;
    status: number;
  }

  const CASES: [string, Case][] = [
    ['GET /services/{s}', { method: 'GET', path: (s) => `/services/${s}`, status: 200 }],
    [
      'PUT /services/{s}',
      {
        method: 'PUT',
        path: (s) => `/services/${s}`,
        body: (s) => serviceBody([`${s}.example.com`, `www.${s}.example.com`]),
        status: 200,
      },
    ],
    ['DELETE /services/{s}', { method: 'DELETE', path: (s) => `/services/${s}`, status: 204 }],
    ['GET /services/{s}/clusters', { method: 'GET', path: (s) => `/services/${s}/clusters`, status: 200 }],
    ['GET /services/{s}/clusters/ew1', { method: 'GET', path: (s) => `/services/${s}/clusters/ew1`, status: 200 }],
    [
      'PUT /services/{s}/clusters/ew1',
      {
        method: 'PUT',
        path: (s) => `/services/${s}/clusters/ew1`,
        body: () => clusterBody('eu-west1', CLOSED_ORIGIN, { weight: 50 }),
        status: 200,
      },
    ],
    [
      'DELETE /services/{s}/clusters/ue1',
      { method: 'DELETE', path: (s) => `/services/${s}/clusters/ue1`, status: 204 },
    ],
    ['GET /services/{s}/routes', { method: 'GET', path: (s) => `/services/${s}/routes`, status: 200 }],
    ['GET /services/{s}/routes/api', { method: 'GET', path: (s) => `/services/${s}/routes/api`, status: 200 }],
    [
      'PUT /services/{s}/routes/api',
      {
        method: 'PUT',
        path: (s) => `/services/${s}/routes/api`,
        body: () => ({ ...MIRROR_ROUTE, order: 20 }),
        status: 200,
      },
    ],
    ['DELETE /services/{s}/routes/api', { method: 'DELETE', path: (s) => `/services/${s}/routes/api`, status: 204 }],
    [
      'POST /services/{s}/routes/api/pause',
      { method: 'POST', path: (s) => `/services/${s}/routes/api/pause`, status: 200 },
    ],
    [
      'POST /services/{s}/routes/api/resume',
      {
        method: 'POST',
        path: (s) => `/services/${s}/routes/api/resume`,
        prepare: async (s) => {
          expect((await server.admin('POST', `/services/${s}/routes/api/pause`)).status).toBe(200);
          return undefined;
        },
        status: 200,
      },
    ],
    ['GET /services/{s}/failover', { method: 'GET', path: (s) => `/services/${s}/failover?down=ue1`, status: 200 }],
    ['POST /overrides', { method: 'POST', path: () => '/overrides', body: freeze, status: 201 }],
    ['GET /overrides?service={s}', { method: 'GET', path: (s) => `/overrides?service=${s}`, status: 200 }],
    ['GET /overrides/{id}', { method: 'GET', path: (_s, id) => `/overrides/${id}`, prepare: overrideOn, status: 200 }],
    [
      'DELETE /overrides/{id}',
      { method: 'DELETE', path: (_s, id) => `/overrides/${id}`, prepare: overrideOn, status: 204 },
    ],
    ['GET /events?service={s}', { method: 'GET', path: (s) => `/events?service=${s}`, status: 200 }],
    ['GET /audit?target=services/{s}', { method: 'GET', path: (s) => `/audit?target=services/${s}`, status: 200 }],
    [
      'GET /audit?target=services/{s}/routes/api',
      { method: 'GET', path: (s) => `/audit?target=services/${s}/routes/api`, status: 200 },
    ],
    [
      'POST /explain',
      {
        method: 'POST',
        path: () => '/explain',
        body: (s) => ({ host: `${s.toUpperCase()}.example.com:443`, path: '/api' }),
        status: 200,
      },
    ],
    ['POST /import/istio', { method: 'POST', path: () => '/import/istio', body: destinationRule, status: 200 }],
    [
      'POST /import/istio?dryRun=true',
      { method: 'POST', path: () => '/import/istio?dryRun=true', body: destinationRule, status: 200 },
    ],
  ];

  it.each(CASES)(`%s on ${OTHER} -> 403 forbidden naming "${OTHER}", nothing written`, async (_name, c) => {
    const id = (await c.prepare?.(OTHER)) ?? 'none';
    const before = await everything();
    const res = await server.admin(c.method, c.path(OTHER, id), c.body?.(OTHER), limited.key);
    expectProblem(res, 403, 'forbidden');
    expect(res.json.detail).toContain(`"${OTHER}"`);
    expect(await everything()).toEqual(before);
  });

  it.each(CASES)(`%s on ${ALLOWED} -> 2xx`, async (_name, c) => {
    const id = (await c.prepare?.(ALLOWED)) ?? 'none';
    const res = await server.admin(c.method, c.path(ALLOWED, id), c.body?.(ALLOWED), limited.key);
    expect(res.status, res.body).toBe(c.status);
    await seed(ALLOWED);
  });

  it('the same calls on blog with the admin token are not refused (the 403s above are the key’s)', async () => {
    for (const [name, c] of CASES.filter(([, c]) => c.method === 'GET')) {
      const id = (await c.prepare?.(OTHER)) ?? 'none';
      const res = await server.admin(c.method, c.path(OTHER, id), c.body?.(OTHER));
      expect(res.status, `${name}: ${res.body}`).toBe(c.status);
    }
  });

  it('an Istio import configuring pay-eu and blog -> 403 as a whole: pay-eu is not written either', async () => {
    const before = await everything();
    const yaml = `${destinationRule(ALLOWED)}---\n${destinationRule(OTHER)}`;
    const res = await server.admin('POST', '/import/istio', yaml, limited.key);
    expectProblem(res, 403, 'forbidden');
    expect(res.json.detail).toContain(`"${OTHER}"`);
    expect(await everything()).toEqual(before);
  });

  it('GET /services lists its services only', async () => {
    const res = await server.admin('GET', '/services', undefined, limited.key);
    expect(res.status, res.body).toBe(200);
    expect(res.json.services.map((s: { name: string }) => s.name)).toEqual([ALLOWED, 'shop']);
    const all = await server.admin('GET', '/services');
    expect(all.json.services.map((s: { name: string }) => s.name)).toEqual([OTHER, ALLOWED, 'shop']);
  });

  it('GET /overrides lists the overrides of its services only', async () => {
    const res = await server.admin('GET', '/overrides?limit=1000', undefined, limited.key);
    expect(res.status, res.body).toBe(200);
    const services = new Set(res.json.overrides.map((o: { service: string }) => o.service));
    expect(services.has(ALLOWED)).toBe(true);
    expect(services.has(OTHER)).toBe(false);
    const all = await server.admin('GET', '/overrides?limit=1000');
    expect(all.json.overrides.some((o: { service: string }) => o.service === OTHER)).toBe(true);
  });

  it('GET /events lists the events of its services only', async () => {
    const res = await server.admin('GET', '/events?limit=1000', undefined, limited.key);
    expect(res.status, res.body).toBe(200);
    const services = new Set(res.json.events.map((e: { service: string }) => e.service));
    expect(services.has(ALLOWED)).toBe(true);
    expect(services.has(OTHER)).toBe(false);
    const all = await server.admin('GET', '/events?limit=1000');
    expect(all.json.events.some((e: { service: string }) => e.service === OTHER)).toBe(true);
  });

  it('GET /audit lists the entries about its services only (overrides by their service; keys never)', async () => {
    const res = await server.admin('GET', '/audit?limit=1000', undefined, limited.key);
    expect(res.status, res.body).toBe(200);
    const entries: { target: string; after: { service?: string } | null; before: { service?: string } | null }[] =
      res.json.entries;
    const serviceOf = (e: (typeof entries)[number]) =>
      e.target.startsWith('services/') ? e.target.split('/')[1] : (e.after?.service ?? e.before?.service);
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.every((e) => ['shop', ALLOWED].includes(serviceOf(e) as string))).toBe(true);
    expect(entries.some((e) => e.target.startsWith('overrides/'))).toBe(true);
    const all: typeof entries = (await server.admin('GET', '/audit?limit=1000')).json.entries;
    expect(all.some((e) => serviceOf(e) === OTHER)).toBe(true);
    expect(all.some((e) => e.target.startsWith('overrides/') && serviceOf(e) === OTHER)).toBe(true);
    expect(all.some((e) => e.target.startsWith('tokens/'))).toBe(true);
    // The cursor filters the same way.
    const after = await server.admin('GET', '/audit?after=0&limit=1000', undefined, limited.key);
    expect(after.json.entries.every((e: (typeof entries)[number]) => serviceOf(e) !== OTHER)).toBe(true);
  });

  it('what the key writes is audited under its name', async () => {
    const res = await server.admin('POST', '/overrides', freeze(ALLOWED), limited.key);
    expect(res.status, res.body).toBe(201);
    expect(res.json.actor).toBe('key:team-pay');
    const entries = (await server.admin('GET', `/audit?target=overrides/${res.json.id}`)).json.entries;
    expect(entries).toEqual([expect.objectContaining({ actor: 'key:team-pay', action: 'override.create' })]);
  });

  it('POST /sync: 403 for the limited key, nothing run; 200 for an unrestricted key', async () => {
    const before = await everything();
    const res = await server.admin('POST', '/sync', undefined, limited.key);
    expectProblem(res, 403, 'forbidden');
    expect(await everything()).toEqual(before);
    const everyService = await createKey(server, { name: 'pager', scopes: ['read', 'override'] });
    const ok = await server.admin('POST', '/sync', undefined, everyService.key);
    expect(ok.status, ok.body).toBe(200);
  });

  it('a pattern is matched against the whole name: "pay-*" is not "repay-eu", "shop" is not "shop-eu"', async () => {
    for (const service of ['repay-eu', 'shop-eu']) {
      const res = await server.admin(
        'PUT',
        `/services/${service}`,
        serviceBody([`${service}.example.com`]),
        limited.key,
      );
      expectProblem(res, 403, 'forbidden');
    }
    const res = await server.admin('PUT', '/services/pay-us', serviceBody(['pay-us.example.com']), limited.key);
    expect(res.status, res.body).toBe(201);
  });

  it('a read-only limited key: its scopes still hold on its own services', async () => {
    const reader = await createKey(server, { name: 'pay-reader', scopes: ['read'], services: ['pay-*'] });
    expect((await server.admin('GET', `/services/${ALLOWED}`, undefined, reader.key)).status).toBe(200);
    expectProblem(
      await server.admin('PUT', `/services/${ALLOWED}`, serviceBody([`${ALLOWED}.example.com`]), reader.key),
      403,
      'forbidden',
    );
  });
});

describe('team tokens: several instances over a remote store', () => {
  it('a key revoked on one instance is 401 on the other at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'waymark-tokens-'));
    const store = await startHranaServer({ dbPath: join(dir, 'remote.db') });
    const one = await startTestServer({ WAYMARK_DATABASE_URL: store.url, WAYMARK_SNAPSHOT_REFRESH_MS: '60000' });
    const two = await startTestServer({ WAYMARK_DATABASE_URL: store.url, WAYMARK_SNAPSHOT_REFRESH_MS: '60000' });
    try {
      const { id, key } = await createKey(one, { name: 'shared', scopes: ['read'] });
      expect((await two.admin('GET', '/services', undefined, key)).status).toBe(200);
      expect((await one.admin('DELETE', `/tokens/${id}`)).status).toBe(204);
      expectProblem(await two.admin('GET', '/services', undefined, key), 401, 'unauthorized');
      expectProblem(await one.admin('GET', '/services', undefined, key), 401, 'unauthorized');
    } finally {
      await one.close();
      await two.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
