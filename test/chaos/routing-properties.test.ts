import { writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { compileSnapshot as compileOnce } from '../../src/routing/compile.js';
import { affinityKey, decide as decideOnce, matchRoute, pickDestination } from '../../src/routing/decide.js';
import type { RequestView } from '../../src/routing/match.js';
import { failoverMatrix, planEntries, type MatrixEntry } from '../../src/routing/matrix.js';
import { resolvePolicy } from '../../src/routing/policy.js';
import { seededRandom } from '../../src/routing/random.js';
import { clusterShares } from '../../src/routing/shares.js';
import type {
  Cluster,
  ClusterHealth,
  CompiledRoute,
  CompiledService,
  OverrideSpec,
  RandomSource,
  RequestFacts,
  RoutePlan,
  RouteSpec,
  ServiceSpec,
  Snapshot,
  SnapshotSource,
  SubsetRef,
} from '../../src/routing/types.js';
import { type AT, cluster, service } from '../routing/fixtures.js';

// Issue 14, scenario 7: the routing core's invariants over random snapshots. Every property runs with a
// fixed seed and a bounded number of runs, so a run is repeatable and a failure prints a seed and path
// that replay it (`fc.assert(..., { seed, path })`).
/** FUZZ_SEED lets `npm run chaos` hunt with its own seed (CHAOS_SEED). */
const SEED = Number(process.env.FUZZ_SEED ?? 14_07);
const NOW = 1_700_000_000_000;
const OVERRIDE_TTL_MS = 60_000;
const MAX_ATTEMPTS = 6;
/** Multiplies every property's runs: `npm run chaos` raises it for a longer hunt (see chaos/vitest-row.ts). */
const RUNS_SCALE = Number(process.env.PROPERTY_RUNS_SCALE ?? 1);
const runs = (n: number) => Math.max(1, Math.round(n * RUNS_SCALE));

/** What the properties did, for `npm run chaos`'s row (CHAOS_REPORT): snapshots compiled, routing decisions made. */
const counted = { snapshots: 0, decisions: 0 };
const compileSnapshot: typeof compileOnce = (...args) => {
  counted.snapshots += 1;
  return compileOnce(...args);
};
const decide: typeof decideOnce = (...args) => {
  counted.decisions += 1;
  return decideOnce(...args);
};
afterAll(() => {
  if (process.env.CHAOS_REPORT) writeFileSync(process.env.CHAOS_REPORT, JSON.stringify(counted));
});

/** Four regions with real coordinates (from the fixtures), and one known only by name through a failover rule. */
const REGIONS = ['us-east1', 'us-west1', 'eu-west1', 'ap-southeast1'] as const satisfies readonly (keyof typeof AT)[];
const NAMED_ONLY_REGION = 'mars-1';

/**
 * Keys per split measurement. A destination's (or the mirror's) observed fraction over N independent
 * keys has a standard deviation of sqrt(p(1-p)/N) <= 0.5/sqrt(N), 0.0079 for N = 4,000; the tolerance
 * is 5 of those (0.04), so a correct split fails a single comparison with probability under 1e-6, and
 * the thousands of comparisons a run makes stay far from a false alarm, while a split off by more than
 * four points (a dropped or doubled destination, an off-by-one over the weights) is caught.
 */
const SPLIT_KEYS = 4_000;
const splitTolerance = (n: number) => (5 * 0.5) / Math.sqrt(n);

// --- generators ---------------------------------------------------------------------------------

const subsetArb = fc.constantFrom<SubsetRef>(
  {},
  { version: 'v1' },
  { version: 'v2' },
  { tier: 'gold' },
  'stable',
  'missing',
);

const clusterArb = fc.record({
  region: fc.constantFrom(...REGIONS),
  zone: fc.constantFrom(null, 'z-a', 'z-b', 'z-a/s1'),
  weight: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 })),
  health: fc.constantFrom<ClusterHealth>('healthy', 'unhealthy', 'unknown'),
  version: fc.constantFrom('v1', 'v2', 'v3'),
  gold: fc.boolean(),
});

