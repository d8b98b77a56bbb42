import type { CanaryPolicy, EvidenceBounds, RampPolicy, RoutePhase } from '../routing/types.js';

/** What edges observed of one side (primary, mirror or canary) since the last step. */
export interface Evidence {
  samples: number;
  errorRate: number | null;
  p95Ms: number | null;
}

/** A route's automation state as the ramp sees it. */
export interface RampState {
  value: number;
  phase: RoutePhase;
}

/** A move, with the figures that justified it (kept as an event). */
export interface RampMove {
  from: number;
  to: number;
  phase: RoutePhase;
  reason: string;
  figures: { samples: number; primary: Evidence; candidate: Evidence; bounds: EvidenceBounds };
}

/** The next state, and the move that led there (null: no move, e.g. still gathering evidence). */
export interface RampDecision {
  next: RampState;
  move: RampMove | null;
  /** Whether the evidence was used up (the next step needs fresh samples). */
  consumed: boolean;
}

/**
 * Mirror percent automation: with at least `minSamples` mirrored outcomes since the last step and the
 * shadow within bounds of the primary (error rate within `maxErrorRateDelta`, p95 within
 * `maxLatencyRatio` times), the percent goes up by `step` up to `max`; a breach sends it to 0 and halts
 * the ramp until an operator resumes it. It steps at every sync that brings enough evidence, never
 * sooner: no fixed analysis interval, and no step without its own samples. At `max` the guard keeps
 * guarding: each new window of evidence is judged, and a breach halts the mirror at 0 as before max.
 */
export function decideMirrorRamp(
  policy: RampPolicy,
  state: RampState,
  primary: Evidence,
  shadow: Evidence,
): RampDecision {
  if (state.phase === 'halted') return { next: state, move: null, consumed: false };
  const verdict = judge(policy, primary, shadow);
  if (verdict === 'wait') return { next: state, move: null, consumed: false };
  const figures = { samples: shadow.samples, primary, candidate: shadow, bounds: bounds(policy) };
  if (verdict !== 'ok')
    return {
      next: { value: 0, phase: 'halted' },
      move: { from: state.value, to: 0, phase: 'halted', reason: `shadow breached: ${verdict}`, figures },
      consumed: true,
    };
  // At max and within bounds: nothing to move; the window is used up so the next one is judged on its own.
  if (state.phase === 'complete') return { next: state, move: null, consumed: true };
  const to = Math.min(policy.max, round2(state.value + policy.step));
  const phase: RoutePhase = to >= policy.max ? 'complete' : 'ramping';
  return {
    next: { value: to, phase },
    move: { from: state.value, to, phase, reason: `shadow within bounds over ${shadow.samples} samples`, figures },
    consumed: true,
  };
}

/**
 * Canary automation, by the same evidence: weight up by `stepWeight` to `maxWeight`; with good
 * evidence at `maxWeight` the canary is promoted (it takes all of the route's traffic); a breach rolls
 * it back to 0. A rollback is final until an operator resumes the route. A promoted canary keeps being
 * judged against what the primary last showed (bounds are relative, so a primary without traffic counts
 * as error-free): a breach after promotion rolls it back too.
 */
export function decideCanary(
  policy: CanaryPolicy,
  state: RampState,
  primary: Evidence,
  canary: Evidence,
): RampDecision {
  if (state.phase === 'rolled-back') return { next: state, move: null, consumed: false };
  const verdict = judge(policy, primary, canary);
  if (verdict === 'wait') return { next: state, move: null, consumed: false };
  const figures = { samples: canary.samples, primary, candidate: canary, bounds: bounds(policy) };
  if (verdict !== 'ok') {
    return {
      next: { value: 0, phase: 'rolled-back' },
      move: { from: state.value, to: 0, phase: 'rolled-back', reason: `canary breached: ${verdict}`, figures },
      consumed: true,
    };
  }
  if (state.phase === 'promoted') return { next: state, move: null, consumed: true };
  if (state.value >= policy.maxWeight) {
    return {
      next: { value: 100, phase: 'promoted' },
      move: {
        from: state.value,
        to: 100,
        phase: 'promoted',
        reason: `canary held ${policy.maxWeight}% within bounds over ${canary.samples} samples: promoted`,
        figures,
      },
      consumed: true,
    };
  }
  const to = Math.min(policy.maxWeight, state.value + policy.stepWeight);
  return {
    next: { value: to, phase: 'ramping' },
    move: {
      from: state.value,
      to,
      phase: 'ramping',
      reason: `canary within bounds over ${canary.samples} samples`,
      figures,
    },
    consumed: true,
  };
}

const EPSILON = 1e-9;

/** 'ok', 'wait' (not enough samples), or what the candidate breached. */
function judge(policy: EvidenceBounds, primary: Evidence, candidate: Evidence): 'ok' | 'wait' | string {
  if (candidate.samples < policy.minSamples) return 'wait';
  const errorDelta = (candidate.errorRate ?? 0) - (primary.errorRate ?? 0);
  // A figure exactly at its bound is within it: allow for floating point (0.07 - 0.06 > 0.01).
  if (errorDelta > policy.maxErrorRateDelta + EPSILON) {
    return `error rate ${pct(candidate.errorRate ?? 0)} against the primary's ${pct(primary.errorRate ?? 0)} (allowed +${pct(policy.maxErrorRateDelta)})`;
  }
  if (
    primary.p95Ms !== null &&
    candidate.p95Ms !== null &&
    candidate.p95Ms > primary.p95Ms * policy.maxLatencyRatio + EPSILON
  ) {
    return `p95 ${candidate.p95Ms} ms against the primary's ${primary.p95Ms} ms (allowed ${policy.maxLatencyRatio}x)`;
  }
  return 'ok';
}

function bounds(policy: EvidenceBounds): EvidenceBounds {
  return {
    minSamples: policy.minSamples,
    maxErrorRateDelta: policy.maxErrorRateDelta,
    maxLatencyRatio: policy.maxLatencyRatio,
  };
}

function pct(rate: number): string {
  return `${round2(rate * 100)}%`;
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
