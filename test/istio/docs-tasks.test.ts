import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SimpleResponse } from '../../scripts/http-client.js';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { dbState } from '../api/api-support.js';
import { clusterBody } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';
import {
  BOOKINFO_ALL_V1,
  BOOKINFO_DESTINATION_RULES,
  BOOKINFO_INGRESS,
  HTTPBIN_CIRCUIT_BREAKER,
  HTTPBIN_MIRROR_V2,
  HTTPBIN_V1,
  RATINGS_DELAY_2S,
  RATINGS_JASON_ABORT_500,
  RATINGS_JASON_DELAY_7S,
  REVIEWS_HALF_V1_HALF_V3,
  REVIEWS_JASON_V2,
  REVIEWS_V2,
  REVIEWS_V2_TIMEOUT_HALF_SECOND,
  REVIEWS_V3,
} from './docs-tasks-fixtures.js';

/**
 * Istio's traffic-management tasks, step by step as the docs run them: the DestinationRules applied
 * once, then each VirtualService in a `kubectl apply` of its own (here: a POST /import/istio each),
 * checked through requests proxied to real upstreams labelled by version. Origins do not come from
 * Istio, so each service and its clusters are created with the admin API first.
 */

/** The services of the tasks, with the versions each runs (one upstream, one cluster, per version). */
const VERSIONS = {
  productpage: ['v1'],
  reviews: ['v1', 'v2', 'v3'],
  ratings: ['v1', 'v2'],
  details: ['v1'],
  httpbin: ['v1', 'v2'],
} as const;
type ServiceName = keyof typeof VERSIONS;

const EU = { 'x-waymark-client-region': 'eu-west1' };
const JASON = { ...EU, 'end-user': 'jason' };
const host = (service: ServiceName) => `${service}.bookinfo.test`;

let server: TestServer;
/** Upstreams by cluster name, like `reviews-v2`. */
let up: Record<string, Upstream>;

beforeEach(async () => {
  const clusters = Object.entries(VERSIONS).flatMap(([service, versions]) =>
    versions.map((version) => ({ service, version, name: `${service}-${version}` })),
  );
  const started = await Promise.all(clusters.map((c) => startUpstream(c.name, 'eu-west1')));
  up = Object.fromEntries(started.map((u) => [u.name, u]));
  server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '3000' });
  for (const service of Object.keys(VERSIONS) as ServiceName[]) {
    const res = await server.admin('PUT', `/services/${service}`, { hosts: [host(service)] });
    expect(res.status, res.body).toBe(201);
  }
  for (const c of clusters) {
    const res = await server.admin(
      'PUT',
      `/services/${c.service}/clusters/${c.name}`,
      clusterBody('eu-west1', up[c.name]!.url, { labels: { version: c.version } }),
    );
    expect(res.status, res.body).toBe(201);
  }
});

afterEach(async () => {
  await server.close();
  await Promise.all(Object.values(up).map((u) => u.stop()));
});

/** One `kubectl apply -f`: the import answers 200; its body (services, warnings) is returned. */
async function apply(
  yaml: string,
): Promise<{ services: { name: string; routes: { name: string; action: string }[] }[]; warnings: string[] }> {
  const res = await server.admin('POST', '/import/istio', yaml);
  expect(res.status, res.body).toBe(200);
  return res.json;
}

/** `n` requests to a service, counted by the cluster that answered. */
async function servedBy(
  service: ServiceName,
  n: number,
  headers: Record<string, string> = EU,
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let batch = 0; batch < n; batch += 20) {
    const answers = await Promise.all(
      Array.from({ length: Math.min(20, n - batch) }, (_, i) =>
        server.request(host(service), `/${service}/${batch + i}`, { headers }),
      ),
    );
    for (const a of answers) {
      expect(a.status, a.body).toBe(200);
      counts[a.json.cluster] = (counts[a.json.cluster] ?? 0) + 1;
    }
  }
  return counts;
}

async function timed(send: () => Promise<SimpleResponse>): Promise<{ res: SimpleResponse; ms: number }> {
  const started = performance.now();
  const res = await send();
  return { res, ms: performance.now() - started };
}

