import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../scripts/http-client.js';
import type { ChildMessage } from './child.js';
import type { LoadGenerator, LoadResult, LoadSpec } from './load.js';
import { startNoiseMonitor } from './noise.js';
import { forkTs, nextMessage, onAbort, stopChild } from './procs.js';
import { median } from './stats.js';

export const BENCH_HOST = 'shop.example.com';
export const BENCH_PATH = '/bench/item?id=42';
const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const SERVICE = 'shop';
const CLUSTER = 'bench-upstream';
const SERVED_BY = 'bench-upstream';

export type Target = 'bare' | 'waymark' | 'direct';

export interface ProxyOptions {
  loadgen: LoadGenerator;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  /** Also load the upstream directly once, for context (not part of the ratios). */
  direct: boolean;
  /** When set, Waymark's and the bare proxy's processes run with --cpu-prof and write their profiles here. */
  cpuProfDir?: string | undefined;
  log: (line: string) => void;
}

export interface Run {
  target: Target;
  phase: 'warmup' | 'measure';
  round: number;
  load: LoadResult;
  /** Requests the upstream served during the run (at least the completed requests; in-flight ones at the end add a few). */
  upstreamServed: number;
  /** CPU time of the server under test (user + system) per completed request, in µs. */
  serverCpuUsPerRequest: number;
  /** The server under test's CPU time over the wall time of the run (1.0 = one core busy). */
  serverCores: number;
  /** Cores used on average by processes outside this benchmark during the run (null: unknown). */
  otherCores: number | null;
  /** Every response 200 with the upstream's x-served-by (and Waymark's x-waymark-cluster), no errors, upstream saw them all. */
  verified: boolean;
  problems: string[];
}

export interface TargetSummary {
  target: Target;
  runs: number;
  requests: number;
  /** Total completed requests over total measured time. */
  rps: number;
  /** Medians over the measured runs of wrk's per-run percentiles. */
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number;
  /** Mean over the runs of the cores other processes used. */
  otherCores: number | null;
  verified: boolean;
}

export interface ProxyResult {
  loadgen: string;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  order: string;
  runs: Run[];
  bare: TargetSummary;
  waymark: TargetSummary;
  direct: TargetSummary | null;
  ratios: { throughput: number; p50: number; p99: number; cpuPerRequest: number };
  cpuProfiles: string[];
}

interface Server {
  role: string;
  child: ChildProcess;
  url: string;
}

async function startChild(role: 'upstream' | 'bare' | 'waymark', args: string[], execArgv: string[] = []): Promise<Server> {
  const child = forkTs('child.ts', [role, ...args], execArgv);
  const ready = await nextMessage<Extract<ChildMessage, { type: 'ready' }>>(child, (m) => m?.type === 'ready', 30_000, `the ${role} server`);
  return { role, child, url: ready.url };
}

async function stats(server: Server): Promise<Extract<ChildMessage, { type: 'stats' }>> {
  const reply = nextMessage<Extract<ChildMessage, { type: 'stats' }>>(server.child, (m) => m?.type === 'stats', 5_000, `${server.role} stats`);
  server.child.send({ type: 'stats' });
  return reply;
}

