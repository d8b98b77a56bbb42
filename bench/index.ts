/**
 * `npm run bench`: measures and prints; not a test.
 *
 *  1. Routing decisions: compileSnapshot() and decide() over N services x 20 clusters (pure, in process).
 *  2. Proxy throughput: Waymark's Node server vs a bare Hono-on-Node fetch proxy in front of the same
 *     upstream, loaded alternately by the same load generator (wrk when installed, else a Node one).
 *
 * Everything runs on 127.0.0.1 and everything started is stopped. Figures also go to .tmp/bench-latest.json.
 *
 * Environment:
 *   BENCH_QUICK=1          shorter runs, N up to 1,000 (a check that it works, not a measurement)
 *   BENCH_ONLY=decisions|proxy
 *   BENCH_LOADGEN=wrk|node force a load generator (default: wrk when found, else node)
 *   BENCH_WRK_THREADS=n    wrk threads (default 1: the machine has 2 cores for client and servers)
 *   BENCH_CONNECTIONS=n    concurrency (default 32)
 *   BENCH_CPU_PROF=1       run Waymark's and the bare proxy's processes with --cpu-prof; profiles go to
 *                          .tmp/bench-prof/ (summarize with: npx tsx bench/profile.ts .tmp/bench-prof/waymark)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { benchDecisions, buildFacts, FACTS_MIX, type DecisionResult } from './decisions.js';
import { benchRouteMatching, type RouteBenchResult } from './routes.js';
import { nodeGenerator, wrkAvailable, wrkGenerator, type LoadGenerator } from './load.js';
import { startNoiseMonitor } from './noise.js';
import { diff as diffProfiles, readProfile, summarize as summarizeProfile } from './profile.js';
import { killAll, ROOT_DIR } from './procs.js';
import { benchProxy, BENCH_HOST, BENCH_PATH, type ProxyResult } from './proxy.js';
import { fixed, int, round, table } from './stats.js';

const TARGET_DECISION_P99_US = 20;
const TARGET_THROUGHPUT_RATIO = 0.8;
/** "Flat as services grow": our pass mark for p99(largest N) / p99(N=10). */
const FLATNESS_PASS = 2;

const quick = process.env.BENCH_QUICK === '1';
const only = process.env.BENCH_ONLY;
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const log = (line = '') => console.log(line);
const mark = (ok: boolean) => (ok ? 'ok' : 'MISS');

// Bounded in time, and never leave a process behind.
const watchdog = setTimeout(() => {
  console.error('bench: watchdog fired (over 6 minutes); stopping everything it started');
  killAll();
  process.exit(2);
}, 6 * 60_000);
watchdog.unref();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}
process.once('exit', killAll);

function pickLoadgen(): LoadGenerator {
  const wanted = process.env.BENCH_LOADGEN;
  const threads = Number(process.env.BENCH_WRK_THREADS ?? 1);
  if (wanted === 'node') return nodeGenerator();
  if (wrkAvailable()) return wrkGenerator(threads);
  if (wanted === 'wrk') throw new Error('BENCH_LOADGEN=wrk but wrk is not installed (apt-get install -y wrk)');
  log('  (wrk not found: using the Node load generator; `apt-get install -y wrk` gives steadier figures)');
  return nodeGenerator();
}

type DecisionRow = DecisionResult & { otherCores: number | null };

