import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, resolvePolicy } from '../../src/routing/policy.js';
import { seededRandom } from '../../src/routing/random.js';
import {
  clusterShares,
  computeShares,
  pickAttempts,
  type Availability,
  type ShareTable,
} from '../../src/routing/shares.js';
import type { Cluster, PriorityList } from '../../src/routing/types.js';

/** A hot-path cluster built directly, so a level can hold exactly the counts a case needs. */
function mk(name: string, region = 'r', weight = 100): Cluster {
  return {
    service: 's',
    name,
    key: `s/${name}`,
    region,
    zone: null,
    origin: `https://${name}.internal`,
    basePath: '',
    originHost: null,
    weight,
    labels: {},
    health: 'unknown',
    drained: false,
  };
}

/** A level of `n` clusters named `<prefix>0..n-1`. */
function level(prefix: string, n: number, weight = 100): Cluster[] {
  return Array.from({ length: n }, (_, i) => mk(`${prefix}${i}`, prefix, weight));
}

function list(...levels: Cluster[][]): PriorityList {
  return {
    levels: levels.map((clusters) => ({ region: clusters[0]?.region ?? null, clusters })),
    reasons: levels.map(() => 'distance'),
  };
}

/** Availability by name: the listed names get the given state, every other cluster is healthy. */
function avail(states: Record<string, Availability>): (c: Cluster) => Availability {
  return (c) => states[c.name] ?? 'healthy';
}

/** The first `count` clusters of a level marked with a state. */
function mark(clusters: Cluster[], count: number, state: Availability): Record<string, Availability> {
  return Object.fromEntries(clusters.slice(0, count).map((c) => [c.name, state]));
}

const loads = (t: ShareTable) => t.levels.map((l) => l.load);
const poolNames = (t: ShareTable) => t.levels.map((l) => l.pool.map((c) => c.name));

