import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { dbState, expectProblem } from './api-support.js';

const DEFAULT_HEALTH_CHECK = {
  path: '/',
  expectedStatuses: ['2xx'],
  timeoutMs: 2000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
  expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']))).status).toBe(201);
});

afterEach(async () => {
  await server.close();
});

const minimal = { region: 'eu-west1', origin: 'https://eu.shop.internal', latitude: 50.4, longitude: 3.8 };

describe('clusters: happy', () => {
  it('PUT creates (201) with defaults for weight, labels and health check, then the same PUT updates (200)', async () => {
    const created = await server.admin('PUT', '/services/shop/clusters/eu', minimal);
    expect(created.status).toBe(201);
    const expected = {
      service: 'shop',
      name: 'eu',
      ...minimal,
      zone: null,
      originHost: null,
      weight: 100,
      labels: {},
      healthCheck: DEFAULT_HEALTH_CHECK,
    };
    expect(created.json).toEqual(expected);

    const again = await server.admin('PUT', '/services/shop/clusters/eu', minimal);
    expect(again.status).toBe(200);
    expect(again.json).toEqual(expected);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json).toEqual(expected);
    expect(await dbState(server.db)).toEqual({ services: 1, service_hosts: 1, clusters: 1, audit_log: 3, revision: 3 });
  });

  it('PUT replaces every field of an existing cluster', async () => {
    await server.admin(
      'PUT',
      '/services/shop/clusters/eu',
      clusterBody('eu-west1', 'https://eu.shop.internal/app', {
        originHost: 'shop.example.com',
        weight: 7,
        labels: { version: 'v1', tier: 'gold' },
      }),
    );
    const res = await server.admin('PUT', '/services/shop/clusters/eu', {
      ...minimal,
      origin: 'http://eu2.shop.internal:8080',
    });
    expect(res.status).toBe(200);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json).toEqual({
      service: 'shop',
      name: 'eu',
      ...minimal,
      origin: 'http://eu2.shop.internal:8080',
      zone: null,
      originHost: null,
      weight: 100,
      labels: {},
      healthCheck: DEFAULT_HEALTH_CHECK,
    });
  });

  it.each([
    ['https://eu.shop.internal/', 'https://eu.shop.internal'],
    ['HTTPS://EU.Shop.Internal', 'https://eu.shop.internal'],
    ['https://eu.shop.internal:443', 'https://eu.shop.internal'],
    ['http://127.0.0.1:8080/', 'http://127.0.0.1:8080'],
    ['https://api.internal/shop/', 'https://api.internal/shop'],
    ['https://api.internal/shop', 'https://api.internal/shop'],
    ['HTTPS://API.Internal:443/shop/v1//', 'https://api.internal/shop/v1'],
    ['http://api.internal:8080/a/../shop/', 'http://api.internal:8080/shop'],
    ['https://x/', 'https://x'],
  ])('origin %s is stored as %s', async (origin, stored) => {
    const res = await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, origin });
    expect(res.status).toBe(201);
    expect(res.json.origin).toBe(stored);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.origin).toBe(stored);
  });

  it.each([8080, 6664, 6670, 5062, 10081])(
    'an origin on port %i (not a bad port of the Fetch standard) is accepted',
    async (port) => {
      const res = await server.admin('PUT', '/services/shop/clusters/eu', {
        ...minimal,
        origin: `http://eu.shop.internal:${port}/shop/`,
      });
      expect(res.status, res.body).toBe(201);
      expect(res.json.origin).toBe(`http://eu.shop.internal:${port}/shop`);
    },
  );

  it('originHost (the Host the origin sees) is stored lowercase and returned; a PUT without it clears it', async () => {
    const res = await server.admin('PUT', '/services/shop/clusters/eu', {
      ...minimal,
      originHost: 'Shop.Example.com:8443',
    });
    expect(res.status, res.body).toBe(201);
    expect(res.json.originHost).toBe('shop.example.com:8443');
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.originHost).toBe('shop.example.com:8443');
    expect((await server.admin('GET', '/services/shop/clusters')).json.clusters[0].originHost).toBe(
      'shop.example.com:8443',
    );

    expect(
      (await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, originHost: 'shop.example.com' })).json
        .originHost,
    ).toBe('shop.example.com');
    expect((await server.admin('PUT', '/services/shop/clusters/eu', minimal)).json.originHost).toBeNull();
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.originHost).toBeNull();
  });

  it('zone (Istio zone or zone/subzone) round-trips; null or absent clears it', async () => {
    const put = await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, zone: 'eu-west1-b' });
    expect(put.status).toBe(201);
    expect(put.json.zone).toBe('eu-west1-b');
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.zone).toBe('eu-west1-b');
    await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, zone: 'zone1/sub2' });
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.zone).toBe('zone1/sub2');
    expect((await server.admin('GET', '/services/shop/clusters')).json.clusters[0].zone).toBe('zone1/sub2');
    await server.admin('PUT', '/services/shop/clusters/eu', minimal);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.zone).toBeNull();
  });

  it('accepts the edges of the ranges: latitude ±90, longitude ±180, weight 0 and 10000', async () => {
    const edges = [
      { name: 'n', latitude: 90, longitude: 180, weight: 0 },
      { name: 's', latitude: -90, longitude: -180, weight: 10_000 },
    ];
    for (const e of edges) {
      const res = await server.admin('PUT', `/services/shop/clusters/${e.name}`, {
        ...minimal,
        latitude: e.latitude,
        longitude: e.longitude,
        weight: e.weight,
      });
      expect(res.status, res.body).toBe(201);
      expect(res.json).toMatchObject({ latitude: e.latitude, longitude: e.longitude, weight: e.weight });
    }
  });

  it('GET lists the clusters of a service by name; GET one returns it', async () => {
    await server.admin('PUT', '/services/shop/clusters/us', clusterBody('us-east1', 'https://us.shop.internal'));
    await server.admin('PUT', '/services/shop/clusters/ap', clusterBody('ap-southeast1', 'https://ap.shop.internal'));
    await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal'));
    const list = await server.admin('GET', '/services/shop/clusters');
    expect(list.status).toBe(200);
    expect(list.json.clusters.map((c: { name: string; region: string }) => `${c.name}:${c.region}`)).toEqual([
      'ap:ap-southeast1',
      'eu:eu-west1',
      'us:us-east1',
    ]);

    const one = await server.admin('GET', '/services/shop/clusters/us');
    expect(one.status).toBe(200);
    expect(one.json).toEqual({ service: 'shop', name: 'us', ...clusterBody('us-east1', 'https://us.shop.internal') });
  });

  it('DELETE answers 204, then GET is 404; the service and its other clusters stay', async () => {
    await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal'));
    await server.admin('PUT', '/services/shop/clusters/us', clusterBody('us-east1', 'https://us.shop.internal'));
    const deleted = await server.admin('DELETE', '/services/shop/clusters/eu');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBe('');
    expectProblem(await server.admin('GET', '/services/shop/clusters/eu'), 404, 'not-found');
    expect((await server.admin('GET', '/services/shop')).json.clusters.map((c: { name: string }) => c.name)).toEqual([
      'us',
    ]);
  });

  it('every cluster write is audited under services/shop/clusters/<name> with actor, before and after', async () => {
    const v1 = clusterBody('eu-west1', 'https://eu.shop.internal');
    const v2 = clusterBody('eu-west1', 'https://eu.shop.internal', { weight: 25 });
    await server.admin('PUT', '/services/shop/clusters/eu', v1);
    await server.admin('PUT', '/services/shop/clusters/eu', v2);
    await server.admin('DELETE', '/services/shop/clusters/eu');

    const audit = await server.admin('GET', '/audit?target=services/shop/clusters/eu');
    expect(audit.status).toBe(200);
    const entries = audit.json.entries as Record<string, unknown>[];
    const full = (body: object) => ({ service: 'shop', name: 'eu', ...body });
    expect(
      entries.map((e) => ({ action: e.action, actor: e.actor, target: e.target, before: e.before, after: e.after })),
    ).toEqual([
      { action: 'cluster.delete', actor: 'admin', target: 'services/shop/clusters/eu', before: full(v2), after: null },
      {
        action: 'cluster.update',
        actor: 'admin',
        target: 'services/shop/clusters/eu',
        before: full(v1),
        after: full(v2),
      },
      { action: 'cluster.create', actor: 'admin', target: 'services/shop/clusters/eu', before: null, after: full(v1) },
    ]);
    // The service's own audit includes its clusters' writes.
    const service = await server.admin('GET', '/audit?target=services/shop');
    expect(service.json.entries.map((e: { action: string }) => e.action)).toEqual([
      'cluster.delete',
      'cluster.update',
      'cluster.create',
      'service.create',
    ]);
  });
});

