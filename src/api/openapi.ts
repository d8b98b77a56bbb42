/**
 * The admin API described as an OpenAPI 3.1 document, built from a registry with one entry per endpoint
 * and from the zod schemas the handlers parse with (zod 4 writes JSON Schema 2020-12, OpenAPI 3.1's
 * dialect). The handlers stay plain Hono: test/api/openapi.test.ts compares this registry with the routes
 * the app registers, so an endpoint added without an entry here fails the build.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { Problem, type ProblemCode } from '../problem.js';
import { clusterPutSchema } from '../spec/cluster.js';
import { configDocumentSchema } from '../spec/config.js';
import { nameSchema } from '../spec/names.js';
import { routePutSchema } from '../spec/route.js';
import { servicePutSchema } from '../spec/service.js';
import { type Scope, SCOPES, tokenCreateSchema } from '../spec/token.js';
import { auditQuery } from './audit.js';
import { applyQuerySchema, ifMatchSchema, limitSchema, rollbackSchema, versionSchema } from './config.js';
import { explainSchema } from './explain.js';
import { downSchema } from './failover.js';
import { eventsQuery } from './health-sync.js';
import { dryRunSchema } from './istio.js';
import { endQuery, listQuery, overrideSchema } from './overrides.js';
import { deliveriesQuery } from './webhooks.js';
import { webhookCreateSchema } from '../spec/webhook.js';

/** Where the admin API is mounted (src/app.ts): the document's one server. */
export const API_BASE_PATH = '/_waymark/api/v1';

/** Every problem code, with nothing missing (the compiler checks): the `code` enum of the Problem schema. */
const PROBLEM_CODES = Object.keys({
  'invalid-request': true,
  'bad-host': true,
  'client-gone': true,
  unsendable: true,
  'unsupported-upgrade': true,
  unauthorized: true,
  forbidden: true,
  'not-found': true,
  'unknown-host': true,
  'method-not-allowed': true,
  'payload-too-large': true,
  'rate-limited': true,
  conflict: true,
  'host-taken': true,
  'would-strand': true,
  'conflicting-override': true,
  'already-ended': true,
  'not-automated': true,
  'already-promoted': true,
  'already-revoked': true,
  'precondition-failed': true,
  internal: true,
  'fault-injected': true,
  'upstream-connect-failure': true,
  'upstream-reset': true,
  'upstream-timeout': true,
  'upstream-deadline': true,
  'no-cluster': true,
  overflow: true,
  'not-ready': true,
  draining: true,
  'admin-disabled': true,
  'store-unavailable': true,
  misconfigured: true,
} satisfies Record<ProblemCode, true>) as ProblemCode[];

/** A problem code's status and title, as src/problem.ts renders them. */
export function problemInfo(code: ProblemCode): { status: number; title: string } {
  const problem = new Problem({ code, detail: code });
  return { status: problem.status, title: problem.title };
}

/** RFC 9457's members and Waymark's (src/problem.ts `renderProblem`). */
const problemDocumentSchema = z.object({
  type: z.string().describe('`urn:waymark:problem:<code>`'),
  title: z.string().describe("The code's title: the same for every problem of that code."),
  status: z.number().int().describe('The HTTP status.'),
  detail: z.string().describe('What went wrong, this time, in words.'),
  code: z.enum(PROBLEM_CODES).describe('One of a closed set: clients may rely on it.'),
  requestId: z.string().describe('Finds the log lines of this request; also sent as `x-request-id`.'),
  errors: z
    .array(
      z.object({
        field: z.string().describe('A dotted path into the input: `hosts.0`, `query.limit`, `(body)`.'),
        message: z.string(),
      }),
    )
    .optional()
    .describe('Every offending field, for `invalid-request` and the conflicts a field causes.'),
});

type Method = 'get' | 'put' | 'post' | 'delete';

/** A path, query or header parameter. */
interface Field {
  schema: z.ZodType;
  description: string;
  example?: unknown;
}

/** A request body: named in `components.schemas`, taken as JSON unless `media` says otherwise. */
interface Body {
  name: string;
  schema: z.ZodType;
  description: string;
  media?: readonly string[];
  example?: unknown;
}

/** A success answer; `media` absent means no body (204), `schema` absent means described in words. */
interface Answer {
  status: number;
  description: string;
  media?: readonly string[];
  /** A component's name (a body schema of this registry) when the answer is such a document. */
  schemaRef?: string;
  headers?: Record<string, string>;
}

/** One admin endpoint: what a client needs to call it, and every problem it can answer. */
export interface Endpoint {
  id: string;
  method: Method;
  /** Under API_BASE_PATH, OpenAPI style: `/services/{service}`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  /** The scope the bearer token needs; null: no token. */
  scope: Scope | null;
  params?: Record<string, Field>;
  query?: Record<string, Field>;
  headers?: Record<string, Field>;
  body?: Body;
  responses: readonly Answer[];
  /** Problems beyond those every guarded endpoint answers (see `problemCodes`). */
  problems?: readonly ProblemCode[];
}

