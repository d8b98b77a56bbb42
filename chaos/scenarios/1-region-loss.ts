import { join } from 'node:path';
import { request } from 'undici';
import { percentile } from '../../bench/stats.js';
import { seededRandom } from '../../src/routing/random.js';
import { CHAOS_REGIONS, type ChaosRegion, clusterSpec, eventually, mustWrite, sleep } from '../fleet.js';
import { duplicates, openLoop } from '../load.js';
import { RssWatch, startUpstreamProcess, startWaymark, type UpstreamProcess } from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';

/**
 * Scenario 1, region loss: one Waymark process, one service with a cluster in each of three regions,
 * clients in us-east1 (so ue1 is preferred), 200 req/s open-loop (20% POST) while ue1 is killed with
 * SIGKILL and restarted, then answers 500s, then answers after the per-try timeout. Claims: no GET
 * fails (another region was healthy throughout: every GET failure is savable) and no POST reaches an
 * upstream twice. A POST may fail visibly: it is not retried once it may have reached the origin.
 */
const HOST = 'shop.chaos.test';
const RATE_PER_SEC = 200;
const POST_SHARE = 0.2;
const TRY_TIMEOUT_MS = 300;
const SLOW_DELAY_MS = 1_000;

/** Phase lengths in quick mode (ms); the full run multiplies them by FULL_SCALE. */
const PHASES_MS = { warm: 2_000, down: 4_000, restarted: 3_000, failing: 4_000, recovered: 2_000, slow: 4_000 };
const TAIL_MS = 1_500;
const FULL_SCALE = 6;