const routeArb = fc.record({
  destinations: fc
    .array(fc.record({ subset: subsetArb, weight: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1000 })) }), {
      minLength: 1,
      maxLength: 4,
    })
    // The route schema refuses a route whose destinations all weigh 0.
    .filter((ds) => ds.some((d) => d.weight > 0)),
  affinity: fc.constantFrom<'none' | 'cookie' | 'header'>('none', 'cookie', 'header'),
  mirror: fc.option(
    fc.record({
      subset: subsetArb,
      percent: fc.oneof(
        fc.constantFrom(0, 100),
        fc.integer({ min: 0, max: 100 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
      ),
    }),
    { nil: null },
  ),
});

/** An override before it is tied to its service: indexes pick the cluster, region and route it names. */
const overrideArb = fc.record({
  action: fc.constantFrom('drain-cluster', 'drain-region', 'drain-cluster-in-region', 'pin', 'mirror-percent'),
  cluster: fc.nat(),
  regionOf: fc.nat(),
  route: fc.nat(),
  value: fc.integer({ min: 0, max: 100 }),
  // Relative to NOW; an override with expiresAt <= now is no longer in force.
  expiresIn: fc.constantFrom(-1, 0, OVERRIDE_TTL_MS, OVERRIDE_TTL_MS),
});

const serviceArb = fc.record({
  clusters: fc.array(clusterArb, { minLength: 1, maxLength: 12 }),
  policy: fc.option(
    fc.record({
      panicThresholdPercent: fc.oneof(fc.constantFrom(0, 50, 100), fc.integer({ min: 0, max: 100 })),
      failClosed: fc.boolean(),
    }),
    { nil: null },
  ),
  failover: fc.option(
    fc.record({
      from: fc.constantFrom(...REGIONS, NAMED_ONLY_REGION),
      to: fc.uniqueArray(fc.constantFrom(...REGIONS, NAMED_ONLY_REGION), { minLength: 1, maxLength: 2 }),
    }),
    { nil: null },
  ),
  routes: fc.array(routeArb, { maxLength: 3 }),
  overrides: fc.array(overrideArb, { maxLength: 4 }),
});

/**
 * Services built to reach partial fail-closed panic, which uniform draws almost never do: with the
 * threshold at 50, one level must be in panic (under 50% healthy) while another is not and the levels
 * together stay under 100% (Envoy's overprovisioned health), e.g. 1 of 5 healthy next to 1 of 2. So:
 * two regions, several clusters each, mostly unhealthy, any threshold.
 */
const panicServiceArb = fc.record({
  clusters: fc.array(
    fc.record({
      region: fc.constantFrom(REGIONS[0], REGIONS[2]),
      zone: fc.constant(null),
      weight: fc.integer({ min: 1, max: 1000 }),
      health: fc.oneof(fc.constant<ClusterHealth>('unhealthy'), fc.constantFrom<ClusterHealth>('healthy', 'unhealthy')),
      version: fc.constantFrom('v1', 'v2'),
      gold: fc.boolean(),
    }),
    { minLength: 3, maxLength: 12 },
  ),
  policy: fc.record({ panicThresholdPercent: fc.integer({ min: 1, max: 70 }), failClosed: fc.boolean() }),
  failover: fc.constant(null),
  routes: fc.array(routeArb, { maxLength: 1 }),
  overrides: fc.array(overrideArb, { maxLength: 2 }),
});

const sourceArb = fc.array(fc.oneof(serviceArb, panicServiceArb), { minLength: 1, maxLength: 5 }).map(toSource);

type ServiceDraft = typeof serviceArb extends fc.Arbitrary<infer T> ? T : never;

