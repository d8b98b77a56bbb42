import { describe, expect, it } from 'vitest';
import { resolvePolicy } from '../../src/routing/policy.js';
import {
  clusterShares,
  computePriorityLoad,
  computeShares,
  pickAttempts,
  type Availability,
  type HostCounts,
} from '../../src/routing/shares.js';
import type { Cluster, PriorityList } from '../../src/routing/types.js';

// Envoy's own expectations for priority load and panic, row by row. Sources (envoyproxy/envoy):
const BASE_TEST = 'test/extensions/load_balancing_policies/common/load_balancer_impl_base_test.cc';
const RR_TEST = 'test/extensions/load_balancing_policies/round_robin/round_robin_lb_test.cc';
const PRIORITY_DOC = 'docs/root/intro/arch_overview/upstream/load_balancing/priority.rst';
const PANIC_DOC = 'docs/root/intro/arch_overview/upstream/load_balancing/panic_threshold.rst';
const DEGRADED_DOC = 'docs/root/intro/arch_overview/upstream/load_balancing/degraded.rst';
const LB_IMPL = 'source/extensions/load_balancing_policies/common/load_balancer_impl.cc';

/** Envoy's test helper `updateHostSet(host_set, num_hosts, num_healthy, num_degraded, num_excluded)`. */
function hs(hosts: number, healthy: number, degraded = 0, excluded = 0): HostCounts {
  return { hosts, healthy, degraded, excluded };
}

/** A doc table's "x% healthy endpoints" as a level of 100 hosts. */
const pct = (healthy: number, degraded = 0) => hs(100, healthy, degraded);

interface EnvoyCase {
  /** Where the expectation comes from: file, then test name or table. */
  source: string;
  levels: HostCounts[];
  /** The panic threshold (Envoy's default 50 unless the source sets it). */
  threshold?: number;
  /** Overprovisioning in percent (Envoy's default 140 unless the source sets it). */
  overprovisioning?: number;
  load: number[];
  degradedLoad?: number[];
  panic?: boolean[];
  totalHealth?: number;
}

