import type { Cluster, PriorityList, RandomSource, ServicePolicy } from './types.js';

/**
 * Envoy's default overprovisioning factor as Envoy stores it, in percent (`kDefaultOverProvisioningFactor`):
 * a level keeps all its traffic until fewer than 100/140 (about 71%) of its clusters are healthy.
 */
const OVERPROVISIONING_PERCENT = 140;

/** How a cluster stands for routing at one moment. */
export type Availability = 'healthy' | 'unhealthy' | 'drained';

/**
 * One Envoy priority level (a HostSet) as counts. Waymark has no degraded state and maps drained
 * clusters out of `hosts` entirely, so it always passes `degraded: 0, excluded: 0`; the fields are here
 * so that Envoy's own tables port as they are written.
 */
export interface HostCounts {
  /** Every host of the level (Envoy's `hosts().size()`), excluded ones included. */
  hosts: number;
  healthy: number;
  degraded: number;
  /** Hosts that count neither for health nor for panic, but still count for total panic, as in Envoy. */
  excluded: number;
}

/** Envoy's per-priority state: what `recalculatePerPriorityState` and `recalculatePerPriorityPanic` leave. */
export interface PriorityLoad {
  /** Integer percent of all traffic that goes to each level's healthy hosts (Envoy's healthy priority load). */
  healthyLoad: number[];
  /** Integer percent of all traffic that goes to each level's degraded hosts; with healthyLoad, sums to 100. */
  degradedLoad: number[];
  /** Each level's integer health: min(100, overprovisioning x healthy / (hosts - excluded)). */
  health: number[];
  /** The same for degraded hosts. */
  degradedHealth: number[];
  /** min(100, sum of every level's health and degraded health). */
  normalizedTotalAvailability: number;
  /** Each level's panic flag (Envoy's `per_priority_panic_`). */
  panic: boolean[];
  /** Every level is in panic: loads follow host counts, not health. */
  totalPanic: boolean;
}

/** One level's part of the traffic, and how it spreads over the level's clusters. */
interface LevelShare {
  /** Percent of all traffic this level takes: Envoy's integer priority load (0-100). */
  load: number;
  /** Percent of its clusters that are healthy (drained ones do not count either way). */
  healthyPercent: number;
  /**
   * Envoy's per-priority panic flag: normalised total health is under 100 and fewer than the panic
   * threshold of the level's clusters are healthy. Failing open, every non-drained cluster of the level
   * takes its traffic; failing closed, none does.
   */
  panic: boolean;
  /** The clusters that take this level's traffic (each drawn by its `weight`). */
  pool: Cluster[];
  totalWeight: number;
}

/** The traffic split of one priority list: what the edges pick from and what the failover matrix shows. */
export interface ShareTable {
  levels: LevelShare[];
  /** Envoy's normalised total health: min(100, sum of the levels' health), an integer (0-100). */
  totalHealth: number;
  /** Some level with clusters is in panic and the service fails open: that level ignores health. */
  panic: boolean;
  /**
   * Some level that takes load is in panic and the service fails closed: the requests drawn to that
   * level are refused (every request, when every level is in panic).
   */
  closed: boolean;
  /** The service's policy: a level in panic refuses its share instead of ignoring health. */
  failClosed: boolean;
}

/**
 * Envoy's priority load and panic, computed the way a freshly built Envoy load balancer computes them
 * (`LoadBalancerBase::recalculatePerPriorityState`, `distributeLoad`, `recalculatePerPriorityPanic`,
 * `recalculateLoadInTotalPanic` and `isHostSetInPanic` in
 * source/extensions/load_balancing_policies/common/load_balancer_impl.cc), integer arithmetic included:
 * - a level's health is min(100, floor(overprovisioning x healthy / (hosts - excluded))), likewise
 *   for degraded hosts; the normalised total availability is min(100, sum of both over all levels);
 * - load goes to healthy hosts level by level, each taking min(what is left,
 *   floor(health x 100 / normalised total)), then the rest the same way to degraded hosts; what
 *   rounding leaves goes to the first level with healthy availability (else with degraded);
 * - a level is in panic when the normalised total is under 100 and its raw healthy plus degraded
 *   percent (not scaled by overprovisioning) is under the threshold; when every level is, load follows
 *   host counts (excluded hosts counted, as Envoy does) with the rounding rest on the first non-empty
 *   level, and an empty backend puts 100 on level 0;
 * - with the threshold at 0 and nothing available, Envoy puts 100 on level 0 and no level panics.
 * One case Envoy leaves to whatever its previous state was (nothing available, yet some level not in
 * panic: only possible with a threshold under 1.43%) also puts 100 on level 0.
 * `panicThresholdPercent` is capped at 100 as Envoy caps its runtime value.
 */