describe('request routing (destination-rule-all, then virtual-service-all-v1, then reviews-test-v2)', () => {
  it('each step imports on its own and routes as the task says', async () => {
    // 1. The DestinationRules alone: kept as the services' subsets, with nothing to warn about.
    const rules = await apply(BOOKINFO_DESTINATION_RULES);
    expect(rules.warnings).toEqual([]);
    expect(rules.services.map((s) => s.name)).toEqual(['productpage', 'reviews', 'ratings', 'details']);
    expect((await server.admin('GET', '/services/reviews')).json.subsets).toEqual({
      v1: { version: 'v1' },
      v2: { version: 'v2' },
      v3: { version: 'v3' },
    });
    expect(Object.keys((await server.admin('GET', '/services/ratings')).json.subsets)).toEqual([
      'v1',
      'v2',
      'v2-mysql',
      'v2-mysql-vm',
    ]);
    // Subsets route nothing by themselves: reviews still spreads over every version.
    expect(Object.keys(await servedBy('reviews', 60)).sort()).toEqual(['reviews-v1', 'reviews-v2', 'reviews-v3']);

    // 2. Every service to v1, the subsets named by the VirtualServices resolved against the stored ones.
    const allV1 = await apply(BOOKINFO_ALL_V1);
    expect(allV1.warnings).toEqual([]);
    for (const service of ['productpage', 'reviews', 'ratings', 'details'] as const) {
      expect(await servedBy(service, 20)).toEqual({ [`${service}-v1`]: 20 });
    }

    // Applying the same file again changes nothing: no revision bump, no audit entry.
    const before = await dbState(server.db);
    const again = await apply(BOOKINFO_ALL_V1);
    expect(again.services.flatMap((s) => s.routes.map((r) => r.action))).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
      'unchanged',
    ]);
    expect(await dbState(server.db)).toEqual(before);

    // 3. The user jason sees reviews v2; everyone else v1.
    const jason = await apply(REVIEWS_JASON_V2);
    expect(jason.warnings).toEqual([]);
    expect(await servedBy('reviews', 20, JASON)).toEqual({ 'reviews-v2': 20 });
    expect(await servedBy('reviews', 20, { ...EU, 'end-user': 'kim' })).toEqual({ 'reviews-v1': 20 });
    expect(await servedBy('reviews', 20)).toEqual({ 'reviews-v1': 20 });
    expect((await server.request(host('reviews'), '/', { headers: JASON })).headers['x-waymark-route']).toBe(
      'reviews-0',
    );
  });
});

describe('fault injection (virtual-service-all-v1 and reviews-test-v2, then ratings-test-delay, then ratings-test-abort)', () => {
  beforeEach(async () => {
    for (const step of [BOOKINFO_DESTINATION_RULES, BOOKINFO_ALL_V1, REVIEWS_JASON_V2]) await apply(step);
  });

  it("jason's calls to ratings wait 7 s; everyone else's do not", { timeout: 30_000 }, async () => {
    expect((await apply(RATINGS_JASON_DELAY_7S)).warnings).toEqual([]);
    const slow = timed(() => server.request(host('ratings'), '/ratings/0', { headers: JASON }));
    const quick = await timed(() => server.request(host('ratings'), '/ratings/0', { headers: EU }));
    expect(quick.res.status).toBe(200);
    expect(quick.res.headers['x-waymark-fault']).toBeUndefined();
    expect(quick.ms).toBeLessThan(1_000);
    const { res, ms } = await slow;
    expect(res.status).toBe(200);
    expect(res.json.cluster).toBe('ratings-v1');
    expect(res.headers['x-waymark-fault']).toBe('delay');
    expect(ms).toBeGreaterThanOrEqual(6_950);
    expect(ms).toBeLessThan(9_000);
  });

  it("jason's calls to ratings fail with 500 without reaching it; everyone else's reach ratings v1", async () => {
    expect((await apply(RATINGS_JASON_ABORT_500)).warnings).toEqual([]);
    for (let i = 0; i < 10; i++) {
      const res = await server.request(host('ratings'), `/ratings/${i}`, { headers: JASON });
      expect(res.status).toBe(500);
      expect(res.headers['x-waymark-fault']).toBe('abort');
      expect(res.headers['x-waymark-route']).toBe('ratings-0');
    }
    expect(up['ratings-v1']!.served + up['ratings-v2']!.served).toBe(0);
    expect(await servedBy('ratings', 10)).toEqual({ 'ratings-v1': 10 });
  });
});

describe('traffic shifting (virtual-service-all-v1, then reviews 50% v1 / 50% v3, then reviews v3)', () => {
  it('moves reviews from v1 to an even split with v3, then to v3 alone', async () => {
    await apply(BOOKINFO_DESTINATION_RULES);
    await apply(BOOKINFO_ALL_V1);
    expect(await servedBy('reviews', 20)).toEqual({ 'reviews-v1': 20 });

    expect((await apply(REVIEWS_HALF_V1_HALF_V3)).warnings).toEqual([]);
    const N = 400;
    const split = await servedBy('reviews', N);
    expect(split['reviews-v2']).toBeUndefined();
    expect((split['reviews-v1'] ?? 0) + (split['reviews-v3'] ?? 0)).toBe(N);
    // The server draws from a seeded random source: a fair 50/50 over 400 requests stays within 7 points.
    expect(Math.abs((split['reviews-v3'] ?? 0) / N - 0.5)).toBeLessThan(0.07);

    expect((await apply(REVIEWS_V3)).warnings).toEqual([]);
    expect(await servedBy('reviews', 20)).toEqual({ 'reviews-v3': 20 });
  });
});

