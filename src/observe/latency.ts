/** Upper bounds (ms) of the latency buckets; the last bucket takes everything above. */
const LATENCY_BOUNDS_MS = [
  1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000,
];

/** The bucket a latency falls in. */
export function latencyBucket(ms: number): number {
  for (let i = 0; i < LATENCY_BOUNDS_MS.length; i++) if (ms <= (LATENCY_BOUNDS_MS[i] as number)) return i;
  return LATENCY_BOUNDS_MS.length;
}

export function emptyBuckets(): number[] {
  return new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
}

/** Adds `more` into `into`, bucket by bucket (a shorter or missing list adds nothing where it ends). */
export function addBuckets(into: number[], more: readonly number[] | null | undefined): void {
  if (!more) return;
  for (let i = 0; i < into.length && i < more.length; i++) (into[i] as number) += more[i] as number;
}

/** The q-quantile (0-1) of bucketed latencies, as the upper bound of its bucket; null with no samples. */
export function quantileMs(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    seen += buckets[i] as number;
    if (seen >= rank) return LATENCY_BOUNDS_MS[i] ?? (LATENCY_BOUNDS_MS.at(-1) as number) * 2;
  }
  return null;
}
