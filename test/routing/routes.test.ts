import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { affinityKey, cookieValue, decide, matchRoute, pickDestination } from '../../src/routing/decide.js';
import type { RequestView } from '../../src/routing/match.js';
import { seededRandom } from '../../src/routing/random.js';
import type { ClusterSpec, RequestFacts, RouteSpec, ServiceSpec, Snapshot } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

const HOST = 'shop.example.com';
const DRAWS = 5_000;

function route(name: string, order: number, extra: Partial<RouteSpec> = {}): RouteSpec {
  return { name, order, match: {}, destinations: [{ subset: {}, weight: 100 }], ...extra };
}

function req(
  init: { method?: string; path?: string; query?: string; headers?: Record<string, string> } = {},
): RequestView {
  const headers = new Headers(init.headers ?? {});
  return {
    method: init.method ?? 'GET',
    path: init.path ?? '/',
    query: init.query ?? '',
    header: (name) => headers.get(name),
  };
}

/** v1 in the US, EU and Asia; v2 in the EU (two) and the US; a shadow in the EU. */
const CLUSTERS: ClusterSpec[] = [
  cluster('as-v1', 'ap-southeast1', { labels: { version: 'v1' } }),
  cluster('ue-v1', 'us-east1', { labels: { version: 'v1', tier: 'gold' } }),
  cluster('ew-v1', 'eu-west1', { labels: { version: 'v1' } }),
  cluster('ue-v2', 'us-east1', { labels: { version: 'v2' } }),
  cluster('ew-v2a', 'eu-west1', { labels: { version: 'v2' } }),
  cluster('ew-v2b', 'eu-west1', { labels: { version: 'v2' } }),
  cluster('ew-shadow', 'eu-west1', { labels: { version: 'shadow' } }),
];

function snapshotWith(
  routes: RouteSpec[],
  extra: Partial<ServiceSpec> = {},
  clusters: ClusterSpec[] = CLUSTERS,
): Snapshot {
  return compileSnapshot({ version: 1, services: [service('shop', clusters, { routes, ...extra })], overrides: [] }, 0);
}

type Routed = Extract<ReturnType<typeof decide>, { kind: 'route' }>;

function routed(snapshot: Snapshot, facts: Partial<RequestFacts> = {}, seed = 1, maxAttempts = 6): Routed {
  const d = decide(
    snapshot,
    { host: HOST, clientRegion: 'eu-west1', request: req(), ...facts },
    seededRandom(seed),
    maxAttempts,
  );
  if (d.kind !== 'route') throw new Error(`expected a route decision, got ${d.kind}`);
  return d;
}

const names = (d: Routed) => d.attempts.map((c) => c.name);
/** Every cluster in the decision's plan, sorted by name. */
const planned = (d: Routed) => d.plan.list.levels.flatMap((l) => l.clusters.map((c) => c.name)).sort();

