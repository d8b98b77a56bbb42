import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from 'cloudflare:test';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import worker from './entry.js';
import { admin, ctl, DUBLIN, get, registerShop } from './support.js';

/** Without the WAYMARK_SYNC binding the Cron Trigger runs the sync itself (test/worker/sync-coordinator.test.ts: with it). */
const { WAYMARK_SYNC: _coordinator, ...direct } = env;

/** The Cron Trigger, as Cloudflare would fire it. */
async function cron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '* * * * *' }), direct, ctx);
  await waitOnExecutionContext(ctx);
}

async function shares(region: string): Promise<Record<string, number>> {
  const matrix = (await (await admin('GET', '/services/shop/failover')).json()) as {
    regions: Record<string, { cluster: string; share: number }[]>;
  };
  return Object.fromEntries((matrix.regions[region] ?? []).map((e) => [e.cluster, e.share]));
}

beforeAll(registerShop);
afterEach(async () => {
  await ctl('/healthy/ew1');
  await ctl('/ok/ew1');
});

describe('the health sync inside workerd (Cron Trigger, no sync coordinator)', () => {
  it('takes a cluster out after the unhealthy threshold and brings it back after the healthy threshold', async () => {
    await cron();
    expect(await shares('eu-west1')).toMatchObject({ ew1: 100 });

    await ctl('/unhealthy/ew1');
    await cron();
    expect(await shares('eu-west1')).toMatchObject({ ew1: 100 });
    await cron();
    expect(await shares('eu-west1')).toMatchObject({ ew1: 0, ue1: 100 });
    const res = await get('/after-sync', DUBLIN);
    expect(res.headers.get('x-waymark-cluster')).toBe('ue1');
    expect(res.headers.get('x-waymark-attempts')).toBe('1');

    await ctl('/healthy/ew1');
    await cron();
    expect(await shares('eu-west1')).toMatchObject({ ew1: 0 });
    await cron();
    expect(await shares('eu-west1')).toMatchObject({ ew1: 100 });
    expect((await get('/back', DUBLIN)).headers.get('x-waymark-cluster')).toBe('ew1');

    const events = (await (await admin('GET', '/events?service=shop')).json()) as {
      events: { kind: string; cluster: string | null; message: string }[];
    };
    const states = events.events.filter((e) => e.kind === 'cluster-state' && e.cluster === 'ew1').map((e) => e.message);
    expect(states[0]).toContain('unhealthy -> healthy');
    expect(states[1]).toContain('healthy -> unhealthy: health check answered 503');
  });

  it('ejects a gray-failing cluster at the edge after consecutive failures', async () => {
    await ctl('/fail/ew1');
    const seen: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await get(`/gray/${i}`, DUBLIN);
      seen.push(`${res.status}:${res.headers.get('x-waymark-cluster')}`);
    }
    expect(seen.slice(0, 5)).toEqual(Array(5).fill('500:ew1'));
    expect(seen.slice(5)).toEqual(Array(3).fill('200:ue1'));
  });
});
