import { describe, expect, it } from 'vitest';
import { boundedKey, ConcurrencyLimiter, RateLimiter, RetryBudget } from '../../src/proxy/limits.js';

/** A clock that only moves when told. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** How many retries the budget grants in a row (stops at the first refusal, at most `max`). */
function drain(budget: RetryBudget, key: object, percent: number, max = 10_000): number {
  let n = 0;
  while (n < max && budget.tryRetry(key, percent)) n += 1;
  return n;
}

// Envoy: source/common/upstream/resource_manager_impl.h, RetryBudget::max() is
// max(budget_percent / 100 * (rq_active + rq_pending), min_retry_concurrency), truncated to an integer;
// test/common/upstream/resource_manager_impl_test.cc (RetryBudgetOverrideGauge: 20%, min 5, nothing
// active -> max 5).
describe('RetryBudget (Envoy: retries in flight within a share of requests in flight)', () => {
  it.each<[number, number, number, number]>([
    // requests in flight, budget percent, min_retry_concurrency, retries in flight allowed
    [1, 20, 5, 5],
    [1, 20, 3, 3],
    [10, 20, 3, 3],
    [19, 20, 3, 3],
    [20, 20, 3, 4],
    [100, 20, 3, 20],
    [100, 50, 3, 50],
    [100, 0, 3, 3],
    [1000, 1, 3, 10],
    [1000, 100, 3, 1000],
  ])('%i in flight at %i%% (min %i): %i retries at once', (active, percent, min, expected) => {
    const budget = new RetryBudget(min);
    const route = {};
    for (let i = 0; i < active; i++) budget.start(route);
    expect(drain(budget, route, percent)).toBe(expected);
  });

  it('a quiet service always gets its retry: one request at a time, each retried, forever', () => {
    const budget = new RetryBudget();
    const route = {};
    for (let i = 0; i < 1_000; i++) {
      budget.start(route);
      expect(budget.tryRetry(route, 20)).toBe(true);
      budget.end(route, 1);
    }
  });

  it('retries come back when their requests end; a busy route cannot amplify an outage', () => {
    const budget = new RetryBudget();
    const route = {};
    for (let i = 0; i < 100; i++) budget.start(route);
    expect(drain(budget, route, 20)).toBe(20);
    // 10 requests end with their retries: 90 in flight -> 18 allowed, 10 taken.
    for (let i = 0; i < 10; i++) budget.end(route, 1);
    expect(drain(budget, route, 20)).toBe(8);
  });

  it('routes are independent, and an unknown route is not retried', () => {
    const budget = new RetryBudget();
    const a = {};
    const b = {};
    budget.start(a);
    budget.start(b);
    expect(drain(budget, a, 20)).toBe(3);
    expect(drain(budget, b, 20)).toBe(3);
    expect(budget.tryRetry({}, 20)).toBe(false);
  });
});

describe('ConcurrencyLimiter', () => {
  it('admits up to max per key, then refuses until a slot is released', () => {
    const limiter = new ConcurrencyLimiter();
    expect(limiter.acquire('a', 2)).toBe(true);
    expect(limiter.acquire('a', 2)).toBe(true);
    expect(limiter.acquire('a', 2)).toBe(false);
    expect(limiter.inflight('a')).toBe(2);
    expect(limiter.acquire('b', 2)).toBe(true);
    limiter.release('a');
    expect(limiter.inflight('a')).toBe(1);
    expect(limiter.acquire('a', 2)).toBe(true);
    expect(limiter.acquire('a', 2)).toBe(false);
  });

  it('max 1 serialises', () => {
    const limiter = new ConcurrencyLimiter();
    expect(limiter.acquire('k', 1)).toBe(true);
    expect(limiter.acquire('k', 1)).toBe(false);
    limiter.release('k');
    expect(limiter.acquire('k', 1)).toBe(true);
  });

  it('a release too many never goes below zero nor creates credit', () => {
    const limiter = new ConcurrencyLimiter();
    limiter.release('k');
    limiter.release('k');
    expect(limiter.inflight('k')).toBe(0);
    expect(limiter.acquire('k', 1)).toBe(true);
    expect(limiter.acquire('k', 1)).toBe(false);
  });

  it('forgets a key once nothing is in flight', () => {
    const limiter = new ConcurrencyLimiter();
    for (let i = 0; i < 3; i++) limiter.acquire('k', 5);
    for (let i = 0; i < 3; i++) limiter.release('k');
    expect(limiter.inflight('k')).toBe(0);
  });
});

