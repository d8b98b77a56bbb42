import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FieldError } from '../../src/problem.js';
import { planIstioImport, type IstioImportPlan, type PlannedService } from '../../src/istio/import.js';
import { durationMs } from '../../src/istio/reader.js';
import { policySchema } from '../../src/spec/service.js';
import type { RouteSpec } from '../../src/routing/types.js';
import { dbState, expectProblem } from '../api/api-support.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { docs, HEADER_ROUTING_VS, REVIEWS_DR, reviewsDr, reviewsVs } from './fixtures.js';

function plan(yaml: string): IstioImportPlan {
  const result = planIstioImport(yaml);
  if (!result.ok) throw new Error(`expected a plan, got errors: ${JSON.stringify(result.errors)}`);
  return result.plan;
}

function service(yaml: string, name = 'reviews'): PlannedService {
  const found = plan(yaml).services.find((s) => s.name === name);
  if (!found) throw new Error(`no service ${name} in the plan`);
  return found;
}

function routes(yaml: string, name = 'reviews'): RouteSpec[] {
  return service(yaml, name).routes.map((r) => r.route);
}

function errors(yaml: string): FieldError[] {
  const result = planIstioImport(yaml);
  if (result.ok) throw new Error(`expected errors, got a plan: ${JSON.stringify(result.plan)}`);
  return result.errors;
}

/** Routes name the service's subsets; the DestinationRule's labels are kept on the service. */
/** Whether the service policy holds a connection limit of its own (else the import puts it on every route). */
const SERVICE_MAX_CONCURRENT = policySchema.safeParse({ maxConcurrent: 1 }).success;

const V1 = 'v1';
const V2 = 'v2';
const TO_V1 = `route:
- destination:
    host: reviews
    subset: v1`;
/** A route to every cluster: needs no DestinationRule. */
const TO_ALL = `route:
- destination:
    host: reviews`;

describe('planIstioImport: VirtualService features become routes', () => {
  const cases: { name: string; yaml: string; routes: Partial<RouteSpec>[] }[] = [
    {
      name: 'header routing: end-user "jason" goes to the v2 (staging) subset, everyone else to v1',
      yaml: docs(REVIEWS_DR, HEADER_ROUTING_VS),
      routes: [
        {
          name: 'reviews-0',
          order: 0,
          match: { headers: { 'end-user': { exact: 'jason' } } },
          destinations: [{ subset: V2, weight: 100 }],
        },
        { name: 'reviews-1', order: 10, match: {}, destinations: [{ subset: V1, weight: 100 }] },
      ],
    },
    {
      name: "mirror without a percentage mirrors 100% (Istio's default)",
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\nmirror:\n  host: reviews\n  subset: v2`)),
      routes: [
        { name: 'reviews-0', destinations: [{ subset: V1, weight: 100 }], mirror: { subset: V2, percent: 100 } },
      ],
    },
    {
      name: 'mirror with mirrorPercentage.value 10 mirrors 10%',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`${TO_V1}\nmirror:\n  host: reviews\n  subset: v2\nmirrorPercentage:\n  value: 10`),
      ),
      routes: [{ mirror: { subset: V2, percent: 10 } }],
    },
    {
      name: "an empty mirrorPercentage is protobuf's 0: nothing is mirrored",
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\nmirror:\n  host: reviews\n  subset: v2\nmirrorPercentage: {}`)),
      routes: [{ mirror: { subset: V2, percent: 0 } }],
    },
    {
      name: 'the deprecated mirror_percent (v1alpha3) still gives the percentage',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(
          `${TO_V1}\nmirror:\n  host: reviews\n  subset: v2\nmirror_percent: 25`,
          'networking.istio.io/v1alpha3',
        ),
      ),
      routes: [{ mirror: { subset: V2, percent: 25 } }],
    },
    {
      name: 'mirrors[] (newer Istio): the first entry, with its percentage',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(
          `${TO_V1}\nmirrors:\n- destination:\n    host: reviews\n    subset: v2\n  percentage:\n    value: 5.5`,
        ),
      ),
      routes: [{ mirror: { subset: V2, percent: 5.5 } }],
    },
    {
      name: 'delay and abort faults scoped by a header match: 7s at 10%, 503 at 5%',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`match:
- headers:
    end-user:
      exact: jason
fault:
  delay:
    fixedDelay: 7s
    percentage:
      value: 10
  abort:
    httpStatus: 503
    percentage:
      value: 5
${TO_V1}`),
      ),
      routes: [
        {
          match: { headers: { 'end-user': { exact: 'jason' } } },
          fault: { delay: { percent: 10, ms: 7_000 }, abort: { percent: 5, status: 503 } },
        },
      ],
    },
    {
      name: 'fault percentages keep their fractional precision; the deprecated integer percent works too',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(
          `fault:\n  delay:\n    fixedDelay: 500ms\n    percentage:\n      value: 0.1\n  abort:\n    httpStatus: 500\n    percent: 100\n${TO_V1}`,
        ),
      ),
      routes: [{ fault: { delay: { percent: 0.1, ms: 500 }, abort: { percent: 100, status: 500 } } }],
    },
    {
      name: 'retries: attempts 3, perTryTimeout 2s, retryOn "5xx,connect-failure" (Envoy\'s 5xx covers no answer too)',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`${TO_V1}\nretries:\n  attempts: 3\n  perTryTimeout: 2s\n  retryOn: 5xx,connect-failure`),
      ),
      routes: [
        {
          retries: {
            attempts: 3,
            perTryTimeoutMs: 2_000,
            retryOn: ['5xx', 'connect-failure', 'reset', 'timeout'],
            budgetPercent: 20,
            nonIdempotent: false,
          },
        },
      ],
    },
    {
      name: 'retryOn status codes become Waymark status conditions',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`${TO_V1}\nretries:\n  attempts: 2\n  retryOn: "retriable-4xx,503,retriable-status-codes"`),
      ),
      routes: [
        {
          retries: {
            attempts: 2,
            perTryTimeoutMs: 2_000,
            retryOn: ['retriable-4xx', '503'],
            budgetPercent: 20,
            nonIdempotent: false,
          },
        },
      ],
    },
    {
      name: "retries without retryOn take Istio's default (connect-failure and 503)",
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\nretries:\n  attempts: 1`)),
      routes: [
        {
          retries: {
            attempts: 1,
            perTryTimeoutMs: 2_000,
            retryOn: ['connect-failure', '503'],
            budgetPercent: 20,
            nonIdempotent: false,
          },
        },
      ],
    },
    {
      name: 'timeout "10s" becomes timeoutMs 10000',
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\ntimeout: 10s`)),
      routes: [{ timeoutMs: 10_000 }],
    },
    {
      name: 'a weighted 80/20 split between v1 and v2',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`route:
- destination:
    host: reviews
    subset: v1
  weight: 80
- destination:
    host: reviews
    subset: v2
  weight: 20`),
      ),
      routes: [
        {
          match: {},
          destinations: [
            { subset: V1, weight: 80 },
            { subset: V2, weight: 20 },
          ],
        },
      ],
    },
    {
      name: 'uri, method, queryParams and header presence/regex matches',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`match:
- uri:
    prefix: /api/v2
  method:
    exact: GET
  queryParams:
    debug:
      exact: "1"
  headers:
    x-canary: {}
    User-Agent:
      regex: ".*Mobile.*"
${TO_V1}`),
      ),
      routes: [
        {
          match: {
            path: { prefix: '/api/v2' },
            methods: ['GET'],
            query: { debug: { exact: '1' } },
            headers: { 'x-canary': { present: true }, 'user-agent': { regex: '.*Mobile.*' } },
          },
        },
      ],
    },
    {
      name: 'several match blocks (ORed by Istio) become one route each, <name>-m<j>, right after each other',
      yaml: docs(
        REVIEWS_DR,
        `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-route
spec:
  hosts:
  - reviews.prod.svc.cluster.local
  http:
  - name: "reviews-v2-routes"
    match:
    - uri:
        prefix: "/wpcatalog"
    - uri:
        prefix: "/consumercatalog"
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v2
  - name: "reviews-v1-route"
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v1
`,
      ),
      routes: [
        {
          name: 'reviews-v2-routes-m0',
          order: 0,
          match: { path: { prefix: '/wpcatalog' } },
          destinations: [{ subset: V2, weight: 100 }],
        },
        {
          name: 'reviews-v2-routes-m1',
          order: 1,
          match: { path: { prefix: '/consumercatalog' } },
          destinations: [{ subset: V2, weight: 100 }],
        },
        { name: 'reviews-v1-route', order: 10, match: {} },
      ],
    },
    {
      name: 'http names are made Waymark names (lowercase, dashes)',
      yaml: docs(REVIEWS_DR, reviewsVs(`name: Canary_Route.V2\n${TO_V1}`)),
      routes: [{ name: 'canary-route-v2' }],
    },
    {
      name: 'a destination without a subset takes every cluster',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews'),
      routes: [{ destinations: [{ subset: {}, weight: 100 }] }],
    },
  ];

  it.each(cases)('$name', ({ yaml, routes: expected }) => {
    const got = routes(yaml);
    expect(got).toHaveLength(expected.length);
    expected.forEach((route, i) => expect(got[i]).toMatchObject(route));
  });

  it('every route carries the Istio field it came from', () => {
    const sources = service(docs(REVIEWS_DR, HEADER_ROUTING_VS)).routes.map((r) => r.source);
    expect(sources).toEqual(['VirtualService reviews: http[0]', 'VirtualService reviews: http[1]']);
  });
});