function decisionsSection(): {
  results: DecisionRow[];
  flatness: number | null;
  hotFlatness: number | null;
  p50Flatness: number | null;
  hotP50Flatness: number | null;
  method: string;
} {
  const sizes = quick ? [10, 1_000] : [10, 1_000, 10_000];
  const options = quick
    ? { batchSize: 100, batches: 500, passes: 3, warmup: 50_000, perCallSamples: 50_000, factsCount: 50_000 }
    : { batchSize: 100, batches: 1_000, passes: 5, warmup: 200_000, perCallSamples: 200_000, factsCount: 100_000 };
  const hotSet = 10;
  const method =
    `decide(snapshot, facts, seededRandom, 3) over ${int(options.factsCount)} pre-generated facts, after ${int(options.warmup)} warm-up calls; ` +
    `${options.passes} passes of ${int(options.batches)} batches of ${options.batchSize} decisions, one hrtime pair per batch; per-decision cost = batch time / ${options.batchSize}; ` +
    `p50/p99 are over all batches (GC scavenges included: a 1-5 ms pause lands in one batch); "best pass" is the pass with the lowest p99; ` +
    `batching hides single-call spikes: the per-call column times each call with hrtime, less the empty-timer cost`;
  log('1. Routing decisions (pure, in this process)');
  log(`   method: ${method}`);
  log(`   mix: ${FACTS_MIX}`);
  log('   snapshot: N services x 20 clusters over 10 regions (4-10 regions each), 1-3 hosts, ~1/3 with failover rules, 3% unhealthy clusters, 3% of services with an override');
  const results: DecisionRow[] = [];
  for (const n of sizes) {
    const noise = startNoiseMonitor();
    const largest = n === sizes[sizes.length - 1];
    const r = { ...benchDecisions(n, { ...options, hotSet: largest ? hotSet : undefined }), otherCores: noise.stop() };
    results.push(r);
    log(
      `   N=${int(n)}: compile ${fixed(r.compileMs, 1)} ms${r.snapshotHeapMb === null ? '' : ` (snapshot holds ${fixed(r.snapshotHeapMb, 1)} MB of heap)`}, ` +
        `${int(r.decisionsPerSec)} decisions/s, p50 ${fixed(r.p50Us, 3)} µs, p99 ${fixed(r.p99Us, 3)} µs ` +
        `(p99 per pass: ${r.passP99Us.map((v) => fixed(v, 2)).join(' ')}); ` +
        `per-call p99 ${fixed(r.perCall.p99Us, 2)} µs, p99.9 ${fixed(r.perCall.p999Us, 2)} µs` +
        `${r.otherCores === null ? '' : `; other processes ${fixed(r.otherCores, 2)} cores`}`,
    );
    if (r.hotSet) {
      log(
        `     same snapshot, requests for ${r.hotSet.services} services only (hot set, stays in cache): p50 ${fixed(r.hotSet.p50Us, 3)} µs, ` +
          `p99 ${fixed(r.hotSet.p99Us, 3)} µs, ${int(r.hotSet.decisionsPerSec)} decisions/s`,
      );
    }
  }
  const first = results[0];
  const last = results[results.length - 1];
  const flatness = first && last && last !== first ? last.p99Us / first.p99Us : null;
  const hotFlatness = first && last?.hotSet ? last.hotSet.p99Us / first.p99Us : null;
  const p50Flatness = first && last && last !== first ? last.p50Us / first.p50Us : null;
  const hotP50Flatness = first && last?.hotSet ? last.hotSet.p50Us / first.p50Us : null;
  return { results, flatness, hotFlatness, p50Flatness, hotP50Flatness, method };
}

async function proxySection(): Promise<ProxyResult> {
  const loadgen = pickLoadgen();
  const timing = quick ? { warmupS: 2, roundS: 2, rounds: 1 } : { warmupS: 3, roundS: 6, rounds: 3 };
  const cpuProfDir = process.env.BENCH_CPU_PROF === '1' ? join(ROOT_DIR, '.tmp', 'bench-prof') : undefined;
  if (cpuProfDir) {
    rmSync(cpuProfDir, { recursive: true, force: true });
    mkdirSync(cpuProfDir, { recursive: true });
  }
  log('2. Proxy throughput: Waymark vs a bare Hono-on-Node fetch proxy, same upstream, same load generator');
  log(`   load: ${loadgen.describe}; ${connections} connections; GET ${BENCH_PATH} with Host: ${BENCH_HOST}`);
  log(`   ${timing.warmupS} s warm-up each, then ${timing.rounds} round(s) of ${timing.roundS} s per server, alternating`);
  log(`   note: ${cpus().length} cores shared by the load generator, the upstream and the server under test (all on 127.0.0.1)`);
  try {
    return await benchProxy({ loadgen, connections, ...timing, direct: !quick, cpuProfDir, log: (l) => log(l) });
  } finally {
    await loadgen.close();
  }
}

