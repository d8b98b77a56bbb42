import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { clusterShares } from '../../src/routing/shares.js';
import type { ClusterHealth, OverrideSpec, ServiceSpec, Snapshot } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;

function shop(health: Record<string, ClusterHealth> = {}): ServiceSpec {
  const c = (name: string, region: Parameters<typeof cluster>[1]) =>
    cluster(name, region, health[name] ? { health: health[name] } : {});
  return service('shop', [c('ue1', 'us-east1'), c('ue2', 'us-east1'), c('ew1', 'eu-west1'), c('as1', 'ap-southeast1')]);
}
const other = service('other', [cluster('o1', 'us-east1'), cluster('o2', 'eu-west1')]);

let seq = 0;
function override(
  action: OverrideSpec['action'],
  target: { cluster?: string; region?: string; service?: string },
  expiresAt = NOW + HOUR,
): OverrideSpec {
  seq += 1;
  return {
    id: `ov-${seq}`,
    service: target.service ?? 'shop',
    action,
    cluster: target.cluster ?? null,
    region: target.region ?? null,
    expiresAt,
  };
}

function compile(overrides: OverrideSpec[], services: ServiceSpec[] = [shop(), other]): Snapshot {
  return compileSnapshot({ version: 1, services, overrides }, NOW);
}

/** `reason:cluster+cluster` per level for clients of a region. */
function levels(snap: Snapshot, region: string, name = 'shop'): string[] {
  const list = snap.byName.get(name)!.byRegion.get(region)!.list;
  return list.levels.map((level, i) => `${list.reasons[i]}:${level.clusters.map((c) => c.name).join('+')}`);
}

/** Each cluster's percent of a region's traffic, rounded to 0.1, clusters without traffic left out. */
function traffic(snap: Snapshot, region: string | null, name = 'shop'): Record<string, number> {
  const svc = snap.byName.get(name)!;
  const plan = region === null ? svc.anyRegion : svc.byRegion.get(region)!;
  const out: Record<string, number> = {};
  for (const [c, share] of clusterShares(plan.shares)) if (share > 0) out[c.name] = Math.round(share * 10) / 10;
  return out;
}

const drained = (snap: Snapshot, name = 'shop') =>
  snap.byName
    .get(name)!
    .clusters.filter((c) => c.drained)
    .map((c) => c.name);

describe('drain overrides', () => {
  it('no overrides: the baseline', () => {
    const snap = compile([]);
    expect(drained(snap)).toEqual([]);
    expect(traffic(snap, 'us-east1')).toEqual({ ue1: 50, ue2: 50 });
  });

  it('drain of one cluster: it takes no traffic from any region, its peers take its share', () => {
    const snap = compile([override('drain', { cluster: 'ue1' })]);
    expect(drained(snap)).toEqual(['ue1']);
    expect(traffic(snap, 'us-east1')).toEqual({ ue2: 100 });
    expect(traffic(snap, null)).toEqual({ as1: 33.3, ew1: 33.3, ue2: 33.3 });
    for (const region of ['us-east1', 'eu-west1', 'ap-southeast1']) {
      const plan = snap.byName.get('shop')!.byRegion.get(region)!;
      expect(plan.shares.levels.flatMap((l) => l.pool.map((c) => c.name))).not.toContain('ue1');
    }
    // The level is the one healthy cluster, so it keeps all of us-east1's traffic.
    expect(snap.byName.get('shop')!.byRegion.get('us-east1')!.shares.levels[0]!.healthyPercent).toBe(100);
  });

  it('a drained cluster stays in the priority list (the matrix shows it), only out of the pools', () => {
    const snap = compile([override('drain', { cluster: 'ue1' })]);
    expect(levels(snap, 'us-east1')).toEqual(['same-region:ue1+ue2', 'distance:ew1', 'distance:as1']);
  });

  it('drain of a whole region (cluster null, region set): its clients spill to the next region', () => {
    const snap = compile([override('drain', { region: 'us-east1' })]);
    expect(drained(snap)).toEqual(['ue1', 'ue2']);
    expect(traffic(snap, 'us-east1')).toEqual({ ew1: 100 });
    expect(traffic(snap, 'eu-west1')).toEqual({ ew1: 100 });
    // Another service's clusters in that region are untouched.
    expect(drained(snap, 'other')).toEqual([]);
  });

  it('a drain with a cluster and a region drains only that cluster in that region', () => {
    expect(drained(compile([override('drain', { cluster: 'ue1', region: 'us-east1' })]))).toEqual(['ue1']);
    expect(drained(compile([override('drain', { cluster: 'ue1', region: 'eu-west1' })]))).toEqual([]);
  });

  it("a drain of another service's cluster does not touch this service", () => {
    const snap = compile([override('drain', { service: 'other', cluster: 'o1' })]);
    expect(drained(snap)).toEqual([]);
    expect(drained(snap, 'other')).toEqual(['o1']);
    expect(traffic(snap, 'us-east1', 'other')).toEqual({ o2: 100 });
  });
});