function toSource(drafts: ServiceDraft[]): SnapshotSource {
  const overrides: OverrideSpec[] = [];
  const services = drafts.map((draft, s): ServiceSpec => {
    const name = `s${s}`;
    const clusters = draft.clusters.map((c, i) =>
      cluster(`c${i}`, c.region, {
        zone: c.zone,
        weight: c.weight,
        health: c.health,
        labels: c.gold ? { version: c.version, tier: 'gold' } : { version: c.version },
      }),
    );
    const routes = draft.routes.map(
      (r, k): RouteSpec => ({
        name: `r${k}`,
        order: k,
        // Distinct prefixes (with the slash, so /r1/ never takes /r10/): each route is reachable by its path.
        match: { path: { prefix: `/r${k}/` } },
        destinations: r.destinations,
        ...(r.affinity === 'cookie' ? { affinity: { cookie: 'session' } } : {}),
        ...(r.affinity === 'header' ? { affinity: { header: 'x-user' } } : {}),
        ...(r.mirror ? { mirror: r.mirror } : {}),
      }),
    );
    draft.overrides.forEach((o, j) => {
      const target = clusters[o.cluster % clusters.length] as (typeof clusters)[number];
      const region = (clusters[o.regionOf % clusters.length] as (typeof clusters)[number]).region;
      const base = { id: `${name}-o${j}`, service: name, expiresAt: NOW + o.expiresIn };
      if (o.action === 'drain-cluster')
        overrides.push({ ...base, action: 'drain', cluster: target.name, region: null });
      else if (o.action === 'drain-region') overrides.push({ ...base, action: 'drain', cluster: null, region });
      else if (o.action === 'drain-cluster-in-region')
        overrides.push({ ...base, action: 'drain', cluster: target.name, region });
      else if (o.action === 'pin') overrides.push({ ...base, action: 'pin', cluster: target.name, region });
      else if (routes.length > 0)
        overrides.push({
          ...base,
          action: 'mirror-percent',
          cluster: null,
          region: null,
          route: `r${o.route % routes.length}`,
          value: o.value,
        });
    });
    return service(name, clusters, {
      routes,
      subsets: { stable: { version: 'v1' } },
      failover: draft.failover ? [draft.failover] : [],
      ...(draft.policy ? { policy: resolvePolicy(draft.policy) } : {}),
    });
  });
  return { version: 1, services, overrides };
}

// --- helpers --------------------------------------------------------------------------------------

const active = (source: SnapshotSource, svc: string) =>
  source.overrides.filter((o) => o.service === svc && o.expiresAt > NOW);

/** Whether the active drains cover a cluster, computed from the overrides, not from the compiled flag. */
function drainedByOverrides(source: SnapshotSource, svc: string, name: string, region: string): boolean {
  return active(source, svc).some(
    (o) =>
      o.action === 'drain' && (o.cluster === null || o.cluster === name) && (o.region === null || o.region === region),
  );
}

function compiledServices(snapshot: Snapshot): CompiledService[] {
  return snapshot.source.services.map((s) => snapshot.byName.get(s.name) as CompiledService);
}

/** One client's position: a region (null: unknown) and a zone inside it (null: none). */
interface Client {
  region: string | null;
  zone: string | null;
}

/** Every client routing tells apart for a set of plans: each known region, each of its zone plans, and no region. */
function clientsOf(snapshot: Snapshot, plans: Pick<CompiledService, 'byZone'>): Client[] {
  const clients: Client[] = [{ region: null, zone: null }];
  for (const region of snapshot.regions.keys()) {
    clients.push({ region, zone: null });
    for (const zone of plans.byZone.get(region)?.keys() ?? []) clients.push({ region, zone });
  }
  return clients;
}

function planOf(plans: Pick<CompiledService, 'byRegion' | 'byZone' | 'anyRegion'>, client: Client): RoutePlan {
  if (client.region === null) return plans.anyRegion;
  if (client.zone !== null) return plans.byZone.get(client.region)?.get(client.zone) as RoutePlan;
  return plans.byRegion.get(client.region) as RoutePlan;
}

function facts(svc: CompiledService, client: Client, extra: Partial<RequestFacts> = {}): RequestFacts {
  return {
    host: `${svc.name}.example.com`,
    ...(client.region !== null ? { clientRegion: client.region } : {}),
    ...(client.zone !== null ? { clientZone: client.zone } : {}),
    ...extra,
  };
}

/** Header names are given in lowercase (as the route schema stores them), so a plain lookup stands for Headers. */
function request(path: string, headers: Record<string, string> = {}): RequestView {
  return { method: 'GET', path, query: '', header: (name) => headers[name.toLowerCase()] ?? null };
}

/** A request on `route` carrying `key` as its affinity value (cookie or header, as the route asks). */
function keyedRequest(route: CompiledRoute, key: string): RequestView {
  const affinity = route.spec.affinity;
  const headers: Record<string, string> = !affinity
    ? {}
    : 'cookie' in affinity
      ? { cookie: `theme=dark; ${affinity.cookie}=${key}` }
      : { [affinity.header]: key };
  return request(`/${route.name}/item`, headers);
}

/**
 * A random source that always returns the midpoint of percent bucket `k`: as level loads are integer
 * percents (Envoy's priority load), the 100 buckets reach every level exactly as often as its load says.
 */
