import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { failoverMatrix, type FailoverMatrix, type MatrixEntry } from '../../src/routing/matrix.js';
import { resolvePolicy } from '../../src/routing/policy.js';
import type { ClusterHealth, OverrideSpec, ServiceSpec } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

const NOW = 1_700_000_000_000;

function matrix(spec: ServiceSpec, opts: { overrides?: OverrideSpec[]; down?: string[] } = {}): FailoverMatrix {
  const snap = compileSnapshot({ version: 1, services: [spec], overrides: opts.overrides ?? [] }, NOW);
  return failoverMatrix(snap, snap.byName.get(spec.name)!, opts.down ? new Set(opts.down) : undefined);
}

/** ue1, ue2 in us-east1, ew1 in eu-west1, as1 in ap-southeast1, with the given health. */
function shop(health: Record<string, ClusterHealth> = {}, extra: Partial<ServiceSpec> = {}): ServiceSpec {
  const c = (name: string, region: Parameters<typeof cluster>[1]) =>
    cluster(name, region, { health: health[name] ?? 'healthy' });
  return service(
    'shop',
    [c('ue1', 'us-east1'), c('ue2', 'us-east1'), c('ew1', 'eu-west1'), c('as1', 'ap-southeast1')],
    extra,
  );
}

const pick = (entries: MatrixEntry[] | undefined, ...keys: (keyof MatrixEntry)[]) =>
  (entries ?? []).map((e) => keys.map((k) => e[k]).join(' '));
const shares = (entries: MatrixEntry[] | undefined) =>
  Object.fromEntries((entries ?? []).map((e) => [e.cluster, e.share]));
/** Sum of shares in tenths, so "adds up to 100" is checked exactly rather than to a float epsilon. */
const tenths = (entries: MatrixEntry[] | undefined) =>
  (entries ?? []).reduce((sum, e) => sum + Math.round(e.share * 10), 0);

describe('failoverMatrix: entries', () => {
  it('lists every region routing knows, sorted, each with the clusters in failover order', () => {
    const m = matrix(shop({ as1: 'unknown' }));
    expect(m.service).toBe('shop');
    expect(Object.keys(m.regions)).toEqual(['ap-southeast1', 'eu-west1', 'us-east1']);
    expect(pick(m.regions['us-east1'], 'cluster', 'region', 'level', 'levelReason', 'health')).toEqual([
      'ue1 us-east1 0 same-region healthy',
      'ue2 us-east1 0 same-region healthy',
      'ew1 eu-west1 1 distance healthy',
      'as1 ap-southeast1 2 distance unknown',
    ]);
    expect(pick(m.regions['ap-southeast1'], 'cluster', 'level', 'levelReason')).toEqual([
      'as1 0 same-region',
      'ew1 1 distance',
      'ue1 2 distance',
      'ue2 2 distance',
    ]);
  });

  it('a failover rule shows as the level reason', () => {
    const m = matrix(shop({}, { failover: [{ from: 'eu-west1', to: ['ap-southeast1'] }] }));
    expect(pick(m.regions['eu-west1'], 'cluster', 'level', 'levelReason')).toEqual([
      'ew1 0 same-region',
      'as1 1 failover-rule',
      'ue1 2 distance',
      'ue2 2 distance',
    ]);
  });

  it('a pin shows as its own first level with reason pin', () => {
    const m = matrix(shop(), {
      overrides: [{ id: 'p', service: 'shop', action: 'pin', cluster: 'as1', region: 'us-east1', expiresAt: NOW + 1 }],
    });
    expect(pick(m.regions['us-east1'], 'cluster', 'level', 'levelReason', 'share')).toEqual([
      'as1 0 pin 100',
      'ue1 1 same-region 0',
      'ue2 1 same-region 0',
      'ew1 2 distance 0',
    ]);
  });
});

