import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { docs, HEADER_ROUTING_VS, REVIEWS_DR, reviewsDr, reviewsVs } from '../istio/fixtures.js';
import { dbState, expectProblem, type DbState } from './api-support.js';

const READ_TOKEN = 'read-token-0123456789abcdef';
const IMPORT = '/import/istio';

/** Bookinfo's reviews with outlier detection and failover from us-east1 to eu-west1. */
const REVIEWS_WITH_POLICY = docs(
  reviewsDr(`outlierDetection:
  consecutive5xxErrors: 7
  baseEjectionTime: 15s
  maxEjectionPercent: 30
loadBalancer:
  localityLbSetting:
    failover:
    - from: us-east1
      to: eu-west1`),
  HEADER_ROUTING_VS,
);

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer({ WAYMARK_READ_TOKENS: `viewer:${READ_TOKEN}` });
  expect((await server.admin('PUT', '/services/reviews', serviceBody(['reviews.example.com']))).status).toBe(201);
  const v1 = clusterBody('us-east1', 'https://ue1.reviews.internal', { labels: { version: 'v1' } });
  const v2 = clusterBody('eu-west1', 'https://ew1.reviews.internal', { labels: { version: 'v2' } });
  expect((await server.admin('PUT', '/services/reviews/clusters/ue1', v1)).status).toBe(201);
  expect((await server.admin('PUT', '/services/reviews/clusters/ew1', v2)).status).toBe(201);
});

afterEach(async () => {
  await server.close();
});

interface State extends DbState {
  routes: number;
}

/** What "nothing written" compares: the admin tables, the revision and the routes. */
async function state(): Promise<State> {
  const routes = Number((await server.db.execute('select count(*) as n from routes')).rows[0]?.n);
  return { ...(await dbState(server.db)), routes };
}

async function listedRoutes(): Promise<{ name: string; order: number; match: unknown; destinations: unknown }[]> {
  const res = await server.admin('GET', '/services/reviews/routes');
  expect(res.status, res.body).toBe(200);
  return res.json.routes;
}