describe('computeShares: Envoy priority levels with overprovisioning 1.4', () => {
  // Level 0 at x% healthy (level 1 fully healthy) keeps min(100, floor(1.4x))% of the traffic: Envoy's
  // priority load is in integer percents (envoyproxy/envoy docs/root/intro/arch_overview/upstream/
  // load_balancing/priority.rst, first table: 71% healthy keeps 99%, not 99.4%).
  it.each([
    [100, 100],
    [72, 100],
    [71, 99],
    [50, 70],
    [25, 35],
    [0, 0],
  ])(
    'level 0 at %d percent healthy keeps %d percent (the rest goes to a healthy level 1)',
    (healthyPercent, expected) => {
      const l0 = level('a', 100);
      const l1 = level('b', 100);
      const t = computeShares(list(l0, l1), avail(mark(l0, 100 - healthyPercent, 'unhealthy')), DEFAULT_POLICY);
      expect(t.levels[0]!.healthyPercent).toBe(healthyPercent);
      expect(t.levels[0]!.load).toBe(expected);
      expect(t.levels[1]!.load).toBe(100 - expected);
      expect(t.levels[0]!.pool).toHaveLength(healthyPercent);
      expect(t.panic).toBe(false);
      expect(t.closed).toBe(false);
    },
  );

  const shaped = (shape: [number, number][]) => {
    const levels = shape.map(([, total], i) => level(`l${i}-`, total));
    const states = Object.assign(
      {},
      ...levels.map((l, i) => mark(l, shape[i]![1] - shape[i]![0], 'unhealthy')),
    ) as Record<string, Availability>;
    return { levels, states };
  };

  // These shapes used to run under the default threshold; every level in them is under 50% healthy, so
  // Envoy puts them in total panic (next table). The normalising itself shows with panic off
  // (threshold 0), as the tables of priority.rst assume; integer loads, the rounding rest to level 0.
  it.each<[string, [number, number][], number[]]>([
    // [healthy, total] per level -> loads
    [
      'two levels at 25% each split 50/50',
      [
        [1, 4],
        [1, 4],
      ],
      [50, 50],
    ],
    // load_balancer_impl_base_test.cc GentleFailoverWithExtraLevels: "each priority level gets 33% of the load, with P=0 picking up the rounding error"
    [
      'three levels at 20% each split in thirds, level 0 takes the rounding rest',
      [
        [1, 5],
        [1, 5],
        [1, 5],
      ],
      [34, 33, 33],
    ],
    [
      '25% + 30% normalise 35:42 (45 + 54, rest 1 to level 0)',
      [
        [1, 4],
        [3, 10],
      ],
      [46, 54],
    ],
    [
      '25% + 50% add up to over 100: no normalising, level 1 takes the rest',
      [
        [1, 4],
        [2, 4],
      ],
      [35, 65],
    ],
    [
      'a fully unhealthy level between two degraded ones takes nothing',
      [
        [1, 4],
        [0, 3],
        [1, 4],
      ],
      [50, 0, 50],
    ],
  ])('normalises when every level is degraded (panic off): %s', (_name, shape, expected) => {
    const { levels, states } = shaped(shape);
    const t = computeShares(list(...levels), avail(states), resolvePolicy({ panicThresholdPercent: 0 }));
    expect(t.panic).toBe(false);
    expect(loads(t)).toEqual(expected);
  });

  // Under the default threshold the same shapes panic per level; when every level is in panic Envoy
  // spreads load by host count (load_balancer_impl_base_test.cc GentleFailoverWithExtraLevels, "All
  // levels are completely down - situation called TotalPanic", 5/3/2 hosts -> 50/30/20).
  it.each<[string, [number, number][], number[], boolean]>([
    [
      'two levels at 25%: total panic, 4 and 4 clusters',
      [
        [1, 4],
        [1, 4],
      ],
      [50, 50],
      true,
    ],
    [
      '25% + 30%: total panic, 4 and 10 clusters (28 + 71, rest 1 to level 0)',
      [
        [1, 4],
        [3, 10],
      ],
      [29, 71],
      true,
    ],
    [
      '25% / 0% / 25%: total panic, 4, 3 and 4 clusters (36 + 27 + 36, rest 1 to level 0)',
      [
        [1, 4],
        [0, 3],
        [1, 4],
      ],
      [37, 27, 36],
      true,
    ],
    [
      '25% + 50%: total health 100, no level panics',
      [
        [1, 4],
        [2, 4],
      ],
      [35, 65],
      false,
    ],
  ])('default threshold: %s', (_name, shape, expected, panic) => {
    const { levels, states } = shaped(shape);
    const t = computeShares(list(...levels), avail(states), DEFAULT_POLICY);
    expect(t.panic).toBe(panic);
    expect(t.levels.every((l) => l.panic === panic)).toBe(true);
    expect(loads(t)).toEqual(expected);
  });

  it('totalHealth is the capped sum of level health', () => {
    const l0 = level('a', 4);
    const l1 = level('b', 4);
    expect(
      computeShares(list(l0, l1), avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 3, 'unhealthy') }), DEFAULT_POLICY)
        .totalHealth,
    ).toBeCloseTo(70, 9);
    expect(computeShares(list(l0, l1), avail({}), DEFAULT_POLICY).totalHealth).toBe(100);
  });
});

