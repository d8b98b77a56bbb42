import { describe, expect, it } from 'vitest';
import { decideCanary, decideMirrorRamp, type Evidence, type RampState } from '../../src/health/ramp.js';
import type { CanaryPolicy, RampPolicy, RoutePhase } from '../../src/routing/types.js';

/**
 * The pure decisions behind mirror ramps and canaries: (policy, state, primary evidence, candidate
 * evidence) -> next state and the move (or none). Every case is a row of a table.
 */

const BOUNDS = { minSamples: 20, maxErrorRateDelta: 0.05, maxLatencyRatio: 1.5 };
const RAMP: RampPolicy = { step: 10, max: 50, ...BOUNDS };
const CANARY: CanaryPolicy = { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, ...BOUNDS };

const ev = (samples: number, errorRate: number | null, p95Ms: number | null): Evidence => ({
  samples,
  errorRate,
  p95Ms,
});
const st = (value: number, phase: RoutePhase = 'ramping'): RampState => ({ value, phase });

/** The primary as most rows see it: plenty of samples, 1% errors, p95 100 ms. */
const PRIMARY = ev(500, 0.01, 100);
/** A candidate as good as the primary, with just enough samples. */
const GOOD = ev(20, 0.01, 100);

interface Row {
  name: string;
  policy?: Partial<RampPolicy>;
  state: RampState;
  primary?: Evidence;
  candidate: Evidence;
  /** null: no move (and the state is kept as it was). */
  next: RampState | null;
  /** With `next: null`: whether the evidence was still used up (judged and found within bounds). */
  consumed?: boolean;
  reason?: RegExp;
}

const mirrorRows: Row[] = [
  { name: 'no samples yet: wait', state: st(10), candidate: ev(0, null, null), next: null },
  { name: 'one sample short of minSamples: wait', state: st(10), candidate: ev(19, 0, 50), next: null },
  {
    name: 'short of minSamples even with a terrible shadow: wait, no halt on thin evidence',
    state: st(10),
    candidate: ev(19, 1, 10_000),
    next: null,
  },
  {
    name: 'exactly minSamples, within bounds: step up',
    state: st(10),
    candidate: GOOD,
    next: st(20),
    reason: /within bounds over 20 samples/,
  },
  { name: 'first step from 0', state: st(0), candidate: GOOD, next: st(10) },
  {
    name: 'fractional steps are rounded to 2 decimals',
    policy: { step: 0.1, max: 1 },
    state: st(0.2),
    candidate: GOOD,
    next: st(0.3),
  },
  { name: 'one step below max: reaches max and completes', state: st(40), candidate: GOOD, next: st(50, 'complete') },
  {
    name: 'a step past max is capped at max and completes',
    policy: { step: 15 },
    state: st(40),
    candidate: GOOD,
    next: st(50, 'complete'),
  },
  {
    name: 'error-rate breach: to 0, halted',
    state: st(30),
    candidate: ev(40, 0.2, 100),
    next: st(0, 'halted'),
    reason: /shadow breached: error rate 20% against the primary's 1% \(allowed \+5%\)/,
  },
  {
    name: 'latency breach: to 0, halted',
    state: st(30),
    candidate: ev(40, 0.01, 200),
    next: st(0, 'halted'),
    reason: /shadow breached: p95 200 ms against the primary's 100 ms \(allowed 1.5x\)/,
  },
  {
    name: 'both breached: the error rate is named',
    state: st(30),
    candidate: ev(40, 0.5, 5000),
    next: st(0, 'halted'),
    reason: /error rate 50%/,
  },
  {
    name: 'error rate exactly at the bound is within it',
    primary: ev(500, 0, 100),
    policy: { maxErrorRateDelta: 0.25 },
    state: st(10),
    candidate: ev(20, 0.25, 100),
    next: st(20),
  },
  {
    name: 'error rate just above the bound breaches',
    primary: ev(500, 0, 100),
    policy: { maxErrorRateDelta: 0.25 },
    state: st(10),
    candidate: ev(20, 0.26, 100),
    next: st(0, 'halted'),
  },
  { name: 'p95 exactly at the ratio is within it', state: st(10), candidate: ev(20, 0.01, 150), next: st(20) },
  { name: 'p95 just above the ratio breaches', state: st(10), candidate: ev(20, 0.01, 151), next: st(0, 'halted') },
  {
    name: 'a shadow with fewer errors than the primary is fine',
    primary: ev(500, 0.3, 100),
    state: st(10),
    candidate: ev(20, 0, 100),
    next: st(20),
  },
  {
    name: 'no primary samples: errors compared with 0, latency not compared',
    primary: ev(0, null, null),
    state: st(10),
    candidate: ev(20, 0.05, 9000),
    next: st(20),
  },
  {
    name: 'no primary samples: errors above the bound still breach',
    primary: ev(0, null, null),
    state: st(10),
    candidate: ev(20, 0.06, 10),
    next: st(0, 'halted'),
  },
  { name: 'halted is terminal (good evidence)', state: st(0, 'halted'), candidate: ev(1000, 0, 1), next: null },
  { name: 'halted is terminal (bad evidence)', state: st(0, 'halted'), candidate: ev(1000, 1, 9000), next: null },
  // The guard keeps guarding at max (issue 10): a shadow at 28% errors against 0% is not left at 100%.
  {
    name: 'complete, within bounds: stays, the window used up',
    state: st(50, 'complete'),
    candidate: ev(1000, 0, 1),
    next: null,
    consumed: true,
  },
  { name: 'complete, too few samples: waits', state: st(50, 'complete'), candidate: ev(19, 1, 9000), next: null },
  {
    name: 'complete, breached: halted at 0',
    policy: { max: 100 },
    state: st(100, 'complete'),
    primary: ev(500, 0, 100),
    candidate: ev(100, 0.28, 100),
    next: st(0, 'halted'),
    reason: /shadow breached: error rate 28% against the primary's 0%/,
  },
];

