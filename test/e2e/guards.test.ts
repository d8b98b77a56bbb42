import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { clusterBody } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The guard keeps guarding once automation has reached its end: a mirror at its max and a promoted
 * canary are still judged on each new window of evidence, and a breach halts the mirror at 0 or rolls
 * the canary back. Real server, real upstreams, real traffic; POST /sync runs the automation.
 *
 * The old code (src/health/ramp.ts) returned early for a 'complete' mirror and a 'promoted' canary:
 * neither was judged again, so a shadow or a canary that went bad after the ramp kept its traffic.
 */

const HOST = 'shop.example.com';
const EU = { 'x-waymark-client-region': 'eu-west1' };
const SLOW = 60_000;
const N = 100;
const v1only = [{ subset: { version: 'v1' }, weight: 100 }];

/** A shadow that answers 500 under /bad/ and 200 elsewhere (its health check passes): errors by path. */
interface Shadow {
  url: string;
  served: number;
  stop: () => Promise<void>;
}

async function startShadow(): Promise<Shadow> {
  const shadow: Shadow = { url: '', served: 0, stop: async () => {} };
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/health/ready') return void res.writeHead(200).end('ready');
      shadow.served += 1;
      res.writeHead(req.url?.startsWith('/bad/') ? 500 : 200, { 'content-type': 'text/plain' }).end('shadow');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  shadow.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  shadow.stop = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return shadow;
}

type Move = {
  service: string;
  route: string;
  kind: 'mirror' | 'canary';
  from: number;
  to: number;
  phase: string;
  reason: string;
};
type EventEntry = { id: number; at: string; kind: string; message: string; detail: unknown };