describe('pin overrides', () => {
  it("the pinned cluster becomes a level of its own, first, with reason 'pin', for that region only", () => {
    const snap = compile([override('pin', { cluster: 'ew1', region: 'us-east1' })]);
    expect(levels(snap, 'us-east1')).toEqual(['pin:ew1', 'same-region:ue1+ue2', 'distance:as1']);
    expect(traffic(snap, 'us-east1')).toEqual({ ew1: 100 });
    const base = compile([]);
    for (const region of ['eu-west1', 'ap-southeast1']) {
      expect(levels(snap, region)).toEqual(levels(base, region));
      expect(traffic(snap, region)).toEqual(traffic(base, region));
    }
    expect(traffic(snap, null)).toEqual(traffic(base, null));
  });

  it("pinning a cluster of the client's own region takes it out of the region's level", () => {
    const snap = compile([override('pin', { cluster: 'ue2', region: 'us-east1' })]);
    expect(levels(snap, 'us-east1')).toEqual(['pin:ue2', 'same-region:ue1', 'distance:ew1', 'distance:as1']);
    expect(traffic(snap, 'us-east1')).toEqual({ ue2: 100 });
  });

  it("when the pinned cluster is unhealthy its traffic spills down the region's normal order", () => {
    const snap = compile(
      [override('pin', { cluster: 'ew1', region: 'us-east1' })],
      [shop({ ew1: 'unhealthy' }), other],
    );
    expect(levels(snap, 'us-east1')[0]).toBe('pin:ew1');
    expect(traffic(snap, 'us-east1')).toEqual({ ue1: 50, ue2: 50 });
  });

  it('when the pinned cluster is drained its traffic spills too', () => {
    const snap = compile([
      override('pin', { cluster: 'ew1', region: 'us-east1' }),
      override('drain', { cluster: 'ew1' }),
    ]);
    expect(traffic(snap, 'us-east1')).toEqual({ ue1: 50, ue2: 50 });
  });

  it('a pin naming a cluster the service does not have changes nothing', () => {
    const snap = compile([override('pin', { cluster: 'nope', region: 'us-east1' })]);
    expect(levels(snap, 'us-east1')).toEqual(levels(compile([]), 'us-east1'));
  });

  it("a pin for another service does not touch this service's lists", () => {
    const snap = compile([override('pin', { service: 'other', cluster: 'o2', region: 'us-east1' })]);
    expect(levels(snap, 'us-east1')).toEqual(levels(compile([]), 'us-east1'));
    expect(levels(snap, 'us-east1', 'other')).toEqual(['pin:o2', 'same-region:o1']);
  });
});

describe('override expiry and validUntil', () => {
  it.each<[string, boolean, number]>([
    ['expired an hour ago', false, NOW - HOUR],
    ['expiring exactly now', false, NOW],
    ['expiring in 1 ms', true, NOW + 1],
    ['expiring in an hour', true, NOW + HOUR],
  ])('a drain %s -> active: %s', (_name, active, expiresAt) => {
    const snap = compile([override('drain', { cluster: 'ue1' }, expiresAt)]);
    expect(drained(snap)).toEqual(active ? ['ue1'] : []);
    expect(snap.validUntil).toBe(active ? expiresAt : Number.POSITIVE_INFINITY);
  });

  it('an expired pin is ignored', () => {
    const snap = compile([override('pin', { cluster: 'ew1', region: 'us-east1' }, NOW)]);
    expect(levels(snap, 'us-east1')[0]).toBe('same-region:ue1+ue2');
  });

  it.each<[string, number[], number]>([
    ['no overrides', [], Number.POSITIVE_INFINITY],
    ['only expired ones', [NOW - 1, NOW], Number.POSITIVE_INFINITY],
    ['one active', [NOW + 5_000], NOW + 5_000],
    [
      'the earliest active one wins, expired ones do not count',
      [NOW + HOUR, NOW - 10, NOW + 500, NOW + 2 * HOUR],
      NOW + 500,
    ],
  ])('validUntil: %s', (_name, expiries, expected) => {
    const actions: OverrideSpec['action'][] = ['drain', 'pin'];
    const overrides = expiries.map((at, i) =>
      override(actions[i % 2]!, i % 2 ? { cluster: 'ew1', region: 'us-east1' } : { cluster: 'as1' }, at),
    );
    expect(compile(overrides).validUntil).toBe(expected);
  });

  it('validUntil counts every service, so any expiring override forces a rebuild', () => {
    const snap = compile([
      override('drain', { cluster: 'ue1' }, NOW + HOUR),
      override('drain', { service: 'other', cluster: 'o1' }, NOW + 60_000),
    ]);
    expect(snap.validUntil).toBe(NOW + 60_000);
  });

  it('compiling the same source after the earliest expiry drops that override', () => {
    const overrides = [
      override('drain', { cluster: 'ue1' }, NOW + 1_000),
      override('drain', { cluster: 'ue2' }, NOW + 2_000),
    ];
    const later = compileSnapshot({ version: 1, services: [shop(), other], overrides }, NOW + 1_000);
    expect(drained(later)).toEqual(['ue2']);
    expect(later.validUntil).toBe(NOW + 2_000);
  });
});
