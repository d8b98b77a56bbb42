import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/client.js';
import { acquireLease, releaseLease, renewLease, type LeaseOutcome } from '../../src/store/lease.js';
import { migrateStore } from '../../src/store/migrate.js';
import { leases } from '../../src/store/schema.js';
import { startHranaServer } from '../support/hrana-server.js';

const T0 = 1_800_000_000_000;
const TTL_MS = 30_000;
const name = 'health-sync';

let dir: string;
let dbPath: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'waymark-lease-'));
  dbPath = join(dir, 'waymark.db');
  store = openStore(`file:${dbPath}`);
  expect(await migrateStore(store, { holder: 'test' })).toMatchObject({ ok: true });
});
afterEach(() => {
  store.client.close();
  rmSync(dir, { recursive: true, force: true });
});

const acquire = (holder: string, now: number, extra: { ttlMs?: number; minIntervalMs?: number } = {}) =>
  acquireLease(store.db, { name, holder, now, ttlMs: TTL_MS, ...extra });
const row = async () => (await store.db.select().from(leases)).find((l) => l.name === name);

describe('acquireLease', () => {
  it('takes a free lease, and a second holder is told who holds it and until when', async () => {
    expect(await acquire('a', T0)).toEqual({ ok: true });
    expect(await row()).toEqual({ name, holder: 'a', acquiredAt: T0, expiresAt: T0 + TTL_MS });

    expect(await acquire('b', T0 + 1)).toEqual({ ok: false, holder: 'a', until: T0 + TTL_MS, reason: 'held' });
    expect(await row()).toEqual({ name, holder: 'a', acquiredAt: T0, expiresAt: T0 + TTL_MS });
  });

  it('is not re-entrant: the holder itself cannot take it again while it holds it', async () => {
    await acquire('a', T0);
    expect(await acquire('a', T0 + 1)).toEqual({ ok: false, holder: 'a', until: T0 + TTL_MS, reason: 'held' });
  });

  it('is free from the moment it expires, for anyone', async () => {
    await acquire('a', T0);
    expect(await acquire('b', T0 + TTL_MS - 1)).toMatchObject({ ok: false, reason: 'held' });
    expect(await acquire('b', T0 + TTL_MS)).toEqual({ ok: true });
    expect(await row()).toEqual({ name, holder: 'b', acquiredAt: T0 + TTL_MS, expiresAt: T0 + 2 * TTL_MS });
    // The previous holder is now the one waiting.
    expect(await acquire('a', T0 + TTL_MS + 1)).toEqual({
      ok: false,
      holder: 'b',
      until: T0 + 2 * TTL_MS,
      reason: 'held',
    });
  });

  it('leases of different names are independent', async () => {
    await acquire('a', T0);
    expect(await acquireLease(store.db, { name: 'migrate', holder: 'b', now: T0, ttlMs: TTL_MS })).toEqual({
      ok: true,
    });
  });

  it("with a minimum interval, an early release still blocks the next acquire (anyone's) until it has passed", async () => {
    const minIntervalMs = 60_000;
    expect(await acquire('a', T0, { minIntervalMs })).toEqual({ ok: true });
    expect(await releaseLease(store.db, { name, holder: 'a', now: T0 + 5_000 })).toBe(true);

    const tooSoon: LeaseOutcome = { ok: false, holder: 'a', until: T0 + minIntervalMs, reason: 'too-soon' };
    expect(await acquire('b', T0 + 5_000, { minIntervalMs })).toEqual(tooSoon);
    expect(await acquire('a', T0 + 5_000, { minIntervalMs })).toEqual(tooSoon);
    expect(await acquire('b', T0 + minIntervalMs - 1, { minIntervalMs })).toEqual(tooSoon);
    expect(await acquire('b', T0 + minIntervalMs, { minIntervalMs })).toEqual({ ok: true });
  });

  it('while held, `until` is the later of expiry and the end of the minimum interval', async () => {
    await acquire('a', T0, { minIntervalMs: 60_000 });
    expect(await acquire('b', T0 + 1, { minIntervalMs: 60_000 })).toEqual({
      ok: false,
      holder: 'a',
      until: T0 + 60_000,
      reason: 'held',
    });
    // Expired, not yet an interval since it was taken.
    expect(await acquire('b', T0 + TTL_MS, { minIntervalMs: 60_000 })).toEqual({
      ok: false,
      holder: 'a',
      until: T0 + 60_000,
      reason: 'too-soon',
    });
    // The interval is the caller's: one that asks for none takes the expired lease.
    expect(await acquire('b', T0 + TTL_MS)).toEqual({ ok: true });
  });

  it('refuses a non-positive TTL or a negative interval as a bug', async () => {
    await expect(acquire('a', T0, { ttlMs: 0 })).rejects.toThrow(RangeError);
    await expect(acquire('a', T0, { minIntervalMs: -1 })).rejects.toThrow(RangeError);
    expect(await row()).toBeUndefined();
  });
});