describe('routes: matching order', () => {
  const snapshot = snapshotWith([
    // Listed out of order on purpose: `order` decides, then the name.
    route('catch-all', 100, { destinations: [{ subset: { version: 'v1' }, weight: 100 }] }),
    route('api-v2', 20, {
      match: { path: { prefix: '/api' } },
      destinations: [{ subset: { version: 'v2' }, weight: 100 }],
    }),
    route('canary-header', 10, {
      match: { headers: { 'x-canary': { exact: '1' } } },
      destinations: [{ subset: { version: 'v2' }, weight: 100 }],
    }),
    route('b-tie', 50, {
      match: { path: { prefix: '/tie' } },
      destinations: [{ subset: { version: 'v2' }, weight: 100 }],
    }),
    route('a-tie', 50, {
      match: { path: { prefix: '/tie' } },
      destinations: [{ subset: { version: 'v1' }, weight: 100 }],
    }),
  ]);

  it('compiles routes sorted by order, then name', () => {
    expect(snapshot.byName.get('shop')!.routes.map((r) => r.name)).toEqual([
      'canary-header',
      'api-v2',
      'a-tie',
      'b-tie',
      'catch-all',
    ]);
  });

  it.each<[string, Parameters<typeof req>[0], string]>([
    [
      'the header route (order 10) beats the path route (order 20) when both match',
      { path: '/api/x', headers: { 'x-canary': '1' } },
      'canary-header',
    ],
    ['the path route when the header is absent', { path: '/api/x' }, 'api-v2'],
    ['the catch-all last', { path: '/home' }, 'catch-all'],
    ['equal orders: the name decides', { path: '/tie' }, 'a-tie'],
  ])('%s', (_name, request, expected) => {
    const d = routed(snapshot, { request: req(request) });
    expect(d.route?.name).toBe(expected);
    expect(matchRoute(snapshot.byName.get('shop')!, req(request))?.name).toBe(expected);
  });

  it('no route matches: the service default (every cluster, plans of the whole service)', () => {
    const snap = snapshotWith([
      route('only-api', 10, {
        match: { path: { prefix: '/api' } },
        destinations: [{ subset: { version: 'v2' }, weight: 100 }],
      }),
    ]);
    const d = routed(snap, { request: req({ path: '/home' }) });
    const shop = snap.byName.get('shop')!;
    expect(d.route).toBeNull();
    expect(d.destination).toBeNull();
    expect(d.plan).toBe(shop.byRegion.get('eu-west1'));
    expect(d.mirror).toBeNull();
    expect(d.fault).toEqual({ delayMs: null, abortStatus: null });
    expect(planned(d)).toEqual(['as-v1', 'ew-shadow', 'ew-v1', 'ew-v2a', 'ew-v2b', 'ue-v1', 'ue-v2']);
  });

  it('without a request view (no matching possible) the default plans are used', () => {
    const snap = snapshotWith([route('all', 10, { destinations: [{ subset: { version: 'v2' }, weight: 100 }] })]);
    const d = decide(snap, { host: HOST, clientRegion: 'eu-west1' }, seededRandom(1), 6);
    expect(d.kind === 'route' && d.route).toBeNull();
  });
});

describe('routes: destination subsets', () => {
  it.each<[string, Record<string, string>, string[]]>([
    ['version v2', { version: 'v2' }, ['ew-v2a', 'ew-v2b', 'ue-v2']],
    ['version v1', { version: 'v1' }, ['as-v1', 'ew-v1', 'ue-v1']],
    ['two labels select their intersection', { version: 'v1', tier: 'gold' }, ['ue-v1']],
    ['the empty subset is every cluster', {}, ['as-v1', 'ew-shadow', 'ew-v1', 'ew-v2a', 'ew-v2b', 'ue-v1', 'ue-v2']],
  ])('%s', (_name, subset, expected) => {
    const snap = snapshotWith([route('r', 1, { destinations: [{ subset, weight: 100 }] })]);
    expect(planned(routed(snap))).toEqual(expected);
    // Only the subset's clusters are ever tried.
    for (let seed = 0; seed < 50; seed++)
      expect(names(routed(snap, {}, seed)).every((n) => expected.includes(n))).toBe(true);
  });

  it('a subset that matches no cluster leaves nothing to route to', () => {
    const snap = snapshotWith([route('r', 1, { destinations: [{ subset: { version: 'v9' }, weight: 100 }] })]);
    expect(decide(snap, { host: HOST, clientRegion: 'eu-west1', request: req() }, seededRandom(1), 6).kind).toBe(
      'no-cluster',
    );
  });

  it('destinations naming the same subset share one set of plans', () => {
    const snap = snapshotWith([
      route('a', 1, { match: { path: { exact: '/a' } }, destinations: [{ subset: { version: 'v2' }, weight: 1 }] }),
      route('b', 2, {
        destinations: [{ subset: { version: 'v2' }, weight: 1 }],
        mirror: { subset: { version: 'v2' }, percent: 1 },
      }),
    ]);
    const [a, b] = snap.byName.get('shop')!.routes;
    expect(a!.destinations[0]!.plans).toBe(b!.destinations[0]!.plans);
    expect(b!.mirror!.plans).toBe(b!.destinations[0]!.plans);
  });
});