function summarize(decisions: ReturnType<typeof decisionsSection> | null, proxy: ProxyResult | null): void {
  log();
  log('Summary');
  if (decisions) {
    const rows = [['routing decisions', 'services', 'clusters', 'compile ms', 'reload after 1 change ms', 'snapshot MB', 'decisions/s', 'p50 µs', 'p99 µs', 'best-pass p99', 'per-call p99 µs', 'p99 < 20 µs', 'other procs (cores)']];
    for (const r of decisions.results) {
      rows.push([
        `N=${int(r.services)}`,
        int(r.services),
        int(r.clusters),
        fixed(r.compileMs, 1),
        fixed(r.reloadOneChangeMs, 1),
        r.snapshotHeapMb === null ? 'n/a' : fixed(r.snapshotHeapMb, 1),
        int(r.decisionsPerSec),
        fixed(r.p50Us, 3),
        fixed(r.p99Us, 3),
        fixed(r.bestPassP99Us, 3),
        fixed(r.perCall.p99Us, 2),
        mark(r.p99Us < TARGET_DECISION_P99_US),
        r.otherCores === null ? 'n/a' : fixed(r.otherCores, 2),
      ]);
    }
    log(table(rows));
    if (decisions.flatness !== null) {
      const last = decisions.results[decisions.results.length - 1] as DecisionRow;
      log(
        `flatness: p99 at N=${int(last.services)} / p99 at N=10 = ${fixed(decisions.flatness, 2)}x ` +
          `(target: flat as services grow; pass mark <= ${FLATNESS_PASS}x) ${mark(decisions.flatness <= FLATNESS_PASS)}; same ratio for p50: ${fixed(decisions.p50Flatness ?? Number.NaN, 2)}x`,
      );
      if (decisions.hotFlatness !== null && last.hotSet) {
        log(
          `          with requests for ${last.hotSet.services} of the ${int(last.services)} services: p99 ${fixed(decisions.hotFlatness, 2)}x, p50 ${fixed(decisions.hotP50Flatness ?? Number.NaN, 2)}x ` +
            '(near 1x: the growth above comes from touching a large working set at random, i.e. CPU cache misses, not from the snapshot size)',
        );
      }
    }
    if (decisions.results.some((r) => (r.otherCores ?? 0) > 0.2)) {
      log('WARNING: other processes used CPU during the decision runs (see "other procs"): p99 and flatness are noisy; rerun on a quiet machine.');
    }
    log();
  }
  if (proxy) {
    const rows = [['proxy (c=' + proxy.connections + ')', 'req/s', 'p50 ms', 'p99 ms', 'server CPU µs/req', 'requests', 'all 200 from upstream', 'other procs (cores)']];
    for (const s of [proxy.bare, proxy.waymark, proxy.direct]) {
      if (!s) continue;
      const label = s.target === 'bare' ? 'bare Hono fetch proxy' : s.target === 'waymark' ? 'Waymark' : 'upstream direct (ref.)';
      rows.push([label, int(s.rps), fixed(s.p50Ms, 2), fixed(s.p99Ms, 2), fixed(s.serverCpuUsPerRequest, 0), int(s.requests), s.verified ? 'yes' : 'NO', s.otherCores === null ? 'n/a' : fixed(s.otherCores, 2)]);
    }
    log(table(rows));
    const r = proxy.ratios;
    log(`waymark/bare: throughput ${fixed(r.throughput, 2)}x (target >= ${TARGET_THROUGHPUT_RATIO}x) ${mark(r.throughput >= TARGET_THROUGHPUT_RATIO)}; ` +
      `p50 ${fixed(r.p50, 2)}x, p99 ${fixed(r.p99, 2)}x (latency, lower is better); server CPU per request ${fixed(r.cpuPerRequest, 2)}x`);
    log(`(req/s: total requests / total measured time over ${proxy.rounds} round(s); p50/p99: median over rounds of the load generator's per-run percentiles; ` +
      `server CPU: the server process's user+system time / completed requests. Client and servers share ${cpus().length} cores: compare ratios, not absolute figures.)`);
    const noisy = [proxy.bare, proxy.waymark].some((t) => (t.otherCores ?? 0) > 0.2);
    if (noisy) log('WARNING: other processes used CPU during the proxy runs (see "other procs"): figures are noisy; the ABBA order spreads it over both servers.');
    if (proxy.cpuProfiles.length) {
      const served = (target: string) => proxy.runs.filter((r) => r.target === target).reduce((s, r) => s + r.load.requests, 0);
      for (const dir of proxy.cpuProfiles) {
        const target = dir.endsWith('waymark') ? 'waymark' : 'bare';
        // Every request the server answered, warm-ups included (the profile covers the whole process).
        const requests = served(target);
        const { file, profile } = readProfile(dir);
        log();
        log(`CPU profile of ${target === 'waymark' ? 'Waymark' : 'the bare proxy'} (${file}, sampled every 250 µs; profiling adds overhead):`);
        log(summarizeProfile(profile, { requests, top: 15 }));
      }
      const [w, b] = proxy.cpuProfiles as [string, string];
      log();
      log('Where Waymark spends more than the bare proxy per request (inclusive time; callers include their callees):');
      log(diffProfiles(readProfile(w).profile, served('waymark'), readProfile(b).profile, served('bare'), 30));
      log();
    }
    if (proxy.cpuProfiles.length) log(`CPU profiles: ${proxy.cpuProfiles.join(', ')} (one .cpuprofile per thread; the largest is the main thread. Summarize with: npx tsx bench/profile.ts DIR-or-FILE)`);
  }
}