describe('releaseLease', () => {
  it('frees the lease at once when the holder releases it', async () => {
    await acquire('a', T0);
    expect(await releaseLease(store.db, { name, holder: 'a', now: T0 + 10 })).toBe(true);
    expect(await row()).toEqual({ name, holder: 'a', acquiredAt: T0, expiresAt: T0 + 10 });
    expect(await acquire('b', T0 + 10)).toEqual({ ok: true });
  });

  it('changes nothing for someone who does not hold it, or once it expired', async () => {
    await acquire('a', T0);
    expect(await releaseLease(store.db, { name, holder: 'b', now: T0 + 10 })).toBe(false);
    expect(await releaseLease(store.db, { name: 'other', holder: 'a', now: T0 + 10 })).toBe(false);
    expect(await row()).toEqual({ name, holder: 'a', acquiredAt: T0, expiresAt: T0 + TTL_MS });

    expect(await releaseLease(store.db, { name, holder: 'a', now: T0 + TTL_MS })).toBe(false);
    // A lease taken over after expiry cannot be released by the one it expired on.
    await acquire('b', T0 + TTL_MS);
    expect(await releaseLease(store.db, { name, holder: 'a', now: T0 + TTL_MS + 1 })).toBe(false);
    expect(await row()).toMatchObject({ holder: 'b', expiresAt: T0 + 2 * TTL_MS });
  });
});

describe('renewLease', () => {
  it("extends the holder's lease; not someone else's, nor an expired one", async () => {
    await acquire('a', T0);
    expect(await renewLease(store.db, { name, holder: 'a', now: T0 + 20_000, ttlMs: TTL_MS })).toBe(true);
    expect(await row()).toEqual({ name, holder: 'a', acquiredAt: T0, expiresAt: T0 + 20_000 + TTL_MS });
    expect(await acquire('b', T0 + TTL_MS)).toMatchObject({ ok: false, reason: 'held', until: T0 + 20_000 + TTL_MS });

    expect(await renewLease(store.db, { name, holder: 'b', now: T0 + 21_000, ttlMs: TTL_MS })).toBe(false);
    expect(await renewLease(store.db, { name, holder: 'a', now: T0 + 20_000 + TTL_MS, ttlMs: TTL_MS })).toBe(false);
    expect(await row()).toMatchObject({ holder: 'a', expiresAt: T0 + 20_000 + TTL_MS });
  });
});

describe('concurrent acquires: exactly one winner', () => {
  const CONTENDERS = 20;

  /** Every contender asks at the same instant through its own client; returns the winners' names. */
  async function race(stores: Store[]): Promise<{ winners: string[]; losers: LeaseOutcome[] }> {
    const outcomes = await Promise.all(
      stores.map((s, i) => acquireLease(s.db, { name, holder: `c${i}`, now: T0, ttlMs: TTL_MS })),
    );
    const winners = outcomes.flatMap((o, i) => (o.ok ? [`c${i}`] : []));
    return { winners, losers: outcomes.filter((o) => !o.ok) };
  }

  it('20 clients on one local file', async () => {
    const clients = Array.from({ length: CONTENDERS }, () => openStore(`file:${dbPath}`));
    try {
      const { winners, losers } = await race(clients);
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(CONTENDERS - 1);
      for (const l of losers) expect(l).toEqual({ ok: false, holder: winners[0], until: T0 + TTL_MS, reason: 'held' });
      expect(await row()).toMatchObject({ holder: winners[0] });
    } finally {
      for (const c of clients) c.client.close();
    }
  });

  it('20 clients over libSQL HTTP (Hrana) to one database', async () => {
    const hrana = await startHranaServer({ dbPath });
    const clients = Array.from({ length: CONTENDERS }, () => openStore(hrana.url));
    try {
      const { winners, losers } = await race(clients);
      expect(winners).toHaveLength(1);
      for (const l of losers) expect(l).toEqual({ ok: false, holder: winners[0], until: T0 + TTL_MS, reason: 'held' });
      expect(await row()).toMatchObject({ holder: winners[0] });
      // Every request really went over HTTP.
      expect(hrana.pipelineRequests()).toBeGreaterThanOrEqual(CONTENDERS);
    } finally {
      for (const c of clients) c.client.close();
      await hrana.close();
    }
  });
});