describe('routes: locality inside a subset', () => {
  const v2 = [route('r', 1, { destinations: [{ subset: { version: 'v2' }, weight: 100 }] })];

  it('clients of eu-west1 go to the subset in eu-west1 first, then to the subset in other regions', () => {
    const d = routed(snapshotWith(v2), { clientRegion: 'eu-west1' });
    expect(d.plan.list.levels.map((l) => `${l.region}:${l.clusters.map((c) => c.name).join('+')}`)).toEqual([
      'eu-west1:ew-v2a+ew-v2b',
      'us-east1:ue-v2',
    ]);
    expect(d.plan.list.reasons).toEqual(['same-region', 'distance']);
    expect(names(d).slice(-1)).toEqual(['ue-v2']);
  });

  it('clients of a region without the subset go to the nearest region that has it', () => {
    const d = routed(snapshotWith(v2), { clientRegion: 'ap-southeast1' });
    expect(d.plan.list.levels.map((l) => l.region)).toEqual(['eu-west1', 'us-east1']);
    expect(d.plan.list.reasons).toEqual(['distance', 'distance']);
  });

  it('a failover rule orders the subset too', () => {
    const d = routed(snapshotWith(v2, { failover: [{ from: 'ap-southeast1', to: ['us-east1'] }] }), {
      clientRegion: 'ap-southeast1',
    });
    expect(d.plan.list.levels.map((l) => l.region)).toEqual(['us-east1', 'eu-west1']);
    expect(d.plan.list.reasons).toEqual(['failover-rule', 'distance']);
  });

  it('the subset fails over to other regions when its local clusters are unhealthy', () => {
    const clusters = CLUSTERS.map((c) => (c.name.startsWith('ew-v2') ? { ...c, health: 'unhealthy' as const } : c));
    const snap = snapshotWith(v2, {}, clusters);
    for (let seed = 0; seed < 50; seed++) {
      const d = routed(snap, { clientRegion: 'eu-west1' }, seed);
      expect(d.attempts[0]?.name).toBe('ue-v2');
    }
  });

  it('a local subset cluster that is down sheds only what the overprovisioning factor cannot absorb', () => {
    // One of the two EU v2 clusters is unhealthy: 1.4 x 50% = 70% stays in the EU level, 30% moves on.
    const clusters = CLUSTERS.map((c) => (c.name === 'ew-v2a' ? { ...c, health: 'unhealthy' as const } : c));
    const d = routed(snapshotWith(v2, {}, clusters));
    expect(d.shares.levels.map((l) => Math.round(l.load))).toEqual([70, 30]);
  });
});