const cases: EnvoyCase[] = [
  // --- load_balancer_impl_base_test.cc, TEST_P(LoadBalancerBaseTest, PrioritySelection)
  {
    source: `${BASE_TEST} PrioritySelection: both in panic, load by host count`,
    levels: [hs(1, 0), hs(1, 0)],
    load: [50, 50],
  },
  {
    source: `${BASE_TEST} PrioritySelection: 1 and 2 hosts in panic, rounding to P=0`,
    levels: [hs(1, 0), hs(2, 0)],
    load: [34, 66],
  },
  {
    source: `${BASE_TEST} PrioritySelection: a healthy P=2 takes everything`,
    levels: [hs(1, 0), hs(2, 0), hs(1, 1)],
    load: [0, 0, 100],
  },
  {
    source: `${BASE_TEST} PrioritySelection: a healthy host back in P=0`,
    levels: [hs(1, 1), hs(2, 0), hs(1, 1)],
    load: [100, 0, 0],
  },
  // --- OverProvisioningFactor
  { source: `${BASE_TEST} OverProvisioningFactor: default 1.4`, levels: [hs(4, 2), hs(4, 2)], load: [70, 30] },
  {
    source: `${BASE_TEST} OverProvisioningFactor: factor 1`,
    levels: [hs(4, 2), hs(4, 2)],
    overprovisioning: 100,
    load: [50, 50],
  },
  // --- GentleFailover
  {
    source: `${BASE_TEST} GentleFailover: all healthy`,
    levels: [hs(1, 1), hs(1, 1)],
    load: [100, 0],
    panic: [false, false],
  },
  {
    source: `${BASE_TEST} GentleFailover: 70 + 70`,
    levels: [hs(2, 1), hs(2, 1)],
    load: [70, 30],
    panic: [false, false],
  },
  {
    source: `${BASE_TEST} GentleFailover: P=0 under the threshold, total 100: no panic`,
    levels: [hs(4, 1), hs(2, 2)],
    load: [35, 65],
    panic: [false, false],
  },
  {
    source: `${BASE_TEST} GentleFailover: 35 + 35, both in panic`,
    levels: [hs(4, 1), hs(4, 1)],
    load: [50, 50],
    panic: [true, true],
  },
  {
    source: `${BASE_TEST} GentleFailover: 3 excluded, P=0 fully healthy`,
    levels: [hs(4, 1, 0, 3), hs(5, 1)],
    load: [100, 0],
    panic: [false, false],
  },
  {
    source: `${BASE_TEST} GentleFailover: P=0 all excluded, total panic counts them`,
    levels: [hs(4, 0, 0, 4), hs(4, 1)],
    load: [50, 50],
    panic: [true, true],
  },
  {
    source: `${BASE_TEST} GentleFailover: total panic counts excluded hosts (4 vs 6)`,
    levels: [hs(4, 0, 0, 1), hs(6, 1, 0, 2)],
    load: [40, 60],
    panic: [true, true],
  },
  // --- GentleFailoverWithExtraLevels
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: all healthy`,
    levels: [hs(1, 1), hs(1, 1), hs(1, 1)],
    load: [100, 0, 0],
    panic: [false, false, false],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: 70/30 spill`,
    levels: [hs(2, 1), hs(2, 1), hs(2, 1)],
    load: [70, 30, 0],
    degradedLoad: [0, 0, 0],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: P=1 takes the spill`,
    levels: [hs(4, 1), hs(2, 2), hs(2, 1)],
    load: [35, 65, 0],
    degradedLoad: [0, 0, 0],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: 35 x 3`,
    levels: [hs(4, 1), hs(4, 1), hs(4, 1)],
    load: [35, 35, 30],
    degradedLoad: [0, 0, 0],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: 28 x 3, total panic`,
    levels: [hs(5, 1), hs(5, 1), hs(5, 1)],
    load: [34, 33, 33],
    degradedLoad: [0, 0, 0],
    panic: [true, true, true],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: P=2 fully healthy`,
    levels: [hs(5, 0), hs(5, 0), hs(5, 5)],
    load: [0, 0, 100],
    degradedLoad: [0, 0, 0],
    panic: [false, false, false],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: P=2 at 80%`,
    levels: [hs(5, 0), hs(5, 0), hs(5, 4)],
    load: [0, 0, 100],
    degradedLoad: [0, 0, 0],
    panic: [false, false, false],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: P=2 at 40%, total panic`,
    levels: [hs(5, 0), hs(5, 0), hs(5, 2)],
    load: [34, 33, 33],
    degradedLoad: [0, 0, 0],
    panic: [true, true, true],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: P=0 degraded, no panic`,
    levels: [hs(5, 0, 5), hs(5, 2, 2), hs(5, 2)],
    load: [0, 56, 44],
    degradedLoad: [0, 0, 0],
    panic: [false, false, false],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: all down, 5/3/2 hosts`,
    levels: [hs(5, 0), hs(3, 0), hs(2, 0)],
    load: [50, 30, 20],
    degradedLoad: [0, 0, 0],
    panic: [true, true, true],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: total panic rounding, 5/6/3 hosts`,
    levels: [hs(5, 0), hs(6, 2), hs(3, 1)],
    load: [37, 42, 21],
    degradedLoad: [0, 0, 0],
    panic: [true, true, true],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: spill into degraded`,
    levels: [hs(5, 0, 1), hs(5, 0, 5), hs(5, 1)],
    load: [0, 0, 28],
    degradedLoad: [28, 44, 0],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: threshold 0, rounding to first degraded`,
    levels: [hs(5, 0), hs(5, 0, 2), hs(5, 0, 1)],
    threshold: 0,
    load: [0, 0, 0],
    degradedLoad: [0, 67, 33],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: threshold 50, total panic over degraded`,
    levels: [hs(5, 0), hs(5, 0, 2), hs(5, 0, 1)],
    load: [34, 33, 33],
    degradedLoad: [0, 0, 0],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: 3/3/3 all down`,
    levels: [hs(3, 0), hs(3, 0), hs(3, 0)],
    load: [34, 33, 33],
    panic: [true, true, true],
  },
  {
    source: `${BASE_TEST} GentleFailoverWithExtraLevels: empty P=0, rounding to first non-empty`,
    levels: [hs(0, 0), hs(6, 0), hs(3, 0)],
    load: [0, 67, 33],
    panic: [true, true, true],
  },
  // --- load_balancer_impl.cc, the comment in recalculatePerPriorityState: health 10/20/10, degraded
  // 20/10/0 -> 16/28/14 healthy and 28/14/0 degraded. The comment leaves panic aside: threshold 0.
  {
    source: `${LB_IMPL} recalculatePerPriorityState comment`,
    levels: [hs(14, 1, 2), hs(14, 2, 1), hs(14, 1, 0)],
    threshold: 0,
    load: [16, 28, 14],
    degradedLoad: [28, 14, 0],
  },

  // --- priority.rst: the tables explain priority load alone, panic aside, so panic is off (threshold 0).
  // First table: P=1 100% healthy.
  ...(
    [
      [100, 100, 0],
      [72, 100, 0],
      [71, 99, 1],
      [50, 70, 30],
      [25, 35, 65],
      [0, 0, 100],
    ] as const
  ).map(
    ([p0, l0, l1]): EnvoyCase => ({
      source: `${PRIORITY_DOC} table 1: P=0 ${p0}%, P=1 100%`,
      levels: [pct(p0), pct(100)],
      threshold: 0,
      load: [l0, l1],
    }),
  ),
  // Second table: P=0 and P=1.
  ...(
    [
      [100, 100, 100, 0],
      [72, 72, 100, 0],
      [71, 71, 99, 1],
      [50, 50, 70, 30],
      [25, 100, 35, 65],
      [25, 25, 50, 50],
    ] as const
  ).map(
    ([p0, p1, l0, l1]): EnvoyCase => ({
      source: `${PRIORITY_DOC} table 2: ${p0}% / ${p1}%`,
      levels: [pct(p0), pct(p1)],
      threshold: 0,
      load: [l0, l1],
    }),
  ),
  // Healths {20, 30} normalise to {40%, 60%} (the text before table 2): 1 of 7 and 3 of 14 healthy.
  {
    source: `${PRIORITY_DOC} text: healths {20, 30} -> {40%, 60%}`,
    levels: [hs(7, 1), hs(14, 3)],
    threshold: 0,
    load: [40, 60],
    totalHealth: 50,
  },
  // Third table: three levels.
  ...(
    [
      [100, 100, 100, 100, 0, 0],
      [72, 72, 100, 100, 0, 0],
      [71, 71, 100, 99, 1, 0],
      [50, 50, 100, 70, 30, 0],
      [25, 100, 100, 35, 65, 0],
      [25, 25, 100, 35, 35, 30],
      // DOC/CODE DISAGREE: the table says 36/36/28; Envoy's code floors 35.7/35.7/28.6 to 35/35/28 and
      // gives the 2 left over to the first healthy level: 37/35/28. We follow the code.
      [25, 25, 20, 37, 35, 28],
    ] as const
  ).map(
    ([p0, p1, p2, l0, l1, l2]): EnvoyCase => ({
      source: `${PRIORITY_DOC} table 3: ${p0}% / ${p1}% / ${p2}%`,
      levels: [pct(p0), pct(p1), pct(p2)],
      threshold: 0,
      load: [l0, l1, l2],
    }),
  ),

  // --- panic_threshold.rst, default threshold 50. First table: P=1 100% healthy, never panic.
  ...([72, 71, 50, 25, 0] as const).map(
    (p0): EnvoyCase => ({
      source: `${PANIC_DOC} table 1: P=0 ${p0}%, P=1 100%`,
      levels: [pct(p0), pct(100)],
      load: { 72: [100, 0], 71: [99, 1], 50: [70, 30], 25: [35, 65], 0: [0, 100] }[p0],
      panic: [false, false],
      totalHealth: 100,
    }),
  ),
  // Second table: both levels degrade.
  {
    source: `${PANIC_DOC} table 2: 72% / 72%`,
    levels: [pct(72), pct(72)],
    load: [100, 0],
    panic: [false, false],
    totalHealth: 100,
  },
  {
    source: `${PANIC_DOC} table 2: 71% / 71%`,
    levels: [pct(71), pct(71)],
    load: [99, 1],
    panic: [false, false],
    totalHealth: 100,
  },
  // Older versions of the doc said 50/50 here; the current doc and the code say 70/30 (70 + 84 > 100).
  {
    source: `${PANIC_DOC} table 2: 50% / 60%`,
    levels: [pct(50), pct(60)],
    load: [70, 30],
    panic: [false, false],
    totalHealth: 100,
  },
  {
    source: `${PANIC_DOC} table 2: 25% / 100%`,
    levels: [pct(25), pct(100)],
    load: [35, 65],
    panic: [false, false],
    totalHealth: 100,
  },
  {
    source: `${PANIC_DOC} table 2: 25% / 25%`,
    levels: [pct(25), pct(25)],
    load: [50, 50],
    panic: [true, true],
    totalHealth: 70,
  },
  // DOC/CODE DISAGREE: the table says 7% / 93%; the code floors 7.1 and 92.9 to 7 and 92 and gives the
  // 1 left over to the first healthy level: 8% / 92%. We follow the code.
  {
    source: `${PANIC_DOC} table 2: 5% / 65%`,
    levels: [pct(5), pct(65)],
    load: [8, 92],
    panic: [true, false],
    totalHealth: 98,
  },
  // The text on total panic: load relative to the number of hosts in each level.
  {
    source: `${PANIC_DOC} text: total panic, 5 and 5 hosts`,
    levels: [hs(5, 0), hs(5, 0)],
    load: [50, 50],
    panic: [true, true],
  },
  {
    source: `${PANIC_DOC} text: total panic, 2 and 8 hosts`,
    levels: [hs(2, 0), hs(8, 0)],
    load: [20, 80],
    panic: [true, true],
  },
  // The text on threshold 0: no level panics; all load on P=0, where no host is healthy (503).
  {
    source: `${PANIC_DOC} text: threshold 0, everything unhealthy`,
    levels: [hs(5, 0), hs(5, 0)],
    threshold: 0,
    load: [100, 0],
    panic: [false, false],
    totalHealth: 0,
  },

  // --- degraded.rst: one level, healthy/degraded/unhealthy percent -> traffic to healthy / degraded.
  ...(
    [
      [100, 0, 100, 0],
      [71, 0, 100, 0],
      [71, 29, 99, 1],
      [25, 65, 35, 65],
      [5, 0, 100, 0],
    ] as const
  ).map(
    ([healthy, degraded, l, d]): EnvoyCase => ({
      source: `${DEGRADED_DOC} table: ${healthy}% healthy, ${degraded}% degraded`,
      levels: [pct(healthy, degraded)],
      load: [l],
      degradedLoad: [d],
    }),
  ),
];

describe('computePriorityLoad: Envoy test and doc expectations', () => {
  it.each(cases.map((c) => [c.source, c] as const))('%s', (_source, c) => {
    const got = computePriorityLoad(c.levels, c.threshold ?? 50, c.overprovisioning);
    expect(got.healthyLoad).toEqual(c.load);
    expect(got.degradedLoad).toEqual(c.degradedLoad ?? c.load.map(() => 0));
    if (c.panic) expect(got.panic).toEqual(c.panic);
    if (c.totalHealth !== undefined) expect(got.normalizedTotalAvailability).toBe(c.totalHealth);
    // Envoy asserts that the loads add up to 100 (choosePriority depends on it).
    expect([...got.healthyLoad, ...got.degradedLoad].reduce((a, b) => a + b, 0)).toBe(100);
  });
});

// --- The same expectations through computeShares, for every row Waymark can express: no degraded
// hosts, no excluded hosts (drained clusters are left out instead) and the default overprovisioning.

function mk(name: string, region: string): Cluster {
  return {
    service: 's',
    name,
    key: `s/${name}`,
    region,
    zone: null,
    origin: `https://${name}.internal`,
    basePath: '',
    originHost: null,
    weight: 100,
    labels: {},
    health: 'unknown',
    drained: false,
  };
}