/** A strict query schema's fields, each with its words: the keys are checked against the schema's. */
function queryFields<S extends z.ZodRawShape>(
  schema: z.ZodObject<S>,
  docs: { [K in keyof S]: { description: string; example?: unknown } },
): Record<string, Field> {
  return Object.fromEntries(
    Object.entries(schema.shape).map(([key, field]) => {
      const words = docs[key as keyof S] as { description: string; example?: unknown };
      return [key, { schema: field as z.ZodType, ...words }];
    }),
  );
}

const JSON_MEDIA = ['application/json'] as const;
const DOCUMENT_MEDIA = ['application/json', 'application/yaml'] as const;

const serviceParam: Field = { schema: nameSchema, description: "The service's name.", example: 'shop' };
const clusterParam: Field = {
  schema: nameSchema,
  description: "The cluster's name within its service.",
  example: 'ew1',
};
const routeParam: Field = { schema: nameSchema, description: "The route's name within its service.", example: 'api' };

/** Written commands: a store constraint a concurrent write trips is a 409 `conflict` (src/api/problem.ts). */
const WRITE: readonly ProblemCode[] = ['conflict'];

const SERVICE_EXAMPLE = {
  hosts: ['shop.example.com'],
  failover: [{ from: 'eu-west1', to: ['us-east1'] }],
  policy: { panicThresholdPercent: 50, failClosed: false, outlierDetection: { consecutiveFailures: 5 } },
  subsets: { v1: { version: 'v1' }, v2: { version: 'v2' } },
};

const CLUSTER_EXAMPLE = {
  region: 'eu-west1',
  zone: 'eu-west1-b',
  origin: 'https://eu.shop.internal',
  latitude: 53.3,
  longitude: -6.3,
  weight: 100,
  labels: { version: 'v1' },
  healthCheck: { path: '/health/ready', expectedStatuses: ['2xx'], timeoutMs: 2000 },
};

const ROUTE_EXAMPLE = {
  order: 10,
  match: { path: { prefix: '/api' }, methods: ['GET'], headers: { 'x-test-user': { exact: 'true' } } },
  destinations: [
    { subset: 'v1', weight: 80 },
    { subset: { version: 'v2' }, weight: 20 },
  ],
  retries: { attempts: 3, perTryTimeoutMs: 2000, retryOn: ['connect-failure', '5xx'], budgetPercent: 20 },
  timeoutMs: 10000,
};

const ISTIO_EXAMPLE = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: shop
spec:
  hosts: [shop.example.com]
  http:
  - match:
    - uri: {prefix: /api}
    route:
    - destination: {host: shop, subset: v1}