describe('routes: weighted split', () => {
  const split = snapshotWith([
    route('split', 1, {
      destinations: [
        { subset: { version: 'v1' }, weight: 80 },
        { subset: { version: 'v2' }, weight: 20 },
      ],
    }),
  ]);

  it('80/20 holds within ±3% over 5,000 draws with a seeded random source', () => {
    const random = seededRandom(7);
    const counts = [0, 0];
    for (let i = 0; i < DRAWS; i++) {
      const d = decide(split, { host: HOST, clientRegion: 'eu-west1', request: req() }, random, 3);
      if (d.kind !== 'route' || d.destination === null) throw new Error('expected a destination');
      counts[d.destination]! += 1;
      // The attempts stay inside the chosen destination's subset.
      const version = d.destination === 0 ? 'v1' : 'v2';
      expect(d.attempts.every((c) => c.labels.version === version)).toBe(true);
    }
    expect(counts[0]! / DRAWS).toBeGreaterThan(0.77);
    expect(counts[0]! / DRAWS).toBeLessThan(0.83);
    expect(counts[0]! + counts[1]!).toBe(DRAWS);
  });

  it('a weight-0 destination is never chosen', () => {
    const snap = snapshotWith([
      route('r', 1, {
        destinations: [
          { subset: { version: 'v1' }, weight: 0 },
          { subset: { version: 'v2' }, weight: 5 },
          { subset: { version: 'shadow' }, weight: 0 },
        ],
      }),
    ]);
    const r = snap.byName.get('shop')!.routes[0]!;
    const random = seededRandom(3);
    for (let i = 0; i < 1_000; i++) expect(pickDestination(r, null, random)).toBe(1);
    for (let i = 0; i < 1_000; i++) expect(pickDestination(r, `key-${i}`, random)).toBe(1);
  });

  it('a random source at its extremes stays inside the weighted destinations', () => {
    const r = split.byName.get('shop')!.routes[0]!;
    expect(pickDestination(r, null, () => 0)).toBe(0);
    expect(pickDestination(r, null, () => 0.7999)).toBe(0);
    expect(pickDestination(r, null, () => 0.8)).toBe(1);
    expect(pickDestination(r, null, () => 0.999999)).toBe(1);
  });
});

describe('routes: affinity', () => {
  const destinations = [
    { subset: { version: 'v1' }, weight: 80 },
    { subset: { version: 'v2' }, weight: 20 },
  ];
  const byCookie = snapshotWith([route('sticky', 1, { destinations, affinity: { cookie: 'user' } })]);
  const byHeader = snapshotWith([route('sticky', 1, { destinations, affinity: { header: 'x-user' } })]);
  const destinationOf = (snap: Snapshot, headers: Record<string, string>, seed: number) =>
    routed(snap, { request: req({ headers }) }, seed).destination;

  it('the same cookie always gets the same destination, whatever the random source says', () => {
    for (let k = 0; k < 200; k++) {
      const headers = { cookie: `theme=dark; user=u-${k}; lang=en` };
      const first = destinationOf(byCookie, headers, 0);
      for (let seed = 1; seed < 10; seed++) expect(destinationOf(byCookie, headers, seed)).toBe(first);
    }
  });

  it('the same header always gets the same destination', () => {
    for (let k = 0; k < 200; k++) {
      const first = destinationOf(byHeader, { 'x-user': `u-${k}` }, 0);
      for (let seed = 1; seed < 10; seed++) expect(destinationOf(byHeader, { 'x-user': `u-${k}` }, seed)).toBe(first);
    }
  });

  it('the cookie and the header with the same key agree (both hash the key)', () => {
    for (let k = 0; k < 100; k++)
      expect(destinationOf(byCookie, { cookie: `user=k${k}` }, k)).toBe(
        destinationOf(byHeader, { 'x-user': `k${k}` }, k + 1),
      );
  });

  it('over 5,000 keys the split follows the weights within ±3%', () => {
    let v1 = 0;
    for (let k = 0; k < DRAWS; k++) if (destinationOf(byCookie, { cookie: `user=${k}` }, 0) === 0) v1 += 1;
    expect(v1 / DRAWS).toBeGreaterThan(0.77);
    expect(v1 / DRAWS).toBeLessThan(0.83);
  });

  it('without the cookie the destination is a random draw (both destinations show up)', () => {
    const seen = new Set<number | null>();
    for (let seed = 0; seed < 100; seed++) seen.add(destinationOf(byCookie, { cookie: 'other=1' }, seed));
    expect(seen).toEqual(new Set([0, 1]));
  });

  it('reads the key from the cookie header or the named header', () => {
    const [cookieRoute] = byCookie.byName.get('shop')!.routes;
    const [headerRoute] = byHeader.byName.get('shop')!.routes;
    expect(affinityKey(cookieRoute!, req({ headers: { cookie: 'a=1;user=abc ; b=2' } }))).toBe('abc');
    expect(affinityKey(cookieRoute!, req({ headers: { cookie: 'username=abc' } }))).toBeNull();
    expect(affinityKey(headerRoute!, req({ headers: { 'X-User': 'abc' } }))).toBe('abc');
    expect(affinityKey(headerRoute!, req())).toBeNull();
    expect(affinityKey(headerRoute!, undefined)).toBeNull();
  });

  it.each<[string | null, string, string | null]>([
    ['user=1', 'user', '1'],
    ['a=1; user=2', 'user', '2'],
    ['user=a=b', 'user', 'a=b'],
    ['xuser=1; user=2', 'user', '2'],
    ['=1; user', 'user', null],
    ['', 'user', null],
    [null, 'user', null],
  ])('cookieValue(%j, %s) is %j', (header, name, expected) => {
    expect(cookieValue(header, name)).toBe(expected);
  });
});