describe('decideMirrorRamp', () => {
  it.each(mirrorRows)('$name', ({ policy, state, primary = PRIMARY, candidate, next, consumed = false, reason }) => {
    const p = { ...RAMP, ...policy };
    const d = decideMirrorRamp(p, state, primary, candidate);
    if (next === null) {
      expect(d.move).toBeNull();
      expect(d.next).toEqual(state);
      expect(d.consumed).toBe(consumed);
      return;
    }
    expect(d.next).toEqual(next);
    expect(d.consumed).toBe(true);
    expect(d.move).toMatchObject({ from: state.value, to: next.value, phase: next.phase });
    if (reason) expect(d.move?.reason).toMatch(reason);
  });

  it('steps all the way: 0 -> 10 -> ... -> 50 complete, one step per batch of evidence, then stays', () => {
    let state = st(0);
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const d = decideMirrorRamp(RAMP, state, PRIMARY, GOOD);
      if (d.move) seen.push(`${d.move.from}->${d.move.to} ${d.move.phase}`);
      state = d.next;
    }
    expect(seen).toEqual(['0->10 ramping', '10->20 ramping', '20->30 ramping', '30->40 ramping', '40->50 complete']);
    expect(state).toEqual(st(50, 'complete'));
  });

  it('a move carries its figures: samples, both error rates and p95s, and the bounds', () => {
    const up = decideMirrorRamp(RAMP, st(10), ev(400, 0.02, 50), ev(37, 0.03, 75));
    expect(up.move?.figures).toEqual({
      samples: 37,
      primary: { samples: 400, errorRate: 0.02, p95Ms: 50 },
      candidate: { samples: 37, errorRate: 0.03, p95Ms: 75 },
      bounds: { minSamples: 20, maxErrorRateDelta: 0.05, maxLatencyRatio: 1.5 },
    });
    const down = decideMirrorRamp(RAMP, st(30), ev(400, 0, 50), ev(25, 0.4, 50));
    expect(down.move?.figures).toEqual({
      samples: 25,
      primary: { samples: 400, errorRate: 0, p95Ms: 50 },
      candidate: { samples: 25, errorRate: 0.4, p95Ms: 50 },
      bounds: { minSamples: 20, maxErrorRateDelta: 0.05, maxLatencyRatio: 1.5 },
    });
    // The bounds are the policy's evidence bounds only (no step/max/subset mixed in).
    expect(Object.keys(down.move?.figures.bounds ?? {}).sort()).toEqual([
      'maxErrorRateDelta',
      'maxLatencyRatio',
      'minSamples',
    ]);
  });

  it('does not mutate its inputs', () => {
    const state = st(10);
    const primary = ev(500, 0.01, 100);
    const candidate = ev(20, 0.01, 100);
    decideMirrorRamp(RAMP, state, primary, candidate);
    expect(state).toEqual(st(10));
    expect(primary).toEqual(ev(500, 0.01, 100));
    expect(candidate).toEqual(ev(20, 0.01, 100));
  });

  // Error rates are counts over requests: 7 errors in 100 against the primary's 6 in 100 is exactly
  // one point above it, which a maxErrorRateDelta of 0.01 allows. In floating point 0.07 - 0.06 is
  // 0.010000000000000009 > 0.01, so judge() in src/health/ramp.ts treats "exactly at the bound" as a
  // breach and halts the ramp. (Documents the expected behaviour; fails until the comparison
  // tolerates rounding, e.g. compares errors/requests with an epsilon or in integer basis points.)
  it('error rate exactly one point above the primary (7/100 vs 6/100) is within maxErrorRateDelta 0.01', () => {
    const policy = { ...RAMP, maxErrorRateDelta: 0.01 };
    const d = decideMirrorRamp(policy, st(10), ev(100, 6 / 100, 100), ev(100, 7 / 100, 100));
    expect(d.move?.reason).not.toMatch(/breached/);
    expect(d.next).toEqual(st(20));
  });
});

