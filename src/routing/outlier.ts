import { availability } from './availability.js';
import type { LocalHealth } from './decide.js';
import type { Cluster, CompiledService, OutlierPolicy, Snapshot } from './types.js';

interface ClusterState {
  service: string;
  cluster: string;
  consecutiveFailures: number;
  /** Envoy's eject_time_backoff: +1 per ejection (up to a cap), -1 per interval spent back in rotation. */
  multiplier: number;
  /** Ejections so far (Envoy's num_ejections). */
  ejections: number;
  /** When the current ejection ends; null while the cluster is in rotation. */
  ejectedUntil: number | null;
  /** When the last ejection ended (Envoy's last_unejection_time); null if it never was ejected. */
  unejectedAt: number | null;
}

/** An ejection this instance just made, for logs and events. */
export interface Ejection {
  cluster: string;
  service: string;
  untilMs: number;
  /** Ejections of this cluster so far, this one included. */
  ejections: number;
  /** The ejection lasts min(baseEjectionMs x multiplier, the cap). */
  multiplier: number;
  consecutiveFailures: number;
}

/**
 * Passive health per isolate or process: Envoy's outlier detection, consecutive-5xx flavour
 * (source/common/upstream/outlier_detection_impl.cc). `consecutiveFailures` 5xx answers or connect
 * failures in a row eject a cluster for min(baseEjectionMs x multiplier, max(baseEjectionMs,
 * maxEjectionMs)); the multiplier grows by one per ejection and shrinks by one per `intervalMs` the
 * cluster spends back in rotation. An ejection refused by a limit resets the failure count, as Envoy's
 * does, so it takes `consecutiveFailures` new failures to try again.
 *
 * Where Waymark differs from Envoy:
 * - Envoy runs a timer every `interval`: ejections end, and multipliers shrink, on its ticks. Waymark
 *   has no timer and works both out from timestamps with the injected clock when asked. An ejection
 *   ends exactly after its time (Envoy's can last up to one interval longer, until the next tick), and
 *   the intervals that shrink the multiplier count from that moment, as Envoy's ticks count from the
 *   tick that ended the ejection.
 * - Besides maxEjectionPercent (strict since Envoy 1.27, envoyproxy/envoy#27909; Waymark has no
 *   always_eject_one_host), an ejection never takes out the service's last routable cluster.
 * - No jitter (Envoy's max_ejection_time_jitter, default 0), no enforcing percentage (always 100),
 *   and no success-rate or failure-percentage ejection.
 */
export class OutlierDetector implements LocalHealth {
  readonly #states = new Map<string, ClusterState>();
  readonly #ejectedByService = new Map<string, Set<string>>();

  constructor(private readonly now: () => number) {}

  /**
   * Forgets clusters the snapshot no longer has: a cluster deleted and created again under its name
   * starts with no failures, ejection or multiplier of its namesake (Envoy drops a removed host's
   * outlier state with the host).
   */
  retain(snapshot: Snapshot): void {
    for (const [key, state] of this.#states) {
      if (snapshot.byName.get(state.service)?.clusters.some((c) => c.name === state.cluster)) continue;
      this.#states.delete(key);
      this.#ejectedByService.get(state.service)?.delete(key);
    }
  }

  /** How many clusters this instance keeps outlier state for: those that failed, not every one it served. */
  get trackedClusters(): number {
    return this.#states.size;
  }

  affects(service: string): boolean {
    const ejected = this.#ejectedByService.get(service);
    if (!ejected || ejected.size === 0) return false;
    for (const key of ejected) this.isEjected(key);
    return ejected.size > 0;
  }

  isEjected(clusterKey: string): boolean {
    const state = this.#states.get(clusterKey);
    if (!state || state.ejectedUntil === null) return false;
    if (this.now() < state.ejectedUntil) return true;
    // Back in rotation: Envoy's unejectHost resets the count, "to avoid re-ejection on very few new
    // errors". The ejection ended when its time ran out, whenever it is noticed.
    state.unejectedAt = state.ejectedUntil;
    state.ejectedUntil = null;
    state.consecutiveFailures = 0;
    this.#ejectedByService.get(state.service)?.delete(clusterKey);
    return false;
  }

