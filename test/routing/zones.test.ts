import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { decide } from '../../src/routing/decide.js';
import { explainDecision } from '../../src/routing/explain.js';
import { failoverMatrix } from '../../src/routing/matrix.js';
import { seededRandom } from '../../src/routing/random.js';
import type { ClusterSpec, RequestFacts, ServiceSpec } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

/** us-east1 has zones b and c (c with two subzones), one cluster in no zone; eu-west1 and ap-southeast1 follow. */
const shop = service('shop', [
  cluster('ub', 'us-east1', { zone: 'us-east1-b' }),
  cluster('uc1', 'us-east1', { zone: 'us-east1-c/rack1' }),
  cluster('uc2', 'us-east1', { zone: 'us-east1-c/rack2' }),
  cluster('un', 'us-east1'),
  cluster('ew', 'eu-west1', { zone: 'eu-west1-a' }),
  cluster('as', 'ap-southeast1'),
]);

function snapshotOf(services: ServiceSpec[], health: Record<string, ClusterSpec['health']> = {}) {
  const withHealth = services.map((s) => ({
    ...s,
    clusters: s.clusters.map((c) => ({ ...c, health: health[c.name] ?? 'healthy' })),
  }));
  return compileSnapshot({ version: 1, services: withHealth, overrides: [] }, 0);
}

const levels = (facts: Omit<RequestFacts, 'host'>, services = [shop]) => {
  const d = decide(snapshotOf(services), { host: 'shop.example.com', ...facts }, seededRandom(1), 6);
  if (d.kind !== 'route') throw new Error(d.kind);
  return d.plan.list.levels.map((l, i) => `${d.plan.list.reasons[i]}:${l.clusters.map((c) => c.name).join('+')}`);
};