describe('routes: mirror sample', () => {
  const mirrored = (percent: number, extra: Partial<RouteSpec> = {}) =>
    snapshotWith([
      route('m', 1, {
        destinations: [{ subset: { version: 'v1' }, weight: 100 }],
        mirror: { subset: { version: 'shadow' }, percent },
        ...extra,
      }),
    ]);

  it('is deterministic per request id: the same id is always or never mirrored', () => {
    const snap = mirrored(30);
    for (let i = 0; i < 300; i++) {
      const first = routed(snap, { sampleKey: `req-${i}` }, 0).mirror !== null;
      for (let seed = 1; seed < 5; seed++)
        expect(routed(snap, { sampleKey: `req-${i}` }, seed).mirror !== null).toBe(first);
    }
  });

  it.each([1, 10, 30, 50])('samples about %i% of 5,000 request ids (±1.5%)', (percent) => {
    const snap = mirrored(percent);
    let sampled = 0;
    for (let i = 0; i < DRAWS; i++) if (routed(snap, { sampleKey: `id-${i}` }, i).mirror) sampled += 1;
    expect(Math.abs((100 * sampled) / DRAWS - percent)).toBeLessThan(1.5);
  });

  it('100% mirrors every request and 0% none', () => {
    const all = mirrored(100);
    const none = mirrored(0);
    for (let i = 0; i < 500; i++) {
      expect(routed(all, { sampleKey: `r${i}` }, i).mirror?.name).toBe('ew-shadow');
      expect(routed(none, { sampleKey: `r${i}` }, i).mirror).toBeNull();
    }
  });

  it('mirrors to a cluster of the mirror subset, never the primary', () => {
    const d = routed(mirrored(100), { sampleKey: 'x' });
    expect(d.mirror?.labels.version).toBe('shadow');
    expect(d.attempts.map((c) => c.labels.version)).not.toContain('shadow');
  });

  it('with an affinity key, the key decides the sample (not the request id), independently of the destination', () => {
    const snap = mirrored(40, {
      affinity: { header: 'x-user' },
      destinations: [
        { subset: { version: 'v1' }, weight: 50 },
        { subset: { version: 'v2' }, weight: 50 },
      ],
    });
    const byDestination = [
      { n: 0, sampled: 0 },
      { n: 0, sampled: 0 },
    ];
    for (let k = 0; k < DRAWS; k++) {
      const headers = { 'x-user': `user-${k}` };
      const first = routed(snap, { request: req({ headers }), sampleKey: `a-${k}` }, k);
      const again = routed(snap, { request: req({ headers }), sampleKey: `b-${k}` }, k + 1);
      expect(again.mirror !== null).toBe(first.mirror !== null);
      const slot = byDestination[first.destination!]!;
      slot.n += 1;
      if (first.mirror) slot.sampled += 1;
    }
    // The mirror hash is seeded apart from the destination hash: each destination is sampled at ~40%.
    for (const { n, sampled } of byDestination) expect(Math.abs(sampled / n - 0.4)).toBeLessThan(0.03);
  });

  it('a mirror subset that matches no cluster mirrors nothing (and still routes)', () => {
    const snap = snapshotWith([route('m', 1, { mirror: { subset: { version: 'none' }, percent: 100 } })]);
    const d = routed(snap, { sampleKey: 'x' });
    expect(d.mirror).toBeNull();
    expect(d.attempts.length).toBeGreaterThan(0);
  });
});

