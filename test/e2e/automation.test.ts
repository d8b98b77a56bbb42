import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { insertEdgeReports } from '../../src/store/health.js';
import type { EdgeReport } from '../../src/observe/edge-reports.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * Automation end to end: a real server, real upstreams, real traffic. Edges record primary, mirror and
 * canary outcomes; POST /sync flushes them and moves mirror percent and canary weight step by step;
 * the new values apply to the very next requests. Latency-aware failover orders regions from edge
 * reports.
 */

const HOST = 'shop.example.com';
const EU = { 'x-waymark-client-region': 'eu-west1' };
const SLOW = 60_000;

interface Upstreams {
  v1: Upstream;
  v2: Upstream;
  shadow: Upstream;
}

type Status = {
  mirrorPercent: number | null;
  canaryWeight: number | null;
  phase: string | null;
  paused: boolean;
  heldBy: { action: string; value: number | null }[];
};
type Move = {
  service: string;
  route: string;
  kind: 'mirror' | 'canary';
  from: number;
  to: number;
  phase: string;
  reason: string;
};
type Figures = {
  samples: number;
  primary: { samples: number; errorRate: number | null; p95Ms: number | null };
  candidate: { samples: number; errorRate: number | null; p95Ms: number | null };
  bounds: Record<string, number>;
};
type EventEntry = { id: number; at: number; service: string; kind: string; message: string; detail: any };

/** Generous latency bounds: on one machine, a few ms of jitter must not read as a breach. */
const LOOSE = { maxLatencyRatio: 100, maxErrorRateDelta: 0.05 };

