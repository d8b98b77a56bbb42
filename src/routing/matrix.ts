import { availability, healthLabel, type HealthLabel } from './availability.js';
import { clusterShares, computeShares, type ShareTable } from './shares.js';
import type { CompiledService, LevelReason, RoutePlan, Snapshot } from './types.js';

/** One cluster's place in the failover order of one client region. */
export interface MatrixEntry {
  cluster: string;
  region: string;
  /** The cluster's zone (`zone` or `zone/subzone`); null: none. */
  zone: string | null;
  /** Percent of that region's traffic, one decimal; a region's entries sum to 100 when any is routable. */
  share: number;
  level: number;
  levelReason: LevelReason;
  health: HealthLabel;
  reason: string;
}

interface MatrixSummary {
  totalHealth: number;
  panic: boolean;
  closed: boolean;
}

export interface FailoverMatrix {
  service: string;
  regions: Record<string, MatrixEntry[]>;
  summary: Record<string, MatrixSummary>;
  /** Per client region, per client zone its clusters are in: the order clients of that zone get. */
  zones: Record<string, Record<string, MatrixEntry[]>>;
  zoneSummary: Record<string, Record<string, MatrixSummary>>;
}

/**
 * For every client region routing knows, the service's clusters in failover order with their share of
 * that region's traffic, as the edges compute it. `down` names clusters to treat as down (what-if).
 */
export function failoverMatrix(
  snapshot: Snapshot,
  service: CompiledService,
  down: ReadonlySet<string> = new Set(),
): FailoverMatrix {
  const regions: Record<string, MatrixEntry[]> = {};
  const summary: Record<string, MatrixSummary> = {};
  const zones: Record<string, Record<string, MatrixEntry[]>> = {};
  const zoneSummary: Record<string, Record<string, MatrixSummary>> = {};
  const show = (plan: RoutePlan): { entries: MatrixEntry[]; summary: MatrixSummary } => {
    const shares = down.size ? computeShares(plan.list, (c) => availability(c, { down }), service.policy) : plan.shares;
    return {
      entries: planEntries(plan, shares, down),
      summary: { totalHealth: round1(shares.totalHealth), panic: shares.panic, closed: shares.closed },
    };
  };
  const regionNames = [...snapshot.regions.keys()].sort();
  for (const region of regionNames) {
    const plan = service.byRegion.get(region);
    if (!plan) continue;
    const shown = show(plan);
    regions[region] = shown.entries;
    summary[region] = shown.summary;
    const zonePlans = service.byZone.get(region);
    if (!zonePlans) continue;
    zones[region] = {};
    zoneSummary[region] = {};
    for (const zone of [...zonePlans.keys()].sort()) {
      const zoned = show(zonePlans.get(zone) as RoutePlan);
      zones[region][zone] = zoned.entries;
      zoneSummary[region][zone] = zoned.summary;
    }
  }
  return { service: service.name, regions, summary, zones, zoneSummary };
}

/** A plan's clusters in failover order with their shares under `shares` (the plan's own by default). */
export function planEntries(
  plan: RoutePlan,
  shares: ShareTable = plan.shares,
  down: ReadonlySet<string> = new Set(),
): MatrixEntry[] {
  const levels = plan.list.levels.map((l) => l.clusters);
  const reasons = plan.list.reasons;
  const byCluster = clusterShares(shares);
  const flat = levels.flatMap((clusters, level) => clusters.map((c) => ({ c, level })));
  const rounded = roundToSum(flat.map(({ c }) => byCluster.get(c) ?? 0));
  return flat.map(({ c, level }, i) => {
    const levelShare = shares.levels[level];
    const health = healthLabel(c, { down });
    const levelReason = reasons[level] as LevelReason;
    const takes = (byCluster.get(c) ?? 0) > 0;
    // Panic is per level (Envoy): only a level in panic ignores health, or, failing closed, refuses its share.
    const levelPanic = levelShare?.panic ?? false;
    const failsClosed = levelPanic && shares.failClosed;
    const routable = health === 'healthy' || health === 'unknown' || (levelPanic && !failsClosed);
    const why = [
      `level ${level} (${levelReason})`,
      levelShare
        ? `${round1(levelShare.healthyPercent)}% of the level healthy, level takes ${round1(levelShare.load)}%`
        : '',
      takes || failsClosed
        ? ''
        : routable
          ? 'no traffic: higher levels take it all (retries may come here)'
          : `no traffic: ${health}`,
      levelPanic && !failsClosed ? 'level in panic: health ignored' : '',
      failsClosed ? 'fail closed: nothing routable in this level (in panic); its share is refused (503)' : '',
    ];
    return {
      cluster: c.name,
      region: c.region,
      zone: c.zone,
      share: rounded[i] as number,
      level,
      levelReason,
      health,
      reason: why.filter(Boolean).join('; '),
    };
  });
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/** Rounds to one decimal so the parts still add up to the rounded total (largest remainder). */
function roundToSum(values: number[]): number[] {
  const tenths = values.map((v) => v * 10);
  const floors = tenths.map(Math.floor);
  let missing = Math.round(tenths.reduce((a, b) => a + b, 0)) - floors.reduce((a, b) => a + b, 0);
  const order = tenths.map((t, i) => ({ i, rest: t - Math.floor(t) })).sort((a, b) => b.rest - a.rest);
  for (const { i } of order) {
    if (missing <= 0) break;
    floors[i] = (floors[i] as number) + 1;
    missing -= 1;
  }
  return floors.map((f) => f / 10);
}