describe('failoverMatrix: shares', () => {
  it('healthy service: the home region takes everything, split by weight', () => {
    const m = matrix(shop());
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 50, ue2: 50, ew1: 0, as1: 0 });
    expect(shares(m.regions['eu-west1'])).toEqual({ ew1: 100, ue1: 0, ue2: 0, as1: 0 });
  });

  it('the 70/30 case: one of two us-east1 clusters unhealthy, the next level healthy', () => {
    const m = matrix(shop({ ue2: 'unhealthy' }));
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 70, ue2: 0, ew1: 30, as1: 0 });
    expect(m.regions['us-east1']!.find((e) => e.cluster === 'ue2')!.health).toBe('unhealthy');
    expect(m.regions['us-east1']!.find((e) => e.cluster === 'ue2')!.reason).toContain('no traffic: unhealthy');
    expect(m.summary['us-east1']).toEqual({ totalHealth: 100, panic: false, closed: false });
  });

  it.each<[string, ServiceSpec]>([
    [
      'three equal clusters',
      service('t', [cluster('a', 'us-east1'), cluster('b', 'us-east1'), cluster('c', 'us-east1')]),
    ],
    [
      'six equal clusters',
      service(
        't',
        ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => cluster(n, 'us-east1')),
      ),
    ],
    [
      'weights 1:1:1:4',
      service('t', [
        cluster('a', 'us-east1'),
        cluster('b', 'us-east1'),
        cluster('c', 'us-east1'),
        cluster('d', 'us-east1', { weight: 400 }),
      ]),
    ],
    [
      'thirds inside a degraded level with a spill',
      service('t', [
        ...['a', 'b', 'c', 'd', 'e', 'f'].map((n, i) =>
          cluster(n, 'us-east1', { health: i < 3 ? 'healthy' : 'unhealthy' }),
        ),
        cluster('x', 'eu-west1'),
        cluster('y', 'eu-west1'),
        cluster('z', 'eu-west1'),
      ]),
    ],
    ['the 70/30 case', shop({ ue2: 'unhealthy' })],
    [
      'weights 1:2 in a 99.4% level',
      service('t', [cluster('a', 'us-east1'), cluster('b', 'us-east1', { weight: 200 }), cluster('w', 'eu-west1')]),
    ],
  ])('shares are one decimal and sum to exactly 100 in every region: %s', (_name, spec) => {
    const m = matrix(spec);
    for (const [region, entries] of Object.entries(m.regions)) {
      expect(tenths(entries), region).toBe(1000);
      for (const e of entries)
        expect(Math.abs(e.share * 10 - Math.round(e.share * 10)), `${region} ${e.cluster}`).toBeLessThan(1e-9);
    }
  });

  it('three equal clusters: 33.4 + 33.3 + 33.3 (largest remainder)', () => {
    const m = matrix(service('t', [cluster('a', 'us-east1'), cluster('b', 'us-east1'), cluster('c', 'us-east1')]));
    expect(m.regions['us-east1']!.map((e) => e.share).sort()).toEqual([33.3, 33.3, 33.4]);
  });

  it('drained clusters show as drained with a 0 share', () => {
    const m = matrix(shop(), {
      overrides: [{ id: 'd', service: 'shop', action: 'drain', cluster: 'ue2', region: null, expiresAt: NOW + 60_000 }],
    });
    const ue2 = m.regions['us-east1']!.find((e) => e.cluster === 'ue2')!;
    expect(ue2).toMatchObject({ health: 'drained', share: 0 });
    expect(ue2.reason).toContain('no traffic: drained');
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 100, ue2: 0, ew1: 0, as1: 0 });
  });
});

describe('failoverMatrix: what-if down set', () => {
  it('a healthy cluster named in down shows as down and sheds like an unhealthy one', () => {
    const m = matrix(shop(), { down: ['ue2'] });
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 70, ue2: 0, ew1: 30, as1: 0 });
    const ue2 = m.regions['us-east1']!.find((e) => e.cluster === 'ue2')!;
    expect(ue2.health).toBe('down');
    expect(ue2.reason).toContain('no traffic: down');
  });

  it('a whole region down spills its clients to the next region', () => {
    const m = matrix(shop(), { down: ['ue1', 'ue2'] });
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 0, ue2: 0, ew1: 100, as1: 0 });
    expect(shares(m.regions['ap-southeast1'])).toEqual({ as1: 100, ew1: 0, ue1: 0, ue2: 0 });
  });

  it('does not change the compiled snapshot (a what-if, not a change)', () => {
    const snap = compileSnapshot({ version: 1, services: [shop()], overrides: [] }, NOW);
    const svc = snap.byName.get('shop')!;
    failoverMatrix(snap, svc, new Set(['ue1', 'ue2', 'ew1']));
    expect(shares(failoverMatrix(snap, svc).regions['us-east1'])).toEqual({ ue1: 50, ue2: 50, ew1: 0, as1: 0 });
  });

  it('everything down but one: panic in the summary, health ignored', () => {
    const m = matrix(
      service(
        't',
        ['a', 'b', 'c', 'd'].map((n) => cluster(n, 'us-east1', { health: 'healthy' })),
      ),
      { down: ['a', 'b', 'c'] },
    );
    expect(m.summary['us-east1']).toEqual({ totalHealth: 35, panic: true, closed: false });
    expect(shares(m.regions['us-east1'])).toEqual({ a: 25, b: 25, c: 25, d: 25 });
    expect(m.regions['us-east1']![0]!.reason).toContain('panic: health ignored');
  });
});

