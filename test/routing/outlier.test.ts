import { describe, expect, it } from 'vitest';
import { policySchema } from '../../src/spec/service.js';
import { compileSnapshot } from '../../src/routing/compile.js';
import { decide } from '../../src/routing/decide.js';
import { OutlierDetector } from '../../src/routing/outlier.js';
import { resolvePolicy, type StoredPolicy } from '../../src/routing/policy.js';
import { seededRandom } from '../../src/routing/random.js';
import type { ClusterSpec, CompiledService, OutlierPolicy, Snapshot } from '../../src/routing/types.js';
import { cluster, service } from './fixtures.js';

const T0 = 1_700_000_000_000;

/** A fixed clock the test moves by hand. */
function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms), set: (ms: number) => void (t = ms) };
}

const REGIONS = ['us-east1', 'eu-west1', 'ap-southeast1', 'us-west1', 'europe-north1', 'ap-northeast1'] as const;

/** `n` clusters c0..c(n-1), one per region (wrapping), optionally with per-cluster extras. */
function svc(
  n: number,
  policy?: StoredPolicy,
  extra: Record<string, Partial<ClusterSpec>> = {},
): { snap: Snapshot; shop: CompiledService } {
  const clusters = Array.from({ length: n }, (_, i) =>
    cluster(`c${i}`, REGIONS[i % REGIONS.length]!, extra[`c${i}`] ?? {}),
  );
  const spec = service('shop', clusters, policy ? { policy: resolvePolicy(policy) } : {});
  const snap = compileSnapshot(
    {
      version: 1,
      services: [spec, service('other', [cluster('o1', 'us-east1'), cluster('o2', 'eu-west1')])],
      overrides: [],
    },
    T0,
  );
  return { snap, shop: snap.byName.get('shop')! };
}

const at = (shop: CompiledService, name: string) => shop.clusters.find((c) => c.name === name)!;

/** Records `n` failures of one cluster; returns what the last one did. */
function fail(detector: OutlierDetector, shop: CompiledService, name: string, n: number) {
  let last = null;
  for (let i = 0; i < n; i++) last = detector.record(shop, at(shop, name), false);
  return last;
}

describe('OutlierDetector: consecutive failures', () => {
  it.each<[string, StoredPolicy | undefined, number]>([
    ['default policy (5)', undefined, 5],
    ['consecutiveFailures 1', { outlierDetection: { consecutiveFailures: 1 } }, 1],
    ['consecutiveFailures 3', { outlierDetection: { consecutiveFailures: 3 } }, 3],
    ['consecutiveFailures 8', { outlierDetection: { consecutiveFailures: 8 } }, 8],
  ])('%s: that many failures in a row eject, one fewer does not', (_name, policy, n) => {
    const { shop } = svc(4, policy);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(fail(detector, shop, 'c0', n - 1)).toBe(null);
    expect(detector.isEjected('shop/c0')).toBe(false);
    const ejection = detector.record(shop, at(shop, 'c0'), false);
    expect(ejection).toEqual({
      cluster: 'c0',
      service: 'shop',
      untilMs: T0 + 30_000,
      ejections: 1,
      multiplier: 1,
      consecutiveFailures: n,
    });
    expect(detector.isEjected('shop/c0')).toBe(true);
  });

  it.each<[string, string, boolean]>([
    // F = failure, S = success; default threshold 5
    ['4 failures', 'FFFF', false],
    ['5 failures', 'FFFFF', true],
    ['a success in the middle resets the count', 'FFFFSFFFF', false],
    ['a success then 5 failures', 'FFFFSFFFFF', true],
    ['a success right before the 5th', 'FFFFSF', false],
    ['alternating', 'FSFSFSFSFSFS', false],
  ])('%s (%s) -> ejected: %s', (_name, sequence, ejected) => {
    const { shop } = svc(4);
    const detector = new OutlierDetector(clock().now);
    for (const r of sequence) detector.record(shop, at(shop, 'c0'), r === 'S');
    expect(detector.isEjected('shop/c0')).toBe(ejected);
  });

  it('keeps state only for clusters that failed: successes add none, and retain drops a removed cluster', () => {
    const { shop } = svc(6);
    const detector = new OutlierDetector(clock().now);
    for (const c of shop.clusters) detector.record(shop, c, true);
    expect(detector.trackedClusters).toBe(0);
    detector.record(shop, at(shop, 'c1'), false);
    detector.record(shop, at(shop, 'c1'), true);
    detector.record(shop, at(shop, 'c2'), false);
    expect(detector.trackedClusters).toBe(2);
    // c2 deleted: its state goes; c1's stays.
    const { snap } = svc(2);
    detector.retain(snap);
    expect(detector.trackedClusters).toBe(1);
    for (let i = 0; i < 4; i++) detector.record(shop, at(shop, 'c1'), false);
    expect(detector.ejected('shop')).toEqual([]);
    detector.record(shop, at(shop, 'c1'), false);
    expect(detector.ejected('shop')).toEqual(['shop/c1']);
  });

  it("one cluster's failures do not count towards another's", () => {
    const { shop } = svc(4);
    const detector = new OutlierDetector(clock().now);
    for (let i = 0; i < 4; i++) {
      detector.record(shop, at(shop, 'c0'), false);
      detector.record(shop, at(shop, 'c1'), false);
    }
    expect(detector.ejected('shop')).toEqual([]);
  });
});