describe('istio import: happy', () => {
  it('imports header routing, outlier detection and failover; GET routes shows the routes in order', async () => {
    const res = await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY);
    expect(res.status, res.body).toBe(200);
    expect(res.json.dryRun).toBe(false);
    expect(res.json.services).toHaveLength(1);
    expect(res.json.services[0]).toMatchObject({
      name: 'reviews',
      routes: [
        {
          service: 'reviews',
          name: 'reviews-0',
          order: 0,
          action: 'create',
          source: 'VirtualService reviews: http[0]',
        },
        {
          service: 'reviews',
          name: 'reviews-1',
          order: 10,
          action: 'create',
          source: 'VirtualService reviews: http[1]',
        },
      ],
      policy: { outlierDetection: { consecutiveFailures: 7, baseEjectionMs: 15_000, maxEjectionPercent: 30 } },
      failover: [{ from: 'us-east1', to: ['eu-west1'] }],
    });

    const routes = await listedRoutes();
    expect(routes.map((r) => [r.name, r.order])).toEqual([
      ['reviews-0', 0],
      ['reviews-1', 10],
    ]);
    expect(routes[0]).toMatchObject({
      match: { headers: { 'end-user': { exact: 'jason' } } },
      destinations: [{ subset: 'v2', weight: 100 }],
    });
    expect(routes[1]).toMatchObject({ match: {}, destinations: [{ subset: 'v1', weight: 100 }] });

    const svc = await server.admin('GET', '/services/reviews');
    expect(svc.json).toMatchObject({
      hosts: ['reviews.example.com'],
      failover: [{ from: 'us-east1', to: ['eu-west1'] }],
      policy: {
        outlierDetection: {
          consecutiveFailures: 7,
          intervalMs: 10_000,
          baseEjectionMs: 15_000,
          maxEjectionPercent: 30,
        },
      },
      subsets: { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } },
    });
  });

  it("writes one batch (one revision) with one audit entry per object, by the token's owner", async () => {
    const before = await state();
    const res = await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY);
    expect(res.status, res.body).toBe(200);
    const after = await state();
    expect(after).toEqual({ ...before, revision: before.revision + 1, audit_log: before.audit_log + 3, routes: 2 });

    const audit = await server.admin('GET', '/audit?target=services/reviews&limit=3');
    const entries = audit.json.entries as {
      action: string;
      target: string;
      actor: string;
      requestId: string;
      after: unknown;
    }[];
    expect(entries.map((e) => [e.action, e.target]).sort()).toEqual([
      ['route.create', 'services/reviews/routes/reviews-0'],
      ['route.create', 'services/reviews/routes/reviews-1'],
      ['service.update', 'services/reviews'],
    ]);
    for (const e of entries) {
      expect(e.actor).toBe('admin');
      expect(e.requestId).toBe(res.headers['x-request-id']);
    }
  });

  it('importing the same file again changes nothing: no write, no revision bump, no audit entry', async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY)).status).toBe(200);
    const before = await state();
    const stored = (await server.admin('GET', '/services/reviews')).json;
    const res = await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY);
    expect(res.status, res.body).toBe(200);
    expect(res.json.services[0]).toMatchObject({ policy: null, failover: null, subsets: null });
    expect(res.json.services[0].routes.map((r: { action: string }) => r.action)).toEqual(['unchanged', 'unchanged']);
    expect(await state()).toEqual(before);
    expect((await server.admin('GET', '/services/reviews')).json).toEqual(stored);
  });

  it('importing a changed file updates only what changed, audited as updates', async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY)).status).toBe(200);
    const before = await state();
    const res = await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY.replace('exact: jason', 'exact: kim'));
    expect(res.status, res.body).toBe(200);
    expect(res.json.services[0].routes.map((r: { action: string }) => r.action)).toEqual(['update', 'unchanged']);
    expect(await state()).toEqual({ ...before, revision: before.revision + 1, audit_log: before.audit_log + 1 });
    const audit = await server.admin('GET', '/audit?target=services/reviews&limit=1');
    expect(audit.json.entries.map((e: { action: string; target: string }) => [e.action, e.target])).toEqual([
      ['route.update', 'services/reviews/routes/reviews-0'],
    ]);
  });

  it('?dryRun=true answers what would be written and writes nothing', async () => {
    const before = await state();
    const res = await server.admin('POST', `${IMPORT}?dryRun=true`, REVIEWS_WITH_POLICY);
    expect(res.status, res.body).toBe(200);
    expect(res.json.dryRun).toBe(true);
    expect(res.json.services[0].routes.map((r: { name: string }) => r.name)).toEqual(['reviews-0', 'reviews-1']);
    expect(res.json.services[0].failover).toEqual([{ from: 'us-east1', to: ['eu-west1'] }]);
    expect(await state()).toEqual(before);
    expect(await listedRoutes()).toEqual([]);
  });

  it("keeps the service's other policy fields and failover rules (outlier fields the rule leaves out take Istio's defaults), and says which routes it leaves alone", async () => {
    const service = {
      ...serviceBody(['reviews.example.com'], [{ from: 'eu-west1', to: ['us-east1'] }]),
      policy: { failClosed: true, outlierDetection: { consecutiveFailures: 3 } },
    };
    expect((await server.admin('PUT', '/services/reviews', service)).status).toBe(200);
    const manual = { order: 5, destinations: [{ subset: { version: 'v1' }, weight: 100 }] };
    expect((await server.admin('PUT', '/services/reviews/routes/manual', manual)).status).toBe(201);

    const res = await server.admin(
      'POST',
      IMPORT,
      docs(
        reviewsDr(
          'outlierDetection:\n  baseEjectionTime: 1m\nloadBalancer:\n  localityLbSetting:\n    failover:\n    - from: us-east1\n      to: eu-west1',
        ),
        HEADER_ROUTING_VS,
      ),
    );
    expect(res.status, res.body).toBe(200);
    expect(res.json.warnings).toContain(
      'service "reviews": routes not in this import are kept as they are: manual (order 5)',
    );
    const svc = await server.admin('GET', '/services/reviews');
    expect(svc.json.policy).toEqual({
      failClosed: true,
      outlierDetection: { consecutiveFailures: 5, intervalMs: 10_000, baseEjectionMs: 60_000, maxEjectionPercent: 10 },
    });
    expect(res.json.warnings).toContainEqual(
      expect.stringContaining(
        "leaves consecutive5xxErrors (5), interval (10s), maxEjectionPercent (10) to Istio's defaults",
      ),
    );
    expect(svc.json.failover).toEqual([
      { from: 'eu-west1', to: ['us-east1'] },
      { from: 'us-east1', to: ['eu-west1'] },
    ]);
    expect((await listedRoutes()).map((r) => r.name)).toEqual(['reviews-0', 'manual', 'reviews-1']);
  });

  it('warns about subsets that match no cluster and passes on what Waymark cannot honour', async () => {
    const yaml = docs(
      REVIEWS_DR,
      reviewsVs('rewrite:\n  uri: /v3\nroute:\n- destination:\n    host: reviews\n    subset: v3'),
    );
    const res = await server.admin('POST', IMPORT, yaml);
    expect(res.status, res.body).toBe(200);
    expect(res.json.warnings).toEqual([
      'VirtualService reviews: http[0].rewrite is not supported: Waymark forwards the path and authority unchanged',
      'service "reviews": route reviews-0: destinations.0.subset "v3" ({"version":"v3"}) matches no cluster yet',
    ]);
  });

  it("the connection pool limit becomes the service's policy.maxConcurrent; cookie affinity lands on every route", async () => {
    const yaml = docs(
      reviewsDr(
        'connectionPool:\n  http:\n    http2MaxRequests: 100\nloadBalancer:\n  consistentHash:\n    httpCookie:\n      name: user',
      ),
      HEADER_ROUTING_VS,
    );
    const res = await server.admin('POST', IMPORT, yaml);
    expect(res.status, res.body).toBe(200);
    for (const route of await listedRoutes()) {
      expect(route).toMatchObject({ affinity: { cookie: 'user' } });
      expect(route).not.toHaveProperty('maxConcurrent');
    }
    expect((await server.admin('GET', '/services/reviews')).json.policy).toMatchObject({ maxConcurrent: 100 });
    expect(res.json.warnings).toContainEqual(expect.stringContaining('per cluster per Waymark instance'));
  });

  it('takes YAML sent as application/yaml, several documents and v1alpha3', async () => {
    const yaml = docs(REVIEWS_DR.replace('v1beta1', 'v1alpha3'), HEADER_ROUTING_VS.replace('v1beta1', 'v1alpha3'));
    const res = await send(`${server.url}/_waymark/api/v1${IMPORT}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/yaml' },
      body: yaml,
    });
    expect(res.status, res.body).toBe(200);
    expect((await listedRoutes()).map((r) => r.name)).toEqual(['reviews-0', 'reviews-1']);
  });
});

describe('istio import: one file at a time, as kubectl apply takes them', () => {
  const SUBSETS = { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } };

  it('a DestinationRule alone is kept: its subsets on the service (GET shows them), audited, with no warning', async () => {
    const before = await state();
    const res = await server.admin('POST', IMPORT, REVIEWS_DR);
    expect(res.status, res.body).toBe(200);
    expect(res.json).toEqual({
      dryRun: false,
      services: [{ name: 'reviews', routes: [], policy: null, failover: null, subsets: SUBSETS }],
      warnings: [],
    });
    expect((await server.admin('GET', '/services/reviews')).json.subsets).toEqual(SUBSETS);
    expect(await state()).toEqual({ ...before, revision: before.revision + 1, audit_log: before.audit_log + 1 });
    const audit = await server.admin('GET', '/audit?target=services/reviews&limit=1');
    expect(audit.json.entries[0]).toMatchObject({ action: 'service.update', after: { subsets: SUBSETS } });
  });

  it("a VirtualService imported later names the stored subsets; routes follow the service's labels", async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_DR)).status).toBe(200);
    const res = await server.admin('POST', IMPORT, HEADER_ROUTING_VS);
    expect(res.status, res.body).toBe(200);
    expect(res.json.warnings).toEqual([]);
    expect((await listedRoutes()).map((r) => r.destinations)).toEqual([
      [{ subset: 'v2', weight: 100 }],
      [{ subset: 'v1', weight: 100 }],
    ]);
    const route = await server.admin('GET', '/services/reviews/routes/reviews-0');
    expect(route.json.warnings).toEqual([]);
  });

  it('a later DestinationRule keeps subsets it does not name, and says so', async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_DR)).status).toBe(200);
    const onlyV1 = REVIEWS_DR.replace(
      / {2}- name: v2\n {4}labels:\n {6}version: v2\n {2}- name: v3\n {4}labels:\n {6}version: v3\n/,
      '',
    ).replace('version: v1', 'version: v1-new');
    const res = await server.admin('POST', IMPORT, onlyV1);
    expect(res.status, res.body).toBe(200);
    expect(res.json.warnings).toEqual([
      'service "reviews": subsets not in this import\'s DestinationRule are kept as they are: v2, v3',
    ]);
    expect((await server.admin('GET', '/services/reviews')).json.subsets).toEqual({
      ...SUBSETS,
      v1: { version: 'v1-new' },
    });
  });

  it('the same DestinationRule twice changes nothing the second time', async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_DR)).status).toBe(200);
    const before = await state();
    const res = await server.admin('POST', IMPORT, REVIEWS_DR);
    expect(res.status, res.body).toBe(200);
    expect(res.json.services).toEqual([{ name: 'reviews', routes: [], policy: null, failover: null, subsets: null }]);
    expect(await state()).toEqual(before);
  });

  it('a VirtualService naming a subset neither stored nor in its file -> 400 naming it and what was expected, nothing written', async () => {
    expect((await server.admin('POST', IMPORT, REVIEWS_DR)).status).toBe(200);
    const before = await state();
    const res = await server.admin('POST', IMPORT, docs(HEADER_ROUTING_VS.replace('subset: v2', 'subset: v4')));
    expectProblem(res, 400, 'invalid-request', ['VirtualService reviews: http[0].route[0].destination.subset']);
    expect(res.json.errors[0].message).toBe(
      'subset "v4" is not defined: expected one of "v1", "v2", "v3" (stored on service "reviews")',
    );
    expect(await state()).toEqual(before);
  });

  it('a gateway-bound VirtualService and a Gateway are skipped with a warning each while the rest of the file imports', async () => {
    const gateway =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: reviews-gateway\nspec:\n  selector:\n    istio: ingressgateway\n';
    const ingress = HEADER_ROUTING_VS.replace('name: reviews\n', 'name: reviews-ingress\n').replace(
      '  hosts:\n  - reviews.prod.svc.cluster.local\n',
      '  hosts: ["*"]\n  gateways: [reviews-gateway]\n',
    );
    const res = await server.admin('POST', IMPORT, docs(gateway, ingress, REVIEWS_DR, HEADER_ROUTING_VS));
    expect(res.status, res.body).toBe(200);
    expect(res.json.warnings).toEqual([
      'document 1 (networking.istio.io/v1 Gateway reviews-gateway) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
      expect.stringMatching(
        /^VirtualService reviews-ingress: gateways \("reviews-gateway"\) bind it to ingress gateways, not to the mesh: it is skipped/,
      ),
    ]);
    expect((await listedRoutes()).map((r) => r.name)).toEqual(['reviews-0', 'reviews-1']);
  });

  it('a file with nothing Waymark imports (a Gateway) answers 200 with its warning and writes nothing', async () => {
    const before = await state();
    const res = await server.admin(
      'POST',
      IMPORT,
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: g\nspec: {}\n',
    );
    expect(res.status, res.body).toBe(200);
    expect(res.json).toEqual({
      dryRun: false,
      services: [],
      warnings: [
        'document 1 (networking.istio.io/v1 Gateway g) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
      ],
    });
    expect(await state()).toEqual(before);
  });
});

describe('istio import: errors change nothing', () => {
  const cases: {
    name: string;
    path?: string;
    body: string;
    status: number;
    code: string;
    fields?: string[];
    detail?: RegExp;
  }[] = [
    {
      name: 'invalid YAML -> 400 naming (body)',
      body: 'apiVersion: networking.istio.io/v1\nkind: [VirtualService\n',
      status: 400,
      code: 'invalid-request',
      fields: ['(body)'],
    },
    {
      name: 'an empty body -> 400 naming (body)',
      body: '  \n',
      status: 400,
      code: 'invalid-request',
      fields: ['(body)'],
    },
    {
      name: 'JSON that is no Istio object -> 400 naming (body)',
      body: '[1, 2, 3]',
      status: 400,
      code: 'invalid-request',
      fields: ['(body)'],
    },
    {
      name: 'an unknown subset -> 400 naming the field',
      body: docs(REVIEWS_DR, reviewsVs('route:\n- destination:\n    host: reviews\n    subset: v9')),
      status: 400,
      code: 'invalid-request',
      fields: ['VirtualService reviews: http[0].route[0].destination.subset'],
    },
    {
      name: 'a route Waymark refuses -> 400 naming route and field',
      body: docs(REVIEWS_DR, reviewsVs('route:\n- destination:\n    host: reviews\nretries:\n  attempts: 10')),
      status: 400,
      code: 'invalid-request',
      fields: ['reviews-0.retries.attempts'],
    },
    {
      name: 'a service that does not exist -> 404 naming it, even with another that does',
      body: docs(
        REVIEWS_WITH_POLICY,
        'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ratings\nspec:\n  hosts: [ratings]\n  http:\n  - route:\n    - destination: {host: ratings}\n',
      ),
      status: 404,
      code: 'not-found',
      detail: /service "ratings" does not exist/,
    },
    {
      name: 'a bad dryRun -> 400 naming dryRun',
      path: `${IMPORT}?dryRun=maybe`,
      body: REVIEWS_WITH_POLICY,
      status: 400,
      code: 'invalid-request',
      fields: ['dryRun'],
    },
    {
      name: 'a body over the limit -> 413',
      body: `# ${'x'.repeat(1_000_001)}\n${REVIEWS_WITH_POLICY}`,
      status: 413,
      code: 'payload-too-large',
    },
  ];

  it.each(cases)('$name', async ({ path, body, status, code, fields, detail }) => {
    const before = await state();
    const res = await server.admin('POST', path ?? IMPORT, body);
    expectProblem(res, status, code, fields);
    if (detail) expect(res.json.detail).toMatch(detail);
    expect(await state()).toEqual(before);
  });

  it("invalid YAML says where, with the parser's line", async () => {
    const res = await server.admin('POST', IMPORT, 'apiVersion: networking.istio.io/v1\nkind: [VirtualService\n');
    expect(res.json.errors[0].message).toMatch(/is not valid YAML: .* at line \d+, column \d+/);
  });
});

describe('istio import: security', () => {
  it.each([
    { name: 'no token -> 401', token: null, status: 401, code: 'unauthorized' },
    { name: 'a wrong token -> 401', token: 'not-a-token-0123456789abcdef', status: 401, code: 'unauthorized' },
    { name: 'a read token -> 403 (the import needs write)', token: READ_TOKEN, status: 403, code: 'forbidden' },
  ])('$name, and nothing is written', async ({ token, status, code }) => {
    const before = await state();
    expectProblem(await server.admin('POST', IMPORT, REVIEWS_WITH_POLICY, token), status, code);
    expectProblem(await server.admin('POST', `${IMPORT}?dryRun=true`, REVIEWS_WITH_POLICY, token), status, code);
    expect(await state()).toEqual(before);
  });
});