const canaryRows: Row[] = [
  { name: 'no samples yet: wait', state: st(20), candidate: ev(0, null, null), next: null },
  { name: 'one sample short: wait', state: st(20), candidate: ev(19, 0, 10), next: null },
  { name: 'short of minSamples with a failing canary: wait', state: st(20), candidate: ev(19, 1, 10), next: null },
  {
    name: 'good evidence: up by stepWeight',
    state: st(20),
    candidate: GOOD,
    next: st(40),
    reason: /canary within bounds over 20 samples/,
  },
  {
    name: 'one step below maxWeight: to maxWeight, still ramping (not promoted yet)',
    state: st(40),
    candidate: GOOD,
    next: st(60),
  },
  {
    name: 'a step past maxWeight is capped, still ramping',
    policy: { stepWeight: 25 } as Partial<RampPolicy>,
    state: st(50),
    candidate: GOOD,
    next: st(60),
  },
  {
    name: 'good evidence at maxWeight: promoted to 100',
    state: st(60),
    candidate: GOOD,
    next: st(100, 'promoted'),
    reason: /canary held 60% within bounds over 20 samples: promoted/,
  },
  { name: 'too few samples at maxWeight: no promotion', state: st(60), candidate: ev(10, 0, 100), next: null },
  {
    name: 'error breach at maxWeight: rolled back, not promoted',
    state: st(60),
    candidate: ev(20, 0.5, 100),
    next: st(0, 'rolled-back'),
  },
  {
    name: 'latency breach at maxWeight: rolled back, not promoted',
    state: st(60),
    candidate: ev(20, 0.01, 300),
    next: st(0, 'rolled-back'),
  },
  {
    name: 'error-rate breach: rolled back to 0',
    state: st(40),
    candidate: ev(30, 0.2, 100),
    next: st(0, 'rolled-back'),
    reason: /canary breached: error rate 20% against the primary's 1% \(allowed \+5%\)/,
  },
  {
    name: 'latency breach: rolled back to 0',
    state: st(40),
    candidate: ev(30, 0.01, 200),
    next: st(0, 'rolled-back'),
    reason: /canary breached: p95 200 ms against the primary's 100 ms \(allowed 1.5x\)/,
  },
  {
    name: 'error rate exactly at the bound is fine',
    primary: ev(500, 0, 100),
    policy: { maxErrorRateDelta: 0.5 },
    state: st(20),
    candidate: ev(20, 0.5, 100),
    next: st(40),
  },
  { name: 'p95 exactly at the ratio is fine', state: st(20), candidate: ev(20, 0, 150), next: st(40) },
  {
    name: 'promoted, within bounds: stays promoted, the window used up',
    state: st(100, 'promoted'),
    candidate: ev(1000, 0, 1),
    next: null,
    consumed: true,
  },
  {
    name: 'promoted, breached: rolled back to 0',
    state: st(100, 'promoted'),
    candidate: ev(1000, 1, 9000),
    next: st(0, 'rolled-back'),
    reason: /canary breached: error rate 100%/,
  },
  {
    name: 'rolled-back is terminal (good evidence)',
    state: st(0, 'rolled-back'),
    candidate: ev(1000, 0, 1),
    next: null,
  },
  {
    name: 'rolled-back is terminal (bad evidence)',
    state: st(0, 'rolled-back'),
    candidate: ev(1000, 1, 9000),
    next: null,
  },
];