describe('planIstioImport: DestinationRule traffic policy', () => {
  it('outlier detection: every field given maps one to one, with no defaults said', () => {
    const p = plan(
      docs(
        reviewsDr(
          'outlierDetection:\n  consecutive5xxErrors: 7\n  interval: 5s\n  baseEjectionTime: 15s\n  maxEjectionTime: 2m\n  maxEjectionPercent: 30\n  minHealthPercent: 0',
        ),
        HEADER_ROUTING_VS,
      ),
    );
    expect(p.services[0]?.policy).toEqual({
      panicThresholdPercent: 0,
      outlierDetection: {
        consecutiveFailures: 7,
        intervalMs: 5_000,
        baseEjectionMs: 15_000,
        maxEjectionMs: 120_000,
        maxEjectionPercent: 30,
      },
    });
    expect(p.warnings).toEqual([]);
  });

  it.each([
    {
      name: "fields left out take Istio's defaults (5 errors, 10s, 30s, 10%)",
      outlier: 'outlierDetection:\n  consecutive5xxErrors: 3\n  minHealthPercent: 40',
      policy: {
        panicThresholdPercent: 40,
        outlierDetection: {
          consecutiveFailures: 3,
          intervalMs: 10_000,
          baseEjectionMs: 30_000,
          maxEjectionPercent: 10,
        },
      },
      left: 'interval \\(10s\\), baseEjectionTime \\(30s\\), maxEjectionPercent \\(10\\)',
    },
    {
      name: "an empty outlierDetection is Istio's defaults throughout",
      outlier: 'outlierDetection:\n  minHealthPercent: 0',
      policy: {
        panicThresholdPercent: 0,
        outlierDetection: {
          consecutiveFailures: 5,
          intervalMs: 10_000,
          baseEjectionMs: 30_000,
          maxEjectionPercent: 10,
        },
      },
      left: 'consecutive5xxErrors \\(5\\), interval \\(10s\\), baseEjectionTime \\(30s\\), maxEjectionPercent \\(10\\)',
    },
  ])('$name, said in a warning', ({ outlier, policy, left }) => {
    const p = plan(docs(reviewsDr(outlier), HEADER_ROUTING_VS));
    expect(p.services[0]?.policy).toEqual(policy);
    expect(p.warnings).toEqual([
      expect.stringMatching(
        new RegExp(
          `^DestinationRule reviews: trafficPolicy.outlierDetection leaves ${left} to Istio's defaults, imported as `,
        ),
      ),
    ]);
    expect(p.warnings[0]).toContain('a service of fewer than 10 clusters ejects none');
  });

  it("the circuit-breaking task's rule: 1 connection + 1 pending request is a limit of 2; interval 1s, 3m ejections of up to 100%", () => {
    const p = plan(
      reviewsDr(`connectionPool:
  tcp:
    maxConnections: 1
  http:
    http1MaxPendingRequests: 1
    maxRequestsPerConnection: 1
outlierDetection:
  consecutiveErrors: 1
  interval: 1s
  baseEjectionTime: 3m
  maxEjectionPercent: 100`),
    );
    const s = p.services[0];
    expect(s?.policy?.outlierDetection).toEqual({
      consecutiveFailures: 5,
      intervalMs: 1_000,
      baseEjectionMs: 180_000,
      maxEjectionPercent: 100,
    });
    const limitWarning = expect.stringContaining('(tcp.maxConnections + http.http1MaxPendingRequests) becomes');
    expect(p.warnings).toEqual(
      expect.arrayContaining([
        limitWarning,
        expect.stringContaining('trafficPolicy.outlierDetection.consecutiveErrors is not supported'),
        "DestinationRule reviews: trafficPolicy.outlierDetection leaves consecutive5xxErrors (5) to Istio's defaults, imported as consecutiveFailures 5",
        expect.stringContaining('trafficPolicy.connectionPool.http.maxRequestsPerConnection is not supported'),
      ]),
    );
    if (SERVICE_MAX_CONCURRENT) expect(s?.policy).toMatchObject({ maxConcurrent: 2 });
    else
      expect(p.warnings).toContainEqual(
        expect.stringContaining(
          'DestinationRule reviews: trafficPolicy.connectionPool applies to routes, and this import has no VirtualService',
        ),
      );
  });

  it.each([
    {
      name: 'http.http2MaxRequests',
      pool: 'connectionPool:\n  http:\n    http2MaxRequests: 100\n    http1MaxPendingRequests: 10\n  tcp:\n    maxConnections: 7',
      limit: 100,
    },
    {
      name: 'tcp.maxConnections when there is no http2MaxRequests',
      pool: 'connectionPool:\n  tcp:\n    maxConnections: 50',
      limit: 50,
    },
    {
      name: 'tcp.maxConnections plus http1MaxPendingRequests',
      pool: 'connectionPool:\n  tcp:\n    maxConnections: 50\n  http:\n    http1MaxPendingRequests: 5',
      limit: 55,
    },
  ])(
    'connectionPool limits: $name becomes maxConcurrent (on the service policy where it has one, else on every route), with a warning',
    ({ pool, limit }) => {
      const p = plan(docs(reviewsDr(pool), HEADER_ROUTING_VS));
      const scope = "Waymark's limit is per cluster per Waymark instance";
      if (SERVICE_MAX_CONCURRENT) {
        expect(p.services[0]?.policy).toEqual({ maxConcurrent: limit });
        expect(p.services[0]?.routes.map((r) => r.route.maxConcurrent)).toEqual([undefined, undefined]);
        expect(p.warnings).toContainEqual(
          expect.stringContaining(`becomes the service's policy.maxConcurrent ${limit}: ${scope}`),
        );
      } else {
        expect(p.services[0]?.routes.map((r) => r.route.maxConcurrent)).toEqual([limit, limit]);
        expect(p.warnings).toContainEqual(
          expect.stringContaining(`becomes maxConcurrent ${limit} on every route of the service: ${scope}`),
        );
      }
    },
  );

  it('http1MaxPendingRequests alone sets no limit (Istio then opens connections without limit), said in a warning', () => {
    const p = plan(docs(reviewsDr('connectionPool:\n  http:\n    http1MaxPendingRequests: 5'), HEADER_ROUTING_VS));
    expect(p.services[0]?.policy).toBeUndefined();
    expect(p.services[0]?.routes.map((r) => r.route.maxConcurrent)).toEqual([undefined, undefined]);
    expect(p.warnings).toEqual([
      'DestinationRule reviews: trafficPolicy.connectionPool.http.http1MaxPendingRequests is not used: without tcp.maxConnections Istio opens connections without limit, so no request waits for one; Waymark does not queue either',
    ]);
  });

  it.each([
    {
      name: 'from us-east1 to eu-west1',
      failover: '- from: us-east1\n  to: eu-west1',
      rules: [{ from: 'us-east1', to: ['eu-west1'] }],
    },
    {
      name: 'localities with zones keep their region part',
      failover: '- from: us-east1/us-east1-b\n  to: eu-west1/eu-west1-c',
      rules: [{ from: 'us-east1', to: ['eu-west1'] }],
    },
    {
      name: 'rules with the same "from" merge, in document order',
      failover:
        '- from: us-east1\n  to: eu-west1\n- from: us-east1\n  to: ap-southeast1\n- from: eu-west1\n  to: us-east1',
      rules: [
        { from: 'us-east1', to: ['eu-west1', 'ap-southeast1'] },
        { from: 'eu-west1', to: ['us-east1'] },
      ],
    },
  ])('locality failover: $name', ({ failover, rules }) => {
    const s = service(
      docs(
        reviewsDr(
          `outlierDetection:\n  consecutive5xxErrors: 5\nloadBalancer:\n  localityLbSetting:\n    enabled: true\n    failover:\n    ${failover.replace(/\n/g, '\n    ')}`,
        ),
        HEADER_ROUTING_VS,
      ),
    );
    expect(s.failover).toEqual(rules);
  });

  it.each([
    {
      name: 'httpCookie.name -> cookie affinity',
      hash: 'httpCookie:\n  name: user\n  ttl: 0s',
      affinity: { cookie: 'user' },
    },
    {
      name: 'httpHeaderName -> header affinity (lowercased)',
      hash: 'httpHeaderName: X-User',
      affinity: { header: 'x-user' },
    },
  ])('consistentHash: $name on every route', ({ hash, affinity }) => {
    const rs = routes(
      docs(reviewsDr(`loadBalancer:\n  consistentHash:\n    ${hash.replace(/\n/g, '\n    ')}`), HEADER_ROUTING_VS),
    );
    expect(rs.map((r) => r.affinity)).toEqual([affinity, affinity]);
  });

  it('a DestinationRule alone sets subsets, policy and failover, with no routes', () => {
    const outlier =
      'outlierDetection:\n  consecutive5xxErrors: 2\n  interval: 10s\n  baseEjectionTime: 30s\n  maxEjectionPercent: 50\n  minHealthPercent: 50';
    const p = plan(
      reviewsDr(
        `${outlier}\nloadBalancer:\n  localityLbSetting:\n    failover:\n    - from: eu-west1\n      to: us-east1`,
      ),
    );
    expect(p.services).toEqual([
      {
        name: 'reviews',
        routes: [],
        subsets: { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } },
        policy: {
          panicThresholdPercent: 50,
          outlierDetection: {
            consecutiveFailures: 2,
            intervalMs: 10_000,
            baseEjectionMs: 30_000,
            maxEjectionPercent: 50,
          },
        },
        failover: [{ from: 'eu-west1', to: ['us-east1'] }],
      },
    ]);
    expect(p.warnings).toEqual([]);
  });

  it('a DestinationRule with subsets only has no warning at all', () => {
    expect(plan(REVIEWS_DR)).toEqual({
      services: [
        {
          name: 'reviews',
          routes: [],
          subsets: { v1: { version: 'v1' }, v2: { version: 'v2' }, v3: { version: 'v3' } },
        },
      ],
      warnings: [],
    });
  });
});