const bucket =
  (k: number): RandomSource =>
  () =>
    (k + 0.5) / 100;
const BUCKETS = Array.from({ length: 100 }, (_, k) => k);

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/** Matrix shares in tenths, so sums are compared exactly (the matrix rounds to one decimal by largest remainder). */
const tenths = (entries: readonly MatrixEntry[]) => sum(entries.map((e) => Math.round(e.share * 10)));

/**
 * The percent of a plan's traffic refused by failing closed, as shares.ts represents it: a level in panic
 * with clusters (not drained) keeps its Envoy load but takes no cluster, so that load gets no attempts.
 */
function refusedPercent(plan: RoutePlan): number {
  return sum(
    plan.shares.levels.map((level, i) => {
      const live = (plan.list.levels[i]?.clusters ?? []).filter((c) => !c.drained).length;
      return level.panic && plan.shares.failClosed && live > 0 ? level.load : 0;
    }),
  );
}

const members = (plan: RoutePlan) => plan.list.levels.flatMap((l) => l.clusters);
const routable = (c: Cluster) => !c.drained && c.health !== 'unhealthy';

/** Every set of plans a service holds: its own, and each route destination's and mirror's. */
function allPlans(svc: CompiledService) {
  return [
    svc,
    ...svc.routes.flatMap((r) => [...r.destinations.map((d) => d.plans), ...(r.mirror ? [r.mirror.plans] : [])]),
  ];
}

// --- properties -----------------------------------------------------------------------------------