describe('zones: priority levels in Istio locality order (subzone, zone, region, other regions)', () => {
  it.each<[string, Omit<RequestFacts, 'host'>, string[]]>([
    [
      'zone b: its zone first, then the rest of the region, then other regions',
      { clientRegion: 'us-east1', clientZone: 'us-east1-b' },
      ['same-zone:ub', 'same-region:uc1+uc2+un', 'distance:ew', 'distance:as'],
    ],
    [
      'zone c: both of its subzones first',
      { clientRegion: 'us-east1', clientZone: 'us-east1-c' },
      ['same-zone:uc1+uc2', 'same-region:ub+un', 'distance:ew', 'distance:as'],
    ],
    [
      'subzone rack2: the subzone, then its zone, then the region',
      { clientRegion: 'us-east1', clientZone: 'us-east1-c/rack2' },
      ['same-subzone:uc2', 'same-zone:uc1', 'same-region:ub+un', 'distance:ew', 'distance:as'],
    ],
    [
      'a subzone no cluster is in: its zone first',
      { clientRegion: 'us-east1', clientZone: 'us-east1-c/rack9' },
      ['same-zone:uc1+uc2', 'same-region:ub+un', 'distance:ew', 'distance:as'],
    ],
    [
      'no zone: region levels as before',
      { clientRegion: 'us-east1' },
      ['same-region:ub+uc1+uc2+un', 'distance:ew', 'distance:as'],
    ],
    [
      'a zone no cluster of the region is in: region levels',
      { clientRegion: 'us-east1', clientZone: 'us-east1-z' },
      ['same-region:ub+uc1+uc2+un', 'distance:ew', 'distance:as'],
    ],
    [
      "another region's zone named with this region: region levels",
      { clientRegion: 'us-east1', clientZone: 'eu-west1-a' },
      ['same-region:ub+uc1+uc2+un', 'distance:ew', 'distance:as'],
    ],
    [
      'a region without zones: region levels',
      { clientRegion: 'ap-southeast1', clientZone: 'x' },
      ['same-region:as', 'distance:ew', 'distance:ub+uc1+uc2+un'],
    ],
    ['zone without a known region: no locality', { clientZone: 'us-east1-b' }, ['no-locality:as+ew+ub+uc1+uc2+un']],
  ])('%s', (_, facts, expected) => {
    expect(levels(facts)).toEqual(expected);
  });

  it('a client in us-east1 zone b reaches zone b first, then zone a, then another region, and a failover rule still orders the regions', () => {
    const svc = service(
      'shop',
      [
        cluster('ua', 'us-east1', { zone: 'us-east1-a' }),
        cluster('ub', 'us-east1', { zone: 'us-east1-b' }),
        cluster('ew', 'eu-west1'),
        cluster('as', 'ap-southeast1'),
      ],
      {
        failover: [{ from: 'us-east1', to: ['ap-southeast1'] }],
      },
    );
    const d = decide(
      snapshotOf([svc]),
      { host: 'shop.example.com', clientRegion: 'us-east1', clientZone: 'us-east1-b' },
      seededRandom(3),
      4,
    );
    expect(d.kind === 'route' && d.attempts.map((c) => c.name)).toEqual(['ub', 'ua', 'as', 'ew']);
    expect(d.kind === 'route' && d.clientZone).toBe('us-east1-b');
  });

  it('zone plans exist only for zones the region has clusters in (memory stays bounded)', () => {
    const svc = snapshotOf([shop]).byName.get('shop')!;
    expect([...svc.byZone.keys()]).toEqual(['eu-west1', 'us-east1']);
    expect([...svc.byZone.get('us-east1')!.keys()].sort()).toEqual([
      'us-east1-b',
      'us-east1-c',
      'us-east1-c/rack1',
      'us-east1-c/rack2',
    ]);
  });

  it("half of the client's zone down: Envoy's priority spill goes to the rest of its region, not another region", () => {
    const svc = service('shop', [
      cluster('b1', 'us-east1', { zone: 'b' }),
      cluster('b2', 'us-east1', { zone: 'b' }),
      cluster('a1', 'us-east1', { zone: 'a' }),
      cluster('ew', 'eu-west1'),
    ]);
    const snap = snapshotOf([svc], { b2: 'unhealthy' });
    const d = decide(snap, { host: 'shop.example.com', clientRegion: 'us-east1', clientZone: 'b' }, seededRandom(1), 4);
    if (d.kind !== 'route') throw new Error(d.kind);
    expect(d.shares.levels.map((l) => l.load)).toEqual([70, 30, 0]);
  });

  it('a route destination (subset) gets zone plans of its own members', () => {
    const svc = service(
      'shop',
      [
        cluster('b1', 'us-east1', { zone: 'b', labels: { v: '1' } }),
        cluster('a1', 'us-east1', { zone: 'a', labels: { v: '1' } }),
        cluster('b2', 'us-east1', { zone: 'b', labels: { v: '2' } }),
      ],
      {
        routes: [{ name: 'all', order: 1, match: {}, destinations: [{ subset: { v: '1' }, weight: 100 }] }],
      },
    );
    const d = decide(
      snapshotOf([svc]),
      {
        host: 'shop.example.com',
        clientRegion: 'us-east1',
        clientZone: 'b',
        request: { method: 'GET', path: '/', query: '', header: () => null },
      },
      seededRandom(1),
      4,
    );
    expect(d.kind === 'route' && d.attempts.map((c) => c.name)).toEqual(['b1', 'a1']);
  });

  it('the matrix shows zone levels per client region and zone, with a summary for each', () => {
    const matrix = failoverMatrix(snapshotOf([shop]), snapshotOf([shop]).byName.get('shop')!);
    expect(
      matrix.zones['us-east1']!['us-east1-b']!.map((e) => [e.cluster, e.zone, e.level, e.levelReason, e.share]),
    ).toEqual([
      ['ub', 'us-east1-b', 0, 'same-zone', 100],
      ['uc1', 'us-east1-c/rack1', 1, 'same-region', 0],
      ['uc2', 'us-east1-c/rack2', 1, 'same-region', 0],
      ['un', null, 1, 'same-region', 0],
      ['ew', 'eu-west1-a', 2, 'distance', 0],
      ['as', null, 3, 'distance', 0],
    ]);
    expect(matrix.zones['us-east1']!['us-east1-c/rack1']![0]).toMatchObject({
      cluster: 'uc1',
      levelReason: 'same-subzone',
    });
    expect(matrix.zoneSummary['us-east1']!['us-east1-b']).toEqual({ totalHealth: 100, panic: false, closed: false });
    expect(matrix.regions['us-east1']![0]).toMatchObject({ cluster: 'ub', levelReason: 'same-region', share: 25 });
    expect(matrix.zones['ap-southeast1']).toBeUndefined();
  });

  it('explain says which zone the client was taken to be in and how', () => {
    const snap = snapshotOf([shop]);
    const request = { method: 'GET', path: '/', query: '', header: () => null };
    const named = explainDecision(
      snap,
      {
        host: 'shop.example.com',
        clientRegion: 'us-east1',
        clientZone: 'us-east1-c/rack9',
        clientZoneSource: 'header',
        request,
        sampleKey: 'r1',
      },
      3,
    );
    expect(named.clientZone).toEqual({
      zone: 'us-east1-c/rack9',
      plan: 'us-east1-c',
      how: "named by the request (x-waymark-client-zone); its zone us-east1-c's clusters first, then the rest of us-east1",
    });
    expect(named.candidates[0]).toMatchObject({ levelReason: 'same-zone' });
    const node = explainDecision(
      snap,
      {
        host: 'shop.example.com',
        clientRegion: 'us-east1',
        clientZone: 'us-east1-b',
        clientZoneSource: 'node',
        request,
        sampleKey: 'r1',
      },
      3,
    );
    expect(node.clientZone.how).toBe("this node's zone (WAYMARK_ZONE); its clusters first, then the rest of us-east1");
    expect(node.attempts[0]).toBe('ub');
    const none = explainDecision(
      snap,
      { host: 'shop.example.com', clientRegion: 'us-east1', request, sampleKey: 'r1' },
      3,
    );
    expect(none.clientZone).toEqual({ zone: null, plan: null, how: "no zone known: the region's levels" });
    const elsewhere = explainDecision(
      snap,
      {
        host: 'shop.example.com',
        clientRegion: 'ap-southeast1',
        clientZone: 'z',
        clientZoneSource: 'colo',
        request,
        sampleKey: 'r1',
      },
      3,
    );
    expect(elsewhere.clientZone.how).toBe(
      "the edge colo's zone (WAYMARK_COLO_ZONES); no cluster of ap-southeast1 is in it: the region's levels",
    );
  });

  describe('distribute (Istio localityLbSetting.distribute) with failover', () => {
    const hello = (
      distribute: { from: string; to: Record<string, number> }[],
      failover: { from: string; to: string[] }[] = [],
    ) =>
      service(
        'hello',
        [
          cluster('z1', 'us-east1', { zone: 'zone1' }),
          cluster('z2a', 'us-east1', { zone: 'zone2', weight: 300 }),
          cluster('z2b', 'us-east1', { zone: 'zone2' }),
          cluster('ew', 'eu-west1', { zone: 'zone4' }),
          cluster('as', 'ap-southeast1'),
        ],
        {
          failover,
          policy: {
            panicThresholdPercent: 50,
            failClosed: false,
            outlierDetection: {
              consecutiveFailures: 5,
              intervalMs: 10_000,
              baseEjectionMs: 30_000,
              maxEjectionMs: 300_000,
              maxEjectionPercent: 50,
            },
            distribute,
          },
        },
      );
    const plan = (
      svc: ServiceSpec,
      region: string,
      zone: string | null,
      health: Record<string, ClusterSpec['health']> = {},
    ) => {
      const compiled = snapshotOf([svc], health).byName.get('hello')!;
      const p = zone === null ? compiled.byRegion.get(region)! : compiled.byZone.get(region)!.get(zone)!;
      return p.list.levels.map(
        (l, i) =>
          `${p.list.reasons[i]}:${l.clusters.map((c) => `${c.name}=${Math.round(c.weight * 10) / 10}`).join('+')}`,
      );
    };
    const RULE = { from: 'us-east1/zone1/*', to: { 'us-east1/zone1/*': 70, 'us-east1/zone2': 20, 'eu-west1/*': 10 } };

    it("the from locality's clients get the to localities as level 0, each percent spread by weight; the rest keep their order", () => {
      expect(plan(hello([RULE]), 'us-east1', 'zone1')).toEqual([
        'distribute:z1=70+z2a=15+z2b=5+ew=10',
        'distance:as=100',
      ]);
    });

    it('other clients are not affected: region levels and zone levels as without the rule', () => {
      expect(plan(hello([RULE]), 'us-east1', 'zone2')).toEqual([
        'same-zone:z2a=300+z2b=100',
        'same-region:z1=100',
        'distance:ew=100',
        'distance:as=100',
      ]);
      expect(plan(hello([RULE]), 'us-east1', null)).toEqual([
        'same-region:z1=100+z2a=300+z2b=100',
        'distance:ew=100',
        'distance:as=100',
      ]);
    });

    it('a from zone without clusters still gets its plan; a region-wide from covers clients without a zone', () => {
      const rule = { from: 'us-east1/zone9', to: { 'eu-west1': 100 } };
      expect(plan(hello([rule]), 'us-east1', 'zone9')).toEqual([
        'distribute:ew=100',
        'same-region:z1=100+z2a=300+z2b=100',
        'distance:as=100',
      ]);
      expect(plan(hello([{ from: 'us-east1/*', to: { 'us-east1/zone2/*': 100 } }]), 'us-east1', null)).toEqual([
        'distribute:z2a=75+z2b=25',
        'same-region:z1=100',
        'distance:ew=100',
        'distance:as=100',
      ]);
    });

    it('failover rules still order what follows the distributed level (distribute and failover together, istio/istio#35124)', () => {
      const rule = { from: 'us-east1/zone1', to: { 'us-east1/zone1': 100 } };
      expect(plan(hello([rule], [{ from: 'us-east1', to: ['ap-southeast1'] }]), 'us-east1', 'zone1')).toEqual([
        'distribute:z1=100',
        'same-region:z2a=300+z2b=100',
        'failover-rule:as=100',
        'distance:ew=100',
      ]);
    });

    it("a distributed locality going down: its share goes to the level's healthy localities, then spills by priority", () => {
      const d = decide(
        snapshotOf([hello([RULE])], { z1: 'unhealthy', z2a: 'unhealthy' }),
        { host: 'hello.example.com', clientRegion: 'us-east1', clientZone: 'zone1' },
        seededRandom(1),
        6,
      );
      if (d.kind !== 'route') throw new Error(d.kind);
      // 2 of 4 healthy: 1.4 x 50 = 70 stays in level 0, over z2b (5) and ew (10) by weight; 30 to level 1.
      expect(d.shares.levels.map((l) => l.load)).toEqual([70, 30]);
      expect(d.shares.levels[0]!.pool.map((c) => c.name)).toEqual(['z2b', 'ew']);
    });
  });
});