describe('planIstioImport: documents and API versions', () => {
  const RATINGS_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - route:
    - destination:
        host: ratings.prod.svc.cluster.local
`;

  it('multiple documents: each service in order of first appearance, DestinationRules may come after', () => {
    const p = plan(docs(RATINGS_VS, HEADER_ROUTING_VS, REVIEWS_DR));
    expect(p.services.map((s) => [s.name, s.routes.map((r) => r.route.name)])).toEqual([
      ['ratings', ['ratings-0']],
      ['reviews', ['reviews-0', 'reviews-1']],
    ]);
  });

  it('two VirtualServices for one service: routes keep document order, 10 apart', () => {
    const second = HEADER_ROUTING_VS.replace('name: reviews\n', 'name: reviews-extra\n');
    const rs = routes(docs(REVIEWS_DR, HEADER_ROUTING_VS, second));
    expect(rs.map((r) => [r.name, r.order])).toEqual([
      ['reviews-0', 0],
      ['reviews-1', 10],
      ['reviews-extra-0', 20],
      ['reviews-extra-1', 30],
    ]);
  });

  it('a kubectl List is unpacked', () => {
    const list = `apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata:
    name: ratings
  spec:
    hosts: [ratings]
    http:
    - route:
      - destination: {host: ratings}
`;
    expect(plan(list).services.map((s) => s.name)).toEqual(['ratings']);
  });

  it.each(['networking.istio.io/v1alpha3', 'networking.istio.io/v1', 'networking.istio.io/v1beta1'])(
    '%s gives the same plan',
    (apiVersion) => {
      const yaml = docs(
        REVIEWS_DR.replace('networking.istio.io/v1beta1', apiVersion),
        HEADER_ROUTING_VS.replace('networking.istio.io/v1beta1', apiVersion),
      );
      expect(plan(yaml)).toEqual(plan(docs(REVIEWS_DR, HEADER_ROUTING_VS)));
    },
  );

  it('other kinds are skipped with a warning; empty documents are ignored', () => {
    const gateway =
      'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: bookinfo-gateway\nspec:\n  selector:\n    istio: ingressgateway\n';
    const deployment = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: reviews-v1\n';
    const p = plan(docs(gateway, '', deployment, REVIEWS_DR, HEADER_ROUTING_VS));
    expect(p.services.map((s) => s.name)).toEqual(['reviews']);
    expect(p.warnings).toContain(
      'document 1 (networking.istio.io/v1 Gateway bookinfo-gateway) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
    );
    expect(p.warnings).toContainEqual(expect.stringContaining('document 3 (apps/v1 Deployment reviews-v1) is skipped'));
  });
});

describe("planIstioImport: objects that are not a service's own routing are skipped, never failing the file", () => {
  const GATEWAY =
    'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: shop-gateway\nspec:\n  selector:\n    istio: ingressgateway\n';
  const SERVICE_ENTRY =
    'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: payments-api\nspec:\n  hosts: [payments.example.com]\n';
  /** Bound to an ingress gateway for every host: the edge's own front door in Istio, not a service's routing. */
  const INGRESS_VS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop-front
spec:
  hosts: ["*"]
  gateways: [shop-gateway]
  http:
  - route:
    - destination:
        host: reviews
        subset: nowhere
`;

  it('a Gateway, a ServiceEntry and a gateway-bound VirtualService are skipped with a warning each; the rest imports', () => {
    const p = plan(docs(GATEWAY, INGRESS_VS, SERVICE_ENTRY, REVIEWS_DR, HEADER_ROUTING_VS));
    expect(p.services.map((s) => [s.name, s.routes.map((r) => r.route.name)])).toEqual([
      ['reviews', ['reviews-0', 'reviews-1']],
    ]);
    expect(p.warnings).toEqual([
      'document 1 (networking.istio.io/v1 Gateway shop-gateway) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
      'VirtualService shop-front: gateways ("shop-gateway") bind it to ingress gateways, not to the mesh: it is skipped. Waymark imports the mesh\'s VirtualServices (no gateways, or "mesh" among them), one per service host',
      'document 3 (networking.istio.io/v1 ServiceEntry payments-api) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
    ]);
  });

  it('a mesh VirtualService for host "*" is skipped with a warning, its subsets unchecked', () => {
    const p = plan(docs(INGRESS_VS.replace('  gateways: [shop-gateway]\n', ''), HEADER_ROUTING_VS, REVIEWS_DR));
    expect(p.services.map((s) => s.name)).toEqual(['reviews']);
    expect(p.warnings).toEqual([
      'VirtualService shop-front: hosts[0] ("*") matches every host and names no Waymark service: it is skipped. Expected a service\'s host, like "reviews" or "reviews.prod.svc.cluster.local"',
    ]);
  });

  it('"mesh" among the gateways imports the routes', () => {
    const p = plan(docs(REVIEWS_DR, HEADER_ROUTING_VS.replace('  hosts:', '  gateways: [mesh]\n  hosts:')));
    expect(p.services[0]?.routes).toHaveLength(2);
    expect(p.warnings).toEqual([]);
  });

  it('a file of skipped objects only is a plan with nothing to write, not an error', () => {
    const p = plan(docs(GATEWAY, INGRESS_VS, 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n'));
    expect(p.services).toEqual([]);
    expect(p.warnings).toHaveLength(3);
  });
});

describe('planIstioImport: subsets stored by an earlier import', () => {
  const STORED = new Map([['reviews', { v1: { version: 'v1' }, v2: { version: 'v2' } }]]);

  function planWith(yaml: string, stored: ReadonlyMap<string, Record<string, Record<string, string>>>) {
    const result = planIstioImport(yaml, stored);
    if (!result.ok) throw new Error(`expected a plan, got errors: ${JSON.stringify(result.errors)}`);
    return result.plan;
  }

  it('a VirtualService alone names subsets the service already has', () => {
    const p = planWith(HEADER_ROUTING_VS, STORED);
    expect(p.services).toEqual([
      {
        name: 'reviews',
        routes: [
          expect.objectContaining({
            route: expect.objectContaining({ name: 'reviews-0', destinations: [{ subset: 'v2', weight: 100 }] }),
          }),
          expect.objectContaining({
            route: expect.objectContaining({ name: 'reviews-1', destinations: [{ subset: 'v1', weight: 100 }] }),
          }),
        ],
      },
    ]);
    expect(p.warnings).toEqual([]);
  });

  it("stored subsets and the file's DestinationRule add up", () => {
    const v3Only = REVIEWS_DR.replace(
      / {2}- name: v1\n {4}labels:\n {6}version: v1\n {2}- name: v2\n {4}labels:\n {6}version: v2\n/,
      '',
    );
    const p = planWith(
      docs(
        v3Only,
        reviewsVs(
          'route:\n- destination:\n    host: reviews\n    subset: v1\n  weight: 50\n- destination:\n    host: reviews\n    subset: v3\n  weight: 50',
        ),
      ),
      STORED,
    );
    expect(p.services[0]?.subsets).toEqual({ v3: { version: 'v3' } });
    expect(p.services[0]?.routes[0]?.route.destinations).toEqual([
      { subset: 'v1', weight: 50 },
      { subset: 'v3', weight: 50 },
    ]);
  });

  it.each([
    {
      name: 'neither stored nor in the file: the known ones are listed',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews\n    subset: v9'),
      message: 'subset "v9" is not defined: expected one of "v1", "v2" (stored on service "reviews")',
    },
    {
      name: "stored ones and the file's DestinationRule are both listed",
      yaml: docs(
        REVIEWS_DR.replace(
          / {2}- name: v1\n {4}labels:\n {6}version: v1\n {2}- name: v2\n {4}labels:\n {6}version: v2\n/,
          '',
        ),
        reviewsVs('route:\n- destination:\n    host: reviews\n    subset: v9'),
      ),
      message:
        'subset "v9" is not defined: expected one of "v3", "v1", "v2" (stored on service "reviews", or defined by DestinationRule reviews in this import)',
    },
  ])('an unknown subset -> an error naming it: $name', ({ yaml, message }) => {
    const result = planIstioImport(yaml, STORED);
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(result.errors).toEqual([
        { field: 'VirtualService reviews: http[0].route[0].destination.subset', message },
      ]);
  });

  it('a service with no subsets and no DestinationRule in the file: the error says a DestinationRule is expected', () => {
    const result = planIstioImport(
      reviewsVs('route:\n- destination:\n    host: reviews\n    subset: v1'),
      new Map([['reviews', {}]]),
    );
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.errors[0]?.message).toBe(
        'subset "v1" is not defined: service "reviews" has no subsets and this import has no DestinationRule for host "reviews"; expected a DestinationRule that defines it, imported earlier or in the same file',
      );
    }
  });
});

