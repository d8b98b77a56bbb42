import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import type { LazyMap } from '../../src/routing/lazy-map.js';
import type { RouteSpec, ServiceSubsets } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

const shop = service('shop', [
  cluster('ue1', 'us-east1'),
  cluster('ue2', 'us-east1'),
  cluster('uw1', 'us-west1'),
  cluster('ew1', 'eu-west1'),
  cluster('as1', 'ap-southeast1'),
]);

function order(snapshotServices: Parameters<typeof compileSnapshot>[0]['services'], name: string, region: string) {
  const snap = compileSnapshot({ version: 1, services: snapshotServices, overrides: [] }, 0);
  const list = snap.byName.get(name)?.byRegion.get(region)?.list;
  return list?.levels.map((level, i) => `${list.reasons[i]}:${level.clusters.map((c) => c.name).join('+')}`);
}

describe('compileSnapshot priority lists', () => {
  it.each([
    ['us-east1', ['same-region:ue1+ue2', 'distance:uw1', 'distance:ew1', 'distance:as1']],
    ['eu-west1', ['same-region:ew1', 'distance:ue1+ue2', 'distance:uw1', 'distance:as1']],
    ['ap-southeast1', ['same-region:as1', 'distance:ew1', 'distance:uw1', 'distance:ue1+ue2']],
    ['us-west1', ['same-region:uw1', 'distance:ue1+ue2', 'distance:ew1', 'distance:as1']],
  ])('clients of %s: own region, then by great-circle distance', (region, expected) => {
    expect(order([shop], 'shop', region)).toEqual(expected);
  });

  it('an explicit failover rule comes before distance, in the order given', () => {
    const ruled = { ...shop, failover: [{ from: 'eu-west1', to: ['ap-southeast1', 'us-west1'] }] };
    expect(order([ruled], 'shop', 'eu-west1')).toEqual([
      'same-region:ew1',
      'failover-rule:as1',
      'failover-rule:uw1',
      'distance:ue1+ue2',
    ]);
  });

  it('a region this service has no cluster in still gets a list, ordered from its location', () => {
    const other = service('other', [cluster('en1', 'europe-north1')]);
    expect(order([shop, other], 'shop', 'europe-north1')).toEqual([
      'distance:ew1',
      'distance:ue1+ue2',
      'distance:uw1',
      'distance:as1',
    ]);
  });

  it('a region known only by name (from a rule) follows its rule, then shares one level', () => {
    const ruled = { ...shop, failover: [{ from: 'mars-1', to: ['eu-west1'] }] };
    expect(order([ruled], 'shop', 'mars-1')).toEqual(['failover-rule:ew1', 'no-locality:as1+ue1+ue2+uw1']);
  });

  it('indexes hosts and strips trailing slashes from origins', () => {
    const snap = compileSnapshot(
      {
        version: 7,
        services: [service('shop', [cluster('ue1', 'us-east1', { origin: 'https://x.internal/' })])],
        overrides: [],
      },
      0,
    );
    expect(snap.version).toBe(7);
    expect(snap.byHost.get('shop.example.com')?.name).toBe('shop');
    expect(snap.byName.get('shop')?.clusters[0]?.origin).toBe('https://x.internal');
  });

  it.each([
    ['https://x.internal', 'https://x.internal', ''],
    ['https://x.internal/', 'https://x.internal', ''],
    ['https://api.internal/shop', 'https://api.internal', '/shop'],
    ['https://api.internal/shop/', 'https://api.internal', '/shop'],
    ['http://127.0.0.1:8080/shop/v1', 'http://127.0.0.1:8080', '/shop/v1'],
    ['http://[::1]:8080/a', 'http://[::1]:8080', '/a'],
  ])('splits origin %s into origin %s and base path "%s" once, at compile time', (stored, origin, basePath) => {
    const snap = compileSnapshot(
      { version: 1, services: [service('shop', [cluster('ue1', 'us-east1', { origin: stored })])], overrides: [] },
      0,
    );
    const compiled = snap.byName.get('shop')?.clusters[0];
    expect({ origin: compiled?.origin, basePath: compiled?.basePath }).toEqual({ origin, basePath });
    // The plans hold the same objects the hot path forwards with.
    expect(snap.byName.get('shop')?.byRegion.get('us-east1')?.list.levels[0]?.clusters[0]).toBe(compiled);
  });

  it('carries originHost to the hot path, null when unset', () => {
    const snap = compileSnapshot(
      {
        version: 1,
        services: [
          service('shop', [
            cluster('ue1', 'us-east1', { originHost: 'shop.example.com:8443' }),
            cluster('ue2', 'us-east1'),
          ]),
        ],
        overrides: [],
      },
      0,
    );
    expect(snap.byName.get('shop')?.clusters.map((c) => [c.name, c.originHost])).toEqual([
      ['ue1', 'shop.example.com:8443'],
      ['ue2', null],
    ]);
  });

  it('recompiles a service whose originHost changed', () => {
    const before = compileSnapshot(
      { version: 1, services: [service('shop', [cluster('ue1', 'us-east1')])], overrides: [] },
      0,
    );
    const after = compileSnapshot(
      {
        version: 2,
        services: [service('shop', [cluster('ue1', 'us-east1', { originHost: 'shop.example.com' })])],
        overrides: [],
      },
      0,
      before,
    );
    expect(after.byName.get('shop')).not.toBe(before.byName.get('shop'));
    expect(after.byName.get('shop')?.clusters[0]?.originHost).toBe('shop.example.com');
  });

  it('places a region at the centroid of its clusters across services', () => {
    const a = service('a', [cluster('a1', 'eu-west1', { latitude: 50, longitude: 4 })]);
    const b = service('b', [cluster('b1', 'eu-west1', { latitude: 52, longitude: 6 })]);
    expect(compileSnapshot({ version: 1, services: [a, b], overrides: [] }, 0).regions.get('eu-west1')).toEqual({
      lat: 51,
      lon: 5,
    });
  });
});