type Phase = keyof typeof PHASES_MS | 'tail';
/** The phases in which ue1 misbehaves while it is reachable: it must have received requests in each. */
const FAULT_PHASES: Phase[] = ['failing', 'slow'];

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const scale = context.quick ? 1 : FULL_SCALE;
  const random = seededRandom(context.seed);
  const regions = Object.keys(CHAOS_REGIONS) as ChaosRegion[];
  const upstreams = await Promise.all(regions.map((r) => startUpstreamProcess(CHAOS_REGIONS[r].cluster, r)));
  const byRegion = new Map(regions.map((r, i) => [r, upstreams[i] as UpstreamProcess]));
  const preferred = byRegion.get('us-east1') as UpstreamProcess;
  const waymark = await startWaymark({
    databaseUrl: `file:${join(context.dir, 'waymark.db')}`,
    dir: context.dir,
    env: {
      WAYMARK_TRY_TIMEOUT_MS: String(TRY_TIMEOUT_MS),
      WAYMARK_SYNC_INTERVAL_MS: '1000',
      WAYMARK_SNAPSHOT_REFRESH_MS: '500',
      WAYMARK_REPORT_FLUSH_MS: '1000',
    },
  });
  const rss = new RssWatch(() => [waymark.pid]);
  let adminRequests = 0;
  const write = (method: string, path: string, body?: unknown) => {
    adminRequests += 1;
    return mustWrite(waymark, method, path, body);
  };
  try {
    // Ejections short enough that every fault phase finds ue1 back in rotation at some point.
    const baseEjectionMs = 1_000 * scale;
    await write('PUT', '/services/shop', {
      hosts: [HOST],
      policy: {
        outlierDetection: {
          consecutiveFailures: 5,
          intervalMs: 1_000 * scale,
          baseEjectionMs,
          maxEjectionMs: 3 * baseEjectionMs,
        },
      },
    });
    for (const region of regions) {
      const upstream = byRegion.get(region) as UpstreamProcess;
      await write('PUT', `/services/shop/clusters/${upstream.name}`, clusterSpec(region, upstream.url));
    }
    // A 500 is the application's answer and, as in Envoy, not retried by default: the operator opts in.
    // The default budget (20% of requests in flight, at least 3) refuses retries in a burst of failures
    // that come back together (a killed cluster resets its connections at once; on this shared 2-core
    // machine, 10 to 30 GETs a run): that is its purpose, so the route allows one retry in flight per
    // request in flight, and the refusals left are read from /metrics into the details.
    await write('PUT', '/services/shop/routes/all', {
      order: 10,
      retries: {
        attempts: 2,
        perTryTimeoutMs: TRY_TIMEOUT_MS,
        retryOn: ['connect-failure', 'reset', 'timeout', '5xx'],
        budgetPercent: 100,
      },
    });
    await eventually('Waymark routes us-east1 clients to ue1', async () => {
      const res = await request(`${waymark.url}/ready-check`, {
        headers: { host: HOST, 'x-waymark-client-region': 'us-east1' },
      });
      await res.body.dump();
      return res.statusCode === 200 && res.headers['x-waymark-cluster'] === preferred.name;
    });

    const phaseMs = (p: keyof typeof PHASES_MS) => PHASES_MS[p] * scale;
    const totalMs = Object.keys(PHASES_MS).reduce((s, p) => s + phaseMs(p as keyof typeof PHASES_MS), 0) + TAIL_MS;
    const started = performance.now();
    const load = openLoop({
      url: waymark.url,
      host: HOST,
      ratePerSec: RATE_PER_SEC,
      durationMs: totalMs,
      postShare: POST_SHARE,
      timeoutMs: 10_000,
      headers: { 'x-waymark-client-region': 'us-east1' },
    });

    // What ue1 received in each phase: a phase in which it received nothing tested nothing.
    const seenByPhase: Partial<Record<Phase, number>> = {};
    let seenBefore = 0;
    const endPhase = async (phase: Phase) => {
      const seen = Object.values(await preferred.received()).reduce((s, n) => s + n, 0);
      seenByPhase[phase] = seen - seenBefore;
      seenBefore = seen;
      context.log(`${phase} ended at ${Math.round(performance.now() - started)} ms: ue1 got ${seenByPhase[phase]}`);
    };

    // The kill lands at a seeded moment in the first second after the warm-up.
    const jitterMs = Math.round(random() * 1_000);
    await sleep(phaseMs('warm') + jitterMs);
    await endPhase('warm');
    await preferred.kill9();
    await sleep(phaseMs('down') - jitterMs);
    await endPhase('down');
    await preferred.restart();
    await sleep(phaseMs('restarted'));
    await endPhase('restarted');
    await preferred.setMode('fail', { failStatus: 500 });
    await sleep(phaseMs('failing'));
    await endPhase('failing');
    await preferred.setMode('ok');
    await sleep(phaseMs('recovered'));
    await endPhase('recovered');
    await preferred.setMode('ok', { delayMs: SLOW_DELAY_MS });
    await sleep(phaseMs('slow'));
    await endPhase('slow');
    await preferred.setMode('ok');
    const report = await load;
    await endPhase('tail');

    const metrics = await request(`${waymark.url}/_waymark/metrics`, {
      headers: { authorization: `Bearer ${waymark.adminToken}` },
    });
    const exposition = await metrics.body.text();
    adminRequests += 1;
    const metric = (name: string) =>
      exposition
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && line.includes('service="shop"'))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    const received = await Promise.all(upstreams.map((u) => u.received()));
    const duplicated = duplicates(received, report.postIds);
    const getFailures = report.failures.filter((f) => f.method !== 'POST');
    const postFailures = report.failures.filter((f) => f.method === 'POST');
    for (const f of getFailures.slice(0, 10))
      context.log(`GET failed at ${f.at} ms: ${f.status ?? f.error} ${f.detail ?? ''}`);
    const sorted = (values: number[]) => [...values].sort((a, b) => a - b);
    const unexercised = FAULT_PHASES.filter((p) => (seenByPhase[p] ?? 0) === 0);
    const details: Record<string, number | string> = {
      gets: report.gets,
      posts: report.posts,
      getFailures: getFailures.length,
      postFailures: postFailures.length,
      getP99Ms: Math.round(percentile(sorted(report.latenciesMs.get), 99)),
      postP99Ms: Math.round(percentile(sorted(report.latenciesMs.post), 99)),
      statuses: JSON.stringify(report.statuses ?? {}),
      ue1ByPhase: JSON.stringify(seenByPhase),
      killJitterMs: jitterMs,
      retries: metric('waymark_retries_total'),
      retryBudgetExhausted: metric('waymark_retry_budget_exhausted_total'),
      ejections: metric('waymark_outlier_ejections_total'),
    };
    // A fault phase in which ue1 received nothing would make the claims vacuous there.
    if (unexercised.length > 0) details.unexercised = unexercised.join(',');
    return {
      scenario: '1 region loss',
      requests: report.requests + adminRequests,
      clientErrors: getFailures.length,
      savableErrors: getFailures.length,
      duplicatedNonIdempotent: duplicated,
      lostWrites: 0,
      invariantViolations: unexercised.length,
      peakRssMb: Math.round(rss.stop()),
      details,
    };
  } finally {
    rss.stop();
    await Promise.all([waymark.stop(), ...upstreams.map((u) => u.stop())]);
  }
}

const scenario: Scenario = { name: '1 region loss', run };
export default scenario;