describe('route automation', () => {
  let server: TestServer;
  let up: Upstreams;
  let offsetMs = 0;
  let round = 0;

  beforeEach(async () => {
    offsetMs = 0;
    round = 0;
    const [v1, v2, shadow] = await Promise.all([
      startUpstream('v1', 'eu-west1'),
      startUpstream('v2', 'eu-west1'),
      startUpstream('shadow', 'eu-west1'),
    ]);
    up = { v1: v1 as Upstream, v2: v2 as Upstream, shadow: shadow as Upstream };
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '3000' }, { now: () => Date.now() + offsetMs });
    // Outlier ejection would take a failing cluster out by itself; these tests watch automation alone.
    const svc = await server.admin('PUT', '/services/shop', {
      hosts: [HOST],
      policy: { outlierDetection: { consecutiveFailures: 1000 } },
    });
    expect(svc.status, svc.body).toBe(201);
    for (const [name, version] of [
      ['v1', 'v1'],
      ['v2', 'v2'],
      ['shadow', 'shadow'],
    ] as const) {
      const res = await server.admin(
        'PUT',
        `/services/shop/clusters/${name}`,
        clusterBody('eu-west1', up[name].url, { labels: { version } }),
      );
      expect(res.status, res.body).toBe(201);
    }
  });

  afterEach(async () => {
    await server.close();
    await Promise.all(Object.values(up).map((u) => u.stop()));
  });

  async function putRoute(name: string, body: Record<string, unknown>): Promise<void> {
    const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
    expect(res.status, res.body).toBeLessThan(300);
  }

  async function status(route: string): Promise<Status> {
    const res = await server.admin('GET', `/services/shop/routes/${route}`);
    expect(res.status, res.body).toBe(200);
    return res.json.status;
  }

  async function sync(): Promise<{ automation: Move[]; revisionBumped: boolean }> {
    const res = await server.admin('POST', '/sync');
    expect(res.status, res.body).toBe(200);
    return res.json;
  }

  async function events(kind?: string): Promise<EventEntry[]> {
    const res = await server.admin('GET', '/events?service=shop&limit=1000');
    expect(res.status, res.body).toBe(200);
    const all = (res.json.events as EventEntry[]).slice().reverse();
    return kind ? all.filter((e) => e.kind === kind) : all;
  }

  /** Mirror copies the store has from this server (after a flush). */
  async function flushedMirrors(): Promise<number> {
    await server.runtime.flushReports();
    const r = await server.db.execute(
      "select coalesce(sum(requests), 0) as n from route_samples where kind = 'mirror'",
    );
    return Number(r.rows[0]?.n);
  }

  /**
   * `n` requests from the EU with fresh deterministic request ids (the mirror sample hashes the id);
   * waits until every mirror copy sent has its outcome recorded and flushed. Returns per-cluster counts
   * and how many copies the shadow received.
   */
  async function traffic(
    n: number,
    path = '/shop',
  ): Promise<{ byCluster: Record<string, number>; statuses: Record<number, number>; mirrored: number }> {
    round += 1;
    const shadowBefore = up.shadow.served;
    const byCluster: Record<string, number> = {};
    const statuses: Record<number, number> = {};
    for (let i = 0; i < n; i++) {
      const res = await server.request(HOST, `${path}/${i}`, { headers: { ...EU, 'x-request-id': `r${round}-${i}` } });
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      const cluster = (res.headers['x-waymark-cluster'] as string | undefined) ?? '(none)';
      byCluster[cluster] = (byCluster[cluster] ?? 0) + 1;
    }
    await eventually(async () => {
      const seen = up.shadow.served;
      await new Promise((r) => setTimeout(r, 40));
      return seen === up.shadow.served && (await flushedMirrors()) === up.shadow.served;
    });
    return { byCluster, statuses, mirrored: up.shadow.served - shadowBefore };
  }

  /** The route's stored state row (what automation last wrote), or null. */
  async function stored(route: string) {
    const r = await server.db.execute({
      sql: 'select mirror_percent, canary_weight, phase, paused from route_state where service = ? and route = ?',
      args: ['shop', route],
    });
    const row = r.rows[0];
    return row
      ? {
          mirrorPercent: row.mirror_percent as number | null,
          canaryWeight: row.canary_weight as number | null,
          phase: row.phase as string,
          paused: Boolean(row.paused),
        }
      : null;
  }

  const v1only = [{ subset: { version: 'v1' }, weight: 100 }];
  const N = 100;
  /** Within this many points of the expected percent, for 100 deterministic requests. */
  const TOLERANCE = 13;

  describe('(a) mirror ramp with a healthy shadow', () => {
    it(
      'each sync with enough mirrored samples raises the percent by one step up to max (complete); the shadow gets about that share',
      async () => {
        await putRoute('ramped', {
          order: 1,
          destinations: v1only,
          mirror: { subset: { version: 'shadow' }, percent: 20, ramp: { step: 20, max: 60, minSamples: 10, ...LOOSE } },
        });
        const seen: string[] = [];
        for (const [percent, next, phase] of [
          [20, 40, 'ramping'],
          [40, 60, 'complete'],
        ] as const) {
          expect(await status('ramped')).toMatchObject({ mirrorPercent: percent, phase: 'ramping', paused: false });
          const t = await traffic(N);
          // Every primary answer came from v1; the shadow got about the current percent of copies.
          expect(t.byCluster).toEqual({ v1: N });
          expect(
            Math.abs((100 * t.mirrored) / N - percent),
            `mirrored ${t.mirrored}/${N} at ${percent}%`,
          ).toBeLessThanOrEqual(TOLERANCE);
          const summary = await sync();
          expect(summary.automation).toEqual([
            {
              service: 'shop',
              route: 'ramped',
              kind: 'mirror',
              from: percent,
              to: next,
              phase,
              reason: expect.stringContaining(`over ${t.mirrored} samples`),
            },
          ]);
          expect(await status('ramped')).toMatchObject({ mirrorPercent: next, phase, paused: false });
          seen.push(`${percent}->${next}`);
        }
        expect(seen).toEqual(['20->40', '40->60']);

        // At max: the shadow keeps getting about 60%, and further syncs do not move it.
        const last = await traffic(N);
        expect(Math.abs((100 * last.mirrored) / N - 60)).toBeLessThanOrEqual(TOLERANCE);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 60, phase: 'complete' });
      },
      SLOW,
    );

    it(
      'no step without its own samples: too few mirrored requests since the last step means no move',
      async () => {
        await putRoute('ramped', {
          order: 1,
          destinations: v1only,
          mirror: { subset: { version: 'shadow' }, percent: 20, ramp: { step: 20, max: 60, minSamples: 10, ...LOOSE } },
        });
        // A sync with no traffic at all: nothing moves, nothing is stored.
        expect((await sync()).automation).toEqual([]);
        expect(await stored('ramped')).toBeNull();
        // 20 requests at 20%: a handful of copies, under minSamples.
        const t = await traffic(20);
        expect(t.mirrored).toBeLessThan(10);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 20, phase: 'ramping' });
        // A sync right after a step does not step again on the same evidence.
        await traffic(N);
        expect((await sync()).automation).toHaveLength(1);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 40 });
      },
      SLOW,
    );
  });

  describe('(b) mirror ramp with a failing shadow', () => {
    it(
      'a shadow answering 500 drops the percent to 0 and halts, with the error rates in the event; later syncs leave it; resume restarts it',
      async () => {
        await putRoute('ramped', {
          order: 1,
          destinations: v1only,
          mirror: {
            subset: { version: 'shadow' },
            percent: 50,
            ramp: { step: 25, max: 100, minSamples: 10, ...LOOSE },
          },
        });
        up.shadow.mode = 'fail';
        up.shadow.failStatus = 500;
        const t = await traffic(N);
        // The primary never sees the shadow's failures.
        expect(t.statuses).toEqual({ 200: N });
        expect(t.mirrored).toBeGreaterThanOrEqual(10);

        const summary = await sync();
        expect(summary.automation).toEqual([
          {
            service: 'shop',
            route: 'ramped',
            kind: 'mirror',
            from: 50,
            to: 0,
            phase: 'halted',
            reason: expect.stringContaining("error rate 100% against the primary's 0%"),
          },
        ]);
        expect(await status('ramped')).toEqual({
          mirrorPercent: 0,
          canaryWeight: null,
          phase: 'halted',
          paused: false,
          heldBy: [],
        });

        const [halt] = await events('mirror-ramp');
        expect(halt?.message).toContain('route ramped: mirror percent 50 -> 0 (halted)');
        expect(halt?.detail).toMatchObject({
          route: 'ramped',
          from: 50,
          to: 0,
          phase: 'halted',
          reason: expect.stringContaining('shadow breached'),
          figures: {
            samples: t.mirrored,
            primary: { samples: N, errorRate: 0 },
            candidate: { samples: t.mirrored, errorRate: 1 },
            bounds: { minSamples: 10, maxErrorRateDelta: 0.05, maxLatencyRatio: 100 },
          },
        });

        // Halted: no more copies, and further syncs do not move it, even once the shadow is fixed.
        up.shadow.mode = 'ok';
        const quiet = await traffic(N);
        expect(quiet.mirrored).toBe(0);
        expect((await sync()).automation).toEqual([]);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 0, phase: 'halted' });
        expect(await events('mirror-ramp')).toHaveLength(1);

        // Resume: back to the first percent, ramping; copies flow again and the next sync steps up.
        const resumed = await server.admin('POST', '/services/shop/routes/ramped/resume');
        expect(resumed.status, resumed.body).toBe(200);
        expect(resumed.json.status).toMatchObject({ mirrorPercent: 50, phase: 'ramping', paused: false });
        const again = await traffic(N);
        expect(Math.abs((100 * again.mirrored) / N - 50)).toBeLessThanOrEqual(TOLERANCE);
        expect((await sync()).automation).toEqual([
          expect.objectContaining({ kind: 'mirror', from: 50, to: 75, phase: 'ramping' }),
        ]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 75, phase: 'ramping' });
      },
      SLOW,
    );

    it(
      'a slow shadow breaches the latency bound and halts, the event naming the p95s',
      async () => {
        await putRoute('ramped', {
          order: 1,
          destinations: v1only,
          mirror: {
            subset: { version: 'shadow' },
            percent: 50,
            ramp: { step: 10, max: 100, minSamples: 5, maxLatencyRatio: 2 },
          },
        });
        up.shadow.delayMs = 400;
        await traffic(20);
        const summary = await sync();
        expect(summary.automation).toEqual([
          expect.objectContaining({
            kind: 'mirror',
            from: 50,
            to: 0,
            phase: 'halted',
            reason: expect.stringMatching(/p95 \d+ ms against the primary's \d+ ms \(allowed 2x\)/),
          }),
        ]);
        const [halt] = await events('mirror-ramp');
        expect(halt?.detail.figures.candidate.p95Ms).toBeGreaterThanOrEqual(400);
        expect(halt?.detail.figures.candidate.p95Ms).toBeGreaterThan(2 * halt?.detail.figures.primary.p95Ms);
      },
      SLOW,
    );
  });

  describe('(c) canary promotion', () => {
    it(
      "a healthy v2 canary goes 20 -> 40 -> 60, is promoted, and then takes all of the route's traffic",
      async () => {
        await putRoute('checkout', {
          order: 1,
          destinations: v1only,
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
        });
        for (const [weight, next, phase] of [
          [20, 40, 'ramping'],
          [40, 60, 'ramping'],
          [60, 100, 'promoted'],
        ] as const) {
          expect(await status('checkout')).toMatchObject({ canaryWeight: weight, phase: 'ramping' });
          const t = await traffic(N);
          expect(t.statuses).toEqual({ 200: N });
          expect((t.byCluster.v1 ?? 0) + (t.byCluster.v2 ?? 0)).toBe(N);
          expect(
            Math.abs((100 * (t.byCluster.v2 ?? 0)) / N - weight),
            `v2 got ${t.byCluster.v2}/${N} at ${weight}%`,
          ).toBeLessThanOrEqual(TOLERANCE);
          const summary = await sync();
          expect(summary.automation).toEqual([
            {
              service: 'shop',
              route: 'checkout',
              kind: 'canary',
              from: weight,
              to: next,
              phase,
              reason: expect.stringContaining(`${t.byCluster.v2} samples`),
            },
          ]);
          expect(await status('checkout')).toMatchObject({ canaryWeight: next, phase });
        }
        const after = await traffic(40);
        expect(after.byCluster).toEqual({ v2: 40 });
        expect((await sync()).automation).toEqual([]);
        expect(await status('checkout')).toMatchObject({ canaryWeight: 100, phase: 'promoted' });
        // The failover matrix of the service is unchanged by it (routes choose subsets, not regions).
        expect((await server.admin('GET', '/services/shop/failover')).status).toBe(200);
      },
      SLOW,
    );
  });

  describe('(d) canary rollback', () => {
    it(
      'a v2 canary answering 500 is rolled back to 0 and gets no more traffic; later syncs leave it',
      async () => {
        await putRoute('checkout', {
          order: 1,
          destinations: v1only,
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
        });
        up.v2.mode = 'fail';
        up.v2.failStatus = 500;
        const t = await traffic(N);
        const canaryRequests = t.byCluster.v2 ?? 0;
        expect(canaryRequests).toBeGreaterThanOrEqual(10);
        expect(t.statuses[500]).toBe(canaryRequests);

        const summary = await sync();
        expect(summary.automation).toEqual([
          {
            service: 'shop',
            route: 'checkout',
            kind: 'canary',
            from: 20,
            to: 0,
            phase: 'rolled-back',
            reason: expect.stringContaining("canary breached: error rate 100% against the primary's 0%"),
          },
        ]);
        expect(await status('checkout')).toMatchObject({ canaryWeight: 0, phase: 'rolled-back' });
        const [rollback] = await events('canary');
        expect(rollback?.detail).toMatchObject({
          route: 'checkout',
          from: 20,
          to: 0,
          phase: 'rolled-back',
          figures: {
            samples: canaryRequests,
            primary: { samples: N - canaryRequests, errorRate: 0 },
            candidate: { samples: canaryRequests, errorRate: 1 },
          },
        });

        const servedBefore = up.v2.served;
        const after = await traffic(N);
        expect(after.byCluster).toEqual({ v1: N });
        expect(after.statuses).toEqual({ 200: N });
        expect(up.v2.served).toBe(servedBefore);
        expect((await sync()).automation).toEqual([]);
        expect(await status('checkout')).toMatchObject({ canaryWeight: 0, phase: 'rolled-back' });
      },
      SLOW,
    );
  });

  describe('(e) every move is visible', () => {
    it(
      'the route status and GET /events show each move with old and new values, samples, error rates, p95s and bounds',
      async () => {
        await putRoute('ramped', {
          order: 1,
          match: { path: { prefix: '/m' } },
          destinations: v1only,
          mirror: {
            subset: { version: 'shadow' },
            percent: 50,
            ramp: { step: 50, max: 100, minSamples: 10, ...LOOSE },
          },
        });
        await putRoute('checkout', {
          order: 2,
          match: { path: { prefix: '/c' } },
          destinations: v1only,
          canary: { subset: { version: 'v2' }, stepWeight: 30, maxWeight: 30, minSamples: 10, ...LOOSE },
        });
        const m = await traffic(N, '/m');
        const c = await traffic(N, '/c');
        const summary = await sync();
        expect(summary.automation.map((x) => `${x.route} ${x.kind} ${x.from}->${x.to} ${x.phase}`).sort()).toEqual([
          'checkout canary 30->100 promoted',
          'ramped mirror 50->100 complete',
        ]);

        expect(await status('ramped')).toMatchObject({ mirrorPercent: 100, phase: 'complete' });
        expect(await status('checkout')).toMatchObject({ canaryWeight: 100, phase: 'promoted' });

        const mirrorEvent = (await events('mirror-ramp')).at(-1);
        expect(mirrorEvent).toMatchObject({
          service: 'shop',
          kind: 'mirror-ramp',
          message: expect.stringContaining('mirror percent 50 -> 100 (complete)'),
        });
        const mf = mirrorEvent?.detail.figures as Figures;
        expect(mirrorEvent?.detail).toMatchObject({ route: 'ramped', from: 50, to: 100, phase: 'complete' });
        expect(mf.samples).toBe(m.mirrored);
        expect(mf.candidate).toMatchObject({ samples: m.mirrored, errorRate: 0, p95Ms: expect.any(Number) });
        // The primary's evidence is the route's own requests since the last step: /m only.
        expect(mf.primary).toMatchObject({ samples: N, errorRate: 0, p95Ms: expect.any(Number) });
        expect(mf.bounds).toEqual({ minSamples: 10, maxErrorRateDelta: 0.05, maxLatencyRatio: 100 });

        const canaryEvent = (await events('canary')).at(-1);
        expect(canaryEvent).toMatchObject({
          service: 'shop',
          kind: 'canary',
          message: expect.stringContaining('canary weight 30 -> 100 (promoted)'),
        });
        const cf = canaryEvent?.detail.figures as Figures;
        expect(canaryEvent?.detail).toMatchObject({ route: 'checkout', from: 30, to: 100, phase: 'promoted' });
        expect(cf.candidate).toMatchObject({ samples: c.byCluster.v2, errorRate: 0, p95Ms: expect.any(Number) });
        expect(cf.primary).toMatchObject({ samples: c.byCluster.v1, errorRate: 0, p95Ms: expect.any(Number) });
        expect(cf.bounds).toEqual({ minSamples: 10, maxErrorRateDelta: 0.05, maxLatencyRatio: 100 });

        // The moves changed routing: the revision moved, so every edge reloads them.
        expect(summary.revisionBumped).toBe(true);
      },
      SLOW,
    );
  });

  describe('(f) operators hold automation', () => {
    const ramped = {
      order: 1,
      destinations: v1only,
      mirror: { subset: { version: 'shadow' }, percent: 20, ramp: { step: 20, max: 80, minSamples: 10, ...LOOSE } },
    };
    const hold = (extra: Record<string, unknown>) => ({
      service: 'shop',
      reason: 'hold while we look',
      ttlSeconds: 600,
      ...extra,
    });

    it(
      'pause stops moves (evidence or not); resume lets the next sync move again',
      async () => {
        await putRoute('ramped', ramped);
        expect((await server.admin('POST', '/services/shop/routes/ramped/pause')).status).toBe(200);
        const t = await traffic(N);
        // Paused does not stop the mirror itself: copies keep flowing at the current percent.
        expect(Math.abs((100 * t.mirrored) / N - 20)).toBeLessThanOrEqual(TOLERANCE);
        expect((await sync()).automation).toEqual([]);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 20, phase: 'ramping', paused: true });
        expect(await events('mirror-ramp')).toEqual([]);

        expect((await server.admin('POST', '/services/shop/routes/ramped/resume')).status).toBe(200);
        await traffic(N);
        expect((await sync()).automation).toEqual([expect.objectContaining({ from: 20, to: 40 })]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 40, paused: false });
      },
      SLOW,
    );

    it(
      'a mirror-percent override holds the percent: edges mirror at the held value, automation leaves it; when it ends, automation resumes from its own value',
      async () => {
        await putRoute('ramped', ramped);
        const o = await server.admin(
          'POST',
          '/overrides',
          hold({ action: 'mirror-percent', route: 'ramped', value: 70 }),
        );
        expect(o.status, o.body).toBe(201);
        expect(await status('ramped')).toMatchObject({
          mirrorPercent: 70,
          heldBy: [{ action: 'mirror-percent', value: 70 }],
        });

        const t = await traffic(N);
        expect(Math.abs((100 * t.mirrored) / N - 70), `mirrored ${t.mirrored} under a hold of 70`).toBeLessThanOrEqual(
          TOLERANCE,
        );
        expect((await sync()).automation).toEqual([]);
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 70 });
        // Automation's own value is untouched underneath.
        expect((await stored('ramped'))?.mirrorPercent ?? 20).toBe(20);

        expect((await server.admin('DELETE', `/overrides/${o.json.id}`)).status).toBe(204);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 20, heldBy: [] });
        const after = await traffic(N);
        expect(Math.abs((100 * after.mirrored) / N - 20)).toBeLessThanOrEqual(TOLERANCE);
        expect((await sync()).automation).toEqual([expect.objectContaining({ kind: 'mirror', from: 20, to: 40 })]);
      },
      SLOW,
    );

    it(
      'a canary-weight override holds the weight the edges use; automation leaves the canary',
      async () => {
        await putRoute('checkout', {
          order: 1,
          destinations: v1only,
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
        });
        const o = await server.admin(
          'POST',
          '/overrides',
          hold({ action: 'canary-weight', route: 'checkout', value: 0 }),
        );
        expect(o.status, o.body).toBe(201);
        const t = await traffic(N);
        expect(t.byCluster).toEqual({ v1: N });
        expect((await sync()).automation).toEqual([]);
        expect(await status('checkout')).toMatchObject({ canaryWeight: 0, phase: 'ramping' });
        expect(await stored('checkout')).toBeNull();
      },
      SLOW,
    );

    it(
      'freeze (service-wide, or for the route) stops moves for mirror ramps and canaries',
      async () => {
        await putRoute('ramped', { ...ramped, match: { path: { prefix: '/m' } } });
        await putRoute('checkout', {
          order: 2,
          match: { path: { prefix: '/c' } },
          destinations: v1only,
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 60, minSamples: 10, ...LOOSE },
        });
        const all = await server.admin('POST', '/overrides', hold({ action: 'freeze' }));
        expect(all.status, all.body).toBe(201);
        await traffic(N, '/m');
        await traffic(N, '/c');
        expect((await sync()).automation).toEqual([]);
        expect(await status('ramped')).toMatchObject({ mirrorPercent: 20, heldBy: [{ action: 'freeze' }] });
        expect(await status('checkout')).toMatchObject({ canaryWeight: 20, heldBy: [{ action: 'freeze' }] });
        expect((await server.admin('DELETE', `/overrides/${all.json.id}`)).status).toBe(204);

        // A freeze of one route: the other moves.
        const one = await server.admin('POST', '/overrides', hold({ action: 'freeze', route: 'checkout' }));
        expect(one.status, one.body).toBe(201);
        const moves = (await sync()).automation;
        expect(moves.map((x) => x.route)).toEqual(['ramped']);
        expect(await status('checkout')).toMatchObject({ canaryWeight: 20 });
      },
      SLOW,
    );
  });

  describe('a route with both a mirror ramp and a canary', () => {
    it(
      'once the mirror is complete, later syncs make no mirror move (no "100 -> 100" events)',
      async () => {
        // The route's phase is the canary's; the mirror's own "complete" is not stored, so
        // src/health/automation.ts (mirrorPhase) hands decideMirrorRamp 'ramping' again at max.
        await putRoute('both', {
          order: 1,
          destinations: v1only,
          mirror: {
            subset: { version: 'shadow' },
            percent: 50,
            ramp: { step: 50, max: 100, minSamples: 10, ...LOOSE },
          },
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 80, minSamples: 10, ...LOOSE },
        });
        await traffic(N);
        const first = await sync();
        expect(first.automation.map((x) => `${x.kind} ${x.from}->${x.to} ${x.phase}`).sort()).toEqual([
          'canary 20->40 ramping',
          'mirror 50->100 complete',
        ]);
        expect(await status('both')).toMatchObject({ mirrorPercent: 100, canaryWeight: 40 });

        await traffic(N);
        const second = await sync();
        const mirrorMoves = second.automation.filter((x) => x.kind === 'mirror');
        expect(mirrorMoves, JSON.stringify(mirrorMoves)).toEqual([]);
        expect(second.automation.filter((x) => x.kind === 'canary')).toEqual([
          expect.objectContaining({ from: 40, to: 60 }),
        ]);
        const noOps = (await events('mirror-ramp')).filter((e) => e.detail.from === e.detail.to);
        expect(noOps.map((e) => e.message)).toEqual([]);
      },
      SLOW,
    );

    it(
      'canary evidence still waiting for minSamples is not thrown away when the mirror steps',
      async () => {
        // automation.ts advances the route's single sample bookmark past every kind whenever either
        // decision consumed evidence, so canary samples short of minSamples are lost at each mirror step.
        await putRoute('both', {
          order: 1,
          destinations: v1only,
          mirror: { subset: { version: 'shadow' }, percent: 10, ramp: { step: 10, max: 100, minSamples: 5, ...LOOSE } },
          canary: { subset: { version: 'v2' }, stepWeight: 20, maxWeight: 80, minSamples: 30, ...LOOSE },
        });
        const r1 = await traffic(N);
        const c1 = r1.byCluster.v2 ?? 0;
        expect(c1, 'premise: one round brings fewer canary samples than minSamples').toBeLessThan(30);
        const first = await sync();
        expect(first.automation.map((x) => x.kind)).toEqual(['mirror']);

        const r2 = await traffic(N);
        const c2 = r2.byCluster.v2 ?? 0;
        expect(c1 + c2, 'premise: two rounds together bring enough canary samples').toBeGreaterThanOrEqual(30);
        const second = await sync();
        expect(
          second.automation.filter((x) => x.kind === 'canary'),
          `canary samples ${c1} + ${c2} since its last step`,
        ).toEqual([
          expect.objectContaining({
            kind: 'canary',
            from: 20,
            to: 40,
            reason: expect.stringContaining(`${c1 + c2} samples`),
          }),
        ]);
      },
      SLOW,
    );
  });
});

