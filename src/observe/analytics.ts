import { NONE_LABEL } from './metrics.js';
import type { RequestObserver } from './observer.js';

/** The part of a Workers Analytics Engine dataset binding Waymark uses. */
export interface AnalyticsDataset {
  writeDataPoint(point: { blobs?: string[]; doubles?: number[]; indexes?: string[] }): void;
}

/**
 * One data point per request in a Workers Analytics Engine dataset (the WAYMARK_ANALYTICS binding):
 * blob1 service, blob2 route, blob3 cluster, blob4 client region, blob5 status class; double1 duration
 * in ms, double2 tries, double3 status; index1 the service (the sampling key). `writeDataPoint` returns
 * at once (the runtime sends it after the response), so nothing is awaited.
 */
export function analyticsObserver(dataset: AnalyticsDataset): RequestObserver {
  return {
    requestFinished(r) {
      const service = r.service ?? NONE_LABEL;
      dataset.writeDataPoint({
        blobs: [
          service,
          r.route ?? NONE_LABEL,
          r.cluster ?? NONE_LABEL,
          r.clientRegion ?? NONE_LABEL,
          `${Math.floor(r.status / 100)}xx`,
        ],
        doubles: [r.durationMs, r.attempts.length, r.status],
        indexes: [service],
      });
    },
  };
}
