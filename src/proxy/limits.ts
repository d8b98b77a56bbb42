import { hash53 } from '../routing/hash.js';

/**
 * Per-instance traffic limits: a retry budget, a concurrency limit per cluster, and token-bucket rate
 * limits. On Workers each isolate keeps its own (see the README for making a limit global).
 */

/**
 * Envoy's retry budget (config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget): retries in flight may
 * be at most `budget_percent` of the requests in flight, and never fewer than `min_retry_concurrency` (3),
 * so a quiet service always gets its retry and a busy one cannot amplify an outage. Kept per route (or per
 * service for requests no route takes). A request is in flight until its answer's headers arrive (or it
 * fails); a retry, from its start until then too.
 */
export class RetryBudget {
  readonly #counts = new WeakMap<object, { active: number; retries: number }>();

  /** Envoy's min_retry_concurrency default. */
  constructor(private readonly minRetryConcurrency = 3) {}

  /** A request to `key` starts. */
  start(key: object): void {
    const c = this.#counts.get(key);
    if (c) c.active += 1;
    else this.#counts.set(key, { active: 1, retries: 0 });
  }

  /** A request to `key` has its answer (or failed), giving back the `retries` it took. */
  end(key: object, retries: number): void {
    const c = this.#counts.get(key);
    if (!c) return;
    c.active = Math.max(0, c.active - 1);
    c.retries = Math.max(0, c.retries - retries);
  }

  /** Takes one retry when retries in flight stay within `percent` of requests in flight (or the floor). */
  tryRetry(key: object, percent: number): boolean {
    const c = this.#counts.get(key);
    if (!c) return false;
    // ResourceManagerImpl::RetryBudget::max(): max(budget_percent / 100 * active (truncated), min_retry_concurrency).
    if (c.retries >= Math.max(this.minRetryConcurrency, Math.floor((c.active * percent) / 100))) return false;
    c.retries += 1;
    return true;
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

/**
 * Token buckets per key; the least recently used keys are forgotten past `maxKeys`. Callers hash
 * client-chosen parts of a key (`boundedKey`) so a key's size does not depend on the client.
 */
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

/** Client-chosen text (a header value) as a short fixed-size key: a 53-bit hash, in base 36. */
export function boundedKey(text: string): string {
  return hash53(text).toString(36);
}
