import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await server.close();
});

const cluster = (name: string, region: 'us-east1' | 'eu-west1', extra: Record<string, unknown> = {}) => ({
  name,
  ...clusterBody(region, `https://${name}.internal`, extra),
});

/** Two services: shop (two clusters, one route) and blog (one cluster). */
function doc(overrides: { shop?: Record<string, unknown>; shopClusters?: unknown[]; blog?: boolean } = {}) {
  return {
    apiVersion: 'waymark/v1',
    kind: 'Config',
    services: [
      {
        name: 'shop',
        ...serviceBody(['shop.example.com', 'www.shop.example.com']),
        subsets: { v1: { version: 'v1' } },
        ...overrides.shop,
        clusters: overrides.shopClusters ?? [cluster('eu', 'eu-west1'), cluster('us', 'us-east1')],
        routes: [
          { name: 'api', order: 1, match: { path: { prefix: '/api' } }, destinations: [{ subset: 'v1', weight: 100 }] },
        ],
      },
      ...(overrides.blog === false
        ? []
        : [{ name: 'blog', ...serviceBody(['blog.example.com']), clusters: [cluster('blog-eu', 'eu-west1')] }]),
    ],
  };
}

const apply = (body: unknown, query = '', headers: Record<string, string> = {}) =>
  send(`${server.url}/_waymark/api/v1/config${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const configCount = async () => ({
  versions: Number((await server.db.execute('select count(*) as n from config_versions')).rows[0]?.n),
  changes: Number((await server.db.execute('select count(*) as n from config_changes')).rows[0]?.n),
});

describe('config apply: diff, one transaction, prune, If-Match', () => {
  it('a dry run answers the diff and writes nothing; the apply writes it all as one version with one audit entry per object', async () => {
    const before = await dbState(server.db);
    const dry = await apply(doc(), '?dryRun=true');
    expect(dry.status).toBe(200);
    expect(dry.json.dryRun).toBe(true);
    expect(dry.json.summary).toEqual({ create: 6, update: 0, delete: 0, unchanged: 0 });
    // Services first, then clusters, then routes.
    const order = dry.json.changes.map(
      (c: { kind: string; service: string; name?: string }) => `${c.kind}:${c.service}/${c.name ?? ''}`,
    );
    expect(order).toEqual([
      'service:shop/',
      'service:blog/',
      'cluster:shop/eu',
      'cluster:shop/us',
      'cluster:blog/blog-eu',
      'route:shop/api',
    ]);
    expect(await dbState(server.db)).toEqual(before);
    expect(await configCount()).toEqual({ versions: 0, changes: 0 });

    const applied = await apply(doc(), '?message=first%20import');
    expect(applied.status).toBe(200);
    expect(applied.json).toMatchObject({ dryRun: false, version: 1, summary: { create: 6 } });
    expect(applied.headers.etag).toBe('"1"');
    expect(await configCount()).toEqual({ versions: 1, changes: 6 });
    const audit = await server.db.execute('select action, target from audit_log order by id');
    expect(audit.rows.map((r) => `${r.action} ${r.target}`)).toEqual([
      'service.create services/shop',
      'service.create services/blog',
      'cluster.create services/shop/clusters/eu',
      'cluster.create services/shop/clusters/us',
      'cluster.create services/blog/clusters/blog-eu',
      'route.create services/shop/routes/api',
    ]);
    const versions = await server.admin('GET', '/config/versions');
    expect(versions.json.versions).toEqual([
      {
        version: 1,
        at: expect.any(String),
        actor: 'admin',
        requestId: expect.any(String),
        message: 'first import',
        changes: 6,
      },
    ]);
    // What was applied routes at once.
    expect((await server.admin('GET', '/services/shop')).json.clusters).toHaveLength(2);
  });

  it('export then apply is a no-op, and so is applying the same document twice (no drift)', async () => {
    await apply(doc());
    const exported = await server.admin('GET', '/config');
    expect(exported.status).toBe(200);
    expect(exported.headers.etag).toBe('"1"');
    expect(exported.json.apiVersion).toBe('waymark/v1');
    const again = await apply(exported.json);
    expect(again.json.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 6 });
    expect(again.json.version).toBe(1);
    const twice = await apply(doc());
    expect(twice.json.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 6 });
    expect(await configCount()).toEqual({ versions: 1, changes: 6 });
    // Hosts in another order, defaults spelled out: still no change.
    const reordered = doc({ shop: { hosts: ['www.shop.example.com', 'shop.example.com'], policy: {} } });
    expect((await apply(reordered, '?dryRun=true')).json.summary.update).toBe(0);
  });

  it('YAML in, YAML out', async () => {
    const yamlDoc = toYaml(doc());
    const res = await apply(yamlDoc, '', { 'content-type': 'application/yaml' });
    expect(res.status).toBe(200);
    const exported = await send(`${server.url}/_waymark/api/v1/config`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, accept: 'application/yaml' },
    });
    expect(exported.headers['content-type']).toMatch(/^application\/yaml/);
    const parsed = parseYaml(exported.body);
    expect(parsed.services.map((s: { name: string }) => s.name)).toEqual(['blog', 'shop']);
    expect(
      (await apply(exported.body, '?dryRun=true', { 'content-type': 'application/yaml' })).json.summary.unchanged,
    ).toBe(6);
  });

  it('an update lists the fields it changes with old and new values', async () => {
    await apply(doc());
    const res = await apply(
      doc({
        shopClusters: [cluster('eu', 'eu-west1', { weight: 50, labels: { version: 'v2' } }), cluster('us', 'us-east1')],
      }),
      '?dryRun=true',
    );
    const eu = res.json.changes.find((c: { name?: string }) => c.name === 'eu');
    expect(eu).toEqual({
      kind: 'cluster',
      service: 'shop',
      name: 'eu',
      action: 'update',
      fields: [
        { path: 'labels.version', old: 'v1', new: 'v2' },
        { path: 'weight', old: 100, new: 50 },
      ],
    });
  });

  it('objects missing from the document are deleted only with prune', async () => {
    await apply(doc());
    const smaller = doc({ shopClusters: [cluster('eu', 'eu-west1')], blog: false });
    const kept = await apply(smaller);
    expect(kept.json.summary).toEqual({ create: 0, update: 0, delete: 0, unchanged: 3 });
    expect((await server.admin('GET', '/services/blog')).status).toBe(200);

    const pruned = await apply(smaller, '?prune=true');
    expect(pruned.json.summary).toEqual({ create: 0, update: 0, delete: 3, unchanged: 3 });
    expect(pruned.json.changes.filter((c: { action: string }) => c.action === 'delete')).toEqual([
      { kind: 'cluster', service: 'blog', name: 'blog-eu', action: 'delete' },
      { kind: 'cluster', service: 'shop', name: 'us', action: 'delete' },
      { kind: 'service', service: 'blog', action: 'delete' },
    ]);
    expect((await server.admin('GET', '/services/blog')).status).toBe(404);
    expect((await server.admin('GET', '/services/shop')).json.clusters.map((c: { name: string }) => c.name)).toEqual([
      'eu',
    ]);
  });

  it('one refused object refuses the whole apply, naming its field in the document, and writes nothing', async () => {
    await server.admin('PUT', '/services/other', serviceBody(['taken.example.com']));
    const before = await dbState(server.db);
    const versions = await configCount();
    const clash = doc({ shop: { hosts: ['shop.example.com', 'taken.example.com'] } });
    const res = await apply(clash);
    expectProblem(res, 409, 'host-taken', ['services.0.hosts.1']);
    const badRoute = doc();
    (badRoute.services[0] as { routes: unknown[] }).routes = [
      { name: 'api', order: 1, match: {}, destinations: [{ subset: 'nope', weight: 100 }] },
    ];
    expectProblem(await apply(badRoute), 400, 'invalid-request', ['services.0.routes.0.destinations.0.subset']);
    expect(await dbState(server.db)).toEqual(before);
    expect(await configCount()).toEqual(versions);
  });

  it('a host moves from one service to another in one apply', async () => {
    await apply(doc());
    const moved = doc({ shop: { hosts: ['shop.example.com'] } });
    (moved.services[1] as { hosts: string[] }).hosts = ['blog.example.com', 'www.shop.example.com'];
    // blog comes after shop in the document, but shop gives the host up first.
    moved.services.reverse();
    const res = await apply(moved);
    expect(res.status, res.body).toBe(200);
    expect((await server.admin('GET', '/services/blog')).json.hosts).toEqual([
      'blog.example.com',
      'www.shop.example.com',
    ]);
  });

  it('If-Match: a stale version is refused with 412 and nothing written; the current one applies', async () => {
    await apply(doc());
    await server.admin(
      'PUT',
      '/services/shop/clusters/eu',
      clusterBody('eu-west1', 'https://eu.internal', { weight: 7 }),
    );
    const before = await dbState(server.db);
    const stale = await apply(doc(), '', { 'if-match': '"1"' });
    expectProblem(stale, 412, 'precondition-failed');
    expect(await dbState(server.db)).toEqual(before);
    const current = await apply(doc(), '', { 'if-match': '"2"' });
    expect(current.status).toBe(200);
    expect(current.json.version).toBe(3);
    expectProblem(await apply(doc(), '', { 'if-match': 'soon' }), 400, 'invalid-request', ['If-Match']);
  });

  it('bad documents get 400 naming the fields, and change nothing', async () => {
    const before = await dbState(server.db);
    expectProblem(await apply({ ...doc(), apiVersion: 'v2' }), 400, 'invalid-request', ['apiVersion']);
    const unknownField = doc();
    (unknownField.services[1] as { clusters: Record<string, unknown>[] }).clusters[0] = {
      ...cluster('blog-eu', 'eu-west1'),
      bogus: 1,
    };
    expectProblem(await apply(unknownField), 400, 'invalid-request', ['services.1.clusters.0.bogus']);
    const twice = doc();
    (twice.services[0] as { clusters: unknown[] }).clusters = [cluster('eu', 'eu-west1'), cluster('eu', 'eu-west1')];
    expectProblem(await apply(twice), 400, 'invalid-request', ['services.0.clusters']);
    expectProblem(await apply('{ not: [yaml'), 400, 'invalid-request', ['(body)']);
    expectProblem(await apply(doc(), '?prune=maybe'), 400, 'invalid-request', ['query.prune']);
    expect(await dbState(server.db)).toEqual(before);
    expect(await configCount()).toEqual({ versions: 0, changes: 0 });
  });
});

describe('config versions and rollback', () => {
  it('every change is a version (single-object writes too); a version shows the document as it was; rollback makes a new version', async () => {
    await apply(doc(), '?message=v1');
    await server.admin(
      'PUT',
      '/services/shop/clusters/eu',
      clusterBody('eu-west1', 'https://eu.internal', { weight: 5 }),
    );
    await server.admin('DELETE', '/services/blog');
    const versions = (await server.admin('GET', '/config/versions')).json.versions;
    expect(
      versions.map((v: { version: number; message: string; changes: number }) => [v.version, v.message, v.changes]),
    ).toEqual([
      [3, 'delete service blog', 2],
      [2, 'update cluster shop/eu', 1],
      [1, 'v1', 6],
    ]);

    const atOne = await server.admin('GET', '/config/versions/1');
    expect(atOne.status).toBe(200);
    expect(atOne.json.services.map((s: { name: string }) => s.name)).toEqual(['blog', 'shop']);
    const exportedAtOne = atOne.json;
    expect((await server.admin('GET', '/config/versions/0')).json.services).toEqual([]);
    expectProblem(await server.admin('GET', '/config/versions/9'), 404, 'not-found');

    const rolled = await server.admin('POST', '/config/rollback', {
      version: 1,
      reason: 'the weight change broke checkout',
    });
    expect(rolled.status, rolled.body).toBe(200);
    expect(rolled.json.version).toBe(4);
    expect(rolled.json.summary).toMatchObject({ create: 2, update: 1 });
    expect((await server.admin('GET', '/config')).json).toEqual(exportedAtOne);
    const latest = (await server.admin('GET', '/config/versions?limit=1')).json.versions[0];
    expect(latest).toMatchObject({ version: 4, message: 'rollback to version 1: the weight change broke checkout' });
    const audit = await server.db.execute(
      "select count(*) as n from audit_log where action = 'service.create' and target = 'services/blog'",
    );
    expect(Number(audit.rows[0]?.n)).toBe(2);

    expectProblem(await server.admin('POST', '/config/rollback', { version: 1 }), 400, 'invalid-request', ['reason']);
    expectProblem(await server.admin('POST', '/config/rollback', { version: 99, reason: 'no such' }), 404, 'not-found');
  });
});

describe('config with a key limited to some services', () => {
  it('a document naming another service is refused whole; prune, export, versions and rollback stay within its services', async () => {
    await apply(doc());
    const created = await server.admin('POST', '/tokens', {
      name: 'shop-team',
      scopes: ['read', 'write'],
      services: ['shop'],
    });
    expect(created.status, created.body).toBe(201);
    const key = created.json.key as string;
    const asTeam = (body: unknown, query = '') =>
      send(`${server.url}/_waymark/api/v1/config${query}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const before = await dbState(server.db);
    const refused = await asTeam(doc());
    expectProblem(refused, 403, 'forbidden');
    expect(refused.json.detail).toContain('blog');
    expect(await dbState(server.db)).toEqual(before);

    // Only shop, with prune: blog is not the team's, so it is neither in the diff nor deleted.
    const shopOnly = doc({ shopClusters: [cluster('eu', 'eu-west1')], blog: false });
    const pruned = await asTeam(shopOnly, '?prune=true');
    expect(pruned.status, pruned.body).toBe(200);
    expect(pruned.json.changes.filter((c: { action: string }) => c.action === 'delete')).toEqual([
      { kind: 'cluster', service: 'shop', name: 'us', action: 'delete' },
    ]);
    expect((await server.admin('GET', '/services/blog')).status).toBe(200);

    const exported = await server.admin('GET', '/config', undefined, key);
    expect(exported.json.services.map((s: { name: string }) => s.name)).toEqual(['shop']);
    await server.admin(
      'PUT',
      '/services/blog/clusters/blog-eu',
      clusterBody('eu-west1', 'https://b.internal', { weight: 3 }),
    );
    const versions = (await server.admin('GET', '/config/versions', undefined, key)).json.versions;
    expect(versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    const rolled = await server.admin('POST', '/config/rollback', { version: 1, reason: 'restore us' }, key);
    expect(rolled.status, rolled.body).toBe(200);
    expect(rolled.json.summary).toMatchObject({ create: 1, delete: 0 });
    expect((await server.admin('GET', '/services/blog/clusters/blog-eu')).json.weight).toBe(3);
  });
});