describe('OutlierDetector: ejection time', () => {
  const policy: StoredPolicy = {
    outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 10_000, maxEjectionPercent: 50 },
  };

  it('an ejection lasts baseEjectionMs x ejection count, and ends by itself', () => {
    const { shop } = svc(4, policy);
    const c = clock();
    const detector = new OutlierDetector(c.now);

    expect(fail(detector, shop, 'c0', 3)).toMatchObject({ ejections: 1, untilMs: T0 + 10_000 });
    c.advance(9_999);
    expect(detector.isEjected('shop/c0')).toBe(true);
    c.advance(1);
    expect(detector.isEjected('shop/c0')).toBe(false);

    // Straight back to failing: the second ejection lasts twice as long.
    const second = fail(detector, shop, 'c0', 3);
    expect(second).toMatchObject({ ejections: 2, untilMs: T0 + 10_000 + 20_000 });
    c.advance(19_999);
    expect(detector.isEjected('shop/c0')).toBe(true);
    c.advance(1);
    expect(detector.isEjected('shop/c0')).toBe(false);

    expect(fail(detector, shop, 'c0', 3)).toMatchObject({ ejections: 3, untilMs: T0 + 30_000 + 30_000 });
  });

  // Envoy Consecutive5xxAlreadyEjected: failures of an ejected host change nothing.
  it('failures while ejected do not extend the ejection', () => {
    const { shop } = svc(4, policy);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'c0', 3);
    c.advance(5_000);
    expect(fail(detector, shop, 'c0', 10)).toBe(null);
    c.advance(5_000);
    expect(detector.isEjected('shop/c0')).toBe(false);
  });

  // Envoy LargeNumberOfTimeouts / unejectHost: the count starts again when the cluster comes back,
  // whether or not anything asked about the cluster in between.
  it('after an ejection ends, a new ejection needs consecutiveFailures new failures', () => {
    const { shop } = svc(4, policy);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'c0', 3);
    c.advance(10_000);
    // No isEjected() in between: straight to the next answer from c0.
    expect(detector.record(shop, at(shop, 'c0'), false)).toBe(null);
    expect(detector.isEjected('shop/c0')).toBe(false);
    expect(fail(detector, shop, 'c0', 1)).toBe(null);
    expect(fail(detector, shop, 'c0', 1)).toMatchObject({ consecutiveFailures: 3, ejections: 2 });
  });

  it('after an ejection ends and is noticed, a new ejection needs consecutiveFailures new failures', () => {
    const { shop } = svc(4, policy);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'c0', 3);
    c.advance(10_000);
    expect(detector.affects('shop')).toBe(false);
    expect(fail(detector, shop, 'c0', 2)).toBe(null);
    expect(detector.isEjected('shop/c0')).toBe(false);
    expect(fail(detector, shop, 'c0', 1)).toMatchObject({ consecutiveFailures: 3, ejections: 2 });
  });
});

/** `from`, `from + step`... `to`. */
const upTo = (from: number, to: number, step: number) =>
  Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);