describe('compileSnapshot reuse', () => {
  it('reuses services whose inputs did not change and recompiles the others', () => {
    const a = service('a', [cluster('a1', 'us-east1'), cluster('a2', 'eu-west1')]);
    const b = service('b', [cluster('b1', 'us-east1'), cluster('b2', 'eu-west1')]);
    const first = compileSnapshot({ version: 1, services: [a, b], overrides: [] }, 0);
    const [firstA, firstB] = [first.byName.get('a'), first.byName.get('b')];
    const changedB = { ...b, clusters: [cluster('b1', 'us-east1', { weight: 5 }), cluster('b2', 'eu-west1')] };
    const second = compileSnapshot({ version: 2, services: [a, changedB], overrides: [] }, 0, first);
    expect(second.byName.get('a')).toBe(firstA);
    expect(second.byName.get('b')).not.toBe(firstB);
    expect(second.byName.get('b')).not.toBe(first.byName.get('b'));
    expect(second.byName.get('b')?.clusters.find((c) => c.name === 'b1')?.weight).toBe(5);
  });

  it('compiles lazily: a host lookup compiles that one service; a later snapshot reuses only what was compiled', () => {
    const services = Array.from({ length: 50 }, (_, i) => ({
      ...service(`s${i}`, [cluster(`c${i}`, 'us-east1')]),
      hosts: [`s${i}.test`],
    }));
    const cold = compileSnapshot({ version: 1, services, overrides: [] }, 0);
    expect(cold.byName.madeCount).toBe(0);
    expect(cold.byName.size).toBe(50);
    expect(cold.byHost.get('s7.test')?.name).toBe('s7');
    expect(cold.byName.madeCount).toBe(1);
    expect(cold.byHost.get('nobody.test')).toBeUndefined();
    expect(cold.byName.madeCount).toBe(1);
    const next = compileSnapshot({ version: 2, services, overrides: [] }, 0, cold);
    expect(next.byName.get('s7')).toBe(cold.byName.get('s7'));
    expect(next.byName.madeCount).toBe(1);
    expect([...next.byName.keys()]).toHaveLength(50);
    expect([...next.byName.values()].map((s) => s.name)).toHaveLength(50);
    expect(next.byName.madeCount).toBe(50);
  });

  it('a snapshot does not keep the one it was compiled from alive (found by the chaos soak: one snapshot leaked per reload)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const services = Array.from({ length: 20 }, (_, i) => service(`s${i}`, [cluster(`c${i}`, 'us-east1')]));
    let snap = compileSnapshot({ version: 1, services, overrides: [] }, 0);
    for (const s of snap.byName.values()) void s;
    const first = new WeakRef(snap.byName);
    for (let v = 2; v < 6; v++) {
      const changed = services.map((s, i) => (i === v ? { ...s } : s));
      snap = compileSnapshot({ version: v, services: changed, overrides: [] }, 0, snap);
      for (const s of snap.byName.values()) void s;
    }
    // Let the WeakRef's target go (it is held until the end of the job that made it), then collect.
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(snap.byName.get('s0')).toBeDefined();
    expect(first.deref()).toBeUndefined();
  });

  it("makes a client region's plans the first time a client of that region asks, zones included", () => {
    const zoned = service('z', [cluster('z1', 'us-east1', { zone: 'us-east1-b' }), cluster('z2', 'eu-west1')]);
    const snap = compileSnapshot({ version: 1, services: [shop, zoned], overrides: [] }, 0);
    const compiled = snap.byName.get('shop');
    const byRegion = compiled?.byRegion as LazyMap<string, unknown>;
    expect(byRegion.size).toBe(4);
    expect(byRegion.madeCount).toBe(0);
    expect(byRegion.get('eu-west1')?.constructor).toBe(Object);
    expect(byRegion.madeCount).toBe(1);
    expect(byRegion.get('mars-north1')).toBeUndefined();
    expect(byRegion.madeCount).toBe(1);
    const byZone = snap.byName.get('z')?.byZone as LazyMap<string, ReadonlyMap<string, unknown>>;
    expect([...byZone.keys()]).toEqual(['us-east1']);
    expect(byZone.madeCount).toBe(0);
    expect([...(byZone.get('us-east1')?.keys() ?? [])]).toEqual(['us-east1-b']);
    // A service whose clusters have no zone shares one empty zone table.
    expect(compiled?.byZone.size).toBe(0);
  });

  it('recompiles everything when the region catalog changes, and when an override appears', () => {
    const a = service('a', [cluster('a1', 'us-east1')]);
    const first = compileSnapshot({ version: 1, services: [a], overrides: [] }, 0);
    const withRegion = compileSnapshot(
      { version: 2, services: [a, service('c', [cluster('c1', 'ap-southeast1')])], overrides: [] },
      0,
      first,
    );
    expect(withRegion.byName.get('a')).not.toBe(first.byName.get('a'));
    const drained = compileSnapshot(
      {
        version: 3,
        services: [a],
        overrides: [{ id: 'o', service: 'a', action: 'drain', cluster: 'a1', region: null, expiresAt: 100 }],
      },
      0,
      first,
    );
    expect(drained.byName.get('a')?.clusters[0]?.drained).toBe(true);
  });
});