/** Levels of clusters with the counts given: the first `healthy` of each level healthy, the rest unhealthy. */
function build(levels: readonly HostCounts[]): {
  list: PriorityList;
  availability: (c: Cluster) => Availability;
  healthyNames: Set<string>;
} {
  const healthyNames = new Set<string>();
  const clusters = levels.map((level, i) =>
    Array.from({ length: level.hosts }, (_, j) => {
      const c = mk(`p${i}-${j}`, `r${i}`);
      if (j < level.healthy) healthyNames.add(c.name);
      return c;
    }),
  );
  const list: PriorityList = {
    levels: clusters.map((cs, i) => ({ region: `r${i}`, clusters: cs })),
    reasons: clusters.map(() => 'distance'),
  };
  return { list, availability: (c) => (healthyNames.has(c.name) ? 'healthy' : 'unhealthy'), healthyNames };
}

const expressible = cases.filter(
  (c) => c.levels.every((l) => l.degraded === 0 && l.excluded === 0) && c.overprovisioning === undefined,
);

describe('computeShares: the same Envoy expectations on real clusters', () => {
  it.each(expressible.map((c) => [c.source, c] as const))('%s', (_source, c) => {
    const { list, availability, healthyNames } = build(c.levels);
    const envoy = computePriorityLoad(c.levels, c.threshold ?? 50);
    const t = computeShares(list, availability, resolvePolicy({ panicThresholdPercent: c.threshold ?? 50 }));
    expect(t.levels.map((l) => l.load)).toEqual(c.load);
    expect(t.levels.map((l) => l.panic)).toEqual(c.panic ?? envoy.panic);
    expect(t.totalHealth).toBe(c.totalHealth ?? envoy.normalizedTotalAvailability);
    // Inside a level: its healthy clusters, or every cluster when it is in panic (fail open).
    t.levels.forEach((level, i) => {
      const all = list.levels[i]!.clusters;
      expect(level.pool).toEqual(level.panic ? all : all.filter((x) => healthyNames.has(x.name)));
    });
    expect(t.panic).toBe(t.levels.some((l, i) => l.panic && c.levels[i]!.hosts > 0));
    expect(t.closed).toBe(false);
  });
});

