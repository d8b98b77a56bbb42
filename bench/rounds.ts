import type { LoadGenerator, LoadResult, LoadSpec } from './load.js';
import { startNoiseMonitor } from './noise.js';
import { median } from './stats.js';

/** One server under load: what the load generator sends it and how to read its CPU time. */
export interface LoadTarget {
  /** Short key, e.g. "waymark", "nginx". */
  name: string;
  /** What the tables print, e.g. "nginx (1 worker, keep-alive upstream)". */
  label: string;
  spec: LoadSpec;
  /** CPU time (user + system) of the server's process(es) so far, in µs; NaN when unknown. */
  cpuUs(): Promise<number>;
}

export interface Run {
  target: string;
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
  /** CPU of the benchmark's own process per completed request, in µs (the harness; with Miniflare, its Node side and the store). */
  harnessCpuUsPerRequest: number;
  /** Every response 200 with the upstream's x-served-by (and Waymark's x-waymark-cluster), no errors, upstream saw them all. */
  verified: boolean;
  problems: string[];
}

export interface TargetSummary {
  target: string;
  label: string;
  runs: number;
  requests: number;
  /** Total completed requests over total measured time. */
  rps: number;
  /** Medians over the measured runs of the load generator's per-run percentiles. */
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number;
  /** Mean over the runs of the cores other processes used. */
  otherCores: number | null;
  harnessCpuUsPerRequest: number;
  verified: boolean;
}

/** a / b; throughput above 1 is better, latency and CPU below 1 are better. */
export interface Ratios {
  throughput: number;
  /**
   * The median over rounds of a's throughput / b's in the same round: on a shared machine whose speed
   * drifts between rounds, this compares each target with its neighbour in time.
   */
  pairedThroughput: number;
  p50: number;
  p99: number;
  cpuPerRequest: number;
}

export interface RoundsOptions {
  loadgen: LoadGenerator;
  targets: LoadTarget[];
  /** Requests the shared upstream has served so far. */
  upstreamServed: () => Promise<number>;
  warmupS: number;
  roundS: number;
  rounds: number;
  /** Loaded once after the rounds, for context only (e.g. the upstream directly). */
  extra?: { target: LoadTarget; durationS: number }[];
  log: (line: string) => void;
}

export interface RoundsResult {
  runs: Run[];
  /** The measured runs, in order. */
  order: string;
  summaries: Record<string, TargetSummary>;
}

/**
 * Warms every target up, then loads them in turn for `rounds` rounds, the order reversed every other
 * round (A B C, C B A, ...) so that drift over time (a neighbour's build, thermal) hits all of them alike.
 */
