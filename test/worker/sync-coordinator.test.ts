import {
  createExecutionContext,
  createScheduledController,
  env,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from 'cloudflare:test';
import { eq } from 'drizzle-orm';
import { afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { openStore } from '../../src/store/client.js';
import { clusterHealth } from '../../src/store/schema.js';
import worker from './entry.js';
import { ctl, registerShop } from './support.js';

/** WAYMARK_SYNC_INTERVAL_MS as vitest.config.ts gives it to the worker. */
const INTERVAL_MS = 600_000;
/** What the coordinator keeps in its storage (src/sync-coordinator.ts). */
const LAST_SYNC_AT_MS_KEY = 'lastSyncAtMs';

const store = openStore(inject('storeUrl'));
const coordinator = () => env.WAYMARK_SYNC.get(env.WAYMARK_SYNC.idFromName('sync'));

/** The Cron Trigger, as Cloudflare would fire it, with the WAYMARK_SYNC binding. */
async function cron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '* * * * *' }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** When the sync last probed each of shop's clusters, as the store says. */
async function lastProbes(): Promise<Record<string, number | null>> {
  const rows = await store.db
    .select({ cluster: clusterHealth.cluster, lastProbeAt: clusterHealth.lastProbeAt })
    .from(clusterHealth)
    .where(eq(clusterHealth.service, 'shop'));
  return Object.fromEntries(rows.map((r) => [r.cluster, r.lastProbeAt]));
}

const alarmOf = () => runInDurableObject(coordinator(), (_, state) => state.storage.getAlarm());

/** Another file's cron may have woken the coordinator: every test starts from, and leaves, an empty one. */
async function forget(): Promise<void> {
  await runInDurableObject(coordinator(), async (_, state) => {
    await state.storage.deleteAlarm();
    await state.storage.deleteAll();
  });
}

beforeAll(registerShop);
beforeEach(forget);
afterEach(async () => {
  await ctl('/store-up');
  await forget();
});

describe('the sync coordinator (Durable Object)', () => {
  it('runs the health sync on its alarm and sets the next alarm an interval later', async () => {
    const stub = coordinator();
    await runInDurableObject(stub, (_, state) => state.storage.setAlarm(Date.now() + 60_000));
    const before = Date.now();
    expect(await runDurableObjectAlarm(stub)).toBe(true);

    const probes = await lastProbes();
    expect(Object.keys(probes).sort()).toEqual(['as1', 'ew1', 'ue1']);
    for (const at of Object.values(probes)) expect(at).toBeGreaterThanOrEqual(before);
    const alarm = await alarmOf();
    expect(alarm).toBeGreaterThanOrEqual(before + INTERVAL_MS);
    expect(alarm).toBeLessThanOrEqual(Date.now() + INTERVAL_MS);
  });

  it('sets the next alarm even when the sync failed', async () => {
    const stub = coordinator();
    const probes = await lastProbes();
    await runInDurableObject(stub, (_, state) => state.storage.setAlarm(Date.now() + 60_000));
    await ctl('/store-down');
    const before = Date.now();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await ctl('/store-up');

    expect(await lastProbes()).toEqual(probes);
    expect(await alarmOf()).toBeGreaterThanOrEqual(before + INTERVAL_MS);
  });

  it('syncs once when the cron wakes it twice within an interval, and again once the interval passed', async () => {
    const before = Date.now();
    await cron();
    const first = await lastProbes();
    for (const at of Object.values(first)) expect(at).toBeGreaterThanOrEqual(before);
    const alarm = await alarmOf();
    expect(alarm).toBeGreaterThanOrEqual(before + INTERVAL_MS);

    await cron();
    expect(await lastProbes()).toEqual(first);
    expect(await alarmOf()).toBe(alarm);

    // As if the interval had passed without the alarm firing (the cron is the backstop).
    await runInDurableObject(coordinator(), (_, state) =>
      state.storage.put(LAST_SYNC_AT_MS_KEY, Date.now() - INTERVAL_MS),
    );
    await cron();
    const third = await lastProbes();
    for (const [cluster, at] of Object.entries(first)) expect(third[cluster]).toBeGreaterThan(at ?? 0);
  });
});
