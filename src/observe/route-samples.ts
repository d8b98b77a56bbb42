import { emptyBuckets, latencyBucket } from './latency.js';

export type SampleKind = 'primary' | 'mirror' | 'canary';

/** What one instance saw of one route's requests of one kind since its last flush. */
export interface RouteSample {
  service: string;
  route: string;
  kind: SampleKind;
  requests: number;
  /** 5xx answers and failures to answer at all. */
  errors: number;
  latencyMsSum: number;
  latencyBuckets: number[];
}

/**
 * Outcomes of routed, mirrored and canary requests, aggregated in memory per (route, kind) and handed
 * over in batches with the edge reports, so a mirror's outcome sits next to the primary's.
 */
export class RouteSampleBuffer {
  #rows = new Map<string, RouteSample>();

  constructor(private readonly maxRows = 5_000) {}

  get size(): number {
    return this.#rows.size;
  }

  record(service: string, route: string, kind: SampleKind, ok: boolean, latencyMs: number): void {
    const key = `${service}\u0000${route}\u0000${kind}`;
    let row = this.#rows.get(key);
    if (!row) {
      if (this.#rows.size >= this.maxRows) return;
      row = { service, route, kind, requests: 0, errors: 0, latencyMsSum: 0, latencyBuckets: emptyBuckets() };
      this.#rows.set(key, row);
    }
    row.requests += 1;
    if (!ok) row.errors += 1;
    row.latencyMsSum += latencyMs;
    const b = latencyBucket(latencyMs);
    row.latencyBuckets[b] = (row.latencyBuckets[b] as number) + 1;
  }

  take(): RouteSample[] {
    const rows = [...this.#rows.values()];
    this.#rows = new Map();
    return rows;
  }

  restore(rows: RouteSample[]): void {
    for (const r of rows) {
      const key = `${r.service}\u0000${r.route}\u0000${r.kind}`;
      const row = this.#rows.get(key);
      if (!row) {
        if (this.#rows.size < this.maxRows) this.#rows.set(key, { ...r, latencyBuckets: [...r.latencyBuckets] });
        continue;
      }
      row.requests += r.requests;
      row.errors += r.errors;
      row.latencyMsSum += r.latencyMsSum;
      r.latencyBuckets.forEach((n, i) => (row.latencyBuckets[i] = (row.latencyBuckets[i] ?? 0) + n));
    }
  }
}
