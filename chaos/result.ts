/**
 * What every chaos scenario reports (issue 14): one row of `npm run chaos`'s table and of
 * `.tmp/chaos-latest.json`. Counters the claims say must be zero are named in `ZERO_CLAIMS`.
 */
export interface ScenarioResult {
  scenario: string;
  /** Requests the scenario sent (proxied and admin). */
  requests: number;
  /** Responses a client saw as failures (5xx from Waymark, resets, timeouts) where the claim is none. */
  clientErrors: number;
  /** Of those, the ones a retry could have saved (an idempotent request while a healthy cluster was left). */
  savableErrors: number;
  /** Non-idempotent requests an upstream received more than once. */
  duplicatedNonIdempotent: number;
  /** Writes acknowledged with a 2xx and missing afterwards. */
  lostWrites: number;
  /** Invariant checks that failed (each sample counts once). */
  invariantViolations: number;
  /** The highest resident set size of the Waymark processes under test, in MB. */
  peakRssMb: number;
  /** Extra figures worth printing (p99s, slopes), free form. */
  details?: Record<string, number | string>;
}

/** The counters that every scenario's claims say must be zero. */
export const ZERO_CLAIMS = [
  'clientErrors',
  'savableErrors',
  'duplicatedNonIdempotent',
  'lostWrites',
  'invariantViolations',
] as const satisfies readonly (keyof ScenarioResult)[];

export interface ScenarioContext {
  /** CHAOS_QUICK=1: a short run for CI (the whole suite well under 3 minutes). */
  quick: boolean;
  /** Seed for every random choice of the scenario (CHAOS_SEED, default 1414). */
  seed: number;
  /** A fresh folder for the scenario's databases and files, removed after it. */
  dir: string;
  /** Progress lines (printed only with CHAOS_VERBOSE=1). */
  log: (line: string) => void;
}

/** A scenario module's default export. */
export interface Scenario {
  /** Like '1 region loss'. */
  name: string;
  run(context: ScenarioContext): Promise<ScenarioResult>;
}