describe('routing properties over random snapshots', () => {
  it('1. every client plan splits 100% of traffic, less exactly the part a fail-closed panic refuses', () => {
    fc.assert(
      fc.property(sourceArb, (source) => {
        const snapshot = compileSnapshot(source, NOW);
        for (const svc of compiledServices(snapshot)) {
          const matrix = failoverMatrix(snapshot, svc);
          for (const plans of allPlans(svc)) {
            for (const client of clientsOf(snapshot, plans)) {
              const plan = planOf(plans, client);
              const routed = sum(clusterShares(plan.shares).values());
              const refused = refusedPercent(plan);
              const live = members(plan).filter((c) => !c.drained);
              const threshold = svc.policy.panicThresholdPercent;
              // The matrix shows the same split, one decimal per cluster, summing to the rounded total.
              expect(tenths(planEntries(plan))).toBe(Math.round(routed * 10));
              if (live.length === 0 || (threshold === 0 && !live.some(routable))) {
                // Nothing to send to (every cluster drained, or none healthy with panic routing off, as in
                // Envoy): no share anywhere, and nothing counted as refused by failing closed.
                expect(routed).toBe(0);
                expect(plan.shares.closed).toBe(false);
                continue;
              }
              expect(routed + refused).toBeCloseTo(100, 9);
              expect(Number.isInteger(refused)).toBe(true);
              expect(plan.shares.closed).toBe(refused > 0);
              if (!svc.policy.failClosed) expect(refused).toBe(0);
              if (plans === svc && client.region !== null) {
                const entries = (
                  client.zone === null ? matrix.regions[client.region] : matrix.zones[client.region]?.[client.zone]
                ) as MatrixEntry[];
                expect(tenths(entries)).toBe(1000 - 10 * refused);
                const summary =
                  client.zone === null
                    ? matrix.summary[client.region]
                    : matrix.zoneSummary[client.region]?.[client.zone];
                expect(summary?.closed).toBe(refused > 0);
              }
            }
          }
        }
      }),
      { seed: SEED, numRuns: runs(150) },
    );
  });

  it('2. a route splits many keys over its destinations by weight', () => {
    fc.assert(
      fc.property(sourceArb, (source) => {
        const snapshot = compileSnapshot(source, NOW);
        const random = seededRandom(SEED);
        for (const svc of compiledServices(snapshot)) {
          for (const route of svc.routes) {
            // No canary is generated: the compiled weights are the configured ones.
            expect(route.destinations.map((d) => d.weight)).toEqual(route.spec.destinations.map((d) => d.weight));
            const counts = route.destinations.map(() => 0);
            let unmatched = 0;
            for (let i = 0; i < SPLIT_KEYS; i++) {
              const req = keyedRequest(route, `user-${i}`);
              if (matchRoute(svc, req) !== route) unmatched += 1;
              // With affinity the key's hash picks; without, the seeded random source does.
              const d = pickDestination(route, affinityKey(route, req), random);
              counts[d] = (counts[d] as number) + 1;
            }
            expect(unmatched).toBe(0);
            route.destinations.forEach((dest, i) => {
              const fraction = (counts[i] as number) / SPLIT_KEYS;
              if (dest.weight === 0) expect(fraction).toBe(0);
              else
                expect(Math.abs(fraction - dest.weight / route.totalWeight)).toBeLessThanOrEqual(
                  splitTolerance(SPLIT_KEYS),
                );
            });
          }
        }
      }),
      { seed: SEED, numRuns: runs(60) },
    );
  });

  it('3. an affinity key keeps its destination across calls, and its cluster for the same draw', () => {
    fc.assert(
      fc.property(sourceArb, fc.constantFrom(...REGIONS, null), (source, clientRegion) => {
        const snapshot = compileSnapshot(source, NOW);
        // The same source compiled again (an unchanged snapshot, rebuilt) must route keys the same way.
        const again = compileSnapshot(source, NOW);
        for (const svc of compiledServices(snapshot)) {
          for (const route of svc.routes.filter((r) => r.spec.affinity)) {
            for (let i = 0; i < 50; i++) {
              const key = `session-${i}`;
              const f = facts(svc, { region: clientRegion, zone: null }, { request: keyedRequest(route, key) });
              const expected = pickDestination(route, key, seededRandom(0));
              for (let seed = 1; seed <= 4; seed++) {
                expect(pickDestination(route, key, seededRandom(seed))).toBe(expected);
                const d = decide(snapshot, f, seededRandom(seed), MAX_ATTEMPTS);
                expect(d.kind === 'route' || d.kind === 'no-cluster').toBe(true);
                if (d.kind === 'no-cluster') expect(d.route).toBe(route);
                if (d.kind !== 'route') continue;
                expect(d.route).toBe(route);
                expect(d.destination).toBe(expected);
                // The same key and the same draw: the same cluster and retry order, on either compile.
                const repeat = decide(snapshot, f, seededRandom(seed), MAX_ATTEMPTS);
                const rebuilt = decide(again, f, seededRandom(seed), MAX_ATTEMPTS);
                expect(repeat.kind === 'route' && repeat.attempts.map((c) => c.key)).toEqual(
                  d.attempts.map((c) => c.key),
                );
                expect(rebuilt.kind === 'route' && rebuilt.destination).toBe(expected);
                expect(rebuilt.kind === 'route' && rebuilt.attempts.map((c) => c.key)).toEqual(
                  d.attempts.map((c) => c.key),
                );
              }
            }
          }
        }
      }),
      { seed: SEED, numRuns: runs(40) },
    );
  });

  it('4. the mirror sample is a deterministic function of the request id, near its percent', () => {
    fc.assert(
      fc.property(sourceArb, (source) => {
        const snapshot = compileSnapshot(source, NOW);
        for (const svc of compiledServices(snapshot)) {
          for (const route of svc.routes) {
            const held = active(source, svc.name).find((o) => o.action === 'mirror-percent' && o.route === route.name);
            const percent = route.spec.mirror ? (held?.value ?? route.spec.mirror.percent) : 0;
            if (percent === 0) expect(route.mirror).toBeNull();
            else expect(route.mirror?.percent).toBe(percent);
            // Clients with no region use the mirror's one no-locality plan; only when all its traffic is
            // routable is "sampled" the same as "a mirror cluster was named".
            const mirrorPlan = route.mirror?.plans.anyRegion;
            const mirrorRoutable = mirrorPlan ? sum(clusterShares(mirrorPlan.shares).values()) : 0;
            const checkable = percent === 0 || Math.abs(mirrorRoutable - 100) < 1e-9;
            let decided = 0;
            let mirrored = 0;
            const unstable: string[] = [];
            for (let i = 0; i < SPLIT_KEYS; i++) {
              const id = `req-${i}`;
              const f = facts(svc, { region: null, zone: null }, { request: keyedRequest(route, id), sampleKey: id });
              const first = decide(snapshot, f, seededRandom(i), MAX_ATTEMPTS);
              const second = decide(snapshot, f, seededRandom(i + SPLIT_KEYS), MAX_ATTEMPTS);
              if (first.kind !== 'route' || second.kind !== 'route' || !checkable) continue;
              if ((second.mirror !== null) !== (first.mirror !== null)) unstable.push(id);
              decided += 1;
              if (first.mirror) mirrored += 1;
            }
            expect(unstable).toEqual([]);
            if (percent === 0) expect(mirrored).toBe(0);
            if (checkable && decided >= 1_000)
              expect(Math.abs(mirrored / decided - percent / 100)).toBeLessThanOrEqual(splitTolerance(decided));
          }
        }
      }),
      { seed: SEED, numRuns: runs(30) },
    );
  });

  it('5. a service with a healthy, undrained cluster routes every client unless failing closed refuses it', () => {
    fc.assert(
      fc.property(sourceArb, (source) => {
        const snapshot = compileSnapshot(source, NOW);
        for (const svc of compiledServices(snapshot)) {
          const healthy = svc.clusters.some(
            (c) => c.health !== 'unhealthy' && !drainedByOverrides(source, svc.name, c.name, c.region),
          );
          if (!healthy) continue;
          for (const client of clientsOf(snapshot, svc)) {
            const refused = refusedPercent(planOf(svc, client));
            let noCluster = 0;
            for (const k of BUCKETS) {
              const d = decide(snapshot, facts(svc, client), bucket(k), MAX_ATTEMPTS);
              if (d.kind === 'route') continue;
              // The only way to strand such a client: its draw fell on a level failing closed in panic.
              if (d.kind !== 'no-cluster' || !d.failClosed || !svc.policy.failClosed)
                expect.fail(`${svc.name} stranded ${client.region}/${client.zone} (bucket ${k}): ${d.kind}`);
              noCluster += 1;
            }
            // And exactly as often as the refused load says.
            expect(noCluster).toBe(refused);
          }
        }
      }),
      { seed: SEED, numRuns: runs(150) },
    );
  });

  it('6. drained clusters get no traffic; a healthy pinned cluster takes all of its region', () => {
    fc.assert(
      fc.property(sourceArb, (source) => {
        const snapshot = compileSnapshot(source, NOW);
        for (const svc of compiledServices(snapshot)) {
          for (const c of svc.clusters) expect(c.drained).toBe(drainedByOverrides(source, svc.name, c.name, c.region));
          for (const plans of allPlans(svc)) {
            for (const client of clientsOf(snapshot, plans)) {
              for (const [c, share] of clusterShares(planOf(plans, client).shares))
                if (c.drained && share !== 0) expect.fail(`${c.key} is drained yet has ${share}%`);
            }
          }
          // Every attempt (first pick and retries) and every mirror, for each client, each level a draw can land on.
          const sentToDrained: string[] = [];
          const requests = [undefined, ...svc.routes.map((r) => keyedRequest(r, 'some-user'))];
          for (const req of requests)
            for (const client of clientsOf(snapshot, svc))
              for (const k of BUCKETS) {
                const d = decide(
                  snapshot,
                  facts(svc, client, { request: req, sampleKey: `id-${k}` }),
                  bucket(k),
                  MAX_ATTEMPTS,
                );
                if (d.kind !== 'route') continue;
                for (const c of [...d.attempts, ...(d.mirror ? [d.mirror] : [])])
                  if (c.drained) sentToDrained.push(`${c.key} from ${client.region}/${client.zone} bucket ${k}`);
              }
          expect(sentToDrained).toEqual([]);
          // The first pin for a region wins (compile takes the first it finds).
          const pins = new Map<string, string>();
          for (const o of active(source, svc.name))
            if (o.action === 'pin' && o.region !== null && o.cluster !== null && !pins.has(o.region))
              pins.set(o.region, o.cluster);
          for (const [region, name] of pins) {
            const pinned = svc.clusters.find((c) => c.name === name);
            if (!pinned || !routable(pinned)) continue;
            for (const client of clientsOf(snapshot, svc).filter((c) => c.region === region)) {
              expect(clusterShares(planOf(svc, client).shares).get(pinned)).toBe(100);
              const elsewhere = BUCKETS.filter((k) => {
                const d = decide(snapshot, facts(svc, client), bucket(k), MAX_ATTEMPTS);
                return !(d.kind === 'route' && d.attempts[0] === pinned);
              });
              expect(elsewhere).toEqual([]);
            }
          }
        }
      }),
      { seed: SEED, numRuns: runs(150) },
    );
  });
});