describe('planIstioImport: what Waymark cannot honour is named in a warning', () => {
  const cases: { name: string; yaml: string; warning: string }[] = [
    {
      name: 'rewrite',
      yaml: reviewsVs(`rewrite:\n  uri: /v2\n${TO_ALL}`),
      warning:
        'VirtualService reviews: http[0].rewrite is not supported: Waymark forwards the path and authority unchanged',
    },
    {
      name: 'headers manipulation',
      yaml: reviewsVs(`headers:\n  request:\n    set:\n      x-a: b\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].headers is not supported',
    },
    {
      name: 'per-destination headers',
      yaml: reviewsVs(`route:\n- destination:\n    host: reviews\n  headers:\n    response:\n      remove: [foo]`),
      warning: 'VirtualService reviews: http[0].route[0].headers is not supported',
    },
    {
      name: 'corsPolicy',
      yaml: reviewsVs(`corsPolicy:\n  allowOrigins:\n  - exact: https://a.example\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].corsPolicy is not supported',
    },
    {
      name: 'a redirect (the entry is not imported)',
      yaml: reviewsVs('redirect:\n  uri: /v1/bookRatings'),
      warning:
        'VirtualService reviews: http[0] is not imported: it has no route (redirect is not supported: Waymark only forwards)',
    },
    {
      name: 'ingress gateways beside the mesh',
      yaml: reviewsVs(TO_ALL).replace('  hosts:', '  gateways:\n  - mesh\n  - bookinfo-gateway\n  hosts:'),
      warning: 'VirtualService reviews: gateways ("bookinfo-gateway") are not imported',
    },
    {
      name: 'tcp routes',
      yaml: `${reviewsVs(TO_ALL)}  tcp:\n  - route:\n    - destination:\n        host: reviews\n`,
      warning: 'VirtualService reviews: tcp is not supported: Waymark routes HTTP only',
    },
    {
      name: 'tls routes',
      yaml: `${reviewsVs(TO_ALL)}  tls:\n  - match:\n    - sniHosts: [reviews]\n    route:\n    - destination:\n        host: reviews\n`,
      warning: 'VirtualService reviews: tls is not supported',
    },
    {
      name: 'sourceLabels',
      yaml: reviewsVs(`match:\n- sourceLabels:\n    app: productpage\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].match[0].sourceLabels is not supported',
    },
    {
      name: 'withoutHeaders',
      yaml: reviewsVs(`match:\n- withoutHeaders:\n    x-debug: {}\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].match[0].withoutHeaders is not supported',
    },
    {
      name: 'cross-service routing',
      yaml: reviewsVs(
        `route:\n- destination:\n    host: reviews\n  weight: 90\n- destination:\n    host: ratings.prod.svc.cluster.local\n  weight: 10`,
      ),
      warning:
        'VirtualService reviews: http[0].route[1].destination.host ("ratings.prod.svc.cluster.local") is not service "reviews": cross-service routing is not supported',
    },
    {
      name: 'a destination port',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews\n    port:\n      number: 9080'),
      warning: 'VirtualService reviews: http[0].route[0].destination.port is not supported',
    },
    {
      name: 'other hosts of the VirtualService',
      yaml: reviewsVs(TO_ALL).replace('  - reviews\n', '  - reviews\n  - ratings\n'),
      warning: 'VirtualService reviews: hosts[1] ("ratings") is not imported',
    },
    {
      name: 'a typo is not lost either',
      yaml: reviewsVs(`retires:\n  attempts: 3\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].retires is not supported',
    },
    {
      name: 'retry conditions Waymark does not know',
      yaml: reviewsVs(`${TO_ALL}\nretries:\n  attempts: 2\n  retryOn: connect-failure,refused-stream,unavailable`),
      warning:
        'VirtualService reviews: http[0].retries.retryOn conditions "refused-stream", "unavailable" are not supported',
    },
    {
      name: 'retry backoff',
      yaml: reviewsVs(`${TO_ALL}\nretries:\n  attempts: 2\n  backoff: 25ms`),
      warning: 'VirtualService reviews: http[0].retries.backoff is not supported',
    },
    {
      name: 'a fault without a percentage (Envoy injects none)',
      yaml: reviewsVs(`fault:\n  abort:\n    httpStatus: 500\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].fault.abort has no percentage',
    },
    {
      name: 'a grpc abort',
      yaml: reviewsVs(`fault:\n  abort:\n    grpcStatus: UNAVAILABLE\n    percentage:\n      value: 1\n${TO_ALL}`),
      warning: 'VirtualService reviews: http[0].fault.abort.grpcStatus is not supported',
    },
    {
      name: 'timeout 0s (none)',
      yaml: reviewsVs(`${TO_ALL}\ntimeout: 0s`),
      warning: 'VirtualService reviews: http[0].timeout is 0 (no timeout)',
    },
    {
      name: 'no catch-all route',
      yaml: docs(REVIEWS_DR, reviewsVs(`match:\n- uri:\n    prefix: /a\n${TO_ALL}`)),
      warning: 'VirtualService reviews: http has no catch-all route',
    },
    {
      name: 'distribute with failover (Istio takes one; Waymark keeps both)',
      yaml: reviewsDr(
        'loadBalancer:\n  localityLbSetting:\n    failover:\n    - from: us-east1\n      to: eu-west1\n    distribute:\n    - from: us-east1/*\n      to:\n        "us-east1/*": 80\n        "eu-west1/*": 20\noutlierDetection:\n  consecutive5xxErrors: 3',
      ),
      warning: 'DestinationRule reviews: trafficPolicy.loadBalancer.localityLbSetting.distribute is kept with failover',
    },
    {
      name: 'loadBalancer.simple',
      yaml: reviewsDr('loadBalancer:\n  simple: ROUND_ROBIN'),
      warning:
        'DestinationRule reviews: trafficPolicy.loadBalancer.simple is not supported: Waymark replaces it with its locality-aware weighted choice',
    },
    {
      name: "outlier fields left to Istio's defaults",
      yaml: reviewsDr('outlierDetection:\n  consecutive5xxErrors: 3\n  minHealthPercent: 0'),
      warning:
        "DestinationRule reviews: trafficPolicy.outlierDetection leaves interval (10s), baseEjectionTime (30s), maxEjectionPercent (10) to Istio's defaults, imported as intervalMs 10000, baseEjectionMs 30000, maxEjectionPercent 10",
    },
    {
      name: 'consecutiveLocalOriginFailures',
      yaml: reviewsDr('outlierDetection:\n  consecutiveLocalOriginFailures: 3\n  splitExternalLocalOriginErrors: true'),
      warning:
        'DestinationRule reviews: trafficPolicy.outlierDetection.consecutiveLocalOriginFailures is not supported',
    },
    {
      name: 'consecutiveGatewayErrors',
      yaml: reviewsDr('outlierDetection:\n  consecutiveGatewayErrors: 3'),
      warning: 'DestinationRule reviews: trafficPolicy.outlierDetection.consecutiveGatewayErrors is not supported',
    },
    {
      name: 'tls settings',
      yaml: reviewsDr('tls:\n  mode: ISTIO_MUTUAL'),
      warning: 'DestinationRule reviews: trafficPolicy.tls is not supported',
    },
    {
      name: 'subset traffic policies',
      yaml: REVIEWS_DR.replace(
        '      version: v3\n',
        '      version: v3\n    trafficPolicy:\n      loadBalancer:\n        simple: RANDOM\n',
      ),
      warning: 'DestinationRule reviews: subsets[2].trafficPolicy is not supported',
    },
    {
      name: 'other connection pool settings',
      yaml: reviewsDr('connectionPool:\n  http:\n    http2MaxRequests: 10\n    maxRequestsPerConnection: 1'),
      warning: 'DestinationRule reviews: trafficPolicy.connectionPool.http.maxRequestsPerConnection is not supported',
    },
    {
      name: 'cookie ttl (Waymark never sets the cookie)',
      yaml: docs(
        reviewsDr('loadBalancer:\n  consistentHash:\n    httpCookie:\n      name: user\n      ttl: 3600s'),
        HEADER_ROUTING_VS,
      ),
      warning: 'DestinationRule reviews: trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl is not supported',
    },
    {
      name: 'affinity is per destination, not per host (Istio sticks a key to one host)',
      yaml: docs(reviewsDr('loadBalancer:\n  consistentHash:\n    httpHeaderName: x-user'), HEADER_ROUTING_VS),
      warning:
        'DestinationRule reviews: trafficPolicy.loadBalancer.consistentHash keeps a key on the route destination',
    },
    {
      name: 'affinity with no VirtualService to carry it',
      yaml: reviewsDr('loadBalancer:\n  consistentHash:\n    httpHeaderName: x-user'),
      warning: 'DestinationRule reviews: trafficPolicy.loadBalancer.consistentHash applies to routes',
    },
  ];

  it.each(cases)('$name', ({ yaml, warning }) => {
    const warnings = plan(yaml).warnings;
    expect(warnings).toContainEqual(expect.stringContaining(warning));
  });

  it('every warning names the Istio object and field it is about', () => {
    for (const { yaml } of cases) {
      for (const w of plan(yaml).warnings) expect(w).toMatch(/^(VirtualService|DestinationRule) reviews: [a-zA-Z]/);
    }
  });

  it('a fault without a percentage is imported at 0%, as Istio applies it', () => {
    expect(routes(reviewsVs(`fault:\n  abort:\n    httpStatus: 500\n${TO_ALL}`))[0]?.fault).toEqual({
      abort: { percent: 0, status: 500 },
    });
  });

  it('a cross-service destination is dropped; the others keep their weights', () => {
    const rs = routes(
      reviewsVs(
        `route:\n- destination:\n    host: reviews\n  weight: 90\n- destination:\n    host: ratings\n  weight: 10`,
      ),
    );
    expect(rs[0]?.destinations).toEqual([{ subset: {}, weight: 90 }]);
  });

  it('a route to another service only is not imported', () => {
    const p = plan(
      docs(
        REVIEWS_DR,
        reviewsVs('route:\n- destination:\n    host: ratings'),
        HEADER_ROUTING_VS.replace('name: reviews\n', 'name: more\n'),
      ),
    );
    expect(p.services[0]?.routes.map((r) => r.route.name)).toEqual(['more-0', 'more-1']);
    expect(p.warnings).toContainEqual(
      expect.stringContaining(
        'VirtualService reviews: http[0] is not imported: none of its destinations is service "reviews"',
      ),
    );
  });

  it('a plain import has no warnings at all', () => {
    expect(plan(docs(REVIEWS_DR, HEADER_ROUTING_VS)).warnings).toEqual([]);
  });
});

describe('planIstioImport: errors fail the whole plan, naming the field', () => {
  const cases: { name: string; yaml: string; fields: string[]; message?: RegExp }[] = [
    {
      name: 'invalid YAML names (body) and the line',
      yaml: 'apiVersion: networking.istio.io/v1\nkind: [VirtualService\n',
      fields: ['(body)'],
      message: /line \d+, column \d+/,
    },
    { name: 'a document that is not a mapping', yaml: 'just some text\n', fields: ['(body)'] },
    { name: 'empty', yaml: '', fields: ['(body)'] },
    {
      name: 'an unknown subset',
      yaml: docs(REVIEWS_DR, reviewsVs('route:\n- destination:\n    host: reviews\n    subset: v9')),
      fields: ['VirtualService reviews: http[0].route[0].destination.subset'],
      message:
        /^subset "v9" is not defined: expected one of "v1", "v2", "v3" \(defined by DestinationRule reviews in this import\)$/,
    },
    {
      name: 'a subset with no DestinationRule in the YAML',
      yaml: HEADER_ROUTING_VS,
      fields: [
        'VirtualService reviews: http[0].route[0].destination.subset',
        'VirtualService reviews: http[1].route[0].destination.subset',
      ],
      message: /no DestinationRule for host "reviews"/,
    },
    {
      name: 'an unknown mirror subset',
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\nmirror:\n  host: reviews\n  subset: shadow`)),
      fields: ['VirtualService reviews: http[0].mirror.subset'],
    },
    {
      name: 'a value Waymark refuses is named by route and field (routePutSchema)',
      yaml: docs(REVIEWS_DR, reviewsVs(`${TO_V1}\nretries:\n  attempts: 10`)),
      fields: ['reviews-0.retries.attempts'],
      message: /from VirtualService reviews: http\[0\]/,
    },
    {
      name: 'a fault delay over a minute',
      yaml: docs(
        REVIEWS_DR,
        reviewsVs(`fault:\n  delay:\n    fixedDelay: 2m\n    percentage:\n      value: 1\n${TO_V1}`),
      ),
      fields: ['reviews-0.fault.delay.ms'],
    },
    {
      name: 'a uri that is not a path',
      yaml: reviewsVs(`match:\n- uri:\n    exact: api\n${TO_ALL}`),
      fields: ['reviews-0.match.path.exact'],
    },
    {
      name: 'a duration that is not one',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews\ntimeout: 10'),
      fields: ['VirtualService reviews: http[0].timeout'],
    },
    {
      name: 'a weight that is not a number',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews\n  weight: "80"'),
      fields: ['VirtualService reviews: http[0].route[0].weight'],
    },
    {
      name: 'a string match with two kinds',
      yaml: reviewsVs(
        'match:\n- headers:\n    x-a:\n      exact: a\n      prefix: b\nroute:\n- destination:\n    host: reviews',
      ),
      fields: ['VirtualService reviews: http[0].match[0].headers.x-a'],
    },
    {
      name: 'an unsupported apiVersion',
      yaml: HEADER_ROUTING_VS.replace('networking.istio.io/v1beta1', 'networking.istio.io/v2'),
      fields: ['document 1: apiVersion'],
    },
    {
      name: 'no metadata.name',
      yaml: HEADER_ROUTING_VS.replace('  name: reviews\n', '  namespace: prod\n'),
      fields: ['document 1: metadata.name'],
    },
    {
      name: 'no hosts',
      yaml: reviewsVs(TO_V1).replace('  hosts:\n  - reviews\n', ''),
      fields: ['VirtualService reviews: hosts'],
    },
    {
      name: 'a wildcard host has no service name',
      yaml: reviewsVs('route:\n- destination:\n    host: reviews').replace('  - reviews\n', '  - "*.example.com"\n'),
      fields: ['VirtualService reviews: hosts[0]'],
    },
    {
      name: 'two http routes with the same name',
      yaml: reviewsVs('name: main\nroute:\n- destination:\n    host: reviews').replace(
        /$/,
        '  - name: main\n    route:\n    - destination:\n        host: reviews\n',
      ),
      fields: ['VirtualService reviews: http[1]'],
    },
    {
      name: 'two DestinationRules for one host',
      yaml: docs(REVIEWS_DR, REVIEWS_DR.replace('name: reviews\n', 'name: reviews-2\n')),
      fields: ['DestinationRule reviews-2: host'],
    },
    {
      name: "a base ejection time under Waymark's 1s minimum",
      yaml: reviewsDr('outlierDetection:\n  baseEjectionTime: 500ms'),
      fields: ['DestinationRule reviews: trafficPolicy.outlierDetection.baseEjectionTime'],
      message: /baseEjectionMs/,
    },
    {
      name: 'a failover region Waymark cannot name',
      yaml: reviewsDr('loadBalancer:\n  localityLbSetting:\n    failover:\n    - from: US_EAST\n      to: eu-west1'),
      fields: ['DestinationRule reviews: trafficPolicy.loadBalancer.localityLbSetting.failover[0].from'],
    },
    {
      name: 'a label that is not a string',
      yaml: REVIEWS_DR.replace('version: v3', 'version: 3'),
      fields: ['DestinationRule reviews: subsets[2].labels.version'],
    },
    {
      name: 'a subset name that is no DNS label',
      yaml: REVIEWS_DR.replace('name: v3', 'name: V3_beta'),
      fields: ['DestinationRule reviews: subsets[2].name'],
      message: /^"V3_beta" must be a subset name: 1-63 lowercase letters, digits or dashes/,
    },
    {
      name: 'a label key Waymark refuses',
      yaml: REVIEWS_DR.replace('version: v3', '"-tier": v3'),
      fields: ['DestinationRule reviews: subsets[2].labels.-tier'],
      message: /label keys are/,
    },
    {
      name: 'a subset defined twice',
      yaml: REVIEWS_DR.replace('name: v3', 'name: v2'),
      fields: ['DestinationRule reviews: subsets[2].name'],
      message: /defined twice/,
    },
    {
      name: 'a header regex with a backreference (Istio takes RE2 syntax only)',
      yaml: reviewsVs(`match:\n- headers:\n    x-a:\n      regex: '(a)\\1'\n${TO_ALL}`),
      fields: ['VirtualService reviews: http[0].match[0].headers.x-a.regex'],
      message:
        /^is not supported by the RE2 syntax: invalid escape sequence: `\\1` \(RE2 has no backreferences or lookarounds\)$/,
    },
    {
      name: 'a uri regex with a lookahead',
      yaml: reviewsVs(`match:\n- uri:\n    regex: '/(?=admin)[a-z]+'\n${TO_ALL}`),
      fields: ['VirtualService reviews: http[0].match[0].uri.regex'],
      message: /RE2 syntax: invalid or unsupported Perl syntax: `\(\?=`/,
    },
    {
      name: 'a queryParams regex with a negative lookahead, in the second match block',
      yaml: reviewsVs(`match:\n- uri:\n    prefix: /a\n- queryParams:\n    v:\n      regex: '(?!1)[0-9]'\n${TO_ALL}`),
      fields: ['VirtualService reviews: http[0].match[1].queryParams.v.regex'],
      message: /RE2 syntax/,
    },
    {
      name: 'more than 10 ORed match blocks',
      yaml: reviewsVs(
        `match:\n${Array.from({ length: 11 }, (_, i) => `- uri:\n    prefix: /p${i}`).join('\n')}\nroute:\n- destination:\n    host: reviews`,
      ),
      fields: ['VirtualService reviews: http[0].match'],
    },
  ];

  it.each(cases)('$name', ({ yaml, fields, message }) => {
    const errs = errors(yaml);
    expect(errs.map((e) => e.field)).toEqual(fields);
    for (const e of errs) expect(e.message).toMatch(/\S/);
    if (message) expect(errs.map((e) => e.message).join('\n')).toMatch(message);
  });
});

describe('POST /import/istio: a regex RE2 refuses', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startTestServer();
    expect((await server.admin('PUT', '/services/reviews', serviceBody(['reviews.example.com']))).status).toBe(201);
    expect(
      (
        await server.admin(
          'PUT',
          '/services/reviews/clusters/ue1',
          clusterBody('us-east1', 'https://ue1.reviews.internal'),
        )
      ).status,
    ).toBe(201);
  });
  afterEach(async () => {
    await server.close();
  });

  it('-> 400 naming the Istio field, and nothing written (also with an importable route beside it)', async () => {
    const body = reviewsVs(`match:\n- headers:\n    x-a:\n      regex: '(a)\\1'\n${TO_ALL}`).replace(
      /$/,
      `  - name: rest\n    ${TO_ALL.replace(/\n/g, '\n    ')}\n`,
    );
    const routes = async () => (await server.db.execute('select count(*) as n from routes')).rows[0]?.n;
    const before = { ...(await dbState(server.db)), routes: await routes() };
    const res = await server.admin('POST', '/import/istio', body);
    expectProblem(res, 400, 'invalid-request', ['VirtualService reviews: http[0].match[0].headers.x-a.regex']);
    expect(res.json.errors[0].message).toMatch(/RE2 syntax/);
    expect({ ...(await dbState(server.db)), routes: await routes() }).toEqual(before);
    const listed = await server.admin('GET', '/services/reviews/routes');
    expect(listed.json.routes).toEqual([]);
  });
});

describe('durationMs: Istio (Go) durations', () => {
  it.each([
    ['10s', 10_000],
    ['500ms', 500],
    ['1m', 60_000],
    ['1h', 3_600_000],
    ['1m30s', 90_000],
    ['1.5s', 1_500],
    ['0.25s', 250],
    ['0', 0],
    ['1500us', 2],
    ['1500µs', 2],
    ['10', null],
    ['-1s', null],
    ['s', null],
    ['10 s', null],
    ['1d', null],
  ] as const)('%s -> %s', (text, ms) => {
    expect(durationMs(text)).toBe(ms);
  });
});
