import type { ClusterHealth } from '../routing/types.js';
import type { HealthCheck } from '../spec/cluster.js';

/** What the health sync keeps about a cluster between runs. */
export interface HealthRecord {
  state: ClusterHealth;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  reason: string | null;
  changedAt: number;
}

/** One active health check. */
export interface ProbeResult {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  error: string | null;
}

/** What edges reported about a cluster since the last sync (all client regions together). */
export interface EdgeWindow {
  requests: number;
  failures: number;
}

/** Edges failing at least this share of real requests make a passing probe count as a failure. */
export const EDGE_FAILURE_RATIO = 0.5;
/**
 * ...given at least this many requests, so one unlucky request does not fail a cluster. As many as the
 * default consecutive failures that eject a cluster at an edge (which then stops sending it traffic).
 */
export const EDGE_MIN_REQUESTS = 5;

export interface HealthVerdict {
  next: HealthRecord;
  change: { from: ClusterHealth; to: ClusterHealth; reason: string } | null;
}

export const NEW_CLUSTER: HealthRecord = {
  state: 'unknown',
  consecutiveSuccesses: 0,
  consecutiveFailures: 0,
  reason: null,
  changedAt: 0,
};

/**
 * Folds one probe, and what edges saw of real traffic, into a cluster's health with hysteresis: it takes
 * `unhealthyThreshold` failing rounds in a row to go unhealthy and `healthyThreshold` passing rounds to
 * come back (a never-probed cluster becomes healthy on its first pass). A round fails when the probe
 * fails or when edges saw most real requests fail even though the health endpoint answers (a gray
 * failure).
 */
export function evaluateHealth(
  prev: HealthRecord,
  probe: ProbeResult,
  edge: EdgeWindow | undefined,
  check: HealthCheck,
  now: number,
): HealthVerdict {
  const failure = roundFailure(probe, edge);
  const next: HealthRecord = failure
    ? { ...prev, consecutiveFailures: prev.consecutiveFailures + 1, consecutiveSuccesses: 0 }
    : { ...prev, consecutiveSuccesses: prev.consecutiveSuccesses + 1, consecutiveFailures: 0 };

  let to: ClusterHealth = prev.state;
  if (failure && prev.state !== 'unhealthy' && next.consecutiveFailures >= check.unhealthyThreshold) to = 'unhealthy';
  if (
    !failure &&
    prev.state !== 'healthy' &&
    (prev.state === 'unknown' || next.consecutiveSuccesses >= check.healthyThreshold)
  )
    to = 'healthy';
  if (to === prev.state) return { next, change: null };

  const reason = failure
    ? `${failure} (${next.consecutiveFailures} failing round${next.consecutiveFailures > 1 ? 's' : ''}, threshold ${check.unhealthyThreshold})`
    : `health check passed (${next.consecutiveSuccesses} passing round${next.consecutiveSuccesses > 1 ? 's' : ''}, threshold ${prev.state === 'unknown' ? 1 : check.healthyThreshold})`;
  return { next: { ...next, state: to, reason, changedAt: now }, change: { from: prev.state, to, reason } };
}

function roundFailure(probe: ProbeResult, edge: EdgeWindow | undefined): string | null {
  if (!probe.ok)
    return probe.status !== null
      ? `health check answered ${probe.status}`
      : `health check failed: ${probe.error ?? 'no answer'}`;
  if (edge && edge.requests >= EDGE_MIN_REQUESTS && edge.failures / edge.requests >= EDGE_FAILURE_RATIO) {
    return `edges saw ${edge.failures} of ${edge.requests} requests fail`;
  }
  return null;
}

/** Whether a status is one the health check expects: an exact code, or a class like "2xx". */
export function statusExpected(status: number, expected: readonly (number | string)[]): boolean {
  return expected.some((e) =>
    typeof e === 'number' ? e === status : e.length === 3 && e[0] === String(status)[0] && e.endsWith('xx'),
  );
}