/** Ejects c0 (its consecutiveFailures failures) at the clock's time, then moves the clock to when the ejection ends. */
function ejectOnce(c: ReturnType<typeof clock>, detector: OutlierDetector, shop: CompiledService) {
  const start = c.now();
  const ejection = fail(detector, shop, 'c0', shop.policy.outlierDetection.consecutiveFailures);
  if (!ejection) return null;
  c.set(ejection.untilMs - 1);
  expect(detector.isEjected('shop/c0')).toBe(true);
  c.set(ejection.untilMs);
  expect(detector.isEjected('shop/c0')).toBe(false);
  return { seconds: (ejection.untilMs - start) / 1000, multiplier: ejection.multiplier };
}

/** Ejects c0 `n` times back to back, as Envoy's tests do at the tick that brings the host back; the lengths in seconds. */
function backToBack(c: ReturnType<typeof clock>, detector: OutlierDetector, shop: CompiledService, n: number) {
  return Array.from({ length: n }, () => ejectOnce(c, detector, shop)?.seconds ?? null);
}

// Envoy DetectorImpl::ejectHost and checkHostForUneject: an ejection lasts min(base x multiplier,
// max_ejection_time), the multiplier grows by one per ejection.
describe('OutlierDetector: ejection time is capped at maxEjectionMs (Envoy)', () => {
  it.each<[string, NonNullable<StoredPolicy['outlierDetection']>, number[]]>([
    // Envoy MaxEjectTime: base 10 s, max 300 s: 30 ejections reach the cap, later ones stay there.
    [
      'MaxEjectTime: base 10 s, max 300 s',
      { baseEjectionMs: 10_000, maxEjectionMs: 300_000 },
      [...upTo(10, 300, 10), 300, 300],
    ],
    // Envoy BasicFlow5xxViaHttpCodes and BasicFlowLocalOriginFailure (30 s, then 60 s) with the defaults.
    ['the defaults: base 30 s, max 300 s', {}, [...upTo(30, 300, 30), 300, 300]],
    // Envoy MaxEjectTimeNotAlligned: a max that is no multiple of the base cuts the last step short.
    [
      'MaxEjectTimeNotAlligned: base 30 s, max 100 s',
      { baseEjectionMs: 30_000, maxEjectionMs: 100_000 },
      [30, 60, 90, 100, 100],
    ],
    // Envoy DetectorStaticConfigBaseLargerThanMaxNoMax: no max and a base over 300 s: the base is the cap.
    ['BaseLargerThanMaxNoMax: base 400 s, no max', { baseEjectionMs: 400_000 }, [400, 400, 400]],
    // Envoy DetectorStaticConfigiInvalidMaxEjectTime refuses a max below the base; one stored anyway
    // (an import merged over an older policy) leaves the base as the cap.
    ['a stored max below the base', { baseEjectionMs: 60_000, maxEjectionMs: 30_000 }, [60, 60, 60]],
  ])('%s', (_name, outlierDetection, seconds) => {
    const { shop } = svc(4, { outlierDetection });
    const c = clock();
    expect(backToBack(c, new OutlierDetector(c.now), shop, seconds.length)).toEqual(seconds);
  });
});