describe('computeShares: panic and fail-closed', () => {
  const l0 = level('a', 4);
  const l1 = level('b', 4);

  it('below the default threshold (50) health is ignored: unhealthy clusters become routable', () => {
    // Level 0: 1 of 4 healthy (health 35), level 1: none healthy -> total 35 < 100, and both levels are
    // under 50% healthy: total panic.
    const t = computeShares(
      list(l0, l1),
      avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 4, 'unhealthy') }),
      DEFAULT_POLICY,
    );
    expect(t.panic).toBe(true);
    expect(t.closed).toBe(false);
    expect(t.totalHealth).toBe(35);
    expect(t.levels.map((l) => l.panic)).toEqual([true, true]);
    expect(poolNames(t)).toEqual([l0.map((c) => c.name), l1.map((c) => c.name)]);
    // This used to send everything to level 0. In total panic Envoy spreads load by host count
    // (load_balancer_impl_base_test.cc GentleFailover: "P=0 and P=1 have 4 hosts each so each priority
    // will receive 50% of the traffic").
    expect(loads(t)).toEqual([50, 50]);
    // The healthy percent still tells the truth.
    expect(t.levels[0]!.healthyPercent).toBe(25);
  });

  it('a level panics below 50% healthy, not below 35.7%: the threshold is not scaled by 1.4', () => {
    // 2 of 5 healthy is 40%: health 56 used to clear the threshold of 50; Envoy compares the raw percent
    // (isHostSetInPanic; panic_threshold.rst table 2, 25% / 25%: both in panic at total health 70).
    const l = level('a', 5);
    const t = computeShares(list(l), avail(mark(l, 3, 'unhealthy')), DEFAULT_POLICY);
    expect(t.totalHealth).toBe(56);
    expect(t.panic).toBe(true);
    expect(t.levels[0]!.pool).toHaveLength(5);
  });

  it('at the threshold exactly it is not panic', () => {
    // Envoy panics when the healthy percent is under the threshold (`<`): 1 of 4 is 25%, threshold 25.
    const t = computeShares(list(l0), avail(mark(l0, 3, 'unhealthy')), resolvePolicy({ panicThresholdPercent: 25 }));
    expect(t.panic).toBe(false);
    expect(poolNames(t)).toEqual([['a3']]);
    expect(loads(t)).toEqual([100]);
  });

  it('panic never routes to drained clusters', () => {
    const t = computeShares(
      list(l0),
      avail({ a0: 'drained', a1: 'unhealthy', a2: 'unhealthy', a3: 'unhealthy' }),
      DEFAULT_POLICY,
    );
    expect(t.panic).toBe(true);
    expect(poolNames(t)).toEqual([['a1', 'a2', 'a3']]);
    expect(loads(t)).toEqual([100]);
  });

  it.each<[string, number, number, boolean]>([
    // name, threshold, healthy of 4 in a single level, panic
    // This row used to be trusted (health 35 >= 30). Envoy compares the raw 25% with the threshold
    // (isHostSetInPanic; panic_threshold.rst table 2, 5% / 65%: P=0 in panic at health 7 of total 98).
    ['threshold 30, 1 of 4 healthy (25%, health 35): panic', 30, 1, true],
    ['threshold 80, 2 of 4 healthy (70): panic', 80, 2, true],
    ['threshold 0, nothing healthy: no panic, nothing routable', 0, 0, false],
    ['threshold 100, 3 of 4 healthy (100): trusted', 100, 3, false],
  ])('a custom threshold: %s', (_name, threshold, healthy, panic) => {
    const t = computeShares(
      list(l0),
      avail(mark(l0, 4 - healthy, 'unhealthy')),
      resolvePolicy({ panicThresholdPercent: threshold }),
    );
    expect(t.panic).toBe(panic);
    expect(t.levels[0]!.pool).toHaveLength(panic ? 4 : healthy);
  });

  it('threshold 0 with nothing healthy: no panic, level 0 holds the load and nothing is routable', () => {
    // load_balancer_impl.cc recalculatePerPriorityPanic: "100% is assigned to P=0 ... no traffic will be
    // routed to P=0" (panic_threshold.rst: "503 - no healthy upstream").
    const t = computeShares(
      list(l0, l1),
      avail({ ...mark(l0, 4, 'unhealthy'), ...mark(l1, 4, 'unhealthy') }),
      resolvePolicy({ panicThresholdPercent: 0 }),
    );
    expect(loads(t)).toEqual([100, 0]);
    expect(poolNames(t)).toEqual([[], []]);
    expect(pickAttempts(t, seededRandom(1), 3)).toEqual([]);
  });

  it('fail-closed policy: in total panic the table is closed and no pool takes traffic', () => {
    // round_robin_lb_test.cc FailoverTest.PriorityUpdatesWithLocalHostSetDisableOnPanic: "With both the
    // primary and failover hosts unhealthy, we should select no host". Loads stay Envoy's (50/50 by host
    // count): every draw lands on a level that refuses it.
    const policy = resolvePolicy({ failClosed: true });
    const t = computeShares(list(l0, l1), avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 4, 'unhealthy') }), policy);
    expect(t.closed).toBe(true);
    expect(t.panic).toBe(false);
    expect(t.levels.map((l) => l.panic)).toEqual([true, true]);
    expect(poolNames(t)).toEqual([[], []]);
    expect(loads(t)).toEqual([50, 50]);
    expect(clusterShares(t).size).toBe(0);
    const random = seededRandom(1);
    for (let i = 0; i < 100; i++) expect(pickAttempts(t, random, 3)).toEqual([]);
  });

  it('fail-closed policy above the threshold routes as usual', () => {
    const t = computeShares(list(l0, l1), avail(mark(l0, 2, 'unhealthy')), resolvePolicy({ failClosed: true }));
    expect(t.closed).toBe(false);
    expect(loads(t)[0]).toBeCloseTo(70, 9);
    expect(loads(t)[1]).toBeCloseTo(30, 9);
  });

  it('a list with every cluster drained is neither panic nor closed, and routes nothing', () => {
    const t = computeShares(list(l0), avail(mark(l0, 4, 'drained')), resolvePolicy({ failClosed: true }));
    expect([t.panic, t.closed]).toEqual([false, false]);
    // An empty level is in panic for Envoy (0% healthy), and with no host anywhere
    // recalculateLoadInTotalPanic puts 100 on P=0 ("Backend is empty, but load must be distributed
    // somewhere"). It used to be 0; nothing is routable either way.
    expect(t.levels[0]!.panic).toBe(true);
    expect(loads(t)).toEqual([100]);
    expect(pickAttempts(t, seededRandom(1), 3)).toEqual([]);
  });
});

