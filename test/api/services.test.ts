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

describe('services: happy', () => {
  it('PUT creates (201), the same PUT again updates (200) and leaves one service', async () => {
    const body = serviceBody(['shop.example.com', 'www.shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]);
    const created = await server.admin('PUT', '/services/shop', body);
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ name: 'shop', ...body });

    const again = await server.admin('PUT', '/services/shop', body);
    expect(again.status).toBe(200);
    expect(again.json).toEqual({ name: 'shop', ...body });

    expect(await dbState(server.db)).toEqual({ services: 1, service_hosts: 2, clusters: 0, audit_log: 2, revision: 2 });
    const got = await server.admin('GET', '/services/shop');
    expect(got.status).toBe(200);
    expect(got.json).toEqual({
      name: 'shop',
      hosts: ['shop.example.com', 'www.shop.example.com'],
      failover: [{ from: 'eu-west1', to: ['us-east1'] }],
      policy: {},
      subsets: {},
      clusters: [],
    });
  });

  it('PUT replaces hosts and failover; a released host can go to another service', async () => {
    await server.admin(
      'PUT',
      '/services/shop',
      serviceBody(['shop.example.com', 'promo.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]),
    );
    const updated = await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']));
    expect(updated.status).toBe(200);
    expect((await server.admin('GET', '/services/shop')).json).toMatchObject({
      hosts: ['shop.example.com'],
      failover: [],
    });

    const promo = await server.admin('PUT', '/services/promo', serviceBody(['promo.example.com']));
    expect(promo.status).toBe(201);
  });

  it('failover defaults to [] and hostnames are stored lowercased', async () => {
    const res = await server.admin('PUT', '/services/shop', { hosts: ['Shop.Example.COM', 'WWW.shop.example.com'] });
    expect(res.status).toBe(201);
    expect(res.json).toEqual({
      name: 'shop',
      hosts: ['shop.example.com', 'www.shop.example.com'],
      failover: [],
      policy: {},
      subsets: {},
    });
    const rows = await server.db.execute('select host from service_hosts order by host');
    expect(rows.rows.map((r) => r.host)).toEqual(['shop.example.com', 'www.shop.example.com']);
  });

  it('GET /services lists every service by name with its hosts', async () => {
    expect((await server.admin('GET', '/services')).json).toEqual({ services: [] });
    await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']));
    await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com', 'a.blog.example.com']));
    const list = await server.admin('GET', '/services');
    expect(list.status).toBe(200);
    expect(list.json).toEqual({
      services: [
        { name: 'blog', hosts: ['a.blog.example.com', 'blog.example.com'], failover: [], policy: {}, subsets: {} },
        { name: 'shop', hosts: ['shop.example.com'], failover: [], policy: {}, subsets: {} },
      ],
    });
  });

  it('GET one service includes its clusters', async () => {
    await server.admin('PUT', '/services/shop', serviceBody());
    await server.admin('PUT', '/services/shop/clusters/us', clusterBody('us-east1', 'https://us.shop.internal'));
    await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal'));
    const got = await server.admin('GET', '/services/shop');
    expect(got.status).toBe(200);
    expect(got.json.clusters.map((c: { name: string; origin: string }) => `${c.name}=${c.origin}`)).toEqual([
      'eu=https://eu.shop.internal',
      'us=https://us.shop.internal',
    ]);
    expect(got.json.clusters[0]).toEqual({
      service: 'shop',
      name: 'eu',
      ...clusterBody('eu-west1', 'https://eu.shop.internal'),
    });
  });

  it('DELETE answers 204, then GET is 404, and the hosts and clusters are gone', async () => {
    await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com', 'www.shop.example.com']));
    await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal'));
    await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']));

    const deleted = await server.admin('DELETE', '/services/shop');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBe('');
    expectProblem(await server.admin('GET', '/services/shop'), 404, 'not-found');
    expectProblem(await server.admin('GET', '/services/shop/clusters'), 404, 'not-found');
    expect((await server.admin('GET', '/services')).json.services.map((s: { name: string }) => s.name)).toEqual([
      'blog',
    ]);
    expect(await dbState(server.db)).toEqual({ services: 1, service_hosts: 1, clusters: 0, audit_log: 4, revision: 4 });
  });

  it('every write leaves an audit entry at GET /audit?target=services/shop, newest first', async () => {
    const v1 = serviceBody(['shop.example.com']);
    const v2 = serviceBody(['shop.example.com', 'www.shop.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]);
    const create = await server.admin('PUT', '/services/shop', v1);
    const update = await server.admin('PUT', '/services/shop', v2);
    await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']));
    const remove = await server.admin('DELETE', '/services/shop');

    const audit = await server.admin('GET', '/audit?target=services/shop');
    expect(audit.status).toBe(200);
    const entries = audit.json.entries as Record<string, unknown>[];
    expect(entries.map((e) => [e.action, e.target, e.actor, e.requestId])).toEqual([
      ['service.delete', 'services/shop', 'admin', remove.headers['x-request-id']],
      ['service.update', 'services/shop', 'admin', update.headers['x-request-id']],
      ['service.create', 'services/shop', 'admin', create.headers['x-request-id']],
    ]);
    expect(entries[2]).toMatchObject({ before: null, after: { name: 'shop', ...v1 } });
    expect(entries[1]).toMatchObject({ before: { name: 'shop', ...v1 }, after: { name: 'shop', ...v2 } });
    expect(entries[0]).toMatchObject({ before: { name: 'shop', ...v2, clusters: [] }, after: null });
    for (const e of entries) expect(e.at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const limited = await server.admin('GET', '/audit?limit=1');
    expect(limited.json.entries.map((e: { action: string }) => e.action)).toEqual(['service.delete']);
  });

  it('a request id sent by the client is kept and recorded in the audit log', async () => {
    const res = await send(`${server.url}/_waymark/api/v1/services/shop`, {
      method: 'PUT',
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        'content-type': 'application/json',
        'x-request-id': 'deploy-42',
      },
      body: JSON.stringify(serviceBody()),
    });
    expect(res.status).toBe(201);
    expect(res.headers['x-request-id']).toBe('deploy-42');
    const audit = await server.admin('GET', '/audit?target=services/shop');
    expect(audit.json.entries[0].requestId).toBe('deploy-42');
  });
});

describe('services: subsets', () => {
  const subsets = {
    v1: { version: 'v1' },
    v2: { version: 'v2' },
    'gold-eu': { tier: 'gold', 'topology.kubernetes.io/region': 'eu-west1' },
  };

  it('PUT takes named subsets (name -> label selector), GET returns them, a later PUT replaces them', async () => {
    const created = await server.admin('PUT', '/services/shop', { ...serviceBody(), subsets });
    expect(created.status, created.body).toBe(201);
    expect(created.json.subsets).toEqual(subsets);
    expect((await server.admin('GET', '/services/shop')).json.subsets).toEqual(subsets);
    expect((await server.admin('GET', '/services')).json.services[0].subsets).toEqual(subsets);

    const updated = await server.admin('PUT', '/services/shop', {
      ...serviceBody(),
      subsets: { v1: { version: 'v1' } },
    });
    expect(updated.status).toBe(200);
    expect((await server.admin('GET', '/services/shop')).json.subsets).toEqual({ v1: { version: 'v1' } });
  });

  it('subsets default to none', async () => {
    expect((await server.admin('PUT', '/services/shop', { hosts: ['shop.example.com'] })).json.subsets).toEqual({});
  });

  it('a bad subset name says what a subset name is', async () => {
    const res = await server.admin('PUT', '/services/shop', { hosts: ['shop.example.com'], subsets: { V1: {} } });
    expectProblem(res, 400, 'invalid-request', ['subsets.V1']);
    expect(res.json.errors[0].message).toBe(
      'must be a subset name: 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit (like "v1")',
    );
  });
});

describe('services: errors', () => {
  beforeEach(async () => {
    expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']))).status).toBe(201);
    expect(
      (await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal')))
        .status,
    ).toBe(201);
  });

  const cases: { name: string; path: string; body: unknown; fields: string[] }[] = [
    {
      name: 'uppercase service name',
      path: '/services/Shop2',
      body: serviceBody(['new.example.com']),
      fields: ['service'],
    },
    {
      name: 'underscore in name',
      path: '/services/my_shop',
      body: serviceBody(['new.example.com']),
      fields: ['service'],
    },
    {
      name: 'name starting with a dash',
      path: '/services/-shop',
      body: serviceBody(['new.example.com']),
      fields: ['service'],
    },
    {
      name: 'name ending with a dash',
      path: '/services/shop-',
      body: serviceBody(['new.example.com']),
      fields: ['service'],
    },
    {
      name: 'name of 64 characters',
      path: `/services/${'a'.repeat(64)}`,
      body: serviceBody(['new.example.com']),
      fields: ['service'],
    },
    { name: 'empty hosts', path: '/services/blog', body: { hosts: [] }, fields: ['hosts'] },
    { name: 'missing hosts', path: '/services/blog', body: {}, fields: ['hosts'] },
    { name: 'hosts not an array', path: '/services/blog', body: { hosts: 'blog.example.com' }, fields: ['hosts'] },
    {
      name: 'duplicate hosts (after lowercasing)',
      path: '/services/blog',
      body: { hosts: ['blog.example.com', 'BLOG.example.com'] },
      fields: ['hosts'],
    },
    {
      name: 'host with a scheme',
      path: '/services/blog',
      body: { hosts: ['https://blog.example.com'] },
      fields: ['hosts.0'],
    },
    {
      name: 'host with a port',
      path: '/services/blog',
      body: { hosts: ['ok.example.com', 'blog.example.com:8080'] },
      fields: ['hosts.1'],
    },
    { name: 'host with a path', path: '/services/blog', body: { hosts: ['blog.example.com/x'] }, fields: ['hosts.0'] },
    { name: 'host with a space', path: '/services/blog', body: { hosts: ['blog example.com'] }, fields: ['hosts.0'] },
    { name: 'empty host', path: '/services/blog', body: { hosts: [''] }, fields: ['hosts.0'] },
    { name: 'host not a string', path: '/services/blog', body: { hosts: [42] }, fields: ['hosts.0'] },
    {
      name: 'failover rule with empty to',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], failover: [{ from: 'eu-west1', to: [] }] },
      fields: ['failover.0.to'],
    },
    {
      name: 'failover rules with duplicate from',
      path: '/services/blog',
      body: {
        hosts: ['blog.example.com'],
        failover: [
          { from: 'eu-west1', to: ['us-east1'] },
          { from: 'eu-west1', to: ['ap-southeast1'] },
        ],
      },
      fields: ['failover'],
    },
    {
      name: 'failover rule with a bad region',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], failover: [{ from: 'EU West', to: ['us-east1'] }] },
      fields: ['failover.0.from'],
    },
    {
      name: 'failover rule with an unknown key',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], failover: [{ from: 'eu-west1', to: ['us-east1'], weight: 1 }] },
      fields: ['failover.0.weight'],
    },
    {
      name: 'unknown key',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], extra: true },
      fields: ['extra'],
    },
    {
      name: 'a subset name that is no DNS label',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], subsets: { V1_beta: { version: 'v1' } } },
      fields: ['subsets.V1_beta'],
    },
    {
      name: 'a subset label key that is no label key',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], subsets: { v1: { '-version': 'v1' } } },
      fields: ['subsets.v1.-version'],
    },
    {
      name: 'a subset label value that is not a string',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], subsets: { v1: { version: 1 } } },
      fields: ['subsets.v1.version'],
    },
    {
      name: 'a policy maxConcurrent of 0',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], policy: { maxConcurrent: 0 } },
      fields: ['policy.maxConcurrent'],
    },
    {
      name: 'distribute percents not adding up to 100',
      path: '/services/blog',
      body: {
        hosts: ['blog.example.com'],
        policy: { distribute: [{ from: 'r1/z1/*', to: { 'r1/z1/*': 70, 'r2/*': 20 } }] },
      },
      fields: ['policy.distribute.0.to'],
    },
    {
      name: 'a distribute locality that is not one',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], policy: { distribute: [{ from: 'R1 Z1', to: { 'r1/z1/s1/x': 100 } }] } },
      fields: ['policy.distribute.0.from', 'policy.distribute.0.to.r1/z1/s1/x'],
    },
    {
      name: 'a fractional policy maxConcurrent',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], policy: { maxConcurrent: 1.5 } },
      fields: ['policy.maxConcurrent'],
    },
    {
      name: 'subsets not a mapping',
      path: '/services/blog',
      body: { hosts: ['blog.example.com'], subsets: ['v1'] },
      fields: ['subsets'],
    },
    { name: 'body is an array', path: '/services/blog', body: [], fields: ['(root)'] },
    { name: 'body is null', path: '/services/blog', body: 'null', fields: ['(root)'] },
    { name: 'invalid JSON', path: '/services/blog', body: '{"hosts": ["blog.example.com"', fields: ['(body)'] },
    { name: 'empty body', path: '/services/blog', body: '', fields: ['(body)'] },
  ];

  it('policy.distribute round-trips', async () => {
    const policy = {
      distribute: [{ from: 'us-east1/us-east1-b/*', to: { 'us-east1/us-east1-b/*': 80, 'eu-west1/*': 20 } }],
    };
    expect((await server.admin('PUT', '/services/blog', { hosts: ['blog.example.com'], policy })).status).toBe(201);
    expect((await server.admin('GET', '/services/blog')).json.policy).toEqual(policy);
  });

  it.each(cases)('PUT with $name -> 400 naming $fields, nothing written', async ({ path, body, fields }) => {
    const before = await dbState(server.db);
    expectProblem(await server.admin('PUT', path, body), 400, 'invalid-request', fields);
    expect(await dbState(server.db)).toEqual(before);
  });

  it('an update with bad input leaves the existing service as it was', async () => {
    const before = await dbState(server.db);
    expectProblem(
      await server.admin('PUT', '/services/shop', {
        hosts: ['shop.example.com'],
        failover: [{ from: 'eu-west1', to: [] }],
      }),
      400,
      'invalid-request',
      ['failover.0.to'],
    );
    expect(await dbState(server.db)).toEqual(before);
    expect((await server.admin('GET', '/services/shop')).json).toMatchObject({
      hosts: ['shop.example.com'],
      failover: [],
    });
  });

  it('a host that belongs to another service -> 409 naming the host and its owner, nothing written', async () => {
    const before = await dbState(server.db);
    const res = await server.admin('PUT', '/services/blog', { hosts: ['blog.example.com', 'SHOP.example.com'] });
    expectProblem(res, 409, 'host-taken', ['hosts.1']);
    expect(res.json.detail).toBe('shop.example.com belongs to service "shop"');
    expect(res.json.errors[0].message).toContain('"shop"');
    expect(await dbState(server.db)).toEqual(before);
    expectProblem(await server.admin('GET', '/services/blog'), 404, 'not-found');
  });

  it('several invalid fields are all named in one answer', async () => {
    const res = await server.admin('PUT', '/services/blog', {
      hosts: ['ok.example.com', 'not a host', 'ok.example.com'],
      failover: [{ from: 'eu-west1', to: [] }],
      extra: 1,
    });
    expect(res.status).toBe(400);
    const fields = (res.json.errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['hosts.1', 'failover.0.to', 'extra']));
  });

  it('GET or DELETE of a missing service -> 404, nothing written', async () => {
    const before = await dbState(server.db);
    const get = await server.admin('GET', '/services/nope');
    expectProblem(get, 404, 'not-found');
    expect(get.json.detail).toBe('service "nope" does not exist');
    expectProblem(await server.admin('DELETE', '/services/nope'), 404, 'not-found');
    expect(await dbState(server.db)).toEqual(before);
  });

  it('GET or DELETE with an invalid name -> 400 naming service, nothing written', async () => {
    const before = await dbState(server.db);
    expectProblem(await server.admin('GET', '/services/Bad_Name'), 400, 'invalid-request', ['service']);
    expectProblem(await server.admin('DELETE', '/services/Bad_Name'), 400, 'invalid-request', ['service']);
    expect(await dbState(server.db)).toEqual(before);
  });

  it('bad audit query parameters -> 400 naming them', async () => {
    expectProblem(await server.admin('GET', '/audit?limit=0'), 400, 'invalid-request', ['query.limit']);
    expectProblem(await server.admin('GET', '/audit?limit=abc'), 400, 'invalid-request', ['query.limit']);
    expectProblem(await server.admin('GET', '/audit?limit=1001'), 400, 'invalid-request', ['query.limit']);
    expectProblem(await server.admin('GET', '/audit?actor=admin'), 400, 'invalid-request', ['query.actor']);
  });

  it.each([
    ['GET', '/_waymark/nope'],
    ['GET', '/_waymark/api/v1/nope'],
    ['PUT', '/_waymark/api/v2/services/shop'],
    ['POST', '/_waymark/api/v1/services/shop'],
    ['GET', '/_waymark/health'],
  ])('%s %s (unknown Waymark path) -> 404 problem, not proxied', async (method, path) => {
    const before = await dbState(server.db);
    // Host of a configured service: an unknown /_waymark path must still not reach the proxy.
    const res = await send(`${server.url}${path}`, {
      method,
      host: 'shop.example.com',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expectProblem(res, 404, 'not-found');
    expect(res.headers['x-waymark-cluster']).toBeUndefined();
    expect(await dbState(server.db)).toEqual(before);
  });
});