// Envoy DetectorImpl::onIntervalTimer: every interval, a host not ejected that came back at least one
// interval ago loses one from its multiplier (never below 0); the next ejection adds one.
describe('OutlierDetector: the multiplier shrinks per interval back in rotation (Envoy)', () => {
  // Envoy EjectTimeBackoff, with Waymark's defaults (base 30 s, interval 10 s): Envoy's test has
  // base = interval = 10 s, where shrinking per interval and per base ejection time agree.
  it('EjectTimeBackoff: 30, 60, 90 s back to back; 2 intervals back in rotation take 2 off; a long quiet time brings it back to 30 s', () => {
    const { shop } = svc(4);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    const steps: [string, number, number, number][] = [
      // what happened, ejected at (s), lasts (s), multiplier
      ['first ejection', 0, 30, 1],
      ['back at 30 s, ejected again at once', 30, 60, 2],
      ['back at 90 s, ejected again at once', 90, 90, 3],
      ['back at 180 s, two intervals in rotation: 3 - 2 + 1', 200, 60, 2],
      ['back at 260 s, 500 s in rotation: 0 + 1', 760, 30, 1],
    ];
    for (const [what, atS, lastsS, multiplier] of steps) {
      c.set(T0 + atS * 1000);
      expect(ejectOnce(c, detector, shop), what).toEqual({ seconds: lastsS, multiplier });
    }
  });

  it.each<[string, number, number, NonNullable<StoredPolicy['outlierDetection']>]>([
    // time back in rotation after 30, 60 and 90 s back to back (multiplier 3) -> the next ejection (s)
    ['one interval', 10_000, 90, {}],
    ['just under two intervals', 19_999, 90, {}],
    ['two intervals', 20_000, 60, {}],
    ['three intervals (0, plus 1 for the ejection)', 30_000, 30, {}],
    ['interval 60 s: 59.999 s is no whole interval', 59_999, 120, { intervalMs: 60_000 }],
    ['interval 60 s: two intervals', 120_000, 60, { intervalMs: 60_000 }],
  ])('%s (%d ms) -> %d s', (_name, quietMs, seconds, outlierDetection) => {
    const { shop } = svc(4, { outlierDetection });
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(backToBack(c, detector, shop, 3)).toEqual([30, 60, 90]);
    c.advance(quietMs);
    expect(ejectOnce(c, detector, shop)?.seconds).toBe(seconds);
  });

  // Envoy ejectHost adds one only while base x multiplier < max + base: with the defaults the
  // multiplier stops at 11 (330 s, cut to 300 s), one past the cap, so it takes an extra interval
  // back in rotation before ejections get shorter (Envoy MaxEjectTime keeps ejecting at the cap).
  it.each<[number, number, number]>([
    // whole intervals back in rotation after 11 ejections back to back -> the next ejection (s), multiplier
    [0, 300, 11],
    [1, 300, 11],
    [2, 300, 10],
    [3, 270, 9],
    [9, 90, 3],
    [20, 30, 1],
  ])('at the cap, %d intervals back in rotation -> %d s (multiplier %d)', (intervals, seconds, multiplier) => {
    const { shop } = svc(4);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(backToBack(c, detector, shop, 11)).toEqual([...upTo(30, 300, 30), 300]);
    c.advance(intervals * 10_000);
    expect(ejectOnce(c, detector, shop)).toEqual({ seconds, multiplier });
  });

  it('the intervals count from when the ejection ended, however late that is noticed', () => {
    const { shop } = svc(4);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(fail(detector, shop, 'c0', 5)).toMatchObject({ untilMs: T0 + 30_000 });
    // Nothing asks about c0 until 50 s: it came back at 30 s, two intervals ago (1 - 2 -> 0, + 1).
    c.set(T0 + 50_000);
    expect(fail(detector, shop, 'c0', 5)).toMatchObject({ untilMs: T0 + 80_000, multiplier: 1, ejections: 2 });
  });
});