// ---------------------------------------------------------------------------------------------------

type Entry = { cluster: string; region: string; level: number; levelReason: string; share: number; health: string };

describe('(g) latency-aware failover', () => {
  let server: TestServer;
  let fleet: Fleet;
  let offsetMs = 0;

  beforeEach(async () => {
    offsetMs = 0;
    fleet = await startFleet();
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '2000' }, { now: () => Date.now() + offsetMs });
    await registerFleet(server, fleet);
    // No outlier ejection: a slow region keeps getting its tries.
    const svc = await server.admin('PUT', '/services/shop', {
      ...serviceBody([HOST]),
      policy: { outlierDetection: { consecutiveFailures: 1000 } },
    });
    expect(svc.status, svc.body).toBe(200);
  });

  afterEach(async () => {
    await server.close();
    await fleet.stop();
  });

  async function sync() {
    const res = await server.admin('POST', '/sync');
    expect(res.status, res.body).toBe(200);
    return res.json;
  }

  async function order(clientRegion: string): Promise<Entry[]> {
    const res = await server.admin('GET', '/services/shop/failover');
    expect(res.status, res.body).toBe(200);
    return res.json.regions[clientRegion] as Entry[];
  }
  const names = (entries: Entry[]) => entries.map((e) => e.cluster);

  /** Edge reports as an edge would flush them: `requests` to `cluster` from `clientRegion`, mean `meanMs`. */
  async function report(
    rows: { cluster: string; clientRegion: string; requests: number; meanMs: number; failures?: number }[],
  ) {
    const reports: EdgeReport[] = rows.map((r) => ({
      service: 'shop',
      cluster: r.cluster,
      clientRegion: r.clientRegion,
      requests: r.requests,
      failures: r.failures ?? 0,
      latencyMsSum: r.meanMs * r.requests,
    }));
    await insertEdgeReports(server.runtime.store.db, 'test-edge', server.runtime.now(), reports);
  }

  async function latencyEvents(): Promise<EventEntry[]> {
    const res = await server.admin('GET', '/events?service=shop&limit=1000');
    return (res.json.events as EventEntry[]).filter((e) => e.kind === 'latency-order').reverse();
  }

  it('before any measurement, eu-west1 clients fail over by distance: ew1, then ue1 (nearer), then as1', async () => {
    await sync();
    const eu = await order('eu-west1');
    expect(eu.map((e) => [e.cluster, e.level, e.levelReason])).toEqual([
      ['ew1', 0, 'same-region'],
      ['ue1', 1, 'distance'],
      ['as1', 2, 'distance'],
    ]);
  });

  it('measured: the nearer region slow and the farther one fast puts the fast one first (levelReason latency), with an event', async () => {
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 200 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 60 },
    ]);
    const summary = await sync();
    expect(summary.revisionBumped).toBe(true);
    const eu = await order('eu-west1');
    expect(eu.map((e) => [e.cluster, e.level, e.levelReason])).toEqual([
      ['ew1', 0, 'same-region'],
      ['as1', 1, 'latency'],
      ['ue1', 2, 'latency'],
    ]);
    // Other client regions are untouched.
    expect((await order('us-east1')).every((e) => e.levelReason !== 'latency')).toBe(true);

    const [event] = await latencyEvents();
    expect(event?.message).toContain(
      'failover for clients in eu-west1 now by measured latency: ap-southeast1 60 ms (30), us-east1 200 ms (30)',
    );
    expect(event?.detail).toEqual({
      clientRegion: 'eu-west1',
      before: [],
      after: [
        { region: 'ap-southeast1', meanMs: 60, samples: 30 },
        { region: 'us-east1', meanMs: 200, samples: 30 },
      ],
    });
    // The same numbers again: no new order, no new event, no revision bump for it.
    expect((await sync()).revisionBumped).toBe(false);
    expect(await latencyEvents()).toHaveLength(1);
  });

  it("the client's own region and unknown client regions are not counted; too few samples leave a region to distance", async () => {
    await report([
      // Own region: very slow, many samples; must not be placed by latency.
      { cluster: 'ew1', clientRegion: 'eu-west1', requests: 500, meanMs: 5000 },
      // Unknown client region: ignored.
      { cluster: 'as1', clientRegion: '-', requests: 500, meanMs: 1 },
      // 19 samples: one short.
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 19, meanMs: 1 },
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 100 },
    ]);
    await sync();
    const eu = await order('eu-west1');
    expect(eu.map((e) => [e.cluster, e.levelReason])).toEqual([
      ['ew1', 'same-region'],
      ['ue1', 'latency'],
      ['as1', 'distance'],
    ]);
  });

  it('hysteresis: once ordered, a 10% faster region does not pass; a 30% faster one does', async () => {
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 200 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 100 },
    ]);
    await sync();
    expect(names(await order('eu-west1'))).toEqual(['ew1', 'as1', 'ue1']);

    // Eleven minutes on, the old reports are out of the window; ue1 is now 10% faster than as1.
    offsetMs += 11 * 60_000;
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 90 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 100 },
    ]);
    await sync();
    expect(names(await order('eu-west1'))).toEqual(['ew1', 'as1', 'ue1']);

    offsetMs += 11 * 60_000;
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 70 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 100 },
    ]);
    await sync();
    const eu = await order('eu-west1');
    expect(eu.map((e) => [e.cluster, e.levelReason])).toEqual([
      ['ew1', 'same-region'],
      ['ue1', 'latency'],
      ['as1', 'latency'],
    ]);
    expect(await latencyEvents()).toHaveLength(2);
  });

  it('hysteresis from the start: a farther region only 10% faster than the nearer one does not reorder the distance order', async () => {
    // orderByLatency (src/health/automation.ts) starts latencyOrder from the stored order, or [] when
    // none is stored, so the first measurement sorts by mean with no margin against the distance order
    // the edges were using: 90 ms vs 100 ms moves as1 ahead of ue1.
    await sync();
    expect(names(await order('eu-west1'))).toEqual(['ew1', 'ue1', 'as1']);
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 100 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 90 },
    ]);
    await sync();
    expect(names(await order('eu-west1'))).toEqual(['ew1', 'ue1', 'as1']);
  });

  it('measurements that age out of the window no longer order failover (back to distance)', async () => {
    // orderByLatency only visits (service, client region) pairs that have reports in the last 10
    // minutes; when all of a client region's reports age out, its stored order is never revisited and
    // stays in force indefinitely, although latencyOrder leaves regions without enough samples to
    // distance.
    await report([
      { cluster: 'ue1', clientRegion: 'eu-west1', requests: 30, meanMs: 200 },
      { cluster: 'as1', clientRegion: 'eu-west1', requests: 30, meanMs: 60 },
    ]);
    await sync();
    expect(names(await order('eu-west1'))).toEqual(['ew1', 'as1', 'ue1']);

    offsetMs += 11 * 60_000;
    await sync();
    const eu = await order('eu-west1');
    expect(eu.map((e) => [e.cluster, e.levelReason])).toEqual([
      ['ew1', 'same-region'],
      ['ue1', 'distance'],
      ['as1', 'distance'],
    ]);
  });

  it(
    'from real traffic: eu-west1 drained, ue1 (nearer) slow enough to time out, as1 fast: retries measure both and the sync puts as1 first',
    async () => {
      await sync();
      const drain = await server.admin('POST', '/overrides', {
        service: 'shop',
        action: 'drain',
        cluster: 'ew1',
        reason: 'force eu clients out of region',
        ttlSeconds: 600,
        force: true,
      });
      expect(drain.status, drain.body).toBe(201);
      const route = await server.admin('PUT', '/services/shop/routes/all', {
        order: 1,
        retries: { attempts: 2, perTryTimeoutMs: 400, retryOn: ['timeout'], budgetPercent: 100 },
      });
      expect(route.status, route.body).toBeLessThan(300);
      fleet['us-east1'].delayMs = 3_000;

      const before = await order('eu-west1');
      expect(before.map((e) => [e.cluster, e.levelReason])).toEqual([
        ['ew1', 'same-region'],
        ['ue1', 'distance'],
        ['as1', 'distance'],
      ]);

      const servedBy: Record<string, number> = {};
      for (let i = 0; i < 25; i++) {
        const res = await server.request(HOST, `/slow/${i}`, { headers: EU });
        expect(res.status, res.body).toBe(200);
        const c = res.headers['x-waymark-cluster'] as string;
        servedBy[c] = (servedBy[c] ?? 0) + 1;
      }
      // Every request tried ue1 first, timed out, and was answered by as1.
      expect(servedBy).toEqual({ as1: 25 });
      expect(fleet['eu-west1'].served).toBe(0);

      await sync();
      const eu = await order('eu-west1');
      expect(eu.map((e) => [e.cluster, e.level, e.levelReason])).toEqual([
        ['ew1', 0, 'same-region'],
        ['as1', 1, 'latency'],
        ['ue1', 2, 'latency'],
      ]);
      const [event] = await latencyEvents();
      const after = event?.detail.after as { region: string; meanMs: number; samples: number }[];
      expect(after.map((a) => a.region)).toEqual(['ap-southeast1', 'us-east1']);
      expect(after.every((a) => a.samples === 25)).toBe(true);
      expect(after[1]!.meanMs).toBeGreaterThanOrEqual(400);

      // Now eu clients go straight to as1: no more tries on ue1.
      const ueBefore = fleet['us-east1'].served;
      for (let i = 0; i < 5; i++)
        expect((await server.request(HOST, `/fast/${i}`, { headers: EU })).json.cluster).toBe('as1');
      expect(fleet['us-east1'].served).toBe(ueBefore);
    },
    SLOW,
  );
});