`;

/** Every admin endpoint, in the order the reference shows them. */
export const ENDPOINTS: readonly Endpoint[] = [
  {
    id: 'listServices',
    method: 'get',
    path: '/services',
    tag: 'services',
    summary: 'List services',
    scope: 'read',
    responses: [
      { status: 200, description: '`{"services": [...]}`: the services this token may see.', media: JSON_MEDIA },
    ],
  },
  {
    id: 'getService',
    method: 'get',
    path: '/services/{service}',
    tag: 'services',
    summary: 'Read a service',
    scope: 'read',
    params: { service: serviceParam },
    responses: [{ status: 200, description: 'The service with its `clusters`.', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'putService',
    method: 'put',
    path: '/services/{service}',
    tag: 'services',
    summary: 'Create or replace a service',
    description:
      "Idempotent by name. `maxConcurrent` counts requests in flight per cluster for every request of the service, as Istio's DestinationRule `connectionPool`; `subsets` name label selectors over its clusters for routes to name.",
    scope: 'write',
    params: { service: serviceParam },
    body: { name: 'ServicePut', schema: servicePutSchema, description: 'The service.', example: SERVICE_EXAMPLE },
    responses: [
      { status: 200, description: 'Updated: the service as stored.', media: JSON_MEDIA },
      { status: 201, description: 'Created: the service as stored.', media: JSON_MEDIA },
    ],
    problems: ['host-taken', ...WRITE],
  },
  {
    id: 'deleteService',
    method: 'delete',
    path: '/services/{service}',
    tag: 'services',
    summary: 'Delete a service',
    description:
      'Its clusters, routes and hosts go too, with the health, route state, samples and latency orders derived from them; its active overrides end.',
    scope: 'write',
    params: { service: serviceParam },
    responses: [{ status: 204, description: 'Deleted.' }],
    problems: ['not-found', ...WRITE],
  },
  {
    id: 'listClusters',
    method: 'get',
    path: '/services/{service}/clusters',
    tag: 'clusters',
    summary: "List a service's clusters",
    scope: 'read',
    params: { service: serviceParam },
    responses: [{ status: 200, description: '`{"clusters": [...]}`', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'getCluster',
    method: 'get',
    path: '/services/{service}/clusters/{cluster}',
    tag: 'clusters',
    summary: 'Read a cluster',
    scope: 'read',
    params: { service: serviceParam, cluster: clusterParam },
    responses: [{ status: 200, description: 'The cluster.', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'putCluster',
    method: 'put',
    path: '/services/{service}/clusters/{cluster}',
    tag: 'clusters',
    summary: 'Create or replace a cluster',
    description:
      "`origin` may carry a base path, prefixed to every proxied path and to the health check's; ports fetch blocks (6000, 6666, 5060...) are refused. `originHost` is the `Host` the origin sees (default: the origin's).",
    scope: 'write',
    params: { service: serviceParam, cluster: clusterParam },
    body: { name: 'ClusterPut', schema: clusterPutSchema, description: 'The cluster.', example: CLUSTER_EXAMPLE },
    responses: [
      { status: 200, description: 'Updated: the cluster as stored.', media: JSON_MEDIA },
      { status: 201, description: 'Created: the cluster as stored.', media: JSON_MEDIA },
    ],
    problems: ['not-found', 'would-strand', ...WRITE],
  },
  {
    id: 'deleteCluster',
    method: 'delete',
    path: '/services/{service}/clusters/{cluster}',
    tag: 'clusters',
    summary: 'Delete a cluster',
    description:
      'Its health verdict goes and the overrides naming it end: a cluster created again under its name starts clean. Refused (409 `would-strand`) when every cluster it leaves would be under a drain made without force.',
    scope: 'write',
    params: { service: serviceParam, cluster: clusterParam },
    responses: [{ status: 204, description: 'Deleted.' }],
    problems: ['not-found', 'would-strand', ...WRITE],
  },
  {
    id: 'listRoutes',
    method: 'get',
    path: '/services/{service}/routes',
    tag: 'routes',
    summary: "List a service's routes",
    scope: 'read',
    params: { service: serviceParam },
    responses: [
      { status: 200, description: '`{"routes": [...]}` in order: the first that matches wins.', media: JSON_MEDIA },
    ],
    problems: ['not-found'],
  },
  {
    id: 'getRoute',
    method: 'get',
    path: '/services/{service}/routes/{route}',
    tag: 'routes',
    summary: 'Read a route, its status and what edges observed',
    scope: 'read',
    params: { service: serviceParam, route: routeParam },
    responses: [
      {
        status: 200,
        description:
          'The route with `warnings` (subsets that select no cluster), a read-only `status` (`mirrorPercent`, `canaryWeight`, `phase`, `paused`, `heldBy`) and `observed`: the last 15 minutes of its primary, mirror and canary outcomes.',
        media: JSON_MEDIA,
      },
    ],
    problems: ['not-found'],
  },
  {
    id: 'putRoute',
    method: 'put',
    path: '/services/{service}/routes/{route}',
    tag: 'routes',
    summary: 'Create or replace a route',
    description:
      "Only `order` is required. A `subset` is a label selector or the name of one of the service's `subsets`; a name the service does not define is refused (400 naming the field). Regexes are RE2 syntax, matched against the whole value.",
    scope: 'write',
    params: { service: serviceParam, route: routeParam },
    body: { name: 'RoutePut', schema: routePutSchema, description: 'The route.', example: ROUTE_EXAMPLE },
    responses: [
      {
        status: 200,
        description: 'Updated: the route, with `warnings` for subsets that match no cluster yet.',
        media: JSON_MEDIA,
      },
      { status: 201, description: 'Created: the route, with `warnings`.', media: JSON_MEDIA },
    ],
    problems: ['not-found', ...WRITE],
  },
  {
    id: 'deleteRoute',
    method: 'delete',
    path: '/services/{service}/routes/{route}',
    tag: 'routes',
    summary: 'Delete a route',
    description: 'Its automation state and samples go; the overrides holding it end.',
    scope: 'write',
    params: { service: serviceParam, route: routeParam },
    responses: [{ status: 204, description: 'Deleted.' }],
    problems: ['not-found', ...WRITE],
  },
  {
    id: 'pauseRoute',
    method: 'post',
    path: '/services/{service}/routes/{route}/pause',
    tag: 'routes',
    summary: "Pause a route's automation",
    description: 'Stops mirror ramp and canary moves until resumed.',
    scope: 'override',
    params: { service: serviceParam, route: routeParam },
    responses: [{ status: 200, description: '`{"status": {...}}`: the route\'s status.', media: JSON_MEDIA }],
    problems: ['not-found', 'not-automated', ...WRITE],
  },
  {
    id: 'resumeRoute',
    method: 'post',
    path: '/services/{service}/routes/{route}/resume',
    tag: 'routes',
    summary: "Resume a route's automation",
    description: 'Restarts a halted mirror ramp or a rolled-back canary from its first step.',
    scope: 'override',
    params: { service: serviceParam, route: routeParam },
    responses: [{ status: 200, description: '`{"status": {...}}`: the route\'s status.', media: JSON_MEDIA }],
    problems: ['not-found', 'not-automated', 'already-promoted', ...WRITE],
  },
  {
    id: 'getFailover',
    method: 'get',
    path: '/services/{service}/failover',
    tag: 'failover',
    summary: 'Failover order and shares per client region',
    scope: 'read',
    params: { service: serviceParam },
    query: {
      down: {
        schema: downSchema,
        description: 'What-if: cluster names, comma-separated, to answer as if they were down.',
        example: 'ew1',
      },
    },
    responses: [
      {
        status: 200,
        description:
          "For every client region, the clusters in failover order with `share` (percent), `level`, `levelReason`, `health` and `reason`; `summary` per region; `zones` and `zoneSummary` per client zone; `ejectedHere` (this instance's ejections).",
        media: JSON_MEDIA,
      },
    ],
    problems: ['not-found'],
  },
  {
    id: 'explain',
    method: 'post',
    path: '/explain',
    tag: 'explain',
    summary: 'Explain the routing decision for a described request',
    description:
      'Give `clientRegion`, or `clientLocation` as `"lat,lon"` (or `{"lat", "lon"}`), and optionally `clientZone`; `requestId` reproduces a mirror sample.',
    scope: 'read',
    body: {
      name: 'ExplainRequest',
      schema: explainSchema,
      description: 'The request to explain.',
      example: {
        host: 'shop.example.com',
        method: 'GET',
        path: '/api/cart?debug=1',
        headers: { 'x-test-user': 'true' },
        clientRegion: 'eu-west1',
      },
    },
    responses: [
      {
        status: 200,
        description:
          'The decision step by step: client region and zone and how they were found, each route tried and the condition that failed, the destination, candidate clusters with level, share and health, attempts, fault and mirror decisions, limits.',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'listOverrides',
    method: 'get',
    path: '/overrides',
    tag: 'overrides',
    summary: 'List overrides',
    scope: 'read',
    query: queryFields(listQuery, {
      service: { description: 'Only this service.', example: 'shop' },
      active: { description: 'Only active (`true`) or ended (`false`) ones.', example: 'true' },
      limit: { description: 'At most this many.', example: 100 },
    }),
    responses: [{ status: 200, description: '`{"overrides": [...]}`, newest first.', media: JSON_MEDIA }],
  },
  {
    id: 'getOverride',
    method: 'get',
    path: '/overrides/{id}',
    tag: 'overrides',
    summary: 'Read an override',
    scope: 'read',
    params: { id: { schema: z.string(), description: "The override's id." } },
    responses: [{ status: 200, description: 'The override.', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'createOverride',
    method: 'post',
    path: '/overrides',
    tag: 'overrides',
    summary: 'Drain, pin, hold or freeze, for a while',
    description:
      '`drain` takes `cluster`, `region` or both; `pin` takes `region` and `cluster` (that region\'s clients go to that cluster first while it is healthy); `mirror-percent` and `canary-weight` take `route` and `value` (automation leaves it); `freeze` stops automation for `route` or the whole service. `"force": true` applies one that would strand the service.',
    scope: 'override',
    body: {
      name: 'OverrideCreate',
      schema: overrideSchema,
      description: 'The override.',
      example: { service: 'shop', cluster: 'ew1', action: 'drain', reason: 'bad deploy', ttlSeconds: 600 },
    },
    responses: [{ status: 201, description: 'The override, with `id` and `expiresAt`.', media: JSON_MEDIA }],
    problems: ['not-found', 'conflicting-override', 'would-strand', ...WRITE],
  },
  {
    id: 'endOverride',
    method: 'delete',
    path: '/overrides/{id}',
    tag: 'overrides',
    summary: 'End an override',
    scope: 'override',
    params: { id: { schema: z.string(), description: "The override's id." } },
    query: queryFields(endQuery, {
      reason: {
        description: 'Why it ends early (3-500 characters), said in its `override-ended` event.',
        example: 'drill over',
      },
    }),
    responses: [{ status: 204, description: 'Ended.' }],
    problems: ['not-found', 'already-ended', ...WRITE],
  },
  {
    id: 'runSync',
    method: 'post',
    path: '/sync',
    tag: 'health',
    summary: 'Run the health sync now',
    description: "Flushes this instance's edge reports first. Needs a token for every service (it probes them all).",
    scope: 'override',
    responses: [
      {
        status: 200,
        description:
          'A summary (probed, states, changes, overrides expired, services whose shares moved, history pruned); while another instance runs it, `{"skipped": true, "reason", "holder", "until"}`.',
        media: JSON_MEDIA,
      },
    ],
    problems: WRITE,
  },
  {
    id: 'listEvents',
    method: 'get',
    path: '/events',
    tag: 'health',
    summary: 'What changed and why',
    scope: 'read',
    query: queryFields(eventsQuery, {
      service: { description: 'Only this service.', example: 'shop' },
      after: {
        description: "A poller's cursor: the `next` of the last answer; the events after it, oldest first.",
        example: '120',
      },
      limit: { description: 'At most this many.', example: 100 },
    }),
    responses: [
      {
        status: 200,
        description:
          '`{"events": [...], "next": <id>}`, newest first (oldest first after a cursor): `cluster-state`, `shares`, `override-applied`, `override-ended`, `override-expired`, `mirror-ramp`, `canary`, `latency-order`, `route-pause`, `route-resume`, each with its figures in `detail`.',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'listAudit',
    method: 'get',
    path: '/audit',
    tag: 'audit',
    summary: 'Who changed what, when',
    scope: 'read',
    query: queryFields(auditQuery, {
      target: {
        description: 'Only entries about this target (`services/shop`, `tokens/<id>`...).',
        example: 'services/shop',
      },
      after: {
        description: "A poller's cursor: the `next` of the last answer; the entries after it, oldest first.",
        example: '120',
      },
      limit: { description: 'At most this many.', example: 100 },
    }),
    responses: [
      {
        status: 200,
        description:
          '`{"entries": [...], "next": <id>}`: each with actor, action, target, before and after; newest first.',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'importIstio',
    method: 'post',
    path: '/import/istio',
    tag: 'istio',
    summary: 'Import Istio VirtualServices and DestinationRules',
    description:
      'Sets routes, subsets and policy of services that exist (not origins). Other kinds, VirtualServices bound to ingress gateways only and host `*` are skipped with a warning. The body is read as UTF-8 whatever its content type, up to 1 MB.',
    scope: 'write',
    query: {
      dryRun: {
        schema: dryRunSchema,
        description: '`true` writes nothing and answers what would be.',
        example: 'true',
      },
    },
    body: {
      name: 'IstioYaml',
      schema: z.string(),
      media: ['application/yaml'],
      description: 'One or more documents (networking.istio.io v1, v1beta1, v1alpha3) separated by `---`.',
      example: ISTIO_EXAMPLE,
    },
    responses: [
      {
        status: 200,
        description:
          'Per service, what would be (or was) written: routes with `action` (create, update, unchanged), subsets, policy and failover (null when unchanged); and `warnings` for every field Waymark cannot honour.',
        media: JSON_MEDIA,
      },
    ],
    problems: ['not-found', ...WRITE],
  },
  {
    id: 'listTokens',
    method: 'get',
    path: '/tokens',
    tag: 'tokens',
    summary: "List the team's keys",
    description: 'Needs a token for every service. Keys are never shown again after creation: only their metadata.',
    scope: 'read',
    responses: [
      {
        status: 200,
        description:
          '`{"tokens": [...]}`, newest first: `id`, `name`, `scopes`, `services`, `createdAt`, `createdBy`, `expiresAt`, `revokedAt`, `active`.',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'getToken',
    method: 'get',
    path: '/tokens/{id}',
    tag: 'tokens',
    summary: "Read a key's metadata",
    description: 'Needs a token for every service.',
    scope: 'read',
    params: { id: { schema: z.string(), description: "The key's id." } },
    responses: [{ status: 200, description: 'The key, without its secret.', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'createToken',
    method: 'post',
    path: '/tokens',
    tag: 'tokens',
    summary: 'Create a key',
    description:
      'Needs a token for every service, holding every scope it gives. `services` limits the key to services matching these patterns (`*` matches any characters); `expiresAt` must be in the future.',
    scope: 'write',
    body: {
      name: 'TokenCreate',
      schema: tokenCreateSchema,
      description: 'The key to create.',
      example: {
        name: 'ci-deploy',
        scopes: ['read', 'write'],
        services: ['shop', 'pay-*'],
        expiresAt: '2030-01-01T00:00:00Z',
      },
    },
    responses: [
      {
        status: 201,
        description: "The key's metadata and `key`, its secret (`wmk_...`): shown this once, stored only hashed.",
        media: JSON_MEDIA,
      },
    ],
    problems: WRITE,
  },
  {
    id: 'revokeToken',
    method: 'delete',
    path: '/tokens/{id}',
    tag: 'tokens',
    summary: 'Revoke a key',
    description: 'Holds at once on every instance (keys are read from the store on every request).',
    scope: 'write',
    params: { id: { schema: z.string(), description: "The key's id." } },
    responses: [{ status: 204, description: 'Revoked.' }],
    problems: ['not-found', 'already-revoked', ...WRITE],
  },
  {
    id: 'listWebhooks',
    method: 'get',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'List the alert webhooks',
    description: 'A key limited to some services sees only the webhooks limited to those.',
    scope: 'read',
    responses: [
      {
        status: 200,
        description:
          '`{"webhooks": [...]}`, newest first: `id`, `url`, `events`, `services`, `description`, `createdAt`, `createdBy` (never the secret).',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'getWebhook',
    method: 'get',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Read a webhook',
    scope: 'read',
    params: { id: { schema: z.string(), description: "The webhook's id." } },
    responses: [{ status: 200, description: 'The webhook, without its secret.', media: JSON_MEDIA }],
    problems: ['not-found'],
  },
  {
    id: 'listWebhookDeliveries',
    method: 'get',
    path: '/webhooks/{id}/deliveries',
    tag: 'webhooks',
    summary: "A webhook's delivery log",
    scope: 'read',
    params: { id: { schema: z.string(), description: "The webhook's id." } },
    query: queryFields(deliveriesQuery, { limit: { description: 'At most this many.', example: 100 } }),
    responses: [
      {
        status: 200,
        description:
          '`{"deliveries": [...]}`, newest first: `id`, `alertId`, `eventId`, `kind`, `service`, `status` (`pending`, `delivered`, `failed`), `attempts`, `lastError`, `responseStatus`, `createdAt`, `updatedAt`, `deliveredAt`, `nextAttemptAt`.',
        media: JSON_MEDIA,
      },
    ],
    problems: ['not-found'],
  },
  {
    id: 'createWebhook',
    method: 'post',
    path: '/webhooks',
    tag: 'webhooks',
    summary: 'Send alerts to a URL',
    description:
      'Alerts of the events recorded from now on, of the kinds in `events` (`*`: all), about the services matching `services` (omitted: all; required of a key limited to some services, and within them). Each is a signed JSON POST (`X-Waymark-Signature: sha256=<HMAC-SHA256 of "<timestamp>.<body>">`), retried with exponential backoff.',
    scope: 'write',
    body: {
      name: 'WebhookCreate',
      schema: webhookCreateSchema,
      description: 'The webhook to create.',
      example: {
        url: 'https://hooks.slack.com/services/T000/B000/XXXX',
        events: ['cluster-state', 'override-applied', 'store-unreachable'],
        services: ['shop', 'pay-*'],
        description: 'on-call channel',
      },
    },
    responses: [
      {
        status: 201,
        description: 'The webhook and `secret`, which signs its deliveries: shown this once.',
        media: JSON_MEDIA,
      },
    ],
    problems: WRITE,
  },
  {
    id: 'deleteWebhook',
    method: 'delete',
    path: '/webhooks/{id}',
    tag: 'webhooks',
    summary: 'Delete a webhook',
    description: 'Its delivery log goes with it.',
    scope: 'write',
    params: { id: { schema: z.string(), description: "The webhook's id." } },
    responses: [{ status: 204, description: 'Deleted.' }],
    problems: ['not-found', ...WRITE],
  },
  {
    id: 'testWebhook',
    method: 'post',
    path: '/webhooks/{id}/test',
    tag: 'webhooks',
    summary: 'Send a test alert now',
    description: 'One attempt, no retry; logged like any delivery.',
    scope: 'write',
    params: { id: { schema: z.string(), description: "The webhook's id." } },
    responses: [
      {
        status: 200,
        description: 'The delivery as logged: `status`, `responseStatus`, `lastError`.',
        media: JSON_MEDIA,
      },
    ],
    problems: ['not-found'],
  },
  {
    id: 'applyConfig',
    method: 'post',
    path: '/config',
    tag: 'config',
    summary: 'Diff and apply the configuration document',
    description:
      'Answers the diff (create, update, delete, unchanged, and each changed field old -> new) and applies it in one transaction as one new version, unless `dryRun`. Objects the document leaves out are kept unless `prune`. Up to 16 MiB.',
    scope: 'write',
    query: queryFields(applyQuerySchema, {
      dryRun: { description: '`true` writes nothing and answers the diff.', example: 'true' },
      prune: { description: '`true` deletes what the document leaves out.', example: 'false' },
      message: { description: 'Why, for the version list.', example: 'add the eu cluster' },
    }),
    headers: {
      'If-Match': {
        schema: ifMatchSchema,
        description: 'The version the diff was made against (the ETag GET /config answered): 412 if it moved since.',
        example: '"12"',
      },
    },
    body: {
      name: 'ConfigDocument',
      schema: configDocumentSchema,
      media: DOCUMENT_MEDIA,
      description: 'The whole configuration: every service with its clusters and routes, in YAML or JSON.',
      example: {
        apiVersion: 'waymark/v1',
        kind: 'Config',
        services: [{ name: 'shop', ...SERVICE_EXAMPLE, clusters: [{ name: 'ew1', ...CLUSTER_EXAMPLE }], routes: [] }],
      },
    },
    responses: [
      {
        status: 200,
        description:
          '`{"dryRun", "version", "changes": [...], "summary": {"create", "update", "delete", "unchanged"}}`.',
        media: JSON_MEDIA,
        headers: { ETag: 'The configuration version after the apply.' },
      },
    ],
    problems: ['precondition-failed', 'host-taken', 'would-strand', ...WRITE],
  },
  {
    id: 'exportConfig',
    method: 'get',
    path: '/config',
    tag: 'config',
    summary: 'Export the configuration document',
    description:
      'YAML with `Accept: application/yaml`, JSON otherwise; what it answers can be sent back to POST /config.',
    scope: 'read',
    responses: [
      {
        status: 200,
        description: 'The configuration document.',
        media: DOCUMENT_MEDIA,
        schemaRef: 'ConfigDocument',
        headers: { ETag: 'The configuration version, for If-Match.' },
      },
    ],
  },
  {
    id: 'listConfigVersions',
    method: 'get',
    path: '/config/versions',
    tag: 'config',
    summary: 'List configuration versions',
    scope: 'read',
    query: { limit: { schema: limitSchema, description: 'At most this many, newest first.', example: 20 } },
    responses: [
      {
        status: 200,
        description: '`{"versions": [...]}`: number, actor, time and message of each.',
        media: JSON_MEDIA,
      },
    ],
  },
  {
    id: 'getConfigVersion',
    method: 'get',
    path: '/config/versions/{version}',
    tag: 'config',
    summary: 'The configuration document at a version',
    description: 'YAML with `Accept: application/yaml`, JSON otherwise.',
    scope: 'read',
    params: { version: { schema: versionSchema, description: 'The version number.', example: 3 } },
    responses: [
      {
        status: 200,
        description: 'The configuration document as it was at that version.',
        media: DOCUMENT_MEDIA,
        schemaRef: 'ConfigDocument',
        headers: { ETag: 'That version.' },
      },
    ],
    problems: ['not-found'],
  },
  {
    id: 'rollbackConfig',
    method: 'post',
    path: '/config/rollback',
    tag: 'config',
    summary: 'Roll the configuration back to a version',
    description: 'Applies the document at that version, pruning what came after, as a new version of its own.',
    scope: 'write',
    body: {
      name: 'ConfigRollback',
      schema: rollbackSchema,
      description: 'The version to go back to, and why.',
      example: { version: 3, reason: 'the eu cluster misbehaves' },
    },
    responses: [{ status: 200, description: 'The diff applied, as POST /config answers it.', media: JSON_MEDIA }],
    problems: ['not-found', 'host-taken', 'would-strand', ...WRITE],
  },
  {
    id: 'openApiDocument',
    method: 'get',
    path: '/openapi.json',
    tag: 'reference',
    summary: 'This document',
    description:
      'Needs no token: it describes the API, as the README does, and holds no data. Where WAYMARK_ADMIN_HOSTS is set it answers on those hosts only, like the rest of the admin surface.',
    scope: null,
    responses: [{ status: 200, description: 'The OpenAPI 3.1 document.', media: JSON_MEDIA }],
  },
];

/** The resource groups of the reference, in order, with a line each. */
const TAGS: readonly { name: string; description: string }[] = [
  { name: 'services', description: 'Services: hosts, subsets, failover rules and policy.' },
  {
    name: 'clusters',
    description: "A service's clusters: where its origins are, their weights, labels and health checks.",
  },
  {
    name: 'routes',
    description: 'Ordered rules, first match wins: destinations, mirrors, canaries, faults, retries, limits.',
  },
  { name: 'failover', description: 'Where traffic goes per client region, and what-ifs.' },
  { name: 'explain', description: 'The decision the edges would make for a request, step by step.' },
  { name: 'overrides', description: "An operator's decision that beats computed data, with a reason and a TTL." },
  { name: 'health', description: 'The health sync and the events it records.' },
  { name: 'audit', description: 'Every write: who, what, when, before and after.' },
  { name: 'istio', description: 'Import from Istio VirtualServices and DestinationRules.' },
  { name: 'tokens', description: "The team's keys: scoped, optionally limited to services, expiring, revocable." },
  { name: 'webhooks', description: 'Alerts: signed JSON POSTs of what changed, retried, with a delivery log.' },
  { name: 'config', description: 'The whole configuration as one versioned document.' },
  { name: 'reference', description: 'This reference.' },
];

/**
 * The problems an endpoint can answer: every guarded one can be off (no token configured), refuse the
 * token, or find the store unreachable while looking a key up; any input can be invalid; any body too big.
 */
function problemCodes(endpoint: Endpoint): ProblemCode[] {
  const codes = new Set<ProblemCode>(endpoint.problems ?? []);
  if (endpoint.scope !== null)
    for (const code of ['unauthorized', 'forbidden', 'admin-disabled', 'store-unavailable'] as const) codes.add(code);
  if (endpoint.params || endpoint.query || endpoint.headers || endpoint.body) codes.add('invalid-request');
  if (endpoint.body) codes.add('payload-too-large');
  codes.add('internal');
  return PROBLEM_CODES.filter((code) => codes.has(code));
}

/** A JSON Schema object (2020-12), as zod writes it. */
export type JsonSchema = { [key: string]: unknown };

export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  description: string;
  schema: JsonSchema;
  example?: unknown;
}

interface OpenApiMedia {
  /** Absent where the answer is described in words only. */
  schema?: JsonSchema;
  example?: unknown;
}

interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description: string; schema: JsonSchema }>;
  content?: Record<string, OpenApiMedia>;
  'x-waymark-problem-codes'?: ProblemCode[];
}

export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  security: Record<string, string[]>[];
  'x-waymark-scope': Scope | null;
  parameters?: OpenApiParameter[];
  requestBody?: { required: true; description: string; content: Record<string, OpenApiMedia> };
  responses: Record<string, OpenApiResponse>;
}

export interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string; description: string };
  jsonSchemaDialect: string;
  servers: { url: string; description: string }[];
  tags: { name: string; description: string }[];
  paths: Record<string, Partial<Record<Method, OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; description: string }>;
  };
}

const SECURITY_SCHEME = 'bearer';
const PROBLEM_MEDIA = 'application/problem+json';

/** Formats JSON Schema defines; zod also writes its own (`starts_with`), which mean nothing to other tools. */
const JSON_SCHEMA_FORMATS = new Set([
  'date-time',
  'date',
  'time',
  'duration',
  'email',
  'idn-email',
  'hostname',
  'idn-hostname',
  'ipv4',
  'ipv6',
  'uri',
  'uri-reference',
  'iri',
  'iri-reference',
  'uuid',
  'uri-template',
  'json-pointer',
  'relative-json-pointer',
  'regex',
]);

/** A zod schema as JSON Schema 2020-12: what a client sends (`input`) or receives (`output`). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    io,
    target: 'draft-2020-12',
    // Refinements and transforms have no JSON Schema: the shape before them is what a client sends.
    unrepresentable: 'any',
  }) as JsonSchema;
  return tidy(rest) as JsonSchema;
}

function tidy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(tidy);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, v]) => !(key === 'format' && typeof v === 'string' && !JSON_SCHEMA_FORMATS.has(v)))
      .map(([key, v]) => [key, tidy(v)]),
  );
}

const ref = (name: string): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

function parameters(endpoint: Endpoint): OpenApiParameter[] {
  const named = endpoint.path.match(/\{[^}]+\}/g)?.map((p) => p.slice(1, -1)) ?? [];
  const declared = Object.keys(endpoint.params ?? {});
  if (named.join() !== declared.join())
    throw new Error(`${endpoint.id}: path ${endpoint.path} names {${named.join('}, {')}} but params are ${declared}`);
  const out: OpenApiParameter[] = [];
  const add = (where: OpenApiParameter['in'], fields: Record<string, Field> | undefined) => {
    for (const [name, field] of Object.entries(fields ?? {})) {
      out.push({
        name,
        in: where,
        required: where === 'path' || !field.schema.safeParse(undefined).success,
        description: field.description,
        schema: jsonSchema(field.schema, 'input'),
        ...(field.example !== undefined ? { example: field.example } : {}),
      });
    }
  };
  add('path', endpoint.params);
  add('query', endpoint.query);
  add('header', endpoint.headers);
  return out;
}

function responses(endpoint: Endpoint): Record<string, OpenApiResponse> {
  const out: Record<string, OpenApiResponse> = {};
  for (const answer of endpoint.responses) {
    out[String(answer.status)] = {
      description: answer.description,
      ...(answer.headers ? { headers: headerObjects(answer.headers) } : {}),
      ...(answer.media
        ? {
            content: Object.fromEntries(
              answer.media.map((m) => [m, answer.schemaRef ? { schema: ref(answer.schemaRef) } : {}]),
            ),
          }
        : {}),
    };
  }
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of problemCodes(endpoint)) {
    const { status } = problemInfo(code);
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Record<string, string> = {};
    if (codes.includes('unauthorized')) headers['WWW-Authenticate'] = '`Bearer realm="waymark"` (401 only).';
    if (codes.includes('store-unavailable')) headers['Retry-After'] = 'Seconds to wait (store-unavailable only).';
    out[String(status)] = {
      description: codes.map((code) => `\`${code}\`: ${problemInfo(code).title}`).join('; '),
      ...(Object.keys(headers).length ? { headers: headerObjects(headers) } : {}),
      content: {
        [PROBLEM_MEDIA]: { schema: { allOf: [ref('Problem'), { properties: { code: { enum: codes } } }] } },
      },
      'x-waymark-problem-codes': codes,
    };
  }
  return out;
}