describe('OutlierDetector: limits', () => {
  // Envoy ejectHost, strict since 1.27 (envoyproxy/envoy#27909): 100 x (ejected + 1) / hosts <= max_ejection_percent,
  // so Envoy Overflow's 2 hosts at max_ejection_percent 1 no longer eject one. Waymark's check was strict already.
  it.each<[number, number, number]>([
    // clusters, maxEjectionPercent, most ejected at once
    [3, 50, 1],
    [4, 50, 2],
    [4, 25, 1],
    [5, 40, 2],
    [10, 20, 2],
    [4, 10, 0],
    [2, 100, 1],
    [1, 100, 0],
    [6, 100, 5],
  ])('%d clusters, max %d percent -> at most %d ejected', (n, maxEjectionPercent, most) => {
    const { shop } = svc(n, { outlierDetection: { maxEjectionPercent } });
    const detector = new OutlierDetector(clock().now);
    const made = shop.clusters.map((c) => fail(detector, shop, c.name, 5));
    expect(made.filter(Boolean)).toHaveLength(most);
    expect(detector.ejected('shop')).toHaveLength(most);
    // The refused ones were not ejected either.
    expect(shop.clusters.filter((c) => detector.isEjected(c.key))).toHaveLength(most);
  });

  it.each<[string, Record<string, Partial<ClusterSpec>>, string[]]>([
    ['c0 unhealthy: c1 may go, c2 is then the last routable', { c0: { health: 'unhealthy' } }, ['c1']],
    ['c0 and c1 unhealthy: c2 is the last routable', { c0: { health: 'unhealthy' }, c1: { health: 'unhealthy' } }, []],
    ['unknown health counts as routable', { c0: { health: 'unknown' }, c1: { health: 'healthy' } }, ['c0', 'c1']],
  ])("clusters unhealthy in the snapshot don't count as routable: %s", (_name, extra, expected) => {
    const { shop } = svc(3, { outlierDetection: { maxEjectionPercent: 100 } }, extra);
    const detector = new OutlierDetector(clock().now);
    for (const c of shop.clusters) if (c.health !== 'unhealthy') fail(detector, shop, c.name, 5);
    expect(
      detector
        .ejected('shop')
        .map((k) => k.slice('shop/'.length))
        .sort(),
    ).toEqual(expected);
  });

  it("drained clusters don't count as routable", () => {
    const spec = service(
      'shop',
      [cluster('c0', 'us-east1'), cluster('c1', 'eu-west1'), cluster('c2', 'ap-southeast1')],
      {
        policy: resolvePolicy({ outlierDetection: { maxEjectionPercent: 100 } }),
      },
    );
    const snap = compileSnapshot(
      {
        version: 1,
        services: [spec],
        overrides: [{ id: 'd', service: 'shop', action: 'drain', cluster: 'c0', region: null, expiresAt: T0 + 60_000 }],
      },
      T0,
    );
    const shop = snap.byName.get('shop')!;
    const detector = new OutlierDetector(clock().now);
    // c1 may go (c2 is left), c2 may not: c0 is drained, so c2 is the last routable cluster.
    expect(fail(detector, shop, 'c1', 5)).not.toBe(null);
    expect(fail(detector, shop, 'c2', 5)).toBe(null);
    expect(detector.ejected('shop')).toEqual(['shop/c1']);
  });

  // Envoy RemoveWhileEjected and EjectionActiveValueIsAccountedWithoutMetricStorage: the limit counts
  // the detector's own ejections of the hosts the cluster has now.
  it('a cluster removed while ejected no longer counts towards maxEjectionPercent', () => {
    const compiled = (names: string[]) => {
      const spec = service(
        'shop',
        names.map((n, i) => cluster(n, REGIONS[i]!)),
        { policy: resolvePolicy({ outlierDetection: { maxEjectionPercent: 50 } }) },
      );
      return compileSnapshot({ version: 1, services: [spec], overrides: [] }, T0).byName.get('shop')!;
    };
    const detector = new OutlierDetector(clock().now);
    const before = compiled(['c0', 'c1', 'c2']);
    expect(fail(detector, before, 'c0', 5)).toMatchObject({ cluster: 'c0' });
    expect(fail(detector, before, 'c1', 5)).toBe(null);
    // c0 leaves the service while still ejected: 1 of the 2 left is 50%.
    const after = compiled(['c1', 'c2']);
    expect(fail(detector, after, 'c1', 5)).toMatchObject({ cluster: 'c1' });
  });
});

// Envoy DetectorImpl::onConsecutiveErrorWorker resets the count after ejectHost whether it ejected
// or not (ejectHost refuses over max_ejection_percent: Envoy Overflow; NotEnforcing refuses too and
// its siblings expect a refused try every 5 failures).
describe('OutlierDetector: a refused ejection resets the failure count (Envoy)', () => {
  it.each<[string, number, NonNullable<StoredPolicy['outlierDetection']>]>([
    ['maxEjectionPercent (Envoy Overflow): 2 of 2 would be 100% > 50%', 2, { maxEjectionPercent: 50 }],
    ['maxEjectionPercent: 2 of 3 would be 67% > 50%', 3, { maxEjectionPercent: 50 }],
    ["Waymark's last routable cluster", 2, { maxEjectionPercent: 100 }],
  ])('refused by %s: once allowed, it takes consecutiveFailures new failures', (_name, n, outlierDetection) => {
    const { shop } = svc(n, { outlierDetection });
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(fail(detector, shop, 'c0', 5)).toMatchObject({ cluster: 'c0' });
    expect(fail(detector, shop, 'c1', 5)).toBe(null);
    expect(detector.isEjected('shop/c1')).toBe(false);
    // c0 is back: nothing refuses c1 any more, but its count started again when it was refused.
    c.advance(30_000);
    expect(fail(detector, shop, 'c1', 4)).toBe(null);
    expect(detector.isEjected('shop/c1')).toBe(false);
    expect(detector.record(shop, at(shop, 'c1'), false)).toMatchObject({
      cluster: 'c1',
      consecutiveFailures: 5,
      ejections: 1,
    });
  });

  it.each<[number, number]>([
    // failures while refused (one try at every 5th) -> failures that eject once allowed
    [5, 5],
    [7, 3],
    [10, 5],
    [12, 3],
  ])('%d failures while refused: %d more eject once allowed', (refused, more) => {
    const { shop } = svc(3);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'c0', 5);
    expect(fail(detector, shop, 'c1', refused)).toBe(null);
    c.advance(30_000);
    expect(fail(detector, shop, 'c1', more - 1)).toBe(null);
    expect(detector.isEjected('shop/c1')).toBe(false);
    expect(detector.record(shop, at(shop, 'c1'), false)).toMatchObject({ cluster: 'c1', consecutiveFailures: 5 });
  });
});