describe('computeShares: drained clusters', () => {
  it("drained clusters don't count in a level's total", () => {
    // 10 clusters, 5 drained, 5 healthy: the level is 100% healthy, not 50% (which would keep only 70).
    const l0 = level('a', 10);
    const l1 = level('b', 1);
    const t = computeShares(list(l0, l1), avail(mark(l0, 5, 'drained')), DEFAULT_POLICY);
    expect(t.levels[0]!.healthyPercent).toBe(100);
    expect(loads(t)).toEqual([100, 0]);
  });

  it('drained and unhealthy together: 2 drained, 1 unhealthy, 1 healthy is a 50% level', () => {
    const l0 = level('a', 4);
    const l1 = level('b', 1);
    const t = computeShares(list(l0, l1), avail({ a0: 'drained', a1: 'drained', a2: 'unhealthy' }), DEFAULT_POLICY);
    expect(t.levels[0]!.healthyPercent).toBe(50);
    expect(loads(t)[0]).toBeCloseTo(70, 9);
    expect(poolNames(t)).toEqual([['a3'], ['b0']]);
  });

  it('drained clusters never take traffic, even as retries', () => {
    const l0 = level('a', 3);
    const l1 = level('b', 2);
    const t = computeShares(list(l0, l1), avail({ a1: 'drained', b0: 'drained' }), DEFAULT_POLICY);
    const random = seededRandom(7);
    for (let i = 0; i < 2000; i++) {
      const names = pickAttempts(t, random, 10).map((c) => c.name);
      expect(names).not.toContain('a1');
      expect(names).not.toContain('b0');
    }
    expect([...clusterShares(t).keys()].map((c) => c.name).sort()).toEqual(['a0', 'a2', 'b1']);
  });
});

