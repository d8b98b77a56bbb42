import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, resolvePolicy } from '../../src/routing/policy.js';
import { seededRandom } from '../../src/routing/random.js';
import { clusterShares, computeShares, pickAttempts, type Availability, type ShareTable } from '../../src/routing/shares.js';
import type { Cluster, PriorityList } from '../../src/routing/types.js';

/** A hot-path cluster built directly, so a level can hold exactly the counts a case needs. */
function mk(name: string, region = 'r', weight = 100): Cluster {
  return {
    service: 's',
    name,
    key: `s/${name}`,
    region,
    origin: `https://${name}.internal`,
    basePath: '',
    originHost: null,
    weight,
    labels: {},
    location: { lat: 0, lon: 0 },
    health: 'unknown',
    drained: false,
  };
}

/** A level of `n` clusters named `<prefix>0..n-1`. */
function level(prefix: string, n: number, weight = 100): Cluster[] {
  return Array.from({ length: n }, (_, i) => mk(`${prefix}${i}`, prefix, weight));
}

function list(...levels: Cluster[][]): PriorityList {
  return { levels: levels.map((clusters) => ({ region: clusters[0]?.region ?? null, clusters })), reasons: levels.map(() => 'distance') };
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
  // Level 0 at x% healthy (level 1 fully healthy) keeps min(100, 1.4x)% of the traffic.
  it.each([
    [100, 100],
    [72, 100],
    [71, 99.4],
    [50, 70],
    [25, 35],
    [0, 0],
  ])('level 0 at %d percent healthy keeps %d percent (the rest goes to a healthy level 1)', (healthyPercent, expected) => {
    const l0 = level('a', 100);
    const l1 = level('b', 100);
    const t = computeShares(list(l0, l1), avail(mark(l0, 100 - healthyPercent, 'unhealthy')), DEFAULT_POLICY);
    expect(t.levels[0]!.healthyPercent).toBe(healthyPercent);
    expect(t.levels[0]!.load).toBeCloseTo(expected, 9);
    expect(t.levels[1]!.load).toBeCloseTo(100 - expected, 9);
    expect(t.levels[0]!.pool).toHaveLength(healthyPercent);
    expect(t.panic).toBe(false);
    expect(t.closed).toBe(false);
  });

  it.each<[string, [number, number][], number[]]>([
    // [healthy, total] per level -> loads
    ['two levels at 25% each split 50/50', [[1, 4], [1, 4]], [50, 50]],
    ['three levels at 20% each split in thirds', [[1, 5], [1, 5], [1, 5]], [100 / 3, 100 / 3, 100 / 3]],
    ['25% + 30% normalise 35:42', [[1, 4], [3, 10]], [3500 / 77, 4200 / 77]],
    ['25% + 50% add up to over 100: no normalising, level 1 takes the rest', [[1, 4], [2, 4]], [35, 65]],
    ['a fully unhealthy level between two degraded ones takes nothing', [[1, 4], [0, 3], [1, 4]], [50, 0, 50]],
  ])('normalises when every level is degraded: %s', (_name, shape, expected) => {
    const levels = shape.map(([, total], i) => level(`l${i}-`, total));
    const states = Object.assign({}, ...levels.map((l, i) => mark(l, shape[i]![1] - shape[i]![0], 'unhealthy'))) as Record<string, Availability>;
    const t = computeShares(list(...levels), avail(states), DEFAULT_POLICY);
    expect(t.panic).toBe(false);
    loads(t).forEach((load, i) => expect(load).toBeCloseTo(expected[i]!, 9));
    expect(loads(t).reduce((a, b) => a + b, 0)).toBeCloseTo(100, 9);
  });

  it('totalHealth is the capped sum of level health', () => {
    const l0 = level('a', 4);
    const l1 = level('b', 4);
    expect(computeShares(list(l0, l1), avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 3, 'unhealthy') }), DEFAULT_POLICY).totalHealth).toBeCloseTo(70, 9);
    expect(computeShares(list(l0, l1), avail({}), DEFAULT_POLICY).totalHealth).toBe(100);
  });
});