export function computePriorityLoad(
  levels: readonly HostCounts[],
  panicThresholdPercent: number,
  overprovisioningPercent: number = OVERPROVISIONING_PERCENT,
): PriorityLoad {
  const availabilityOf = (level: HostCounts, count: number) => {
    const hosts = level.hosts - level.excluded;
    return hosts > 0 ? Math.min(100, Math.floor((overprovisioningPercent * count) / hosts)) : 0;
  };
  const health = levels.map((l) => availabilityOf(l, l.healthy));
  const degradedHealth = levels.map((l) => availabilityOf(l, l.degraded));
  const normalizedTotalAvailability = Math.min(100, sum(health) + sum(degradedHealth));
  const healthyLoad = levels.map(() => 0);
  const degradedLoad = levels.map(() => 0);
  const panic = levels.map(() => false);
  const result = {
    healthyLoad,
    degradedLoad,
    health,
    degradedHealth,
    normalizedTotalAvailability,
    panic,
    totalPanic: false,
  };
  if (levels.length === 0) return result;

  if (normalizedTotalAvailability > 0) {
    const healthyPass = distributeLoad(healthyLoad, health, 100, normalizedTotalAvailability);
    const degradedPass = distributeLoad(
      degradedLoad,
      degradedHealth,
      healthyPass.remaining,
      normalizedTotalAvailability,
    );
    if (degradedPass.remaining > 0) {
      const [loads, first] =
        healthyPass.first >= 0 ? [healthyLoad, healthyPass.first] : [degradedLoad, degradedPass.first];
      loads[first] = (loads[first] as number) + degradedPass.remaining;
    }
  }

  const threshold = Math.min(100, panicThresholdPercent);
  if (threshold === 0 && normalizedTotalAvailability === 0) {
    healthyLoad[0] = 100;
    return result;
  }
  let totalPanic = true;
  levels.forEach((level, i) => {
    // Never panic while the levels together are fully available, however low one level is.
    panic[i] = normalizedTotalAvailability < 100 && isLevelInPanic(level, threshold);
    totalPanic &&= panic[i] as boolean;
  });
  if (totalPanic) {
    loadByHostCount(levels, healthyLoad, degradedLoad);
  } else if (normalizedTotalAvailability === 0) {
    healthyLoad[0] = 100;
  }
  return { ...result, totalPanic };
}

/** Envoy's `distributeLoad`: as much load as possible to the first levels, in integer percents. */
function distributeLoad(
  loads: number[],
  availability: readonly number[],
  totalLoad: number,
  normalizedTotal: number,
): { first: number; remaining: number } {
  let first = -1;
  let remaining = totalLoad;
  availability.forEach((a, i) => {
    if (first < 0 && a > 0) first = i;
    const load = Math.min(remaining, Math.floor((a * 100) / normalizedTotal));
    loads[i] = load;
    remaining -= load;
  });
  return { first, remaining };
}

/** Envoy's `isHostSetInPanic`: raw healthy plus degraded percent (not overprovisioned) under the threshold. */
function isLevelInPanic(level: HostCounts, threshold: number): boolean {
  const hosts = level.hosts - level.excluded;
  const healthyPercent = hosts === 0 ? 0 : (100 * level.healthy) / hosts;
  const degradedPercent = hosts === 0 ? 0 : (100 * level.degraded) / hosts;
  return healthyPercent + degradedPercent < threshold;
}