/** Registers the service and its one cluster through the admin API, then waits until Waymark routes to it. */
async function configureWaymark(waymark: string, upstream: string): Promise<void> {
  const admin = (method: string, path: string, body: unknown) =>
    send(`${waymark}/_waymark/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const service = await admin('PUT', `/services/${SERVICE}`, { hosts: [BENCH_HOST], failover: [] });
  if (service.status !== 201 && service.status !== 200) throw new Error(`PUT service: ${service.status} ${service.body}`);
  const cluster = await admin('PUT', `/services/${SERVICE}/clusters/${CLUSTER}`, {
    region: 'us-east1',
    origin: upstream,
    latitude: 33.2,
    longitude: -80.0,
    weight: 100,
    labels: { version: 'v1' },
    healthCheck: { path: '/health/ready' },
  });
  if (cluster.status !== 201 && cluster.status !== 200) throw new Error(`PUT cluster: ${cluster.status} ${cluster.body}`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await send(`${waymark}${BENCH_PATH}`, { host: BENCH_HOST });
    if (res.status === 200 && res.headers['x-waymark-cluster'] === CLUSTER && res.json?.cluster === SERVED_BY && res.json?.path === BENCH_PATH) return;
    if (Date.now() > deadline) throw new Error(`Waymark does not route to the upstream: ${res.status} ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function checkBare(bare: string): Promise<void> {
  const res = await send(`${bare}${BENCH_PATH}`, { host: BENCH_HOST });
  if (res.status !== 200 || res.headers['x-served-by'] !== SERVED_BY || res.json?.path !== BENCH_PATH) {
    throw new Error(`the bare proxy does not reach the upstream: ${res.status} ${res.body}`);
  }
}

export async function benchProxy(options: ProxyOptions): Promise<ProxyResult> {
  const { log } = options;
  const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-'));
  const forget = onAbort(() => rmSync(dir, { recursive: true, force: true }));
  const servers: Server[] = [];
  try {
    const upstream = await startChild('upstream', []);
    servers.push(upstream);
    // One folder per server: with tsx's loader thread a process writes one profile per thread.
    const prof = (name: string) => (options.cpuProfDir ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', join(options.cpuProfDir, name)] : []);
    const [bare, waymark] = await Promise.all([
      startChild('bare', [upstream.url], prof('bare')),
      startChild('waymark', [`file:${join(dir, 'waymark.db')}`, ADMIN_TOKEN], prof('waymark')),
    ]);
    servers.push(bare, waymark);
    await configureWaymark(waymark.url, upstream.url);
    await checkBare(bare.url);
    log(`  upstream ${upstream.url} | bare proxy ${bare.url} | waymark ${waymark.url} (each in its own process)`);

    const targets: Record<Target, { server: Server; spec: LoadSpec }> = {
      bare: { server: bare, spec: spec(options, bare.url) },
      waymark: { server: waymark, spec: { ...spec(options, waymark.url), expectCluster: CLUSTER } },
      direct: { server: upstream, spec: spec(options, upstream.url) },
    };
    const runs: Run[] = [];
    const runOne = async (target: Target, phase: Run['phase'], round: number, durationS: number): Promise<Run> => {
      const { server, spec: base } = targets[target];
      const before = await stats(server);
      const upBefore = server === upstream ? before : await stats(upstream);
      const noise = startNoiseMonitor();
      const load = await options.loadgen.run({ ...base, durationS });
      const otherCores = noise.stop();
      const after = await stats(server);
      const upAfter = server === upstream ? after : await stats(upstream);
      const served = upAfter.served - upBefore.served;
      const cpuUs = after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs;
      const problems: string[] = [];
      const errs = Object.entries(load.errors).filter(([, n]) => n > 0);
      if (errs.length) problems.push(`errors: ${errs.map(([k, n]) => `${k} ${n}`).join(', ')}`);
      if (load.bad > 0) problems.push(`${load.bad} bad responses (first: ${load.badSample})`);
      if (load.ok !== load.requests) problems.push(`${load.ok} good of ${load.requests} responses`);
      if (served < load.requests) problems.push(`upstream served ${served} < ${load.requests} responses`);
      if (load.requests === 0) problems.push('no requests completed');
      const run: Run = {
        target,
        phase,
        round,
        load,
        upstreamServed: served,
        serverCpuUsPerRequest: cpuUs / Math.max(1, load.requests),
        serverCores: cpuUs / 1e6 / load.durationS,
        otherCores,
        verified: problems.length === 0,
        problems,
      };
      runs.push(run);
      log(
        `  ${phase === 'warmup' ? 'warm-up ' : `round ${round}  `} ${target.padEnd(7)} ${Math.round(load.rps).toString().padStart(6)} req/s  ` +
          `p50 ${(load.latencyUs.p50 / 1e3).toFixed(2)} ms  p99 ${(load.latencyUs.p99 / 1e3).toFixed(2)} ms  ` +
          `server CPU ${run.serverCpuUsPerRequest.toFixed(0)} µs/req (${run.serverCores.toFixed(2)} cores)  ` +
          `${otherCores === null ? '' : `other processes ${otherCores.toFixed(2)} cores  `}` +
          `${run.verified ? `all ${load.requests} responses 200 from the upstream` : `PROBLEMS: ${problems.join('; ')}`}`,
      );
      return run;
    };

    await runOne('bare', 'warmup', 0, options.warmupS);
    await runOne('waymark', 'warmup', 0, options.warmupS);
    // Alternating, with the order flipped every other round (ABBA), so drift over time hits both alike.
    const order: Target[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const pair: Target[] = round % 2 === 1 ? ['bare', 'waymark'] : ['waymark', 'bare'];
      for (const target of pair) {
        order.push(target);
        await runOne(target, 'measure', round, options.roundS);
      }
    }
    if (options.direct) await runOne('direct', 'measure', 1, Math.max(2, Math.round(options.roundS / 2)));

    const summary = (target: Target): TargetSummary | null => {
      const mine = runs.filter((r) => r.target === target && r.phase === 'measure');
      if (mine.length === 0) return null;
      const requests = mine.reduce((s, r) => s + r.load.requests, 0);
      const seconds = mine.reduce((s, r) => s + r.load.durationS, 0);
      return {
        target,
        runs: mine.length,
        requests,
        rps: requests / seconds,
        p50Ms: median(mine.map((r) => r.load.latencyUs.p50)) / 1e3,
        p99Ms: median(mine.map((r) => r.load.latencyUs.p99)) / 1e3,
        serverCpuUsPerRequest: mine.reduce((s, r) => s + r.serverCpuUsPerRequest * r.load.requests, 0) / Math.max(1, requests),
        otherCores: mine.some((r) => r.otherCores === null) ? null : mine.reduce((s, r) => s + (r.otherCores ?? 0), 0) / mine.length,
        verified: mine.every((r) => r.verified) && runs.filter((r) => r.target === target).every((r) => r.verified),
      };
    };
    const b = summary('bare') as TargetSummary;
    const w = summary('waymark') as TargetSummary;
    return {
      loadgen: options.loadgen.describe,
      connections: options.connections,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      order: order.join(', '),
      runs,
      bare: b,
      waymark: w,
      direct: summary('direct'),
      ratios: {
        throughput: w.rps / b.rps,
        p50: w.p50Ms / b.p50Ms,
        p99: w.p99Ms / b.p99Ms,
        cpuPerRequest: w.serverCpuUsPerRequest / b.serverCpuUsPerRequest,
      },
      cpuProfiles: options.cpuProfDir ? ['waymark', 'bare'].map((n) => join(options.cpuProfDir as string, n)) : [],
    };
  } finally {
    await Promise.all(servers.reverse().map((s) => stopChild(s.child)));
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}

function spec(options: ProxyOptions, url: string): LoadSpec {
  return { url, path: BENCH_PATH, host: BENCH_HOST, connections: options.connections, durationS: options.roundS, expectServedBy: SERVED_BY };
}