export async function runRounds(options: RoundsOptions): Promise<RoundsResult> {
  const { log } = options;
  const width = Math.max(
    ...[...options.targets, ...(options.extra ?? []).map((e) => e.target)].map((t) => t.name.length),
  );
  const runs: Run[] = [];
  const runOne = async (target: LoadTarget, phase: Run['phase'], round: number, durationS: number): Promise<Run> => {
    const cpuBefore = await target.cpuUs();
    const servedBefore = await options.upstreamServed();
    const noise = startNoiseMonitor();
    const harness0 = process.cpuUsage();
    const load = await options.loadgen.run({ ...target.spec, durationS });
    const harness = process.cpuUsage(harness0);
    const otherCores = noise.stop();
    const cpuUs = (await target.cpuUs()) - cpuBefore;
    const served = (await options.upstreamServed()) - servedBefore;
    const problems: string[] = [];
    const errs = Object.entries(load.errors).filter(([, n]) => n > 0);
    if (errs.length) problems.push(`errors: ${errs.map(([k, n]) => `${k} ${n}`).join(', ')}`);
    if (load.bad > 0) problems.push(`${load.bad} bad responses (first: ${load.badSample})`);
    if (load.ok !== load.requests) problems.push(`${load.ok} good of ${load.requests} responses`);
    if (served < load.requests) problems.push(`upstream served ${served} < ${load.requests} responses`);
    if (load.requests === 0) problems.push('no requests completed');
    const run: Run = {
      target: target.name,
      phase,
      round,
      load,
      upstreamServed: served,
      serverCpuUsPerRequest: cpuUs / Math.max(1, load.requests),
      serverCores: cpuUs / 1e6 / load.durationS,
      otherCores,
      harnessCpuUsPerRequest: (harness.user + harness.system) / Math.max(1, load.requests),
      verified: problems.length === 0,
      problems,
    };
    runs.push(run);
    log(
      `  ${phase === 'warmup' ? 'warm-up ' : `round ${round}  `} ${target.name.padEnd(width)} ${Math.round(load.rps).toString().padStart(6)} req/s  ` +
        `p50 ${(load.latencyUs.p50 / 1e3).toFixed(2)} ms  p99 ${(load.latencyUs.p99 / 1e3).toFixed(2)} ms  ` +
        `server CPU ${Number.isFinite(cpuUs) ? `${run.serverCpuUsPerRequest.toFixed(0)} µs/req (${run.serverCores.toFixed(2)} cores)` : 'n/a'}  ` +
        `${otherCores === null ? '' : `other processes ${otherCores.toFixed(2)} cores  `}` +
        `${run.verified ? `all ${load.requests} responses 200 from the upstream` : `PROBLEMS: ${problems.join('; ')}`}`,
    );
    return run;
  };

  for (const target of options.targets) await runOne(target, 'warmup', 0, options.warmupS);
  const order: string[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const pass = round % 2 === 1 ? options.targets : [...options.targets].reverse();
    for (const target of pass) {
      order.push(target.name);
      await runOne(target, 'measure', round, options.roundS);
    }
  }
  for (const { target, durationS } of options.extra ?? []) await runOne(target, 'measure', 1, durationS);

  const summaries: Record<string, TargetSummary> = {};
  for (const target of [...options.targets, ...(options.extra ?? []).map((e) => e.target)]) {
    const all = runs.filter((r) => r.target === target.name);
    const mine = all.filter((r) => r.phase === 'measure');
    if (mine.length === 0) continue;
    const requests = mine.reduce((s, r) => s + r.load.requests, 0);
    const seconds = mine.reduce((s, r) => s + r.load.durationS, 0);
    summaries[target.name] = {
      target: target.name,
      label: target.label,
      runs: mine.length,
      requests,
      rps: requests / seconds,
      p50Ms: median(mine.map((r) => r.load.latencyUs.p50)) / 1e3,
      p99Ms: median(mine.map((r) => r.load.latencyUs.p99)) / 1e3,
      serverCpuUsPerRequest:
        mine.reduce((s, r) => s + r.serverCpuUsPerRequest * r.load.requests, 0) / Math.max(1, requests),
      otherCores: mine.some((r) => r.otherCores === null)
        ? null
        : mine.reduce((s, r) => s + (r.otherCores ?? 0), 0) / mine.length,
      harnessCpuUsPerRequest:
        mine.reduce((s, r) => s + r.harnessCpuUsPerRequest * r.load.requests, 0) / Math.max(1, requests),
      verified: all.every((r) => r.verified),
    };
  }
  return { runs, order: order.join(', '), summaries };
}

export function ratios(a: TargetSummary, b: TargetSummary, runs: Run[]): Ratios {
  const measured = runs.filter((r) => r.phase === 'measure');
  const perRound: number[] = [];
  for (const run of measured.filter((r) => r.target === a.target)) {
    const other = measured.find((r) => r.target === b.target && r.round === run.round);
    if (other && other.load.rps > 0) perRound.push(run.load.rps / other.load.rps);
  }
  return {
    throughput: a.rps / b.rps,
    pairedThroughput: perRound.length ? median(perRound) : a.rps / b.rps,
    p50: a.p50Ms / b.p50Ms,
    p99: a.p99Ms / b.p99Ms,
    cpuPerRequest: a.serverCpuUsPerRequest / b.serverCpuUsPerRequest,
  };
}
