import { addBuckets, emptyBuckets, latencyBucket } from './latency.js';

/** What one instance saw of one cluster, for clients of one region, since its last flush. */
export interface EdgeReport {
  service: string;
  cluster: string;
  clientRegion: string;
  requests: number;
  failures: number;
  latencyMsSum: number;
  /** Requests per latency bucket (observe/latency.ts), for percentiles; absent in reports made without them. */
  latencyBuckets?: number[];
}

/** Client region recorded when the client's region is unknown. */
export const UNKNOWN_REGION = '-';

/**
 * Passive outcomes aggregated in memory and handed over in batches, so the store sees one row per
 * (cluster, client region) per flush instead of one write per request.
 */
export class ReportBuffer {
  #rows = new Map<string, EdgeReport>();
  #outcomes = 0;
  #lastFlushAt: number;

  constructor(
    private readonly now: () => number,
    private readonly flushEveryMs: number,
    private readonly maxOutcomes = 10_000,
    private readonly maxRows = 10_000,
  ) {
    this.#lastFlushAt = now();
  }

  get pending(): number {
    return this.#outcomes;
  }

  record(service: string, cluster: string, clientRegion: string | null, ok: boolean, latencyMs: number): void {
    const region = clientRegion ?? UNKNOWN_REGION;
    const key = `${service}\u0000${cluster}\u0000${region}`;
    let row = this.#rows.get(key);
    if (!row) {
      if (this.#rows.size >= this.maxRows) return;
      row = {
        service,
        cluster,
        clientRegion: region,
        requests: 0,
        failures: 0,
        latencyMsSum: 0,
        latencyBuckets: emptyBuckets(),
      };
      this.#rows.set(key, row);
    }
    row.requests += 1;
    if (!ok) row.failures += 1;
    row.latencyMsSum += latencyMs;
    if (row.latencyBuckets) (row.latencyBuckets[latencyBucket(latencyMs)] as number) += 1;
    this.#outcomes += 1;
  }

  /** Time to flush: something is pending and the interval passed, or the buffer is filling up. */
  due(): boolean {
    return (
      this.#outcomes > 0 && (this.now() - this.#lastFlushAt >= this.flushEveryMs || this.#outcomes >= this.maxOutcomes)
    );
  }

  /** Hands over everything pending and starts a new interval. */
  take(): EdgeReport[] {
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    this.#outcomes = 0;
    this.#lastFlushAt = this.now();
    return rows;
  }

  /** Puts back rows whose flush failed, so the next flush carries them (within the buffer's bounds). */
  restore(rows: EdgeReport[]): void {
    for (const r of rows) {
      const key = `${r.service}\u0000${r.cluster}\u0000${r.clientRegion}`;
      const row = this.#rows.get(key);
      if (row) {
        row.requests += r.requests;
        row.failures += r.failures;
        row.latencyMsSum += r.latencyMsSum;
        if (row.latencyBuckets) addBuckets(row.latencyBuckets, r.latencyBuckets);
      } else if (this.#rows.size < this.maxRows) {
        this.#rows.set(key, { ...r, latencyBuckets: [...(r.latencyBuckets ?? emptyBuckets())] });
      } else {
        continue;
      }
      this.#outcomes += r.requests;
    }
  }
}