describe('clusters: errors', () => {
  beforeEach(async () => {
    expect(
      (await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal')))
        .status,
    ).toBe(201);
  });

  const cases: { name: string; body: unknown; fields: string[]; path?: string }[] = [
    {
      name: 'origin with a base path and a query',
      body: { ...minimal, origin: 'https://us.shop.internal/app?x=1' },
      fields: ['origin'],
    },
    {
      name: 'origin with an empty query',
      body: { ...minimal, origin: 'https://us.shop.internal/app?' },
      fields: ['origin'],
    },
    { name: 'origin with a query', body: { ...minimal, origin: 'https://us.shop.internal/?x=1' }, fields: ['origin'] },
    {
      name: 'origin with a fragment',
      body: { ...minimal, origin: 'https://us.shop.internal/#top' },
      fields: ['origin'],
    },
    {
      name: 'origin with credentials',
      body: { ...minimal, origin: 'https://user:secret@us.shop.internal' },
      fields: ['origin'],
    },
    {
      name: 'origin with a user only',
      body: { ...minimal, origin: 'https://user@us.shop.internal' },
      fields: ['origin'],
    },
    { name: 'ftp origin', body: { ...minimal, origin: 'ftp://us.shop.internal' }, fields: ['origin'] },
    { name: 'origin without a scheme', body: { ...minimal, origin: 'us.shop.internal' }, fields: ['origin'] },
    {
      name: 'origin with a base path and credentials',
      body: { ...minimal, origin: 'https://user:secret@us.shop.internal/app' },
      fields: ['origin'],
    },
    { name: 'origin not a string', body: { ...minimal, origin: 42 }, fields: ['origin'] },
    { name: 'missing origin', body: { region: 'eu-west1', latitude: 1, longitude: 1 }, fields: ['origin'] },
    { name: 'latitude above 90', body: { ...minimal, latitude: 90.01 }, fields: ['latitude'] },
    { name: 'latitude below -90', body: { ...minimal, latitude: -91 }, fields: ['latitude'] },
    { name: 'latitude as a string', body: { ...minimal, latitude: '50.4' }, fields: ['latitude'] },
    { name: 'longitude above 180', body: { ...minimal, longitude: 180.5 }, fields: ['longitude'] },
    { name: 'longitude below -180', body: { ...minimal, longitude: -181 }, fields: ['longitude'] },
    { name: 'missing region', body: { origin: minimal.origin, latitude: 1, longitude: 1 }, fields: ['region'] },
    { name: 'bad region', body: { ...minimal, region: 'EU West' }, fields: ['region'] },
    { name: 'negative weight', body: { ...minimal, weight: -1 }, fields: ['weight'] },
    { name: 'fractional weight', body: { ...minimal, weight: 1.5 }, fields: ['weight'] },
    { name: 'weight above 10000', body: { ...minimal, weight: 10_001 }, fields: ['weight'] },
    { name: 'bad label key', body: { ...minimal, labels: { 'bad key': 'x' } }, fields: ['labels.bad key'] },
    { name: 'label value not a string', body: { ...minimal, labels: { version: 2 } }, fields: ['labels.version'] },
    {
      name: 'health check path without /',
      body: { ...minimal, healthCheck: { path: 'health' } },
      fields: ['healthCheck.path'],
    },
    {
      name: 'health check with an unknown key',
      body: { ...minimal, healthCheck: { path: '/', interval: 5 } },
      fields: ['healthCheck.interval'],
    },
    { name: 'unknown key', body: { ...minimal, extra: 'x' }, fields: ['extra'] },
    { name: 'invalid JSON', body: '{"region":', fields: ['(body)'] },
    {
      name: 'several bad fields',
      body: { ...minimal, origin: 'ftp://x', latitude: 100, extra: 1 },
      fields: ['origin', 'latitude', 'extra'],
    },
    { name: 'bad cluster name', path: '/services/shop/clusters/EU_1', body: minimal, fields: ['cluster'] },
    { name: 'bad service name', path: '/services/Shop/clusters/us', body: minimal, fields: ['service'] },
  ];

  it.each(cases)('PUT with $name -> 400 naming $fields, nothing written', async ({ path, body, fields }) => {
    const before = await dbState(server.db);
    expectProblem(
      await server.admin('PUT', path ?? '/services/shop/clusters/us', body),
      400,
      'invalid-request',
      fields,
    );
    expect(await dbState(server.db)).toEqual(before);
  });

  it.each([
    ['with a scheme', 'https://shop.example.com'],
    ['with a path', 'shop.example.com/app'],
    ['with port 0', 'shop.example.com:0'],
    ['with a port above 65535', 'shop.example.com:65536'],
    ['with an empty port', 'shop.example.com:'],
    ['with only a port', ':8080'],
    ['with two ports', 'shop.example.com:80:81'],
    ['with an IPv6 literal', '[::1]:8080'],
    ['empty', ''],
    ['not a string', 8080],
  ])('PUT with originHost %s -> 400 naming originHost as a hostname, nothing written', async (_, originHost) => {
    const before = await dbState(server.db);
    const res = await server.admin('PUT', '/services/shop/clusters/us', { ...minimal, originHost });
    expectProblem(res, 400, 'invalid-request', ['originHost']);
    if (typeof originHost === 'string')
      expect(res.json.errors[0].message).toContain('must be a hostname with an optional port');
    expect(await dbState(server.db)).toEqual(before);
  });

  it.each([6666, 6000, 5060, 1, 25, 10080, 0])(
    'PUT with an origin on bad port %i -> 400 naming origin and the port, nothing written',
    async (port) => {
      const before = await dbState(server.db);
      const res = await server.admin('PUT', '/services/shop/clusters/us', {
        ...minimal,
        origin: `http://us.shop.internal:${port}/shop`,
      });
      expectProblem(res, 400, 'invalid-request', ['origin']);
      expect(res.json.errors[0].message).toContain(`port ${port} is blocked by fetch`);
      expect(await dbState(server.db)).toEqual(before);
    },
  );

  it.each([
    ['uppercase', 'Zone-1'],
    ['two slashes', 'zone1/sub1/x'],
    ['an empty subzone', 'zone1/'],
    ['a leading slash', '/zone1'],
    ['spaces', 'zone 1'],
    ['empty', ''],
    ['not a string', 7],
  ])('PUT with a zone %s -> 400 naming zone, nothing written', async (_, zone) => {
    const before = await dbState(server.db);
    const res = await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, zone });
    expectProblem(res, 400, 'invalid-request', ['zone']);
    expect(await dbState(server.db)).toEqual(before);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.zone).toBeNull();
  });

  it('a bad update leaves the existing cluster as it was', async () => {
    const before = await dbState(server.db);
    expectProblem(
      await server.admin('PUT', '/services/shop/clusters/eu', { ...minimal, weight: -5 }),
      400,
      'invalid-request',
      ['weight'],
    );
    expect(await dbState(server.db)).toEqual(before);
    expect((await server.admin('GET', '/services/shop/clusters/eu')).json.weight).toBe(100);
  });

  it('PUT for a missing service -> 404 naming it, nothing written', async () => {
    const before = await dbState(server.db);
    const res = await server.admin('PUT', '/services/nope/clusters/eu', minimal);
    expectProblem(res, 404, 'not-found');
    expect(res.json.detail).toBe('service "nope" does not exist');
    expect(await dbState(server.db)).toEqual(before);
  });

  it.each([
    ['GET', '/services/nope/clusters'],
    ['GET', '/services/nope/clusters/eu'],
    ['GET', '/services/shop/clusters/nope'],
    ['DELETE', '/services/shop/clusters/nope'],
    ['DELETE', '/services/nope/clusters/eu'],
  ])('%s %s -> 404, nothing written', async (method, path) => {
    const before = await dbState(server.db);
    expectProblem(await server.admin(method, path), 404, 'not-found');
    expect(await dbState(server.db)).toEqual(before);
  });

  it.each([
    ['GET', '/services/shop/clusters/Bad_Name', 'cluster'],
    ['DELETE', '/services/shop/clusters/Bad_Name', 'cluster'],
    ['GET', '/services/Bad_Name/clusters', 'service'],
    ['GET', '/services/Bad_Name/clusters/eu', 'service'],
    ['DELETE', '/services/Bad_Name/clusters/eu', 'service'],
  ])('%s %s -> 400 naming %s, nothing written', async (method, path, field) => {
    const before = await dbState(server.db);
    expectProblem(await server.admin(method, path), 400, 'invalid-request', [field]);
    expect(await dbState(server.db)).toEqual(before);
  });
});
