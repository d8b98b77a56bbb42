import type { Availability } from './shares.js';
import type { Cluster, ClusterHealth } from './types.js';

/**
 * What may keep a cluster from traffic besides what the snapshot holds (an operator's drain, the
 * health sync's verdict): this instance's outlier ejections, and a what-if's clusters assumed down.
 */
export interface HealthFlags {
  ejectedHere?: (c: Cluster) => boolean;
  down?: ReadonlySet<string>;
}

/** A cluster's standing as people read it: why it takes traffic or not, most decisive first. */
export type HealthLabel = ClusterHealth | 'drained' | 'down' | 'ejected';

/**
 * Every health source folded into one, in the manner of Envoy's `Host::coarseHealth()` over its health
 * flags: a drain wins over everything (the cluster is out of the pool, not unhealthy in it); failed
 * active health (the sync's verdict), a local outlier ejection and a what-if's "down" each make it
 * unhealthy; otherwise it is healthy (a cluster never probed, `unknown`, routes as healthy).
 */
export function healthLabel(c: Cluster, flags: HealthFlags = {}): HealthLabel {
  if (c.drained) return 'drained';
  if (flags.down?.has(c.name)) return 'down';
  if (c.health === 'unhealthy') return 'unhealthy';
  if (flags.ejectedHere?.(c)) return 'ejected';
  return c.health;
}

/** The fold as routing uses it: drained, unhealthy (for any reason) or healthy. */
export function availability(c: Cluster, flags?: HealthFlags): Availability {
  const label = healthLabel(c, flags);
  if (label === 'drained') return 'drained';
  return label === 'healthy' || label === 'unknown' ? 'healthy' : 'unhealthy';
}