const TARGET_ROUTES_RATIO = 2;

function routesSection(): RouteBenchResult {
  const options = quick
    ? { batchSize: 100, batches: 500, passes: 3, warmup: 50_000, perCallSamples: 20_000, factsCount: 50_000 }
    : { batchSize: 100, batches: 1_000, passes: 5, warmup: 200_000, perCallSamples: 50_000, factsCount: 100_000 };
  const r = benchRouteMatching(options, (source) => buildFacts(source, options.factsCount, 17));
  log(`1b. Route matching: ${int(r.services)} services, the same requests with no routes and with ${r.routesPerService} routes per service`);
  log('    routes: path regex (10), exact paths with methods, prefixes with a header, header regex, prefixes with a query parameter, then a catch-all; most requests fall through to the catch-all');
  log(`    no routes:  p50 ${fixed(r.noRoutes.p50Us, 3)} µs, p99 ${fixed(r.noRoutes.p99Us, 3)} µs, ${int(r.noRoutes.decisionsPerSec)} decisions/s`);
  log(`    50 routes:  p50 ${fixed(r.withRoutes.p50Us, 3)} µs, p99 ${fixed(r.withRoutes.p99Us, 3)} µs, ${int(r.withRoutes.decisionsPerSec)} decisions/s`);
  log(`    with/without: p50 ${fixed(r.p50Ratio, 2)}x, p99 ${fixed(r.p99Ratio, 2)}x (target: within ${TARGET_ROUTES_RATIO}x) ${mark(r.p99Ratio <= TARGET_ROUTES_RATIO)}`);
  log(
    `    the same 50 routes but with text of their own in every service (no compiled match shared): p50 ${fixed(r.distinct.p50Us, 3)} µs, ` +
      `p99 ${fixed(r.distinct.p99Us, 3)} µs; with/without p50 ${fixed(r.distinctP50Ratio, 2)}x, p99 ${fixed(r.distinctP99Ratio, 2)}x (a larger working set: CPU cache misses)`,
  );
  return r;
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  log(`Waymark benchmark${quick ? ' (BENCH_QUICK=1: short runs, N up to 1,000; for checking, not for quoting)' : ''}`);
  log(`node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  log();
  const decisions = only === 'proxy' || only === 'routes' ? null : decisionsSection();
  if (decisions) log();
  const routes = only === 'proxy' || only === 'decisions' ? null : routesSection();
  if (routes) log();
  const proxy = only === 'decisions' || only === 'routes' ? null : await proxySection();
  summarize(decisions, proxy);

  const out = {
    at: new Date().toISOString(),
    quick,
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    elapsedS: round((Date.now() - startedAt) / 1e3, 1),
    targets: { decisionP99Us: TARGET_DECISION_P99_US, flatnessPassMark: FLATNESS_PASS, proxyThroughputRatio: TARGET_THROUGHPUT_RATIO },
    decisions: decisions && { method: decisions.method, mix: FACTS_MIX, results: decisions.results, flatness: decisions.flatness, p50Flatness: decisions.p50Flatness, hotSetFlatness: decisions.hotFlatness, hotSetP50Flatness: decisions.hotP50Flatness },
    routes,
    proxy,
  };
  const file = join(ROOT_DIR, '.tmp', 'bench-latest.json');
  mkdirSync(join(ROOT_DIR, '.tmp'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log();
  log(`figures written to ${file} (${out.elapsedS} s in all)`);
}

try {
  await main();
  clearTimeout(watchdog);
} catch (error) {
  console.error('bench failed:', error instanceof Error ? (error.stack ?? error.message) : error);
  killAll();
  process.exitCode = 1;
}
