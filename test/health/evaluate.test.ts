import { describe, expect, it } from 'vitest';
import {
  EDGE_FAILURE_RATIO,
  EDGE_MIN_REQUESTS,
  NEW_CLUSTER,
  evaluateHealth,
  statusExpected,
  type EdgeWindow,
  type HealthRecord,
  type ProbeResult,
} from '../../src/health/evaluate.js';
import type { ClusterHealth } from '../../src/routing/types.js';
import type { HealthCheck } from '../../src/spec/cluster.js';

const T0 = 1_700_000_000_000;
const ROUND_MS = 10_000;

const check: HealthCheck = {
  path: '/healthz',
  expectedStatuses: ['2xx'],
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

const PASS: ProbeResult = { ok: true, status: 200, latencyMs: 12, error: null };
const FAIL: ProbeResult = { ok: false, status: 503, latencyMs: 15, error: null };
/** Passing probe, but edges see most real requests fail. */
const GRAY: EdgeWindow = { requests: 20, failures: 15 };

const start = (state: ClusterHealth): HealthRecord => ({ ...NEW_CLUSTER, state });

/**
 * Folds rounds into a record: P = pass, F = probe fails, G = probe passes but edges report a gray
 * failure. Checks each verdict's change against its record; returns the rounds (1-based) where the
 * state changed and the last record.
 */
function run(from: ClusterHealth, rounds: string, hc: HealthCheck = check) {
  let record = start(from);
  const changes: number[] = [];
  [...rounds].forEach((r, i) => {
    const now = T0 + (i + 1) * ROUND_MS;
    const verdict = evaluateHealth(record, r === 'F' ? FAIL : PASS, r === 'G' ? GRAY : undefined, hc, now);
    if (verdict.change) {
      changes.push(i + 1);
      expect(verdict.change.from).toBe(record.state);
      expect(verdict.change.to).toBe(verdict.next.state);
      expect(verdict.next.changedAt).toBe(now);
      expect(verdict.next.reason).toBe(verdict.change.reason);
    } else {
      expect(verdict.next.state).toBe(record.state);
      expect(verdict.next.changedAt).toBe(record.changedAt);
    }
    record = verdict.next;
  });
  return { changes, record };
}

describe('evaluateHealth: hysteresis (healthyThreshold 2, unhealthyThreshold 3)', () => {
  // States after each round: h = healthy, n = unhealthy, ? = unknown; changes: the rounds (1-based) that moved it.
  it.each<[string, ClusterHealth, string, string, number[]]>([
    ['unknown -> healthy on the first pass', 'unknown', 'P', 'h', [1]],
    ['unknown stays unknown until the unhealthy threshold', 'unknown', 'FFF', '??n', [3]],
    ['unknown, two failures, then a pass -> healthy', 'unknown', 'FFP', '??h', [3]],
    ['healthy stays healthy on passes', 'healthy', 'PPPP', 'hhhh', []],
    ['healthy -> unhealthy only on the 3rd failing round in a row', 'healthy', 'FFF', 'hhn', [3]],
    ['healthy: two failures do nothing', 'healthy', 'FF', 'hh', []],
    ['healthy: an interleaved pass resets the failure count', 'healthy', 'FFPFF', 'hhhhh', []],
    ['healthy: after the reset it takes 3 more', 'healthy', 'FFPFFF', 'hhhhhn', [6]],
    ['unhealthy stays unhealthy on failures', 'unhealthy', 'FFFF', 'nnnn', []],
    ['unhealthy -> healthy only after 2 passes in a row', 'unhealthy', 'PP', 'nh', [2]],
    ['unhealthy: an interleaved failure resets the pass count', 'unhealthy', 'PFPFP', 'nnnnn', []],
    ['unhealthy: pass, fail, pass, pass', 'unhealthy', 'PFPP', 'nnnh', [4]],
    ['a full cycle', 'healthy', 'FFFPPFFF', 'hhnnhhhn', [3, 5, 8]],
    ['gray failures count as failures', 'healthy', 'GGG', 'hhn', [3]],
    ['gray failures mixed with probe failures', 'healthy', 'FGF', 'hhn', [3]],
    ['a clean pass between gray failures resets', 'healthy', 'GGPGG', 'hhhhh', []],
    ['gray failures keep an unhealthy cluster out', 'unhealthy', 'PGPG', 'nnnn', []],
  ])('%s', (_name, from, rounds, expected, changes) => {
    expect(statesOf(from, rounds)).toBe(expected);
    expect(run(from, rounds).changes).toEqual(changes);
  });

  it.each<[number, number, string, string]>([
    // healthyThreshold, unhealthyThreshold, rounds from healthy, states
    [1, 1, 'FPFP', 'nhnh'],
    [3, 2, 'FFPPP', 'hnnnh'],
    [2, 5, 'FFFFF', 'hhhhn'],
  ])(
    'custom thresholds healthy=%d unhealthy=%d: %s -> %s',
    (healthyThreshold, unhealthyThreshold, rounds, expected) => {
      const hc = { ...check, healthyThreshold, unhealthyThreshold };
      expect(statesOf('healthy', rounds, hc)).toBe(expected);
    },
  );

  it('counts rounds in the record', () => {
    const { record } = run('healthy', 'PPFF');
    expect(record).toMatchObject({ state: 'healthy', consecutiveFailures: 2, consecutiveSuccesses: 0 });
    expect(run('healthy', 'FFP').record).toMatchObject({ consecutiveFailures: 0, consecutiveSuccesses: 1 });
  });
});

/** States after each round, one letter each: h = healthy, n = unhealthy, ? = unknown. */
function statesOf(from: ClusterHealth, rounds: string, hc: HealthCheck = check): string {
  let record = start(from);
  let out = '';
  [...rounds].forEach((r, i) => {
    record = evaluateHealth(record, r === 'F' ? FAIL : PASS, r === 'G' ? GRAY : undefined, hc, T0 + i).next;
    out += record.state === 'healthy' ? 'h' : record.state === 'unhealthy' ? 'n' : '?';
  });
  return out;
}

describe('evaluateHealth: change and reasons', () => {
  const one = { ...check, unhealthyThreshold: 1 };

  it('change is null when the state does not move, and the record keeps its reason and changedAt', () => {
    const prev: HealthRecord = {
      state: 'healthy',
      consecutiveSuccesses: 4,
      consecutiveFailures: 0,
      reason: 'health check passed',
      changedAt: T0,
    };
    const v = evaluateHealth(prev, PASS, undefined, check, T0 + 60_000);
    expect(v.change).toBe(null);
    expect(v.next).toEqual({ ...prev, consecutiveSuccesses: 5 });
    const f = evaluateHealth(prev, FAIL, undefined, check, T0 + 60_000);
    expect(f.change).toBe(null);
    expect(f.next).toEqual({ ...prev, consecutiveSuccesses: 0, consecutiveFailures: 1 });
  });

  it.each<[string, HealthRecord, ProbeResult, EdgeWindow | undefined, HealthCheck, string]>([
    ['first pass', NEW_CLUSTER, PASS, undefined, check, 'health check passed (1 passing round, threshold 1)'],
    [
      'back after 2 passes',
      { ...start('unhealthy'), consecutiveSuccesses: 1 },
      PASS,
      undefined,
      check,
      'health check passed (2 passing rounds, threshold 2)',
    ],
    [
      'probe status',
      start('healthy'),
      FAIL,
      undefined,
      one,
      'health check answered 503 (1 failing round, threshold 1)',
    ],
    [
      'probe error',
      start('healthy'),
      { ok: false, status: null, latencyMs: 2_000, error: 'timeout after 2000 ms' },
      undefined,
      one,
      'health check failed: timeout after 2000 ms (1 failing round, threshold 1)',
    ],
    [
      'probe without status or error',
      start('healthy'),
      { ok: false, status: null, latencyMs: 0, error: null },
      undefined,
      one,
      'health check failed: no answer (1 failing round, threshold 1)',
    ],
    [
      'third failing round',
      { ...start('healthy'), consecutiveFailures: 2 },
      FAIL,
      undefined,
      check,
      'health check answered 503 (3 failing rounds, threshold 3)',
    ],
    [
      'gray failure names the edge figures',
      start('healthy'),
      PASS,
      { requests: 40, failures: 31 },
      one,
      'edges saw 31 of 40 requests fail (1 failing round, threshold 1)',
    ],
  ])('reason: %s', (_name, prev, probe, edge, hc, reason) => {
    const v = evaluateHealth(prev, probe, edge, hc, T0);
    expect(v.change).not.toBe(null);
    expect(v.change!.reason).toBe(reason);
    expect(v.next.reason).toBe(reason);
  });
});

describe('evaluateHealth: gray failures reported by edges', () => {
  const one = { ...check, unhealthyThreshold: 1 };

  // The minimum request count is a tuning constant (10 in the first pass, 5 since the health sync reads a
  // sliding window): the table is written against it, so it checks the rule rather than the number.
  const N = EDGE_MIN_REQUESTS;

  it('a gray failure needs at least half of the requests failing, over a minimum number of requests', () => {
    expect(EDGE_FAILURE_RATIO).toBe(0.5);
    expect(N).toBeGreaterThan(1);
  });

  it.each<[string, boolean, EdgeWindow | undefined]>([
    ['no edge window', false, undefined],
    ['no requests', false, { requests: 0, failures: 0 }],
    ['half of the minimum failing', true, { requests: 2 * N, failures: N }],
    ['every request of the minimum failing', true, { requests: N, failures: N }],
    ['just under half failing', false, { requests: 2 * N, failures: N - 1 }],
    ['every request failing, one under the minimum', false, { requests: N - 1, failures: N - 1 }],
    ['1 of 1 fails', false, { requests: 1, failures: 1 }],
    ['500 of 1000 fail', true, { requests: 1000, failures: 500 }],
    ['499 of 1000 fail', false, { requests: 1000, failures: 499 }],
  ])('a passing probe with %s -> failing round: %s', (_name, failing, edge) => {
    const v = evaluateHealth(start('healthy'), PASS, edge, one, T0);
    expect(v.next.state).toBe(failing ? 'unhealthy' : 'healthy');
    expect(v.next.consecutiveFailures).toBe(failing ? 1 : 0);
    if (failing)
      expect(v.change!.reason).toBe(
        `edges saw ${edge!.failures} of ${edge!.requests} requests fail (1 failing round, threshold 1)`,
      );
    else expect(v.change).toBe(null);
  });

  it('a failing probe reports the probe, not the edges', () => {
    const v = evaluateHealth(start('healthy'), FAIL, { requests: 2 * N, failures: 2 * N }, one, T0);
    expect(v.change!.reason).toBe('health check answered 503 (1 failing round, threshold 1)');
  });

  it('a gray failure keeps a never-probed cluster from becoming healthy on its first pass', () => {
    const v = evaluateHealth(NEW_CLUSTER, PASS, { requests: 2 * N, failures: N + 1 }, check, T0);
    expect(v.change).toBe(null);
    expect(v.next.state).toBe('unknown');
  });
});

describe('statusExpected', () => {
  it.each<[number, (number | string)[], boolean]>([
    [200, ['2xx'], true],
    [204, ['2xx'], true],
    [299, ['2xx'], true],
    [301, ['2xx'], false],
    [199, ['2xx'], false],
    [500, ['2xx'], false],
    [204, [204], true],
    [200, [204], false],
    [301, ['2xx', '3xx'], true],
    [404, ['2xx', 404], true],
    [403, ['2xx', 404], false],
    [503, [], false],
    [200, ['2x'], false],
    [200, ['2xxx'], false],
    [500, ['5xx'], true],
  ])('%d against %j -> %s', (status, expected, result) => {
    expect(statusExpected(status, expected)).toBe(result);
  });
});