describe('failing closed: Envoy fail_traffic_on_panic', () => {
  const closed = resolvePolicy({ failClosed: true });
  const open = resolvePolicy({});
  /** Envoy's mock random returns 0: hash 1 picks the first level with load (choosePriority). */
  const first = () => 0;

  // round_robin_lb_test.cc, TEST_P(FailoverTest, PriorityUpdatesWithLocalHostSet) and
  // TEST_P(FailoverTest, PriorityUpdatesWithLocalHostSetDisableOnPanic): one unhealthy host in P=0 and
  // in P=1; then a healthy P=2; then P=0 healthy; then P=0 unhealthy again.
  it.each<[string, HostCounts[], string | null, string | null]>([
    // levels, host picked failing open, host picked failing closed
    ['both unhealthy: open picks the unhealthy P=0 host, closed picks none', [hs(1, 0), hs(1, 0)], 'p0-0', null],
    ['a healthy P=2 is chosen', [hs(1, 0), hs(1, 0), hs(1, 1)], 'p2-0', 'p2-0'],
    ['a healthy host in P=0 is chosen at once', [hs(1, 1), hs(1, 0), hs(1, 1)], 'p0-0', 'p0-0'],
    ['P=0 unhealthy again: back to P=2', [hs(1, 0), hs(1, 0), hs(1, 1)], 'p2-0', 'p2-0'],
  ])(
    `${RR_TEST} FailoverTest.PriorityUpdatesWithLocalHostSet(DisableOnPanic): %s`,
    (_name, levels, openPick, closedPick) => {
      const { list, availability } = build(levels);
      expect(pickAttempts(computeShares(list, availability, open), first, 1)[0]?.name ?? null).toBe(openPick);
      expect(pickAttempts(computeShares(list, availability, closed), first, 1)[0]?.name ?? null).toBe(closedPick);
    },
  );

  it(`${RR_TEST} RoundRobinLoadBalancerTest.MaxUnhealthyPanic: 2 of 6 healthy uses all hosts, 4 of 6 only the healthy`, () => {
    const panicking = build([hs(6, 2)]);
    expect(computeShares(panicking.list, panicking.availability, open).levels[0]!.pool).toHaveLength(6);
    const recovered = build([hs(6, 4)]);
    const t = computeShares(recovered.list, recovered.availability, open);
    expect(t.levels[0]!.pool.map((c) => c.name)).toEqual(['p0-0', 'p0-1', 'p0-2', 'p0-3']);
    expect(t.panic).toBe(false);
  });

  it(`${RR_TEST} FailoverTest.PrioritiesWithZeroWarmedHosts: P=0 with no healthy host sends everything to P=1`, () => {
    const { list, availability } = build([hs(2, 0), hs(1, 1)]);
    const t = computeShares(list, availability, open);
    expect(t.levels.map((l) => l.load)).toEqual([0, 100]);
    expect(pickAttempts(t, first, 1).map((c) => c.name)).toEqual(['p1-0']);
  });

  // panic_threshold.rst table 2, 5% / 65%: P=0 is in panic and takes 8%, P=1 is not and takes 92%.
  // Failing closed, the 8% drawn to P=0 is refused and P=1 keeps routing to its healthy clusters.
  it(`${PANIC_DOC} 5% / 65% failing closed: the panicking level's share is refused, the other routes`, () => {
    const { list, availability } = build([pct(5), pct(65)]);
    const t = computeShares(list, availability, closed);
    expect(t.levels.map((l) => [l.load, l.panic, l.pool.length])).toEqual([
      [8, true, 0],
      [92, false, 65],
    ]);
    expect([t.panic, t.closed]).toEqual([false, true]);
    expect(pickAttempts(t, () => 0.05, 3)).toEqual([]);
    const routed = pickAttempts(t, () => 0.5, 3);
    expect(routed).toHaveLength(3);
    expect(routed.every((c) => c.region === 'r1')).toBe(true);
    const shares = clusterShares(t);
    expect([...shares.values()].reduce((a, b) => a + b, 0)).toBeCloseTo(92, 9);
  });

  it(`${PANIC_DOC} 5% / 65% failing open: every P=0 cluster takes P=0's 8%`, () => {
    const { list, availability } = build([pct(5), pct(65)]);
    const t = computeShares(list, availability, open);
    expect(t.levels.map((l) => [l.load, l.panic, l.pool.length])).toEqual([
      [8, true, 100],
      [92, false, 65],
    ]);
    expect([t.panic, t.closed]).toEqual([true, false]);
  });

  it('a level in panic that takes no load refuses nothing when failing closed', () => {
    // P=0 has no healthy cluster (health 0, in panic since total health is 84), P=1 is at 60%.
    const { list, availability } = build([hs(2, 0), hs(5, 3)]);
    const t = computeShares(list, availability, closed);
    expect(t.levels.map((l) => [l.load, l.panic, l.pool.length])).toEqual([
      [0, true, 0],
      [100, false, 3],
    ]);
    expect([t.panic, t.closed]).toEqual([false, false]);
  });
});