/** Envoy's `recalculateLoadInTotalPanic`: load by each level's share of all hosts, health ignored. */
function loadByHostCount(levels: readonly HostCounts[], healthyLoad: number[], degradedLoad: number[]): void {
  const totalHosts = sum(levels.map((l) => l.hosts));
  if (totalHosts === 0) {
    healthyLoad[0] = 100;
    return;
  }
  let remaining = 100;
  let firstNonEmpty = -1;
  levels.forEach((level, i) => {
    if (firstNonEmpty < 0 && level.hosts > 0) firstNonEmpty = i;
    const load = Math.floor((100 * level.hosts) / totalHosts);
    healthyLoad[i] = load;
    degradedLoad[i] = 0;
    remaining -= load;
  });
  healthyLoad[firstNonEmpty] = (healthyLoad[firstNonEmpty] as number) + remaining;
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * Splits traffic over a priority list exactly as Envoy's priority levels do (see `computePriorityLoad`),
 * with each level a priority whose hosts are its non-drained clusters: drained clusters do not count
 * at all, and Waymark has no degraded state. Inside a level, traffic follows weights over the
 * clusters that take it: its healthy ones, or, when the level is in panic, every non-drained one
 * (fail open).
 *
 * `policy.failClosed` is Envoy's `fail_traffic_on_panic` (`ZoneAwareLoadBalancerBase::hostSourceToUse`):
 * a level in panic takes no cluster at all, but keeps its Envoy load, so the requests drawn to that
 * level get no attempts (a 503) while the levels not in panic keep routing to their healthy clusters.
 * In total panic every request is refused; a level in panic with no load refuses nothing (and takes no
 * retries).
 */
export function computeShares(
  list: PriorityList,
  availability: (c: Cluster) => Availability,
  policy: ServicePolicy,
): ShareTable {
  const states = list.levels.map((level) => level.clusters.map(availability));
  const counts = states.map((s): HostCounts => {
    const hosts = s.filter((a) => a !== 'drained').length;
    return { hosts, healthy: s.filter((a) => a === 'healthy').length, degraded: 0, excluded: 0 };
  });
  const priority = computePriorityLoad(counts, policy.panicThresholdPercent);
  let panic = false;
  let closed = false;
  const levels = list.levels.map((level, i): LevelShare => {
    const { hosts, healthy } = counts[i] as HostCounts;
    const levelStates = states[i] as Availability[];
    const load = (priority.healthyLoad[i] as number) + (priority.degradedLoad[i] as number);
    const levelPanic = priority.panic[i] as boolean;
    if (levelPanic && hosts > 0) {
      if (!policy.failClosed) panic = true;
      else if (load > 0) closed = true;
    }
    const takes = (a: Availability) => (levelPanic ? !policy.failClosed && a !== 'drained' : a === 'healthy');
    // Every cluster of the level taking traffic (the usual case): the level's own array, not a copy.
    const pool = levelStates.every(takes)
      ? level.clusters
      : level.clusters.filter((_, j) => takes(levelStates[j] as Availability)).slice();
    return {
      load,
      healthyPercent: hosts === 0 ? 0 : (100 * healthy) / hosts,
      panic: levelPanic,
      pool,
      totalWeight: pool.reduce((total, c) => total + c.weight, 0),
    };
  });
  return { levels, totalHealth: priority.normalizedTotalAvailability, panic, closed, failClosed: policy.failClosed };
}

/** Each cluster's percent of all traffic under a share table. */
export function clusterShares(table: ShareTable): Map<Cluster, number> {
  const shares = new Map<Cluster, number>();
  for (const level of table.levels) {
    for (const c of level.pool) {
      const part = level.totalWeight > 0 ? c.weight / level.totalWeight : 1 / level.pool.length;
      shares.set(c, (shares.get(c) ?? 0) + level.load * part);
    }
  }
  return shares;
}

/**
 * The clusters to try for one request: the first is drawn by level load then by weight inside the
 * level; retries follow in priority order over the other clusters that take traffic, drawn by weight
 * inside each level so that a failed cluster's retries spread the way its traffic would. A draw that
 * lands on a level with no cluster to take it (a level failing closed) gets no attempts, as Envoy
 * returns no host for it.
 */
export function pickAttempts(table: ShareTable, random: RandomSource, max: number): Cluster[] {
  let r = random() * 100;
  let chosen: LevelShare | undefined;
  for (const level of table.levels) {
    if (level.load <= 0) continue;
    chosen = level;
    if (r < level.load) break;
    r -= level.load;
  }
  if (!chosen || chosen.pool.length === 0) return [];
  const first = weightedPick(chosen.pool, chosen.totalWeight, random);
  const out = [first];
  for (const level of table.levels) {
    if (out.length >= max) break;
    const { pool } = level;
    if (pool.length === 1) {
      if (pool[0] !== first) out.push(pool[0] as Cluster);
      continue;
    }
    // Weighted draw without replacement over reused scratch arrays: no allocation per request.
    scratchPool.length = 0;
    scratchWeights.length = 0;
    let total = 0;
    for (let i = 0; i < pool.length; i++) {
      if (pool[i] === first) continue;
      scratchPool.push(pool[i] as Cluster);
      const weight = (pool[i] as Cluster).weight;
      scratchWeights.push(weight);
      total += weight;
    }
    while (scratchPool.length > 0 && out.length < max) {
      const i = weightedIndex(scratchWeights, scratchPool.length, total, random);
      out.push(scratchPool[i] as Cluster);
      total -= scratchWeights[i] as number;
      scratchPool[i] = scratchPool[scratchPool.length - 1] as Cluster;
      scratchWeights[i] = scratchWeights[scratchWeights.length - 1] as number;
      scratchPool.pop();
      scratchWeights.pop();
    }
  }
  return out;
}

const scratchPool: Cluster[] = [];
const scratchWeights: number[] = [];

function weightedIndex(weights: readonly number[], length: number, totalWeight: number, random: RandomSource): number {
  if (length === 1 || totalWeight <= 0) return 0;
  let r = random() * totalWeight;
  for (let i = 0; i < length; i++) {
    r -= weights[i] as number;
    if (r < 0) return i;
  }
  return length - 1;
}

/** A weighted draw; weight-0 clusters only when nothing else is left. */
function weightedPick(pool: readonly Cluster[], totalWeight: number, random: RandomSource): Cluster {
  if (pool.length === 1 || totalWeight <= 0) return pool[0] as Cluster;
  let r = random() * totalWeight;
  for (const c of pool) {
    r -= c.weight;
    if (r < 0) return c;
  }
  return pool[pool.length - 1] as Cluster;
}