describe('clusterShares: weights inside a level', () => {
  it.each<[string, number[], number[]]>([
    ['equal weights split evenly', [100, 100], [50, 50]],
    ['1:3 weights', [100, 300], [25, 75]],
    ['a weight-0 cluster gets nothing', [100, 0, 100], [50, 0, 50]],
    ['all weights 0 split evenly', [0, 0], [50, 50]],
  ])('%s', (_name, weights, expected) => {
    const l0 = weights.map((w, i) => mk(`a${i}`, 'a', w));
    const shares = clusterShares(computeShares(list(l0), avail({}), DEFAULT_POLICY));
    expect(l0.map((c) => shares.get(c))).toEqual(expected);
  });

  it('level load times weight share: 70/30 over levels, 1:3 inside level 0', () => {
    const l0 = [mk('a0', 'a', 100), mk('a1', 'a', 300), mk('a2', 'a'), mk('a3', 'a')];
    const l1 = level('b', 1);
    const shares = clusterShares(
      computeShares(list(l0, l1), avail({ a2: 'unhealthy', a3: 'unhealthy' }), DEFAULT_POLICY),
    );
    expect(shares.get(l0[0]!)).toBeCloseTo(17.5, 9);
    expect(shares.get(l0[1]!)).toBeCloseTo(52.5, 9);
    expect(shares.has(l0[2]!)).toBe(false);
    expect(shares.get(l1[0]!)).toBeCloseTo(30, 9);
    expect([...shares.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(100, 9);
  });
});

describe('pickAttempts', () => {
  // Level 0: 2 clusters, one unhealthy (50% -> 70), level 1 healthy (30).
  const l0 = [mk('a0', 'a'), mk('a1', 'a')];
  const l1 = [mk('b0', 'b', 100), mk('b1', 'b', 300)];
  const l2 = level('c', 3);
  const table = computeShares(list(l0, l1, l2), avail({ a1: 'unhealthy' }), DEFAULT_POLICY);
  const levelOf = (c: Cluster) => [l0, l1, l2].findIndex((l) => l.includes(c));

  it('the table under test is 70/30/0', () => {
    expect(loads(table)[0]).toBeCloseTo(70, 9);
    expect(loads(table)[1]).toBeCloseTo(30, 9);
    expect(loads(table)[2]).toBe(0);
  });

  it('first picks follow level loads (70/30 within 2% over 20k draws) and weights inside a level', () => {
    const random = seededRandom(42);
    const n = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const first = pickAttempts(table, random, 1)[0]!;
      counts.set(first.name, (counts.get(first.name) ?? 0) + 1);
    }
    const part = (name: string) => (counts.get(name) ?? 0) / n;
    expect(Math.abs(part('a0') - 0.7)).toBeLessThan(0.02);
    expect(Math.abs(part('b0') + part('b1') - 0.3)).toBeLessThan(0.02);
    // Inside level 1, weights 1:3 -> 7.5% / 22.5% of all traffic.
    expect(Math.abs(part('b1') - 0.225)).toBeLessThan(0.02);
    expect(Math.abs(part('b0') - 0.075)).toBeLessThan(0.02);
    // Unhealthy and load-0 clusters are never first.
    expect(part('a1')).toBe(0);
    expect(part('c0') + part('c1') + part('c2')).toBe(0);
  });

  it.each([1, 2, 3, 4, 5, 6, 10])('max %d: never more attempts than allowed, never a cluster twice', (max) => {
    const random = seededRandom(max);
    const routable = 1 + 2 + 3; // a0, b0, b1, c0..c2
    for (let i = 0; i < 500; i++) {
      const attempts = pickAttempts(table, random, max);
      expect(attempts).toHaveLength(Math.min(max, routable));
      expect(new Set(attempts).size).toBe(attempts.length);
      expect(attempts.map((c) => c.name)).not.toContain('a1');
    }
  });

  it('retries follow priority order after the first pick', () => {
    const random = seededRandom(5);
    let firstFromLevel1 = 0;
    for (let i = 0; i < 2000; i++) {
      const attempts = pickAttempts(table, random, 10);
      const retryLevels = attempts.slice(1).map(levelOf);
      expect(retryLevels).toEqual([...retryLevels].sort((a, b) => a - b));
      if (levelOf(attempts[0]!) === 1) {
        firstFromLevel1 += 1;
        // Retries of a level-1 pick still go to level 0 first.
        expect(attempts[1]!.name).toBe('a0');
        expect(levelOf(attempts[2]!)).toBe(1);
      }
    }
    expect(firstFromLevel1).toBeGreaterThan(0);
  });

  it('retries inside a level are drawn by weight', () => {
    // First pick is a0 (level 0 has only a0); the first retry comes from level 1: b1 3x as often as b0.
    const random = seededRandom(11);
    let b1 = 0;
    let total = 0;
    for (let i = 0; i < 20_000; i++) {
      const attempts = pickAttempts(table, random, 2);
      if (attempts[0]!.name !== 'a0') continue;
      total += 1;
      if (attempts[1]!.name === 'b1') b1 += 1;
    }
    expect(Math.abs(b1 / total - 0.75)).toBeLessThan(0.02);
  });

  it('a weight-0 cluster is never first while a weighted one is left, but retries may go there', () => {
    const l = [mk('z', 'a', 0), mk('w', 'a', 100), mk('y', 'a', 0)];
    const t = computeShares(list(l, level('b', 1)), avail({}), DEFAULT_POLICY);
    for (let seed = 0; seed < 500; seed++) {
      const attempts = pickAttempts(t, seededRandom(seed), 4).map((c) => c.name);
      expect(attempts[0]).toBe('w');
      expect(attempts.slice(1, 3).sort()).toEqual(['y', 'z']);
      expect(attempts[3]).toBe('b0');
    }
  });

  it('is repeatable with the same seed', () => {
    const run = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 50 }, () =>
        pickAttempts(table, random, 3)
          .map((c) => c.name)
          .join(','),
      );
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('an empty table gives no attempts', () => {
    expect(pickAttempts(computeShares(list(), avail({}), DEFAULT_POLICY), seededRandom(1), 3)).toEqual([]);
  });
});
