import { describe, expect, it } from 'vitest';
import { ConcurrencyLimiter, RateLimiter, RetryBudget } from '../../src/proxy/limits.js';

/** A clock that only moves when told. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** How many retries the budget grants in a row (stops at the first refusal, at most `max`). */
function drain(budget: RetryBudget, key: string, percent: number, max = 10_000): number {
  let n = 0;
  while (n < max && budget.tryRetry(key, percent)) n += 1;
  return n;
}

describe('RetryBudget', () => {
  it('allows the floor (3) with no traffic at all', () => {
    const c = clock();
    expect(drain(new RetryBudget(c.now), 'shop/r', 20)).toBe(3);
  });

  it.each<[number, number, number]>([
    // requests, percent, retries allowed: max(floor 3, requests x percent)
    [10, 20, 3],
    [15, 20, 3],
    [20, 20, 4],
    [100, 20, 20],
    [100, 50, 50],
    [100, 0, 3],
    [1000, 1, 10],
    [1000, 100, 1000],
  ])('%i requests at %i%%: %i retries', (requests, percent, expected) => {
    const c = clock();
    const budget = new RetryBudget(c.now);
    for (let i = 0; i < requests; i++) budget.request('k');
    expect(drain(budget, 'k', percent)).toBe(expected);
  });

  it('new requests make room for more retries', () => {
    const c = clock();
    const budget = new RetryBudget(c.now);
    for (let i = 0; i < 20; i++) budget.request('k');
    expect(drain(budget, 'k', 20)).toBe(4);
    for (let i = 0; i < 5; i++) budget.request('k');
    expect(drain(budget, 'k', 20)).toBe(1);
  });

  it('keys are independent', () => {
    const c = clock();
    const budget = new RetryBudget(c.now);
    expect(drain(budget, 'a', 20)).toBe(3);
    expect(drain(budget, 'b', 20)).toBe(3);
  });

  it('the last window still counts after a roll-over, and two windows later everything is forgotten', () => {
    const c = clock();
    const budget = new RetryBudget(c.now, 10_000, 3);
    for (let i = 0; i < 100; i++) budget.request('k');
    expect(drain(budget, 'k', 10)).toBe(10);

    // Inside the same window nothing comes back.
    c.advance(9_999);
    expect(budget.tryRetry('k', 10)).toBe(false);

    // Next window: the last window's 100 requests and 10 retries still count (a sliding approximation).
    c.advance(1);
    expect(budget.tryRetry('k', 10)).toBe(false);
    for (let i = 0; i < 20; i++) budget.request('k');
    // 120 requests x 10% = 12, 10 taken: two more.
    expect(drain(budget, 'k', 10)).toBe(2);

    // One more window: the first window drops out; 20 requests and 2 retries remain from the last one.
    c.advance(10_000);
    // max(3, 20 x 10%) = 3, 2 taken: one more.
    expect(drain(budget, 'k', 10)).toBe(1);

    // Two full windows of silence: nothing remembered, the floor again.
    c.advance(20_000);
    expect(drain(budget, 'k', 10)).toBe(3);
  });

  it('a custom floor', () => {
    const c = clock();
    expect(drain(new RetryBudget(c.now, 10_000, 0), 'k', 20)).toBe(0);
    expect(drain(new RetryBudget(c.now, 10_000, 7), 'k', 20)).toBe(7);
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
