/**
 * Per-instance traffic limits: a retry budget, a concurrency limit per cluster, and token-bucket rate
 * limits. On Workers each isolate keeps its own (see the README for making a limit global).
 */

/** Retries a route may make: a share of its recent requests, with a floor so low traffic can retry. */
export class RetryBudget {
  readonly #windows = new Map<string, { start: number; requests: number; retries: number; prevRequests: number; prevRetries: number }>();

  constructor(
    private readonly now: () => number,
    private readonly windowMs = 10_000,
    /** Retries always allowed per window, whatever the traffic (Envoy's min_retry_concurrency is 3). */
    private readonly floor = 3,
  ) {}

  /** Counts a request (its first try). */
  request(key: string): void {
    this.#window(key).requests += 1;
  }

  /** Takes one retry from the budget when `percent` of recent requests allows it. */
  tryRetry(key: string, percent: number): boolean {
    const w = this.#window(key);
    const requests = w.requests + w.prevRequests;
    const retries = w.retries + w.prevRetries;
    if (retries >= Math.max(this.floor, (requests * percent) / 100)) return false;
    w.retries += 1;
    return true;
  }

  #window(key: string) {
    const now = this.now();
    let w = this.#windows.get(key);
    if (!w) {
      w = { start: now, requests: 0, retries: 0, prevRequests: 0, prevRetries: 0 };
      this.#windows.set(key, w);
    } else if (now - w.start >= this.windowMs) {
      // Two windows (this one and the last) approximate a sliding window without per-request state.
      const stale = now - w.start >= 2 * this.windowMs;
      w.prevRequests = stale ? 0 : w.requests;
      w.prevRetries = stale ? 0 : w.retries;
      w.requests = 0;
      w.retries = 0;
      w.start = now;
    }
    return w;
  }
}

/** Requests in flight per key (a cluster, under a route's limit). */
export class ConcurrencyLimiter {
  readonly #inflight = new Map<string, number>();

  /** Takes a slot, or answers false when `max` are already in flight. */
  acquire(key: string, max: number): boolean {
    const n = this.#inflight.get(key) ?? 0;
    if (n >= max) return false;
    this.#inflight.set(key, n + 1);
    return true;
  }

  release(key: string): void {
    const n = (this.#inflight.get(key) ?? 1) - 1;
    if (n <= 0) this.#inflight.delete(key);
    else this.#inflight.set(key, n);
  }

  inflight(key: string): number {
    return this.#inflight.get(key) ?? 0;
  }
}

/** Token buckets per key; the least recently used keys are forgotten past `maxKeys`. */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly now: () => number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes a token, or says how many seconds until one is due. */
  take(key: string, perSecond: number, burst: number): { ok: true } | { ok: false; retryAfterS: number } {
    const now = this.now();
    const b = this.#buckets.get(key);
    const tokens = b ? Math.min(burst, b.tokens + ((now - b.at) / 1000) * perSecond) : burst;
    this.#buckets.delete(key);
    if (this.#buckets.size >= this.maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (tokens < 1) {
      this.#buckets.set(key, { tokens, at: now });
      return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - tokens) / perSecond)) };
    }
    this.#buckets.set(key, { tokens: tokens - 1, at: now });
    return { ok: true };
  }
}