describe('OutlierDetector: affects / isEjected / ejected', () => {
  it('report ejections per service and end them by themselves', () => {
    const { shop } = svc(4);
    const c = clock();
    const detector = new OutlierDetector(c.now);
    expect(detector.affects('shop')).toBe(false);
    expect(detector.ejected('shop')).toEqual([]);
    expect(detector.isEjected('shop/c0')).toBe(false);
    expect(detector.isEjected('shop/nope')).toBe(false);

    fail(detector, shop, 'c0', 5);
    c.advance(1_000);
    fail(detector, shop, 'c1', 5);
    expect(detector.affects('shop')).toBe(true);
    expect(detector.affects('other')).toBe(false);
    expect(detector.ejected('shop').sort()).toEqual(['shop/c0', 'shop/c1']);
    expect(detector.ejected('other')).toEqual([]);
    expect([detector.isEjected('shop/c0'), detector.isEjected('shop/c1'), detector.isEjected('shop/c2')]).toEqual([
      true,
      true,
      false,
    ]);

    // c0's 30 s are up; c1 has one second to go. Only the clock moved.
    c.advance(29_000);
    expect(detector.ejected('shop')).toEqual(['shop/c1']);
    expect(detector.affects('shop')).toBe(true);
    expect(detector.isEjected('shop/c0')).toBe(false);

    c.advance(1_000);
    expect(detector.affects('shop')).toBe(false);
    expect(detector.ejected('shop')).toEqual([]);
    expect(detector.isEjected('shop/c1')).toBe(false);
  });

  it('a success while ejected does not end the ejection early', () => {
    const { shop } = svc(4);
    const detector = new OutlierDetector(clock().now);
    fail(detector, shop, 'c0', 5);
    detector.record(shop, at(shop, 'c0'), true);
    expect(detector.isEjected('shop/c0')).toBe(true);
  });
});

describe('decide with an outlier detector', () => {
  // us-east1 holds e1 and e2; eu-west1 holds w1.
  const spec = service('shop', [cluster('e1', 'us-east1'), cluster('e2', 'us-east1'), cluster('w1', 'eu-west1')]);
  const snap = compileSnapshot({ version: 1, services: [spec], overrides: [] }, T0);
  const shop = snap.byName.get('shop')!;
  const facts = { host: 'shop.example.com', clientRegion: 'us-east1' };

  function firsts(detector: OutlierDetector | undefined, n = 5_000) {
    const random = seededRandom(99);
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const d = decide(snap, facts, random, 3, detector);
      if (d.kind !== 'route') throw new Error(d.kind);
      const name = d.attempts[0]!.name;
      counts[name] = (counts[name] ?? 0) + 1;
      if (detector?.isEjected('shop/e1')) expect(d.attempts.map((c) => c.name)).not.toContain('e1');
    }
    return counts;
  }

  it('without ejections, us-east1 clients stay in us-east1', () => {
    const counts = firsts(new OutlierDetector(clock().now));
    expect(Object.keys(counts).sort()).toEqual(['e1', 'e2']);
  });

  it('routes around an ejected cluster: never tried, its level keeps 70%, 30% spills to eu-west1', () => {
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'e1', 5);
    const counts = firsts(detector, 20_000);
    expect(counts.e1).toBeUndefined();
    expect(Math.abs((counts.e2 ?? 0) / 20_000 - 0.7)).toBeLessThan(0.02);
    expect(Math.abs((counts.w1 ?? 0) / 20_000 - 0.3)).toBeLessThan(0.02);
    // The compiled plan itself is untouched.
    expect(shop.byRegion.get('us-east1')!.shares.levels[0]!.pool.map((x) => x.name)).toEqual(['e1', 'e2']);
  });

  it('once the ejection ends the cluster is picked again', () => {
    const c = clock();
    const detector = new OutlierDetector(c.now);
    fail(detector, shop, 'e1', 5);
    c.advance(30_000);
    const counts = firsts(detector);
    expect(counts.e1).toBeGreaterThan(0);
    expect(counts.w1).toBeUndefined();
  });
});

