import { appendFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT_DIR } from '../../bench/procs.js';
import { percentile } from '../../bench/stats.js';
import { RssWatch, rssMb, startUpstreamProcess, startWaymark, type WaymarkProcess } from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';
import { steadyLoad } from '../steady-load.js';

/**
 * Scenario 8, soak: one Waymark process (file store) under moderate load (60 requests/s, one in five a
 * POST) for 10 minutes (quick: 30 s) while everything that runs in the background of a long-lived
 * process runs: the health sync every 2 s, the report flush, snapshot reloads, a config apply
 * (`POST /config`) every 3 s and an override created and another ended every 3 s (each lives about 6 s).
 * Every second it samples the process's resident set (/proc/<pid>/status), its open file descriptors
 * (entries of /proc/<pid>/fd) and, through a probe preloaded with NODE_OPTIONS=--import (Waymark has no
 * process metrics of its own; the probe reads process.memoryUsage() and the active handle count and
 * appends them to a file), its V8 heap and active handles; every 10 s the probe first forces a full
 * collection (--expose-gc), so those samples are the live heap, free of the GC sawtooth. The samples go
 * to .tmp/chaos-soak-samples.json.
 *
 * Claims: no client error; every admin operation answered 2xx; no growth. Growth is the least-squares
 * slope over the second half of the run, when start-up allocation and JIT warm-up are over:
 * - full mode: RSS over 2 MB/min, or live heap over 0.25 MB/min. The process reloads its snapshot about
 *   90 times a minute here (every write and every sync that moves the revision), so 0.25 MB/min is about
 *   3 KB kept per reload, or 70 B per request: a steady process's live heap is flat once warm (JIT code
 *   grows it by well under 0.1 MB/min after the first minutes), and RSS, noisier (allocator, GC), moves
 *   less than 1 MB/min;
 * - both modes: file descriptors growing by more than 1 per minute and by more than 16 over the second
 *   half (a socket or file handle lost per sync, per flush or per write shows at once; keep-alive
 *   churn goes up and down);
 * - quick mode (30 s, the second half 15 s): memory slopes are printed but not claimed, being dominated
 *   by warm-up.
 *
 * Found with it: every snapshot reload kept the previous snapshot's services map alive (routing/compile.ts,
 * the `reusable` map captured by the new map's closure), a chain growing by one snapshot per reload.
 */

const HOST = 'shop.chaos.test';
const LOAD_PER_SEC = 60;
const POST_SHARE = 0.2;
const SYNC_INTERVAL_MS = 2_000;
const OPERATION_EVERY_MS = 3_000;
const OVERRIDE_TTL_S = 6;
const SAMPLE_MS = 1_000;
const RSS_SLOPE_LIMIT_MB_PER_MIN = 2;
const HEAP_SLOPE_LIMIT_MB_PER_MIN = 0.25;
const FD_SLOPE_LIMIT_PER_MIN = 1;
const FD_GROWTH_LIMIT = 16;

/** Every how many samples the probe collects garbage first (global.gc, --expose-gc): the heap that is live. */
const GC_EVERY_SAMPLES = 10;

/**
 * What the probe inside Waymark writes every second: the heap used and the handles; every
 * GC_EVERY_SAMPLES seconds after a full collection (`liveHeap`), which is what a leak grows. Forcing one
 * every 10 s costs Waymark a few milliseconds per 10 s.
 */
const PROBE = `import { appendFileSync } from 'node:fs';
const file = process.env.CHAOS_PROBE_FILE;
if (file) {
  let n = 0;
  setInterval(() => {
    const collect = typeof globalThis.gc === 'function' && ++n % ${GC_EVERY_SAMPLES} === 0;
    if (collect) globalThis.gc();
    const m = process.memoryUsage();
    appendFileSync(file, JSON.stringify({ at: Date.now(), heapUsed: m.heapUsed, live: collect, handles: process.getActiveResourcesInfo().length }) + '\\n');
  }, ${SAMPLE_MS}).unref();
}
`;