describe("compileSnapshot: routes naming the service's subsets", () => {
  const clusters = [
    cluster('ew-v1', 'eu-west1', { labels: { version: 'v1' } }),
    cluster('ue-v1', 'us-east1', { labels: { version: 'v1' } }),
    cluster('ew-v2', 'eu-west1', { labels: { version: 'v2', track: 'stable' } }),
    cluster('ew-v3', 'eu-west1', { labels: { version: 'v3' } }),
  ];
  const subsets = { v1: { version: 'v1' }, v2: { version: 'v2' }, stable: { track: 'stable' } };
  const route = (extra: Partial<RouteSpec>): RouteSpec => ({
    name: 'r',
    order: 1,
    match: {},
    destinations: [{ subset: 'v1', weight: 100 }],
    ...extra,
  });
  const compiled = (r: RouteSpec, subsetsOf: ServiceSubsets = subsets) =>
    compileSnapshot(
      { version: 1, services: [service('shop', clusters, { subsets: subsetsOf, routes: [r] })], overrides: [] },
      0,
    ).byName.get('shop')!.routes[0]!;
  const members = (plans: { clusters: { name: string }[] }) => plans.clusters.map((c) => c.name);

  it.each<[string, RouteSpec['destinations'][number]['subset'], Record<string, string> | null, string[]]>([
    ['a name resolves to its labels', 'v1', { version: 'v1' }, ['ew-v1', 'ue-v1']],
    ['another name, another label', 'stable', { track: 'stable' }, ['ew-v2']],
    ['a label selector is taken as it is', { version: 'v3' }, { version: 'v3' }, ['ew-v3']],
    ['a name the service does not define selects no cluster', 'v9', null, []],
  ])('%s', (_name, subset, labels, expected) => {
    const d = compiled(route({ destinations: [{ subset, weight: 100 }] })).destinations[0]!;
    expect(d.subset).toEqual(subset);
    expect(d.labels).toEqual(labels);
    expect(members(d.plans)).toEqual(expected);
  });

  it('a name and a selector for the same labels share one set of plans; mirror and canary names resolve too', () => {
    const r = compiled(
      route({
        destinations: [
          { subset: 'v1', weight: 50 },
          { subset: { version: 'v1' }, weight: 50 },
        ],
        mirror: { subset: 'v2', percent: 10 },
        canary: {
          subset: 'stable',
          stepWeight: 10,
          maxWeight: 50,
          minSamples: 1,
          maxErrorRateDelta: 0.01,
          maxLatencyRatio: 1.5,
        },
      }),
    );
    expect(r.destinations[0]!.plans).toBe(r.destinations[1]!.plans);
    expect(r.mirror).toMatchObject({ labels: { version: 'v2' } });
    expect(members(r.mirror!.plans)).toEqual(['ew-v2']);
    expect(r.destinations[2]).toMatchObject({ subset: 'stable', labels: { track: 'stable' }, canary: true });
  });

  it('after the service drops a subset, its routes compile to no cluster (and nothing throws); putting it back routes again', () => {
    const r = route({ destinations: [{ subset: 'v2', weight: 100 }] });
    const gone = compiled(r, { v1: { version: 'v1' } });
    expect(gone.destinations[0]!.labels).toBeNull();
    expect(gone.destinations[0]!.plans.anyRegion.list.levels).toEqual([]);
    expect(members(compiled(r).destinations[0]!.plans)).toEqual(['ew-v2']);
  });

  it('a service change to its subsets is a new fingerprint, so the route is compiled again', () => {
    const r = route({});
    const a = compileSnapshot(
      { version: 1, services: [service('shop', clusters, { subsets, routes: [r] })], overrides: [] },
      0,
    );
    const b = compileSnapshot(
      {
        version: 2,
        services: [service('shop', clusters, { subsets: { ...subsets, v1: { version: 'v3' } }, routes: [r] })],
        overrides: [],
      },
      0,
      a,
    );
    expect(members(b.byName.get('shop')!.routes[0]!.destinations[0]!.plans)).toEqual(['ew-v3']);
  });
});