describe('outlier policy: defaults and validation', () => {
  it.each<[string, StoredPolicy, OutlierPolicy]>([
    [
      "nothing stored: Envoy's defaults, but 50% where Envoy ejects at most 10%",
      {},
      {
        consecutiveFailures: 5,
        intervalMs: 10_000,
        baseEjectionMs: 30_000,
        maxEjectionMs: 300_000,
        maxEjectionPercent: 50,
      },
    ],
    [
      'a policy stored before intervalMs and maxEjectionMs existed',
      { outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 10_000, maxEjectionPercent: 30 } },
      {
        consecutiveFailures: 3,
        intervalMs: 10_000,
        baseEjectionMs: 10_000,
        maxEjectionMs: 300_000,
        maxEjectionPercent: 30,
      },
    ],
    // Envoy DetectorStaticConfigBaseLargerThanMaxNoMax
    [
      'base 400 s and no max: the max is the base',
      { outlierDetection: { baseEjectionMs: 400_000 } },
      {
        consecutiveFailures: 5,
        intervalMs: 10_000,
        baseEjectionMs: 400_000,
        maxEjectionMs: 400_000,
        maxEjectionPercent: 50,
      },
    ],
  ])('resolvePolicy: %s', (_name, stored, expected) => {
    expect(resolvePolicy(stored).outlierDetection).toEqual(expected);
  });

  it.each<[string, NonNullable<StoredPolicy['outlierDetection']>]>([
    ['intervalMs and maxEjectionMs', { intervalMs: 5_000, maxEjectionMs: 600_000 }],
    ['maxEjectionMs equal to baseEjectionMs', { baseEjectionMs: 60_000, maxEjectionMs: 60_000 }],
    ['the bounds', { intervalMs: 1_000, maxEjectionMs: 86_400_000 }],
  ])('policySchema accepts %s', (_name, outlierDetection) => {
    expect(policySchema.safeParse({ outlierDetection })).toEqual({ success: true, data: { outlierDetection } });
  });

  it.each<[string, Record<string, unknown>, string, string | RegExp]>([
    ['intervalMs under 1 s', { intervalMs: 999 }, 'intervalMs', 'must be at least 1000 (1 s)'],
    ['intervalMs over 1 h', { intervalMs: 3_600_001 }, 'intervalMs', 'must be at most 3600000 (1 h)'],
    ['intervalMs not a whole number', { intervalMs: 1_500.5 }, 'intervalMs', /expected int/],
    ['maxEjectionMs over 24 h', { maxEjectionMs: 86_400_001 }, 'maxEjectionMs', 'must be at most 86400000 (24 h)'],
    ['maxEjectionMs as a string', { maxEjectionMs: '300s' }, 'maxEjectionMs', /expected number/],
    // Envoy DetectorStaticConfigiInvalidMaxEjectTime: "max_ejection_time cannot be smaller than base_ejection_time"
    [
      'maxEjectionMs under baseEjectionMs',
      { baseEjectionMs: 10_000, maxEjectionMs: 3_000 },
      'maxEjectionMs',
      'must be at least baseEjectionMs (10000)',
    ],
    [
      'maxEjectionMs under the default base',
      { maxEjectionMs: 20_000 },
      'maxEjectionMs',
      'must be at least baseEjectionMs (30000)',
    ],
  ])('policySchema refuses %s, naming the field', (_name, outlierDetection, field, message) => {
    const parsed = policySchema.safeParse({ outlierDetection });
    expect(parsed.success).toBe(false);
    const issues = parsed.error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    expect(issues).toEqual([
      {
        path: `outlierDetection.${field}`,
        message: typeof message === 'string' ? message : expect.stringMatching(message),
      },
    ]);
  });
});