interface Sample {
  /** Seconds since the load started. */
  t: number;
  rssMb: number;
  fds: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Least-squares slope of y over x (per unit of x); 0 with fewer than two points. */
function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

function clusterBody(origin: string, region: string, latitude: number, longitude: number, weight = 100) {
  return {
    region,
    zone: null,
    origin,
    originHost: null,
    latitude,
    longitude,
    weight,
    labels: { version: 'v1' },
    healthCheck: {
      path: '/health/ready',
      expectedStatuses: ['2xx'],
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
    },
  };
}

/**
 * The operators' background: every OPERATION_EVERY_MS a config apply that moves a cluster's weight, an
 * override created (a drain of the second US cluster, TTL OVERRIDE_TTL_S s, so some expire by themselves
 * at the sync) and the previous one ended. Answers other than 2xx are counted (an override that had
 * already expired answers 409 when ended: expected, counted apart).
 */
async function operate(wm: WaymarkProcess, stop: { done: boolean }, log: (line: string) => void) {
  const tally = { operations: 0, failed: 0, endedAlready: 0 };
  const config = await wm.admin('GET', '/config');
  if (config.status !== 200) throw new Error(`GET /config: ${config.status} ${config.text}`);
  const document = config.json as { services: { name: string; clusters?: { name: string; weight?: number }[] }[] };
  const shop = document.services.find((s) => s.name === 'shop');
  const moving = shop?.clusters?.find((c) => c.name === 'ue2');
  if (!moving) throw new Error(`GET /config has no cluster ue2 in shop: ${config.text.slice(0, 500)}`);
  let previous: string | null = null;
  for (let i = 0; !stop.done; i++) {
    const started = performance.now();
    const check = (what: string, status: number, text: string) => {
      tally.operations += 1;
      if (status >= 200 && status < 300) return;
      tally.failed += 1;
      log(`${what}: ${status} ${text.slice(0, 300)}`);
    };
    moving.weight = 50 + (i % 50);
    const applied = await wm.admin('POST', `/config?message=soak+${i}`, document).catch((e: unknown) => e);
    if (applied instanceof Error) check('POST /config', 0, String(applied));
    else check('POST /config', (applied as { status: number }).status, (applied as { text: string }).text);
    const created = await wm
      .admin('POST', '/overrides', {
        service: 'shop',
        cluster: 'ue2',
        action: 'drain',
        reason: `soak drain ${i}`,
        ttlSeconds: OVERRIDE_TTL_S,
      })
      .catch((e: unknown) => e);
    if (created instanceof Error) check('POST /overrides', 0, String(created));
    else {
      const res = created as { status: number; text: string; json: { id?: string } | null };
      check('POST /overrides', res.status, res.text);
      if (previous) {
        const ended = await wm.admin('DELETE', `/overrides/${previous}?reason=soak+end`).catch((e: unknown) => e);
        if (ended instanceof Error) check('DELETE /overrides', 0, String(ended));
        else if ((ended as { status: number }).status === 409) {
          tally.operations += 1;
          tally.endedAlready += 1;
        } else check('DELETE /overrides', (ended as { status: number }).status, (ended as { text: string }).text);
      }
      previous = res.json?.id ?? null;
    }
    await sleep(Math.max(0, OPERATION_EVERY_MS - (performance.now() - started)));
  }
  return tally;
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const { quick, dir, log } = context;
  // CHAOS_SOAK_MINUTES: a longer (or shorter) full run, to chase a trend.
  const durationMs = quick ? 30_000 : Number(process.env.CHAOS_SOAK_MINUTES ?? 10) * 60_000;
  const probeModule = join(dir, 'probe.mjs');
  const probeFile = join(dir, 'probe.jsonl');
  writeFileSync(probeModule, PROBE);
  appendFileSync(probeFile, '');

  const [ue1, ue2, ew1] = await Promise.all([
    startUpstreamProcess('ue1', 'us-east1'),
    startUpstreamProcess('ue2', 'us-east1'),
    startUpstreamProcess('ew1', 'eu-west1'),
  ]);
  const wm = await startWaymark({
    databaseUrl: `file:${join(dir, 'waymark.db')}`,
    dir,
    env: {
      WAYMARK_REGION: 'us-east1',
      WAYMARK_SYNC_INTERVAL_MS: String(SYNC_INTERVAL_MS),
      WAYMARK_LOG_LEVEL: 'warn',
      // CHAOS_SOAK_NODE_OPTIONS: more flags for the process under test (say --heapsnapshot-signal=SIGUSR2).
      NODE_OPTIONS:
        `--expose-gc --import ${pathToFileURL(probeModule).href} ${process.env.CHAOS_SOAK_NODE_OPTIONS ?? ''}`.trim(),
      CHAOS_PROBE_FILE: probeFile,
    },
  });
  const rss = new RssWatch(() => [wm.pid]);
  const setup: [string, string, unknown][] = [
    ['PUT', '/services/shop', { hosts: [HOST], failover: [], policy: {}, subsets: {} }],
    ['PUT', '/services/shop/clusters/ue1', clusterBody(ue1.url, 'us-east1', 33.2, -80)],
    ['PUT', '/services/shop/clusters/ue2', clusterBody(ue2.url, 'us-east1', 33.2, -80)],
    ['PUT', '/services/shop/clusters/ew1', clusterBody(ew1.url, 'eu-west1', 50.4, 3.8)],
  ];
  for (const [method, path, body] of setup) {
    const res = await wm.admin(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  }

  const samples: Sample[] = [];
  const started = performance.now();
  const sampler = setInterval(() => {
    const mb = rssMb(wm.pid);
    if (mb !== null) samples.push({ t: (performance.now() - started) / 1000, rssMb: mb, fds: fdCount(wm.pid) });
  }, SAMPLE_MS);
  const load = steadyLoad({ url: wm.url, host: HOST, ratePerSec: LOAD_PER_SEC, postShare: POST_SHARE, path: '/soak' });
  const stop = { done: false };
  const operations = operate(wm, stop, log);
  const exitedEarly = wm.exited.then(() => true);
  const ended = await Promise.race([sleep(durationMs).then(() => false), exitedEarly]);
  stop.done = true;
  const report = await load.stop();
  const ops = await operations;
  clearInterval(sampler);
  const peakRssMb = Math.round(rss.stop());
  await wm.stop();
  await Promise.all([ue1.stop(), ue2.stop(), ew1.stop()]);

  // The probe's samples, on the same clock (seconds since the load started).
  const startedAtMs = Date.now() - (performance.now() - started);
  const heap = readFileSync(probeFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { at: number; heapUsed: number; live: boolean; handles: number })
    .map((p) => ({ t: (p.at - startedAtMs) / 1000, heapMb: p.heapUsed / 2 ** 20, live: p.live, handles: p.handles }))
    .filter((p) => p.t >= 0);

  const half = durationMs / 2000;
  const late = samples.filter((s) => s.t >= half && Number.isFinite(s.fds));
  const lateHeap = heap.filter((p) => p.t >= half);
  const live = heap.filter((p) => p.live);
  // Every sample, for a look at the curves after the run (the scenario's folder goes with it).
  mkdirSync(join(ROOT_DIR, '.tmp'), { recursive: true });
  writeFileSync(join(ROOT_DIR, '.tmp', 'chaos-soak-samples.json'), JSON.stringify({ samples, heap }));
  const perMin = (points: [number, number][]) => slope(points) * 60;
  const rssSlope = perMin(late.map((s) => [s.t, s.rssMb]));
  const heapSlope = perMin(lateHeap.filter((p) => p.live).map((p) => [p.t, p.heapMb]));
  const fdSlope = perMin(late.map((s) => [s.t, s.fds]));
  const handleSlope = perMin(lateHeap.map((p) => [p.t, p.handles]));
  const fdGrowth = late.length ? (late[late.length - 1]?.fds ?? 0) - Math.min(...late.map((s) => s.fds)) : 0;

  let violations = 0;
  const flag = (what: string, bad: boolean) => {
    if (!bad) return;
    violations += 1;
    log(`growth: ${what}`);
  };
  if (!quick) {
    flag(`RSS ${rssSlope.toFixed(2)} MB/min over the second half`, rssSlope > RSS_SLOPE_LIMIT_MB_PER_MIN);
    flag(`live heap ${heapSlope.toFixed(2)} MB/min over the second half`, heapSlope > HEAP_SLOPE_LIMIT_MB_PER_MIN);
  }
  flag(
    `file descriptors ${fdSlope.toFixed(1)}/min, +${fdGrowth} over the second half`,
    fdSlope > FD_SLOPE_LIMIT_PER_MIN && fdGrowth > FD_GROWTH_LIMIT,
  );
  if (ended) {
    violations += 1;
    log('the process exited during the soak');
  }
  violations += ops.failed;
  if (heap.length === 0) log('the heap probe wrote nothing (NODE_OPTIONS not honoured?)');
  if (report.failures.length > 0)
    log(`${report.failures.length} client errors, first: ${JSON.stringify(report.failures[0])}`);

  const sorted = (values: number[]) => Float64Array.from(values).sort();
  const round = (v: number, digits = 2) => Number(v.toFixed(digits));
  const first = samples[0];
  const last = samples[samples.length - 1];
  return {
    scenario: '8 soak',
    requests: report.requests + ops.operations,
    clientErrors: report.failures.length,
    savableErrors: 0,
    duplicatedNonIdempotent: 0,
    lostWrites: 0,
    invariantViolations: violations,
    peakRssMb,
    details: {
      minutes: round(durationMs / 60_000, 1),
      rssSlopeMbPerMin: round(rssSlope),
      liveHeapSlopeMbPerMin: round(heapSlope),
      fdSlopePerMin: round(fdSlope),
      handleSlopePerMin: round(handleSlope),
      rssFirstLastMb: `${round(first?.rssMb ?? 0, 0)}->${round(last?.rssMb ?? 0, 0)}`,
      fdsFirstLast: `${first?.fds ?? 0}->${last?.fds ?? 0}`,
      liveHeapFirstLastMb: `${round(live[0]?.heapMb ?? 0, 1)}->${round(live[live.length - 1]?.heapMb ?? 0, 1)}`,
      samples: samples.length,
      getP99Ms: round(percentile(sorted(report.latenciesMs.get), 99), 1),
      postP99Ms: round(percentile(sorted(report.latenciesMs.post), 99), 1),
      adminOperations: ops.operations,
      adminFailed: ops.failed,
      overridesEndedAlready: ops.endedAlready,
    },
  };
}

const scenario: Scenario = { name: '8 soak', run };
export default scenario;
