/** Mean latency from one client region to one cluster region, as edges measured it. */
export interface RegionLatency {
  region: string;
  meanMs: number;
  samples: number;
}

/** Samples a region needs before its measured latency may place it. */
export const LATENCY_MIN_SAMPLES = 20;
/** A region moves ahead of another only when it is this much faster (0.2 = 20%): no flapping. */
export const LATENCY_HYSTERESIS = 0.2;

/**
 * The failover order beyond a client's own region by measured latency, with hysteresis: starting from
 * the current order, a region passes the one ahead of it only when it is faster by more than the
 * hysteresis margin; regions with too few samples are left to distance (not listed).
 */
export function latencyOrder(
  current: readonly string[],
  measured: readonly RegionLatency[],
  minSamples = LATENCY_MIN_SAMPLES,
  hysteresis = LATENCY_HYSTERESIS,
): RegionLatency[] {
  const qualified = new Map(measured.filter((m) => m.samples >= minSamples).map((m) => [m.region, m]));
  const order: RegionLatency[] = current.flatMap((r) => qualified.get(r) ?? []);
  const fresh = [...qualified.values()].filter((m) => !current.includes(m.region)).sort((a, b) => a.meanMs - b.meanMs);
  order.push(...fresh);
  for (let moved = true; moved; ) {
    moved = false;
    for (let i = 0; i + 1 < order.length; i++) {
      const ahead = order[i] as RegionLatency;
      const behind = order[i + 1] as RegionLatency;
      if (behind.meanMs < ahead.meanMs * (1 - hysteresis)) {
        order[i] = behind;
        order[i + 1] = ahead;
        moved = true;
      }
    }
  }
  return order;
}
