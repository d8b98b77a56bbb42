import type { Cluster, PriorityList, RandomSource, ServicePolicy } from './types.js';

/**
 * Envoy's overprovisioning factor: a level keeps all its traffic until fewer than 1/1.4 (about 71%) of
 * its clusters are healthy, then sheds the difference to the next level.
 */
export const OVERPROVISIONING_FACTOR = 1.4;

/** How a cluster stands for routing at one moment. */
export type Availability = 'healthy' | 'unhealthy' | 'drained';

/** One level's part of the traffic, and how it spreads over the level's clusters. */
export interface LevelShare {
  /** Percent of all traffic this level takes (0-100). */
  load: number;
  /** Percent of its clusters that are healthy (drained ones do not count either way). */
  healthyPercent: number;
  /** The clusters that take this level's traffic and their weights. */
  pool: Cluster[];
  weights: number[];
  totalWeight: number;
}

/** The traffic split of one priority list: what the edges pick from and what the failover matrix shows. */
export interface ShareTable {
  levels: LevelShare[];
  /** Normalised total health over all levels (0-100). */
  totalHealth: number;
  /** Health is ignored: too few clusters are healthy to trust it (fail open). */
  panic: boolean;
  /** Too few healthy clusters and the service fails closed: no traffic is sent. */
  closed: boolean;
}

/**
 * Splits traffic over a priority list the way Envoy's priority levels do. A level's health is
 * min(100, 1.4 x 100 x healthy / total); levels take traffic in order up to their health, normalised
 * when the total is under 100. Below the panic threshold the service fails open (every non-drained
 * cluster counts as healthy) or, by policy, closed (nothing is routable). Inside a level, traffic
 * follows weights over the clusters that take it.
 */
export function computeShares(list: PriorityList, availability: (c: Cluster) => Availability, policy: ServicePolicy): ShareTable {
  const counted = list.levels.map((level) => {
    let total = 0;
    let healthy = 0;
    for (const c of level.clusters) {
      const a = availability(c);
      if (a === 'drained') continue;
      total += 1;
      if (a === 'healthy') healthy += 1;
    }
    return { total, healthy };
  });
  const healthOf = ({ total, healthy }: { total: number; healthy: number }) =>
    total === 0 ? 0 : Math.min(100, (OVERPROVISIONING_FACTOR * 100 * healthy) / total);
  const health = counted.map(healthOf);
  const totalHealth = Math.min(100, health.reduce((a, b) => a + b, 0));
  const anyClusters = counted.some((c) => c.total > 0);
  const panic = anyClusters && totalHealth < policy.panicThresholdPercent && !policy.failClosed;
  const closed = anyClusters && totalHealth < policy.panicThresholdPercent && policy.failClosed;

  const usable = (c: Cluster) => {
    const a = availability(c);
    return a === 'healthy' || (panic && a === 'unhealthy');
  };
  const effective = panic ? counted.map((c) => (c.total > 0 ? 100 : 0)) : health;
  const effectiveTotal = Math.min(100, effective.reduce((a, b) => a + b, 0));

  let remaining = 100;
  const levels = list.levels.map((level, i): LevelShare => {
    const pool = closed ? [] : level.clusters.filter(usable);
    const weights = pool.map((c) => c.weight);
    const totalWeight = weights.reduce((a, b) => a + b, 0);
    const normalised = effectiveTotal > 0 ? ((effective[i] as number) * 100) / effectiveTotal : 0;
    const load = pool.length === 0 ? 0 : Math.min(remaining, normalised);
    remaining -= load;
    const { total, healthy } = counted[i] as { total: number; healthy: number };
    return { load, healthyPercent: total === 0 ? 0 : (100 * healthy) / total, pool, weights, totalWeight };
  });
  return { levels, totalHealth, panic, closed };
}

/** Each cluster's percent of all traffic under a share table. */
export function clusterShares(table: ShareTable): Map<Cluster, number> {
  const shares = new Map<Cluster, number>();
  for (const level of table.levels) {
    level.pool.forEach((c, i) => {
      const part = level.totalWeight > 0 ? (level.weights[i] as number) / level.totalWeight : 1 / level.pool.length;
      shares.set(c, (shares.get(c) ?? 0) + level.load * part);
    });
  }
  return shares;
}

/**
 * The clusters to try for one request: the first is drawn by level load then by weight inside the
 * level; retries follow in priority order over the other clusters that take traffic, drawn by weight
 * inside each level so that a failed cluster's retries spread the way its traffic would.
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
  if (!chosen) return [];
  const first = weightedPick(chosen.pool, chosen.weights, chosen.totalWeight, random);
  const out = [first];
  for (const level of table.levels) {
    if (out.length >= max) break;
    const { pool, weights } = level;
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
      scratchWeights.push(weights[i] as number);
      total += weights[i] as number;
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
function weightedPick(pool: readonly Cluster[], weights: readonly number[], totalWeight: number, random: RandomSource): Cluster {
  return pool[weightedIndex(weights, pool.length, totalWeight, random)] as Cluster;
}