  /** Clusters of a service ejected right now. */
  ejected(service: string): string[] {
    return this.affects(service) ? [...(this.#ejectedByService.get(service) ?? [])] : [];
  }

  /**
   * Records one answer from a cluster (`ok` false: a 5xx or a connect failure) and decides whether it
   * ejects the cluster; returns the ejection it caused, if any.
   */
  record(service: CompiledService, cluster: Cluster, ok: boolean): Ejection | null {
    // Settle an ejection that has run out first, so that failures count towards the next one only.
    if (this.isEjected(cluster.key)) return null;
    if (ok) {
      // A cluster that never failed has no state, and a success gives it none: the states grow with the
      // clusters that failed, not with every cluster a large configuration serves.
      const state = this.#states.get(cluster.key);
      if (state) state.consecutiveFailures = 0;
      return null;
    }
    const state = this.#stateOf(service, cluster);
    const policy = service.policy.outlierDetection;
    state.consecutiveFailures += 1;
    if (state.consecutiveFailures < policy.consecutiveFailures) return null;

    const consecutiveFailures = state.consecutiveFailures;
    // Envoy's onConsecutiveErrorWorker resets the count whether ejectHost ejected or refused.
    state.consecutiveFailures = 0;
    if (!this.#mayEject(service, cluster)) return null;

    const now = this.now();
    state.multiplier = nextMultiplier(state, policy, now);
    state.ejections += 1;
    state.ejectedUntil = now + Math.min(policy.baseEjectionMs * state.multiplier, maxEjectionMs(policy));
    const set = this.#ejectedByService.get(service.name) ?? new Set<string>();
    set.add(cluster.key);
    this.#ejectedByService.set(service.name, set);
    return {
      cluster: cluster.name,
      service: service.name,
      untilMs: state.ejectedUntil,
      ejections: state.ejections,
      multiplier: state.multiplier,
      consecutiveFailures,
    };
  }

  #stateOf(service: CompiledService, cluster: Cluster): ClusterState {
    let state = this.#states.get(cluster.key);
    if (!state) {
      state = {
        service: service.name,
        cluster: cluster.name,
        consecutiveFailures: 0,
        multiplier: 0,
        ejections: 0,
        ejectedUntil: null,
        unejectedAt: null,
      };
      this.#states.set(cluster.key, state);
    }
    return state;
  }

  /**
   * Envoy's ejectHost check, strict since 1.27: the share of the service's clusters ejected after this
   * ejection may not exceed maxEjectionPercent. Clusters no longer in the service do not count, as
   * Envoy forgets removed hosts. Waymark's own rule: the last routable cluster stays.
   */
  #mayEject(service: CompiledService, cluster: Cluster): boolean {
    const ejected = service.clusters.filter((c) => this.isEjected(c.key)).length;
    if (((ejected + 1) * 100) / service.clusters.length > service.policy.outlierDetection.maxEjectionPercent)
      return false;
    return service.clusters.some(
      (c) => c !== cluster && availability(c, { ejectedHere: (x) => this.isEjected(x.key) }) === 'healthy',
    );
  }
}

/** The cap on one ejection: Envoy refuses a max_ejection_time below base_ejection_time; a policy that has one gets the base. */
function maxEjectionMs(policy: OutlierPolicy): number {
  return Math.max(policy.baseEjectionMs, policy.maxEjectionMs);
}

/**
 * The multiplier of an ejection starting at `now`. Envoy's interval timer takes one off for every
 * tick at least `interval` after the host came back, while it is not ejected; its ticks after an
 * unejection fall at unejection + k x interval, so by `now` it has taken off one per whole interval
 * since. Envoy's ejectHost then adds one, but only while base x multiplier < max + base: the
 * multiplier stops one step past the cap, so it takes one more interval back in rotation before
 * ejections get shorter than the cap.
 */
function nextMultiplier(state: ClusterState, policy: OutlierPolicy, now: number): number {
  const intervals = state.unejectedAt === null ? 0 : Math.floor((now - state.unejectedAt) / policy.intervalMs);
  const decayed = Math.max(0, state.multiplier - intervals);
  return decayed * policy.baseEjectionMs < maxEjectionMs(policy) + policy.baseEjectionMs ? decayed + 1 : decayed;
}
