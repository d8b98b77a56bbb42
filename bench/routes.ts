import { compileSnapshot } from '../src/routing/compile.js';
import type { RequestView } from '../src/routing/match.js';
import { seededRandom } from '../src/routing/random.js';
import type { RequestFacts, RouteMatch, RouteSpec, ServiceSpec, SnapshotSource } from '../src/routing/types.js';
import { buildSource, COMPILE_NOW, measure, type DecisionOptions, type Timing } from './decisions.js';

export const ROUTES_PER_SERVICE = 50;
export const ROUTE_SERVICES = Number(process.env.BENCH_ROUTE_SERVICES ?? 1_000);

/**
 * 50 routes per service, like a busy VirtualService: path prefixes and exact paths, header and query
 * matches, 10 regex paths; weighted v1/v2 destinations; the last route catches everything else.
 */
export function benchRoutes(): RouteSpec[] {
  const routes: RouteSpec[] = [];
  const split = [
    { subset: { version: 'v1' }, weight: 90 },
    { subset: { version: 'v2' }, weight: 10 },
  ];
  for (let i = 0; i < ROUTES_PER_SERVICE - 1; i++) {
    const match: RouteMatch =
      i % 5 === 0
        ? { path: { regex: `/api/v${i}/items/[0-9]+(/reviews)?` } }
        : i % 5 === 1
          ? { path: { exact: `/exact/${i}` }, methods: ['GET', 'HEAD'] }
          : i % 5 === 2
            ? { path: { prefix: `/svc${i}/` }, headers: { 'x-tenant': { exact: `tenant-${i}` } } }
            : i % 5 === 3
              ? { headers: { 'x-canary-user': { regex: `user-${i}-[a-f0-9]{4}` } } }
              : { path: { prefix: `/q${i}` }, query: { debug: { present: true as const } } };
    routes.push({ name: `r${i}`, order: i, match, destinations: split });
  }
  routes.push({ name: 'default', order: 1_000, match: {}, destinations: split });
  return routes;
}

const PATHS = [
  '/',
  '/index.html',
  '/api/v5/items/42',
  '/exact/11',
  '/svc12/orders',
  '/q14?debug=1',
  '/static/app.js',
  '/api/v40/items/7/reviews',
  '/checkout',
  '/account/settings',
];

function withRequests(facts: RequestFacts[], seed: number): RequestFacts[] {
  const r = seededRandom(seed);
  return facts.map((f, i) => {
    const path = PATHS[Math.floor(r() * PATHS.length)] as string;
    const q = path.indexOf('?');
    const headers = new Map<string, string>([['accept', '*/*']]);
    if (r() < 0.1) headers.set('x-tenant', 'tenant-12');
    if (r() < 0.05) headers.set('x-canary-user', 'user-23-beef');
    const request: RequestView = {
      method: r() < 0.9 ? 'GET' : 'POST',
      path: q < 0 ? path : path.slice(0, q),
      query: q < 0 ? '' : path.slice(q + 1),
      header: (name) => headers.get(name) ?? null,
    };
    return { ...f, request, sampleKey: `req-${i}` };
  });
}

export interface RouteBenchResult {
  services: number;
  routesPerService: number;
  noRoutes: Timing;
  withRoutes: Timing;
  /** p50 and p99 of decisions with 50 routes over those without (target: within 2x). */
  p50Ratio: number;
  p99Ratio: number;
  /** The same when every service's routes have text of their own (no compiled match is shared). */
  distinct: Timing;
  distinctP50Ratio: number;
  distinctP99Ratio: number;
}

/** Decision cost for the same services and requests with no routes, then with 50 routes each (regex included). */
export function benchRouteMatching(
  options: DecisionOptions,
  facts: (source: SnapshotSource) => RequestFacts[],
): RouteBenchResult {
  const plain = buildSource(ROUTE_SERVICES, 21);
  const routed: SnapshotSource = {
    ...plain,
    services: plain.services.map((s): ServiceSpec => ({ ...s, routes: benchRoutes() })),
  };
  const requests = withRequests(facts(plain), 5);
  const noRoutes = measure(compileSnapshot(plain, COMPILE_NOW), requests, seededRandom(99), options);
  const withRoutes = measure(compileSnapshot(routed, COMPILE_NOW), requests, seededRandom(99), options);
  const own: SnapshotSource = {
    ...plain,
    services: plain.services.map(
      (s, k): ServiceSpec => ({
        ...s,
        routes: benchRoutes().map((r) => ({
          ...r,
          match: JSON.parse(
            JSON.stringify(r.match)
              .replaceAll('/api/v', `/api${k}/v`)
              .replaceAll('tenant-', `t${k}-`)
              .replaceAll('user-', `u${k}-`),
          ),
        })),
      }),
    ),
  };
  const distinct = measure(compileSnapshot(own, COMPILE_NOW), requests, seededRandom(99), options);
  return {
    distinct,
    distinctP50Ratio: distinct.p50Us / noRoutes.p50Us,
    distinctP99Ratio: distinct.p99Us / noRoutes.p99Us,
    services: ROUTE_SERVICES,
    routesPerService: ROUTES_PER_SERVICE,
    noRoutes,
    withRoutes,
    p50Ratio: withRoutes.p50Us / noRoutes.p50Us,
    p99Ratio: withRoutes.p99Us / noRoutes.p99Us,
  };
}
