import type { OutlierPolicy, ServicePolicy } from './types.js';

/** Envoy's defaults: panic below 50% healthy, eject after 5 consecutive failures for 30 s x count, at most 50%. */
export const DEFAULT_POLICY: ServicePolicy = {
  panicThresholdPercent: 50,
  failClosed: false,
  outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 30_000, maxEjectionPercent: 50 },
};

/** A policy as stored: any field may be left to its default. */
export type StoredPolicy = Partial<Omit<ServicePolicy, 'outlierDetection'>> & { outlierDetection?: Partial<OutlierPolicy> };

/** A stored, possibly partial policy with the defaults filled in. */
export function resolvePolicy(stored: StoredPolicy = {}): ServicePolicy {
  return {
    ...DEFAULT_POLICY,
    ...stored,
    outlierDetection: { ...DEFAULT_POLICY.outlierDetection, ...stored.outlierDetection },
  };
}