describe('request timeouts (virtual-service-all-v1, then reviews v2, then ratings delayed 2 s, then a 0.5 s timeout on reviews)', () => {
  it('reviews v2 answers until a 0.5 s timeout cuts its slow answers off with a 504 naming the limit', {
    timeout: 30_000,
  }, async () => {
    await apply(BOOKINFO_DESTINATION_RULES);
    await apply(BOOKINFO_ALL_V1);

    expect((await apply(REVIEWS_V2)).warnings).toEqual([]);
    expect(await servedBy('reviews', 20)).toEqual({ 'reviews-v2': 20 });

    expect((await apply(RATINGS_DELAY_2S)).warnings).toEqual([]);
    const delayed = await timed(() => server.request(host('ratings'), '/ratings/0', { headers: EU }));
    expect(delayed.res.status).toBe(200);
    expect(delayed.res.json.cluster).toBe('ratings-v1');
    expect(delayed.res.headers['x-waymark-fault']).toBe('delay');
    expect(delayed.ms).toBeGreaterThanOrEqual(1_950);

    // Reviews v2 calls ratings for every answer, so it now takes the 2 s ratings delay too.
    up['reviews-v2']!.delayMs = 2_000;
    expect((await apply(REVIEWS_V2_TIMEOUT_HALF_SECOND)).warnings).toEqual([]);
    const { res, ms } = await timed(() => server.request(host('reviews'), '/reviews/0', { headers: EU }));
    expect(res.status).toBe(504);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['x-waymark-route']).toBe('reviews-0');
    expect(res.json.code).toBe('upstream-deadline');
    expect(res.json.detail).toContain("the route's 500 ms deadline passed");
    expect(ms).toBeGreaterThanOrEqual(490);
    expect(ms).toBeLessThan(1_500);
  });
});

describe('mirroring (httpbin v1 with its DestinationRule, then a 100% mirror to v2)', () => {
  it('v1 answers every request; after the second step v2 gets a copy of each, marked x-waymark-mirror: 1', async () => {
    expect((await apply(HTTPBIN_V1)).warnings).toEqual([]);
    expect(await servedBy('httpbin', 10)).toEqual({ 'httpbin-v1': 10 });
    expect(up['httpbin-v2']!.served).toBe(0);

    expect((await apply(HTTPBIN_MIRROR_V2)).warnings).toEqual([]);
    expect(await servedBy('httpbin', 10)).toEqual({ 'httpbin-v1': 10 });
    await eventually(() => up['httpbin-v2']!.served === 10);
    expect(up['httpbin-v2']!.lastRequest?.headers['x-waymark-mirror']).toBe('1');
    expect(up['httpbin-v1']!.lastRequest?.headers['x-waymark-mirror']).toBeUndefined();
  });
});

describe('circuit breaking (httpbin DestinationRule with a connection pool, no VirtualService)', () => {
  it('the pool limit (1 connection + 1 pending = 2 in flight per cluster) holds for every request of the service: the rest get 503 at once', async () => {
    const result = await apply(HTTPBIN_CIRCUIT_BREAKER);
    expect(result.warnings.join('\n')).toContain("becomes the service's policy.maxConcurrent 2");
    const stored = await server.admin('GET', '/services/httpbin');
    expect(stored.json.policy).toMatchObject({
      maxConcurrent: 2,
      outlierDetection: { consecutiveFailures: 1, intervalMs: 1_000, baseEjectionMs: 180_000, maxEjectionPercent: 100 },
    });
    await server.runtime.snapshots.refresh();
    // Slow answers keep requests in flight: 10 at once over two clusters can have at most 4 admitted.
    for (const name of ['httpbin-v1', 'httpbin-v2']) up[name]!.delayMs = 400;
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, i) => server.request(host('httpbin'), `/get/${i}`, { headers: EU })),
    );
    const ok = answers.filter((a) => a.status === 200);
    const overflow = answers.filter((a) => a.status === 503);
    expect(ok.length).toBeGreaterThan(0);
    expect(ok.length).toBeLessThanOrEqual(4);
    expect(ok.length + overflow.length).toBe(10);
    expect(overflow[0]?.headers['x-waymark-overflow']).toBe('1');
    expect(overflow[0]?.json.detail).toContain("the service's policy.maxConcurrent 2");
  });
});

describe('the ingress: Gateway and gateway-bound VirtualServices', () => {
  it('bookinfo-gateway alone imports nothing and fails nothing: a warning for each object', async () => {
    const before = await dbState(server.db);
    const res = await apply(BOOKINFO_INGRESS);
    expect(res.services).toEqual([]);
    expect(res.warnings).toEqual([
      'document 1 (networking.istio.io/v1 Gateway bookinfo-gateway) is skipped: Waymark imports networking.istio.io VirtualService and DestinationRule only',
      'VirtualService bookinfo: gateways ("bookinfo-gateway") bind it to ingress gateways, not to the mesh: it is skipped. Waymark imports the mesh\'s VirtualServices (no gateways, or "mesh" among them), one per service host',
    ]);
    expect(await dbState(server.db)).toEqual(before);
  });

  it("in one file with the mesh's resources, the ingress is skipped and the rest imports and routes", async () => {
    const res = await apply(`${BOOKINFO_INGRESS}---\n${BOOKINFO_DESTINATION_RULES}---\n${BOOKINFO_ALL_V1}`);
    expect(res.warnings).toHaveLength(2);
    expect(res.services.map((s) => s.name)).toEqual(['productpage', 'reviews', 'ratings', 'details']);
    expect(await servedBy('productpage', 10)).toEqual({ 'productpage-v1': 10 });
  });
});