describe('decideCanary', () => {
  it.each(canaryRows)('$name', ({ policy, state, primary = PRIMARY, candidate, next, consumed = false, reason }) => {
    const p = { ...CANARY, ...(policy as Partial<CanaryPolicy>) };
    const d = decideCanary(p, state, primary, candidate);
    if (next === null) {
      expect(d.move).toBeNull();
      expect(d.next).toEqual(state);
      expect(d.consumed).toBe(consumed);
      return;
    }
    expect(d.next).toEqual(next);
    expect(d.consumed).toBe(true);
    expect(d.move).toMatchObject({ from: state.value, to: next.value, phase: next.phase });
    if (reason) expect(d.move?.reason).toMatch(reason);
  });

  it('steps 20 -> 40 -> 60, is promoted only on the next good batch at 60, then stays', () => {
    let state = st(CANARY.stepWeight);
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const d = decideCanary(CANARY, state, PRIMARY, GOOD);
      if (d.move) seen.push(`${d.move.from}->${d.move.to} ${d.move.phase}`);
      state = d.next;
    }
    expect(seen).toEqual(['20->40 ramping', '40->60 ramping', '60->100 promoted']);
    expect(state).toEqual(st(100, 'promoted'));
  });

  it('a rollback carries its figures (samples, error rates, p95s, bounds)', () => {
    const d = decideCanary(CANARY, st(40), ev(300, 0.01, 40), ev(22, 0.5, 60));
    expect(d.move).toEqual({
      from: 40,
      to: 0,
      phase: 'rolled-back',
      reason: expect.stringContaining('canary breached'),
      figures: {
        samples: 22,
        primary: { samples: 300, errorRate: 0.01, p95Ms: 40 },
        candidate: { samples: 22, errorRate: 0.5, p95Ms: 60 },
        bounds: { minSamples: 20, maxErrorRateDelta: 0.05, maxLatencyRatio: 1.5 },
      },
    });
  });

  it('a promotion carries its figures', () => {
    const d = decideCanary(CANARY, st(60), ev(300, 0.02, 40), ev(80, 0.02, 50));
    expect(d.move?.figures).toEqual({
      samples: 80,
      primary: { samples: 300, errorRate: 0.02, p95Ms: 40 },
      candidate: { samples: 80, errorRate: 0.02, p95Ms: 50 },
      bounds: { minSamples: 20, maxErrorRateDelta: 0.05, maxLatencyRatio: 1.5 },
    });
  });
});
