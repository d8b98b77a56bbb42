import { snapshotAvailability } from './compile.js';
import type { LocalHealth } from './decide.js';
import type { Cluster, CompiledService } from './types.js';

interface ClusterState {
  consecutiveFailures: number;
  /** Ejections so far; an ejection lasts baseEjectionMs x this count. */
  ejections: number;
  ejected: boolean;
  /** When the current (or last) ejection ends. */
  ejectedUntil: number;
}

/** An ejection this instance just made, for logs and events. */
export interface Ejection {
  cluster: string;
  service: string;
  untilMs: number;
  ejections: number;
  consecutiveFailures: number;
}

/**
 * Passive health per isolate or process, after Envoy's outlier detection: `consecutiveFailures` 5xx
 * answers or connect failures in a row eject a cluster for baseEjectionMs x its ejection count. Unlike
 * Envoy (envoyproxy/envoy#3263, #26877), an ejection never takes the service above
 * maxEjectionPercent of its clusters and never takes out its last routable cluster.
 */
export class OutlierDetector implements LocalHealth {
  readonly #states = new Map<string, ClusterState>();
  readonly #ejectedByService = new Map<string, Set<string>>();

  constructor(private readonly now: () => number) {}

  affects(service: string): boolean {
    const ejected = this.#ejectedByService.get(service);
    if (!ejected || ejected.size === 0) return false;
    for (const key of ejected) this.isEjected(key);
    return ejected.size > 0;
  }

  isEjected(clusterKey: string): boolean {
    const state = this.#states.get(clusterKey);
    if (!state?.ejected) return false;
    if (this.now() < state.ejectedUntil) return true;
    // Back in rotation: the ejection time elapsed.
    state.ejected = false;
    state.consecutiveFailures = 0;
    this.#ejectedByService.get(clusterKey.slice(0, clusterKey.indexOf('/')))?.delete(clusterKey);
    return false;
  }

  /** Clusters of a service ejected right now. */
  ejected(service: string): string[] {
    return this.affects(service) ? [...(this.#ejectedByService.get(service) ?? [])] : [];
  }

  /** Records one answer from a cluster; returns the ejection it caused, if any. */
  record(service: CompiledService, cluster: Cluster, ok: boolean): Ejection | null {
    const state = this.#states.get(cluster.key) ?? { consecutiveFailures: 0, ejections: 0, ejected: false, ejectedUntil: 0 };
    this.#states.set(cluster.key, state);
    // Settle an ejection that has run out first, so its failures do not count towards the next one.
    const ejected = this.isEjected(cluster.key);
    if (ok) {
      state.consecutiveFailures = 0;
      return null;
    }
    state.consecutiveFailures += 1;
    const policy = service.policy.outlierDetection;
    if (ejected || state.consecutiveFailures < policy.consecutiveFailures) return null;
    if (!this.#mayEject(service, cluster)) return null;

    const now = this.now();
    // Each base period spent back in rotation earns one ejection back, as Envoy's multiplier decays.
    const quietPeriods = Math.floor((now - state.ejectedUntil) / policy.baseEjectionMs);
    state.ejections = Math.max(0, state.ejections - Math.max(0, quietPeriods)) + 1;
    state.ejected = true;
    state.ejectedUntil = now + policy.baseEjectionMs * state.ejections;
    const set = this.#ejectedByService.get(service.name) ?? new Set<string>();
    set.add(cluster.key);
    this.#ejectedByService.set(service.name, set);
    return { cluster: cluster.name, service: service.name, untilMs: state.ejectedUntil, ejections: state.ejections, consecutiveFailures: state.consecutiveFailures };
  }

  #mayEject(service: CompiledService, cluster: Cluster): boolean {
    const total = service.clusters.length;
    const ejected = this.ejected(service.name).length;
    if (((ejected + 1) * 100) / total > service.policy.outlierDetection.maxEjectionPercent) return false;
    const routableAfter = service.clusters.filter(
      (c) => c !== cluster && snapshotAvailability(c) === 'healthy' && !this.isEjected(c.key),
    ).length;
    return routableAfter > 0;
  }
}