describe('guards at the end of automation', () => {
  let server: TestServer;
  let v1: Upstream;
  let v2: Upstream;
  let shadow: Shadow;
  let round = 0;

  beforeEach(async () => {
    round = 0;
    [v1, v2] = (await Promise.all([startUpstream('v1', 'eu-west1'), startUpstream('v2', 'eu-west1')])) as [
      Upstream,
      Upstream,
    ];
    shadow = await startShadow();
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '3000' });
    const svc = await server.admin('PUT', '/services/shop', {
      hosts: [HOST],
      policy: { outlierDetection: { consecutiveFailures: 1000 } },
    });
    expect(svc.status, svc.body).toBe(201);
    for (const [name, url] of [
      ['v1', v1.url],
      ['v2', v2.url],
      ['shadow', shadow.url],
    ] as const) {
      const res = await server.admin(
        'PUT',
        `/services/shop/clusters/${name}`,
        clusterBody('eu-west1', url, { labels: { version: name } }),
      );
      expect(res.status, res.body).toBe(201);
    }
  });

  afterEach(async () => {
    await server.close();
    await Promise.all([v1.stop(), v2.stop(), shadow.stop()]);
  });

  async function putRoute(name: string, body: Record<string, unknown>): Promise<void> {
    const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
    expect(res.status, res.body).toBeLessThan(300);
  }

  async function status(route: string) {
    const res = await server.admin('GET', `/services/shop/routes/${route}`);
    expect(res.status, res.body).toBe(200);
    return res.json.status as { mirrorPercent: number | null; canaryWeight: number | null; phase: string | null };
  }

  async function sync(): Promise<{ automation: Move[]; revisionBumped: boolean }> {
    const res = await server.admin('POST', '/sync');
    expect(res.status, res.body).toBe(200);
    return res.json;
  }

  async function events(kind: string): Promise<EventEntry[]> {
    const res = await server.admin('GET', '/events?service=shop&limit=1000');
    expect(res.status, res.body).toBe(200);
    return (res.json.events as EventEntry[]).filter((e) => e.kind === kind).reverse();
  }

  async function scalar(sql: string): Promise<number> {
    return Number((await server.db.execute(sql)).rows[0]?.n);
  }

  /**
   * `n` EU requests, `bad` of them under /bad/ (spread evenly), with deterministic request ids; waits until
   * every mirror copy the shadow received is flushed to the store.
   */
  async function traffic(n: number, bad = 0): Promise<{ byCluster: Record<string, number>; mirrored: number }> {
    round += 1;
    const before = shadow.served;
    const byCluster: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const path = Math.floor(((i + 1) * bad) / n) > Math.floor((i * bad) / n) ? `/bad/${i}` : `/ok/${i}`;
      const res = await server.request(HOST, path, { headers: { ...EU, 'x-request-id': `g${round}-${i}` } });
      const cluster = (res.headers['x-waymark-cluster'] as string | undefined) ?? '(none)';
      byCluster[cluster] = (byCluster[cluster] ?? 0) + 1;
    }
    await eventually(async () => {
      const seen = shadow.served;
      await new Promise((r) => setTimeout(r, 40));
      await server.runtime.flushReports();
      return (
        seen === shadow.served &&
        (await scalar("select coalesce(sum(requests), 0) as n from route_samples where kind = 'mirror'")) ===
          shadow.served
      );
    });
    return { byCluster, mirrored: shadow.served - before };
  }

  it(
    'a mirror at its max: good evidence keeps only its bookmark (no revision move); then a shadow with 28% errors halts it at 0, the event saying why',
    async () => {
      // Bounds allow +20% errors: 28% in a window of its own breaches, but 28 of 200 (the bad round
      // diluted by the good round already judged at max) would not, so this also checks that each
      // window at max is judged on its own.
      await putRoute('ramped', {
        order: 1,
        destinations: v1only,
        mirror: {
          subset: { version: 'shadow' },
          percent: 50,
          ramp: { step: 50, max: 100, minSamples: 10, maxErrorRateDelta: 0.2, maxLatencyRatio: 100 },
        },
      });
      await traffic(N);
      expect((await sync()).automation).toEqual([
        expect.objectContaining({ kind: 'mirror', from: 50, to: 100, phase: 'complete' }),
      ]);
      expect(await status('ramped')).toMatchObject({ mirrorPercent: 100, phase: 'complete' });

      // At max with good evidence: nothing moves, the revision stays, the evidence bookmark is kept.
      const good = await traffic(N);
      expect(good.mirrored).toBe(N);
      const revision = await scalar('select version as n from revision');
      const quiet = await sync();
      expect(quiet).toMatchObject({ automation: [], revisionBumped: false });
      expect(await scalar('select version as n from revision')).toBe(revision);
      const newest = await scalar("select max(id) as n from route_samples where route = 'ramped'");
      expect(await scalar("select sample_bookmark as n from route_state where route = 'ramped'")).toBe(newest);
      expect((await sync()).revisionBumped).toBe(false);
      expect(await status('ramped')).toMatchObject({ mirrorPercent: 100, phase: 'complete' });

      // The shadow goes bad on 28 of 100 requests; the primary answers every one.
      const bad = await traffic(N, 28);
      expect(bad.byCluster).toEqual({ v1: N });
      expect(bad.mirrored).toBe(N);
      const halted = await sync();
      expect(halted.automation).toEqual([
        {
          service: 'shop',
          route: 'ramped',
          kind: 'mirror',
          from: 100,
          to: 0,
          phase: 'halted',
          reason: "shadow breached: error rate 28% against the primary's 0% (allowed +20%)",
        },
      ]);
      expect(halted.revisionBumped).toBe(true);
      expect(await status('ramped')).toMatchObject({ mirrorPercent: 0, phase: 'halted' });
      const halt = (await events('mirror-ramp')).at(-1);
      expect(halt?.message).toBe(
        "route ramped: mirror percent 100 -> 0 (halted): shadow breached: error rate 28% against the primary's 0% (allowed +20%)",
      );
      expect(halt?.detail).toMatchObject({
        route: 'ramped',
        from: 100,
        to: 0,
        phase: 'halted',
        figures: { samples: N, primary: { samples: N, errorRate: 0 }, candidate: { samples: N, errorRate: 0.28 } },
      });

      // Halted: the shadow gets no more copies.
      expect((await traffic(20)).mirrored).toBe(0);
    },
    SLOW,
  );

  it(
    'a promoted canary is still judged: good evidence moves nothing, a breach rolls it back to 0 and the primary takes the traffic again',
    async () => {
      await putRoute('checkout', {
        order: 1,
        destinations: v1only,
        canary: {
          subset: { version: 'v2' },
          stepWeight: 30,
          maxWeight: 30,
          minSamples: 10,
          maxLatencyRatio: 100,
          maxErrorRateDelta: 0.05,
        },
      });
      await traffic(N);
      expect((await sync()).automation).toEqual([
        expect.objectContaining({ kind: 'canary', from: 30, to: 100, phase: 'promoted' }),
      ]);
      expect((await traffic(N)).byCluster).toEqual({ v2: N });
      expect(await sync()).toMatchObject({ automation: [], revisionBumped: false });
      expect(await status('checkout')).toMatchObject({ canaryWeight: 100, phase: 'promoted' });

      v2.mode = 'fail';
      v2.failStatus = 500;
      expect((await traffic(N)).byCluster).toEqual({ v2: N });
      const rolledBack = await sync();
      expect(rolledBack.automation).toEqual([
        {
          service: 'shop',
          route: 'checkout',
          kind: 'canary',
          from: 100,
          to: 0,
          phase: 'rolled-back',
          reason: expect.stringContaining("canary breached: error rate 100% against the primary's 0%"),
        },
      ]);
      expect(await status('checkout')).toMatchObject({ canaryWeight: 0, phase: 'rolled-back' });
      const event = (await events('canary')).at(-1);
      expect(event?.message).toContain('route checkout: canary weight 100 -> 0 (rolled-back): canary breached');
      expect(event?.detail).toMatchObject({
        from: 100,
        to: 0,
        phase: 'rolled-back',
        figures: { candidate: { samples: N, errorRate: 1 } },
      });

      const v2Before = v2.served;
      expect((await traffic(N)).byCluster).toEqual({ v1: N });
      expect(v2.served).toBe(v2Before);
    },
    SLOW,
  );
});