function headerObjects(headers: Record<string, string>): Record<string, { description: string; schema: JsonSchema }> {
  return Object.fromEntries(
    Object.entries(headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }]),
  );
}

/** Builds the OpenAPI 3.1 document of `endpoints`; throws on a registry mistake (a bug, caught by the tests). */
export function buildOpenApiDocument(endpoints: readonly Endpoint[] = ENDPOINTS): OpenApiDocument {
  const schemas: Record<string, JsonSchema> = { Problem: jsonSchema(problemDocumentSchema, 'output') };
  const bodies = new Map<string, z.ZodType>();
  const paths: OpenApiDocument['paths'] = {};
  for (const endpoint of endpoints) {
    const { body } = endpoint;
    if (body) {
      const known = bodies.get(body.name);
      if (known && known !== body.schema) throw new Error(`${endpoint.id}: schema name ${body.name} is taken`);
      bodies.set(body.name, body.schema);
      schemas[body.name] = jsonSchema(body.schema, 'input');
    }
    const item = (paths[endpoint.path] ??= {});
    if (item[endpoint.method]) throw new Error(`${endpoint.method} ${endpoint.path} is in the registry twice`);
    const params = parameters(endpoint);
    item[endpoint.method] = {
      operationId: endpoint.id,
      summary: endpoint.summary,
      ...(endpoint.description ? { description: endpoint.description } : {}),
      tags: [endpoint.tag],
      security: endpoint.scope === null ? [] : [{ [SECURITY_SCHEME]: [endpoint.scope] }],
      'x-waymark-scope': endpoint.scope,
      ...(params.length ? { parameters: params } : {}),
      ...(body
        ? {
            requestBody: {
              required: true,
              description: body.description,
              content: Object.fromEntries(
                (body.media ?? JSON_MEDIA).map((m) => [
                  m,
                  { schema: ref(body.name), ...(body.example !== undefined ? { example: body.example } : {}) },
                ]),
              ),
            },
          }
        : {}),
      responses: responses(endpoint),
    };
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'Waymark admin API',
      version: 'v1',
      description:
        'Configure services, clusters and routes; drain, pin and hold with overrides; explain decisions; read events and the audit log. Every error is an RFC 9457 problem document with a `code` from a closed set.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [
      { url: API_BASE_PATH, description: 'This Waymark (on the admin hosts, where WAYMARK_ADMIN_HOSTS is set).' },
    ],
    tags: [...TAGS],
    paths,
    components: {
      schemas,
      securitySchemes: {
        [SECURITY_SCHEME]: {
          type: 'http',
          scheme: 'bearer',
          description: `A settings token or a stored key (\`wmk_...\`). Each operation names the scope it needs (${SCOPES.join(', ')}) in its security requirement and in \`x-waymark-scope\`.`,
        },
      },
    },
  };
}

let built: OpenApiDocument | undefined;

/** The document, built on first use (not at start: a Worker isolate that never serves it never pays for it). */
export function openApiDocument(): OpenApiDocument {
  built ??= buildOpenApiDocument();
  return built;
}

/** `GET /openapi.json`: the document, without a token (it describes the API and holds no data). */
export function registerOpenApiRoutes(api: Hono<AppEnv>): void {
  api.get('/openapi.json', (c) => c.json(openApiDocument()));
}
