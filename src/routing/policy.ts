import type { StoredPolicy } from '../spec/service.js';
import type { ServicePolicy } from './types.js';

export type { StoredPolicy };

/**
 * Envoy's defaults (panic below 50% healthy; eject after 5 consecutive failures for 30 s x the
 * multiplier, which loses one per 10 s interval back in rotation, for at most 300 s), except that at
 * most 50% of a service's clusters may be ejected at once where Envoy's max_ejection_percent is 10%:
 * a service has a few regional clusters, and 10% of fewer than ten clusters ejects none.
 */
export const DEFAULT_POLICY: ServicePolicy = {
  panicThresholdPercent: 50,
  failClosed: false,
  outlierDetection: {
    consecutiveFailures: 5,
    intervalMs: 10_000,
    baseEjectionMs: 30_000,
    maxEjectionMs: 300_000,
    maxEjectionPercent: 50,
  },
};

/**
 * A stored, possibly partial policy with the defaults filled in. Policies stored before a field
 * existed (intervalMs, maxEjectionMs) load with its default. Without a maxEjectionMs, the cap is 300 s
 * or baseEjectionMs, whichever is longer, as Envoy fills max_ejection_time.
 */
export function resolvePolicy(stored: StoredPolicy = {}): ServicePolicy {
  const outlier = { ...DEFAULT_POLICY.outlierDetection, ...stored.outlierDetection };
  if (stored.outlierDetection?.maxEjectionMs === undefined)
    outlier.maxEjectionMs = Math.max(outlier.maxEjectionMs, outlier.baseEjectionMs);
  return { ...DEFAULT_POLICY, ...stored, outlierDetection: outlier };
}