describe('computeShares: panic and fail-closed', () => {
  const l0 = level('a', 4);
  const l1 = level('b', 4);

  it('below the default threshold (50) health is ignored: unhealthy clusters become routable', () => {
    // Level 0: 1 of 4 healthy (35), level 1: none healthy -> total 35 < 50.
    const t = computeShares(list(l0, l1), avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 4, 'unhealthy') }), DEFAULT_POLICY);
    expect(t.panic).toBe(true);
    expect(t.closed).toBe(false);
    expect(t.totalHealth).toBeCloseTo(35, 9);
    expect(poolNames(t)).toEqual([l0.map((c) => c.name), l1.map((c) => c.name)]);
    // Every level counts as fully healthy, so level 0 takes everything; level 1 is where retries go.
    expect(loads(t)).toEqual([100, 0]);
    // The healthy percent still tells the truth.
    expect(t.levels[0]!.healthyPercent).toBe(25);
  });

  it('at the threshold exactly it is not panic', () => {
    // 50/1.4 is not a whole count, so use a threshold of 35 with 1 of 4 healthy (35).
    const t = computeShares(list(l0), avail(mark(l0, 3, 'unhealthy')), resolvePolicy({ panicThresholdPercent: 35 }));
    expect(t.panic).toBe(false);
    expect(poolNames(t)).toEqual([['a3']]);
  });

  it('panic never routes to drained clusters', () => {
    const t = computeShares(list(l0), avail({ a0: 'drained', a1: 'unhealthy', a2: 'unhealthy', a3: 'unhealthy' }), DEFAULT_POLICY);
    expect(t.panic).toBe(true);
    expect(poolNames(t)).toEqual([['a1', 'a2', 'a3']]);
    expect(loads(t)).toEqual([100]);
  });

  it.each<[string, number, number, boolean]>([
    // name, threshold, healthy of 4 in a single level, panic
    ['threshold 30, 1 of 4 healthy (35): trusted', 30, 1, false],
    ['threshold 80, 2 of 4 healthy (70): panic', 80, 2, true],
    ['threshold 0, nothing healthy: no panic, nothing routable', 0, 0, false],
    ['threshold 100, 3 of 4 healthy (100): trusted', 100, 3, false],
  ])('a custom threshold: %s', (_name, threshold, healthy, panic) => {
    const t = computeShares(list(l0), avail(mark(l0, 4 - healthy, 'unhealthy')), resolvePolicy({ panicThresholdPercent: threshold }));
    expect(t.panic).toBe(panic);
    expect(t.levels[0]!.pool).toHaveLength(panic ? 4 : healthy);
  });

  it('fail-closed policy: below the threshold the table is closed and no pool takes traffic', () => {
    const policy = resolvePolicy({ failClosed: true });
    const t = computeShares(list(l0, l1), avail({ ...mark(l0, 3, 'unhealthy'), ...mark(l1, 4, 'unhealthy') }), policy);
    expect(t.closed).toBe(true);
    expect(t.panic).toBe(false);
    expect(poolNames(t)).toEqual([[], []]);
    expect(loads(t)).toEqual([0, 0]);
    expect(pickAttempts(t, seededRandom(1), 3)).toEqual([]);
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
    expect(loads(t)).toEqual([0]);
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
    const shares = clusterShares(computeShares(list(l0, l1), avail({ a2: 'unhealthy', a3: 'unhealthy' }), DEFAULT_POLICY));
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
      return Array.from({ length: 50 }, () => pickAttempts(table, random, 3).map((c) => c.name).join(','));
    };
    expect(run(3)).toEqual(run(3));
    expect(run(3)).not.toEqual(run(4));
  });

  it('an empty table gives no attempts', () => {
    expect(pickAttempts(computeShares(list(), avail({}), DEFAULT_POLICY), seededRandom(1), 3)).toEqual([]);
  });
});