describe('routes: faults', () => {
  const faulty = (fault: RouteSpec['fault']) => snapshotWith([route('f', 1, { fault })]);

  it('draws delay and abort independently at their percents over 5,000 requests (±3%)', () => {
    const snap = faulty({ delay: { percent: 30, ms: 250 }, abort: { percent: 10, status: 503 } });
    const random = seededRandom(11);
    let delayed = 0;
    let aborted = 0;
    let both = 0;
    for (let i = 0; i < DRAWS; i++) {
      const d = decide(snap, { host: HOST, clientRegion: 'eu-west1', request: req() }, random, 3);
      if (d.kind !== 'route') throw new Error('expected a route');
      if (d.fault.delayMs !== null) {
        expect(d.fault.delayMs).toBe(250);
        delayed += 1;
      }
      if (d.fault.abortStatus !== null) {
        expect(d.fault.abortStatus).toBe(503);
        aborted += 1;
      }
      if (d.fault.delayMs !== null && d.fault.abortStatus !== null) both += 1;
    }
    expect(Math.abs(delayed / DRAWS - 0.3)).toBeLessThan(0.03);
    expect(Math.abs(aborted / DRAWS - 0.1)).toBeLessThan(0.03);
    expect(Math.abs(both / DRAWS - 0.03)).toBeLessThan(0.015);
  });

  it('100% always and 0% never', () => {
    const always = faulty({ abort: { percent: 100, status: 418 }, delay: { percent: 0, ms: 5 } });
    for (let seed = 0; seed < 200; seed++)
      expect(routed(always, {}, seed).fault).toEqual({ delayMs: null, abortStatus: 418 });
  });

  it('only the matched route injects faults', () => {
    const snap = snapshotWith([
      route('faulty', 1, {
        match: { headers: { 'x-chaos': { present: true } } },
        fault: { abort: { percent: 100, status: 500 } },
      }),
      route('clean', 2),
    ]);
    expect(routed(snap, { request: req({ headers: { 'x-chaos': '1' } }) }).fault.abortStatus).toBe(500);
    expect(routed(snap, { request: req() }).fault.abortStatus).toBeNull();
  });
});

describe('routes: retries widen the attempts', () => {
  const six = CLUSTERS.map((c, i) => ({ ...c, labels: { ...c.labels, all: 'yes' }, name: `c${i}` }));

  it.each<[string, RouteSpec['retries'], number, number]>([
    ['no retry policy: the runtime maximum', undefined, 3, 3],
    [
      'attempts 1: two tries',
      { attempts: 1, perTryTimeoutMs: 100, retryOn: ['5xx'], budgetPercent: 20, nonIdempotent: false },
      3,
      2,
    ],
    [
      'attempts 5: six tries, above the runtime maximum',
      { attempts: 5, perTryTimeoutMs: 100, retryOn: ['5xx'], budgetPercent: 20, nonIdempotent: false },
      3,
      6,
    ],
    [
      'attempts 6: still six (Workers allow 6 connections)',
      { attempts: 6, perTryTimeoutMs: 100, retryOn: ['5xx'], budgetPercent: 20, nonIdempotent: false },
      3,
      6,
    ],
  ])('%s', (_name, retries, maxAttempts, expected) => {
    const snap = snapshotWith([route('r', 1, retries ? { retries } : {})], {}, six);
    expect(routed(snap, {}, 1, maxAttempts).attempts).toHaveLength(expected);
  });
});