describe('RateLimiter', () => {
  it('a full burst, then 429 until a token refills', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    expect(limiter.take('k', 1, 3)).toEqual({ ok: true });
    expect(limiter.take('k', 1, 3)).toEqual({ ok: true });
    expect(limiter.take('k', 1, 3)).toEqual({ ok: true });
    expect(limiter.take('k', 1, 3)).toEqual({ ok: false, retryAfterS: 1 });
    c.advance(999);
    expect(limiter.take('k', 1, 3).ok).toBe(false);
    c.advance(1);
    expect(limiter.take('k', 1, 3)).toEqual({ ok: true });
    expect(limiter.take('k', 1, 3).ok).toBe(false);
  });

  it('refills at the rate, never above the burst', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    for (let i = 0; i < 2; i++) expect(limiter.take('k', 10, 2).ok).toBe(true);
    expect(limiter.take('k', 10, 2).ok).toBe(false);
    c.advance(60_000);
    expect(limiter.take('k', 10, 2).ok).toBe(true);
    expect(limiter.take('k', 10, 2).ok).toBe(true);
    expect(limiter.take('k', 10, 2).ok).toBe(false);
    c.advance(100);
    expect(limiter.take('k', 10, 2).ok).toBe(true);
  });

  it.each<[number, number, number]>([
    // perSecond, ms after the burst ran out, Retry-After seconds
    [1, 0, 1],
    [0.5, 0, 2],
    [0.1, 0, 10],
    [0.1, 5_000, 5],
    [0.1, 9_100, 1],
    [100, 0, 1],
  ])('at %i/s, %i ms after the burst ran out: Retry-After %i s', (perSecond, after, expected) => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    expect(limiter.take('k', perSecond, 1).ok).toBe(true);
    c.advance(after);
    expect(limiter.take('k', perSecond, 1)).toEqual({ ok: false, retryAfterS: expected });
  });

  it('refused requests do not consume tokens', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    expect(limiter.take('k', 1, 1).ok).toBe(true);
    for (let i = 0; i < 10; i++) {
      c.advance(50);
      expect(limiter.take('k', 1, 1).ok).toBe(false);
    }
    c.advance(500);
    expect(limiter.take('k', 1, 1).ok).toBe(true);
  });

  it('keys have their own buckets', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now);
    expect(limiter.take('a', 1, 1).ok).toBe(true);
    expect(limiter.take('a', 1, 1).ok).toBe(false);
    expect(limiter.take('b', 1, 1).ok).toBe(true);
  });

  it('keeps at most maxKeys buckets, forgetting the least recently used', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now, 2);
    expect(limiter.take('a', 0.001, 1).ok).toBe(true);
    expect(limiter.take('b', 0.001, 1).ok).toBe(true);
    // "a" is used again (refused), so "b" is now the least recently used.
    expect(limiter.take('a', 0.001, 1).ok).toBe(false);
    expect(limiter.take('c', 0.001, 1).ok).toBe(true);
    // "a" was kept (still empty); "b" was forgotten, so it starts with a full bucket again.
    expect(limiter.take('a', 0.001, 1).ok).toBe(false);
    expect(limiter.take('b', 0.001, 1).ok).toBe(true);
    // Adding "b" back pushed out "c", the least recently used of {c, a}.
    expect(limiter.take('a', 0.001, 1).ok).toBe(false);
    expect(limiter.take('c', 0.001, 1).ok).toBe(true);
  });

  it('many distinct keys stay bounded: an old key comes back with a full bucket', () => {
    const c = clock();
    const limiter = new RateLimiter(c.now, 100);
    expect(limiter.take('first', 0.001, 1).ok).toBe(true);
    expect(limiter.take('first', 0.001, 1).ok).toBe(false);
    for (let i = 0; i < 100; i++) limiter.take(`ip-${i}`, 0.001, 1);
    expect(limiter.take('first', 0.001, 1).ok).toBe(true);
    // The most recent keys are still remembered.
    expect(limiter.take('ip-99', 0.001, 1).ok).toBe(false);
  });
});

describe('boundedKey', () => {
  it('gives a short key whatever the size of the client-chosen text, the same for the same text', () => {
    const big = 'k'.repeat(8_192);
    expect(boundedKey(big).length).toBeLessThanOrEqual(11);
    expect(boundedKey(big)).toBe(boundedKey('k'.repeat(8_192)));
    expect(boundedKey(big)).not.toBe(boundedKey(`${'k'.repeat(8_191)}j`));
  });
});