describe('failoverMatrix: summary', () => {
  const four = (health: ClusterHealth[], failClosed = false) =>
    service(
      't',
      ['a', 'b', 'c', 'd'].map((n, i) => cluster(n, 'us-east1', { health: health[i]! })),
      failClosed ? { policy: resolvePolicy({ failClosed: true }) } : {},
    );

  it.each<[string, ServiceSpec, { totalHealth: number; panic: boolean; closed: boolean }, number]>([
    [
      'all healthy',
      four(['healthy', 'healthy', 'healthy', 'healthy']),
      { totalHealth: 100, panic: false, closed: false },
      1000,
    ],
    [
      'half healthy (70)',
      four(['healthy', 'healthy', 'unhealthy', 'unhealthy']),
      { totalHealth: 70, panic: false, closed: false },
      1000,
    ],
    [
      'one of four healthy: panic',
      four(['healthy', 'unhealthy', 'unhealthy', 'unhealthy']),
      { totalHealth: 35, panic: true, closed: false },
      1000,
    ],
    [
      'none healthy: panic',
      four(['unhealthy', 'unhealthy', 'unhealthy', 'unhealthy']),
      { totalHealth: 0, panic: true, closed: false },
      1000,
    ],
    [
      'one of four healthy, fail closed',
      four(['healthy', 'unhealthy', 'unhealthy', 'unhealthy'], true),
      { totalHealth: 35, panic: false, closed: true },
      0,
    ],
  ])('%s', (_name, spec, summary, total) => {
    const m = matrix(spec);
    expect(m.summary['us-east1']).toEqual(summary);
    expect(tenths(m.regions['us-east1'])).toBe(total);
  });

  it('fail closed: every share is 0 and the reason says so', () => {
    const m = matrix(four(['healthy', 'unhealthy', 'unhealthy', 'unhealthy'], true));
    for (const e of m.regions['us-east1']!) {
      expect(e.share).toBe(0);
      expect(e.reason).toContain('fail closed: nothing routable');
    }
  });
});

describe('failoverMatrix: reasons', () => {
  it('name the level, its health and its load', () => {
    const m = matrix(shop({ ue2: 'unhealthy' }));
    expect(m.regions['us-east1']![0]!.reason).toBe('level 0 (same-region); 50% of the level healthy, level takes 70%');
  });

  // BUG (src/routing/matrix.ts, entries): `takes = byCluster.has(c)` is true for every cluster in a
  // level's pool, and clusterShares() puts every pool cluster in its map even when the level's load is 0.
  // So a healthy cluster below a level that takes all the traffic never gets the intended
  // "no traffic: higher levels take it all"; that text only appears for healthy clusters when the
  // service fails closed, where it is wrong (nothing is routable at all).
  it('a healthy cluster below a level that takes everything says why it gets nothing', () => {
    const m = matrix(shop());
    const ew1 = m.regions['us-east1']!.find((e) => e.cluster === 'ew1')!;
    expect(ew1.share).toBe(0);
    expect(ew1.reason).toContain('no traffic: higher levels take it all');
  });

  // Same BUG, other half: when the service fails closed, healthy clusters are in no pool and get
  // "no traffic: higher levels take it all", though no level takes anything.
  it('fail closed: a healthy cluster is not told that higher levels take the traffic', () => {
    const spec = service(
      't',
      ['a', 'b', 'c', 'd'].map((n, i) => cluster(n, 'us-east1', { health: i === 0 ? 'healthy' : 'unhealthy' })),
      {
        policy: resolvePolicy({ failClosed: true }),
      },
    );
    const a = matrix(spec).regions['us-east1']!.find((e) => e.cluster === 'a')!;
    expect(a.reason).toContain('fail closed: nothing routable');
    expect(a.reason).not.toContain('higher levels take it all');
  });
});

describe('failoverMatrix: panic is per level (Envoy)', () => {
  it('only a level in panic ignores health; an unhealthy cluster in a level that is not stays out', () => {
    // us-east1 clients: level 0 {ue1 down, ue2 up} is 50% healthy (not under the 50% threshold); levels 1
    // and 2 are 0% healthy and, with the normalised total at 70 < 100, in panic.
    const m = matrix(shop({ ue1: 'unhealthy', ew1: 'unhealthy', as1: 'unhealthy' }));
    const byName = Object.fromEntries((m.regions['us-east1'] ?? []).map((e) => [e.cluster, e]));
    expect(shares(m.regions['us-east1'])).toEqual({ ue1: 0, ue2: 100, ew1: 0, as1: 0 });
    expect(byName.ue1?.reason).toContain('no traffic: unhealthy');
    expect(byName.ue1?.reason).not.toContain('panic');
    expect(byName.ew1?.reason).toContain('level in panic: health ignored');
  });
});
