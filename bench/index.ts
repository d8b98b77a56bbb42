/**
 * `npm run bench`: measures and prints; not a test.
 *
 *  1. Routing decisions: compileSnapshot() and decide() over N services x 20 clusters (pure, in process);
 *     1b. route matching with 50 routes per service against none.
 *  2. Proxy (Node): Waymark's Node server against nginx (1 worker, keep-alive upstream pool), a bare undici
 *     Pool proxy (node:http + undici request(), piped) and a bare Hono-on-Node fetch proxy, all in front of
 *     the same upstream, loaded in turn (order reversed every other round) by the same load generator (wrk
 *     when installed, else a Node one). Targets: Waymark >= 0.5x nginx and >= 0.9x the undici proxy.
 *  3. Edge: Waymark's worker bundle (`wrangler deploy --dry-run`) and a bare passthrough worker, each in its
 *     own workerd through Miniflare 4, same upstream, same load generator; Waymark's store is a migrated
 *     libSQL file behind the Hrana-over-HTTP test fixture. Target: Waymark >= 0.9x the passthrough.
 *  4. WebSocket: ping-pong messages per second over 16 sockets through Waymark's Node server against
 *     straight to a `ws` echo server. Without WebSocket support in Waymark it reports the failed handshake
 *     and measures the direct path only.
 *  5. Scale (issue 11): 1,000 and 10,000 services x 20 clusters in a migrated libSQL file: heap held by the
 *     snapshot, a fresh Node process's first proxied response, the reload after one change (time and rows
 *     read from the store) and decide()'s p99 on that snapshot, each in a fresh child process; and the
 *     worker bundle in a fresh workerd with the archive in KV: its first response and its isolate's heap.
 *  6. Writers (issue 11): proxied GET latency on Waymark's Node server (N services x 20 clusters in a libSQL
 *     file), idle and while 20 concurrent admin writers PUT cluster weights, phases alternated. Target: GET
 *     p99 with writers <= 2x the idle p99.
 *
 * Only ratios measured in the same run are meant to be compared; the machine has 2 cores shared by the load
 * generator, the upstream and the server under test. Everything runs on 127.0.0.1 (port 0 wherever the
 * server can report its port; nginx gets a free port picked first), everything started is stopped by its
 * pid, and a watchdog stops the run after 18 minutes (5 with BENCH_QUICK=1). wrk and nginx-light are
 * installed with apt-get when missing and running as root (BENCH_NO_APT=1: never; then proxy runs without
 * nginx and load comes from the Node generator). Figures also go to .tmp/bench-latest.json.
 *
 * Environment:
 *   BENCH_QUICK=1          short runs (each section well under a minute), N up to 1,000: a check that it works, not a measurement
 *   BENCH_ONLY=decisions|routes|proxy|edge|websocket|scale|writers   run one section
 *   BENCH_LOADGEN=wrk|node force a load generator (default: wrk when found, else node)
 *   BENCH_WRK_THREADS=n    wrk threads (default 1: the machine has 2 cores for client and servers)
 *   BENCH_CONNECTIONS=n    HTTP concurrency for proxy and edge (default 32)
 *   BENCH_ROUNDS=n         proxy rounds (default 6 of 4 s each); ratios are also given as the median of same-round pairs
 *   BENCH_NO_APT=1         do not apt-get install wrk / nginx-light when missing
 *   BENCH_WS_SOCKETS=n     WebSocket sockets (default 16)
 *   BENCH_WS_INFLIGHT=n    messages in flight per socket (default 1: strict ping-pong)
 *   BENCH_WS_BYTES=n       message size (default 32)
 *   BENCH_CPU_PROF=1       proxy: run Waymark's, the undici proxy's and the Hono proxy's processes with --cpu-prof; edge:
 *                          profile both workers' isolates through workerd's inspector (DevTools Profiler). Profiles go
 *                          to .tmp/bench-prof/ (summarize with: npx tsx bench/profile.ts .tmp/bench-prof/waymark)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { ensureApt } from './apt.js';
import { benchDecisions, buildFacts, FACTS_MIX, type DecisionResult } from './decisions.js';
import { benchEdge, type EdgeResult } from './edge.js';
import { benchRouteMatching, type RouteBenchResult } from './routes.js';
import { benchScale, PROBE_HOST, type ScaleEntry } from './scale.js';
import { nodeGenerator, wrkAvailable, wrkGenerator, type LoadGenerator } from './load.js';
import { findNginx } from './nginx.js';
import { startNoiseMonitor } from './noise.js';
import { diff as diffProfiles, readProfile, summarize as summarizeProfile } from './profile.js';
import { killAll, ROOT_DIR } from './procs.js';
import { benchProxy, BENCH_HOST, BENCH_PATH, type ProxyResult } from './proxy.js';
import type { Ratios, TargetSummary } from './rounds.js';
import { fixed, int, median, round, table } from './stats.js';
import { benchWebSocket, describeHandshake, type WebSocketResult } from './websocket.js';
import { benchWriters, type WritersResult } from './writers.js';

const TARGET_DECISION_P99_US = 20;
/** Waymark / the bare Hono fetch proxy: the first target, kept for continuity. */
const TARGET_HONO_RATIO = 0.8;
/** The issue's targets for the Node runtime, wrk c=32: Waymark / nginx and Waymark / the bare undici proxy. */
const TARGET_NGINX_RATIO = 0.5;
const TARGET_UNDICI_RATIO = 0.9;
/** Waymark's worker / a bare passthrough worker, both in workerd. */
const TARGET_EDGE_RATIO = 0.9;
const WATCHDOG_MS = (process.env.BENCH_QUICK === '1' ? 5 : 18) * 60_000;
/** "Flat as services grow": our pass mark for p99(largest N) / p99(N=10). */
const FLATNESS_PASS = 2;
/** Issue 11's targets at 10,000 services x 20 clusters. */
const TARGET_SCALE_HEAP_MB = 64;
const TARGET_SCALE_COLD_MS = 50;
/** "Rows read per reload proportional to the change": our pass mark for rows(largest N) / rows(smallest N). */
const SCALE_ROWS_GROWTH_PASS = 1.5;
/** Issue 11: proxied GET p99 with 20 concurrent admin writers / its idle p99. */
const TARGET_WRITERS_P99_RATIO = 2;

const quick = process.env.BENCH_QUICK === '1';
const SECTIONS = ['decisions', 'routes', 'proxy', 'edge', 'websocket', 'scale', 'writers'] as const;
type Section = (typeof SECTIONS)[number];
const only = process.env.BENCH_ONLY;
if (only !== undefined && only !== '' && !(SECTIONS as readonly string[]).includes(only)) {
  console.error(`BENCH_ONLY=${only}: expected one of ${SECTIONS.join(', ')}`);
  process.exit(2);
}
const selected = (section: Section): boolean => !only || only === section;
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);
const log = (line = '') => console.log(line);
const mark = (ok: boolean) => (ok ? 'ok' : 'MISS');

// Bounded in time, and never leave a process behind.
const watchdog = setTimeout(() => {
  console.error(`bench: watchdog fired (over ${WATCHDOG_MS / 60_000} minutes); stopping everything it started`);
  killAll();
  process.exit(2);
}, WATCHDOG_MS);
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
  ensureApt([{ bin: wrkAvailable, pkg: 'wrk' }], log);
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
  log(
    '   snapshot: N services x 20 clusters over 10 regions (4-10 regions each), 1-3 hosts, ~1/3 with failover rules, 3% unhealthy clusters, 3% of services with an override',
  );
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
  ensureApt([{ bin: () => findNginx() !== null, pkg: 'nginx-light' }], log);
  const nginx = findNginx();
  const timing = quick
    ? { warmupS: 2, roundS: 2, rounds: 1 }
    : { warmupS: 3, roundS: 4, rounds: Number(process.env.BENCH_ROUNDS ?? 6) };
  const cpuProfDir = process.env.BENCH_CPU_PROF === '1' ? join(ROOT_DIR, '.tmp', 'bench-prof') : undefined;
  if (cpuProfDir) {
    rmSync(cpuProfDir, { recursive: true, force: true });
    mkdirSync(cpuProfDir, { recursive: true });
  }
  log(
    '2. Proxy (Node): Waymark vs nginx, a bare undici Pool proxy and a bare Hono fetch proxy, same upstream, same load generator',
  );
  log(`   load: ${loadgen.describe}; ${connections} connections; GET ${BENCH_PATH} with Host: ${BENCH_HOST}`);
  log(
    `   ${timing.warmupS} s warm-up each, then ${timing.rounds} round(s) of ${timing.roundS} s per server, in turn, the order reversed every other round`,
  );
  log(
    `   note: ${cpus().length} cores shared by the load generator, the upstream and the server under test (all on 127.0.0.1)`,
  );
  if (!nginx) log('   nginx not found: `apt-get install -y nginx-light` (running without it: no Waymark/nginx ratio)');
  try {
    return await benchProxy({
      loadgen,
      connections,
      ...timing,
      direct: !quick,
      hono: true,
      nginx,
      cpuProfDir,
      log: (l) => log(l),
    });
  } finally {
    await loadgen.close();
  }
}

async function edgeSection(): Promise<EdgeResult> {
  const loadgen = pickLoadgen();
  const timing = quick
    ? { warmupS: 2, roundS: 2, rounds: 1 }
    : { warmupS: 3, roundS: 4, rounds: Number(process.env.BENCH_ROUNDS ?? 6) };
  log(
    "3. Edge: Waymark's worker bundle vs a bare passthrough worker, each in its own workerd (Miniflare 4), same upstream, same load generator",
  );
  log(`   load: ${loadgen.describe}; ${connections} connections; GET ${BENCH_PATH} with Host: ${BENCH_HOST}`);
  log(
    `   ${timing.warmupS} s warm-up each, then ${timing.rounds} round(s) of ${timing.roundS} s per worker, alternating (ABBA)`,
  );
  log(
    "   both go through Miniflare's entry worker (its cost is in both); Waymark reads its store over Hrana HTTP (snapshot refresh per wrangler.toml)",
  );
  const cpuProfDir = process.env.BENCH_CPU_PROF === '1' ? join(ROOT_DIR, '.tmp', 'bench-prof') : undefined;
  if (cpuProfDir) mkdirSync(cpuProfDir, { recursive: true });
  try {
    return await benchEdge({ loadgen, connections, ...timing, cpuProfDir, log: (l) => log(l) });
  } finally {
    await loadgen.close();
  }
}

async function scaleSection(): Promise<ScaleEntry[]> {
  const sizes = quick ? [1_000] : [1_000, 10_000];
  const decisions = quick
    ? { batchSize: 100, batches: 500, passes: 3, warmup: 50_000, perCallSamples: 20_000, factsCount: 50_000 }
    : { batchSize: 100, batches: 1_000, passes: 5, warmup: 200_000, perCallSamples: 50_000, factsCount: 100_000 };
  log(
    '5. Scale: N services x 20 clusters in a migrated libSQL file (the decisions fixture), each figure from a fresh process',
  );
  log(
    '   heap: loadSnapshotSource() + compileSnapshot(), heap after a full GC before and after (--expose-gc); ' +
      `cold: fork of a fresh \`node --import tsx\` (as \`npm start\`) -> startNodeServer() (WAYMARK_SNAPSHOT_CACHE=off, store migrated) -> first proxied response from an upstream on 127.0.0.1, median of 3; ` +
      'reload: putCluster() (one weight), then runtime.snapshots.refresh() timed, rows returned by the libSQL client counted (median of 5 after 2 warm-ups); ' +
      'decide(): p99 over batches of 100 as in section 1',
  );
  return benchScale({ sizes, reloads: 5, reloadWarmups: 2, decisions, log });
}

async function writersSection(): Promise<WritersResult> {
  const loadgen = pickLoadgen();
  const options = {
    services: quick ? 200 : 1_000,
    connections: 8,
    writers: 20,
    ...(quick ? { warmupS: 1, phaseS: 2, rounds: 1 } : { warmupS: 2, phaseS: 6, rounds: 3 }),
  };
  log(
    `6. Writers: proxied GETs on Waymark's Node server, idle and with ${options.writers} concurrent admin writers (N=${int(options.services)} services x 20 clusters in a migrated libSQL file)`,
  );
  log(
    `   load: ${loadgen.describe}; ${options.connections} connections; GET ${BENCH_PATH} with Host: ${PROBE_HOST} (its clusters all point at the upstream); ` +
      `${options.rounds} round(s) of ${options.phaseS} s idle then ${options.phaseS} s with writers`,
  );
  log(
    `   writers: ${options.writers} async loops in this process (undici Pool, one connection each), each PUT /_waymark/api/v1/services/<svc>/clusters/<name> ` +
      'back to back, one weight toggled, the body as GET returns it; server: WAYMARK_SNAPSHOT_CACHE=off, WAYMARK_SYNC_INTERVAL_MS=0',
  );
  try {
    return await benchWriters({ ...options, loadgen, log });
  } finally {
    await loadgen.close();
  }
}

async function webSocketSection(): Promise<WebSocketResult> {
  const options = {
    sockets: Number(process.env.BENCH_WS_SOCKETS ?? 16),
    inflight: Number(process.env.BENCH_WS_INFLIGHT ?? 1),
    payloadBytes: Number(process.env.BENCH_WS_BYTES ?? 32),
    ...(quick ? { warmupS: 1, roundS: 2, rounds: 1 } : { warmupS: 2, roundS: 5, rounds: 3 }),
  };
  log("4. WebSocket: echoed messages per second through Waymark's Node server vs straight to the echo server");
  log(
    `   ${options.sockets} sockets, ${options.inflight} message(s) of ${options.payloadBytes} bytes in flight per socket (send, wait for the echo, send the next); ` +
      `${options.warmupS} s warm-up each, then ${options.rounds} round(s) of ${options.roundS} s per path, alternating (ABBA); Host: ${BENCH_HOST} through Waymark`,
  );
  return benchWebSocket({ ...options, log: (l) => log(l) });
}

function ratioLine(name: string, r: Ratios, target: number | null, what = 'server CPU per request'): string {
  const goal =
    target === null ? '' : ` (target >= ${target}x, on the paired figure) ${mark(r.pairedThroughput >= target)}`;
  return `${name}: throughput ${fixed(r.throughput, 2)}x overall, ${fixed(r.pairedThroughput, 2)}x median of same-round pairs${goal}; p50 ${fixed(r.p50, 2)}x, p99 ${fixed(r.p99, 2)}x (latency, lower is better); ${what} ${fixed(r.cpuPerRequest, 2)}x`;
}

function loadTable(header: string, summaries: (TargetSummary | undefined)[]): string {
  const rows = [
    [
      header,
      'req/s',
      'p50 ms',
      'p99 ms',
      'server CPU µs/req',
      'requests',
      'all 200 from upstream',
      'other procs (cores)',
    ],
  ];
  for (const s of summaries) {
    if (!s) continue;
    rows.push([
      s.label,
      int(s.rps),
      fixed(s.p50Ms, 2),
      fixed(s.p99Ms, 2),
      fixed(s.serverCpuUsPerRequest, 0),
      int(s.requests),
      s.verified ? 'yes' : 'NO',
      s.otherCores === null ? 'n/a' : fixed(s.otherCores, 2),
    ]);
  }
  return table(rows);
}

function summarize(
  decisions: ReturnType<typeof decisionsSection> | null,
  proxy: ProxyResult | null,
  edge: EdgeResult | null,
  websocket: WebSocketResult | null,
  scale: ScaleEntry[] | null,
  writers: WritersResult | null,
): void {
  log();
  log('Summary');
  if (decisions) {
    const rows = [
      [
        'routing decisions',
        'services',
        'clusters',
        'compile ms',
        'reload after 1 change ms',
        'snapshot MB',
        'decisions/s',
        'p50 µs',
        'p99 µs',
        'best-pass p99',
        'per-call p99 µs',
        'p99 < 20 µs',
        'other procs (cores)',
      ],
    ];
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
      log(
        'WARNING: other processes used CPU during the decision runs (see "other procs"): p99 and flatness are noisy; rerun on a quiet machine.',
      );
    }
    log();
  }
  if (proxy) {
    const t = proxy.targets;
    log(loadTable(`proxy, Node (c=${proxy.connections})`, [t.waymark, t.nginx, t.undici, t.bare, t.direct]));
    const r = proxy.ratios;
    log(
      r.nginx
        ? ratioLine('waymark/nginx', r.nginx, TARGET_NGINX_RATIO)
        : 'waymark/nginx: n/a (nginx not installed: apt-get install -y nginx-light)',
    );
    log(ratioLine('waymark/undici', r.undici, TARGET_UNDICI_RATIO));
    if (r.bare) log(ratioLine('waymark/Hono fetch', r.bare, TARGET_HONO_RATIO));
    log(
      `(req/s: total requests / total measured time over ${proxy.rounds} round(s); p50/p99: median over rounds of the load generator's per-run percentiles; ` +
        `server CPU: the server's process(es) user+system time / completed requests (nginx: master + worker from /proc, 10 ms ticks). ` +
        `Client and servers share ${cpus().length} cores: compare ratios, not absolute figures.)`,
    );
    const noisy = Object.values(t).some((s) => s.target !== 'direct' && (s.otherCores ?? 0) > 0.2);
    if (noisy)
      log(
        'WARNING: other processes used CPU during the proxy runs (see "other procs"): figures are noisy; the reversed order spreads it over all servers.',
      );
    if (proxy.cpuProfiles.length) {
      const served = (target: string) =>
        proxy.runs.filter((r) => r.target === target).reduce((s, r) => s + r.load.requests, 0);
      const name = (dir: string) => dir.slice(dir.lastIndexOf('/') + 1);
      for (const dir of proxy.cpuProfiles) {
        // Every request the server answered, warm-ups included (the profile covers the whole process).
        const requests = served(name(dir));
        const { file, profile } = readProfile(dir);
        log();
        log(`CPU profile of ${name(dir)} (${file}, sampled every 250 µs; profiling adds overhead):`);
        log(summarizeProfile(profile, { requests, top: 15 }));
      }
      const w = proxy.cpuProfiles.find((d) => name(d) === 'waymark') as string;
      const u = proxy.cpuProfiles.find((d) => name(d) === 'undici') as string;
      log();
      log(
        'Where Waymark spends more than the bare undici proxy per request (inclusive time; callers include their callees):',
      );
      log(diffProfiles(readProfile(w).profile, served('waymark'), readProfile(u).profile, served('undici'), 30));
      log();
      log(
        `CPU profiles: ${proxy.cpuProfiles.join(', ')} (one .cpuprofile per thread; the largest is the main thread. Summarize with: npx tsx bench/profile.ts DIR-or-FILE)`,
      );
    }
    log();
  }
  if (edge) {
    log(loadTable(`edge, workerd (c=${edge.connections})`, [edge.targets['waymark-edge'], edge.targets['bare-edge']]));
    log(ratioLine('waymark/passthrough (edge)', edge.ratios, TARGET_EDGE_RATIO, 'workerd CPU per request'));
    const wh = edge.targets['waymark-edge']?.harnessCpuUsPerRequest ?? Number.NaN;
    const bh = edge.targets['bare-edge']?.harnessCpuUsPerRequest ?? Number.NaN;
    log(
      `this process (Miniflare's Node side, the Hrana store, the harness) used ${fixed(wh, 0)} µs/req under Waymark, ${fixed(bh, 0)} µs/req under the passthrough`,
    );
    log(
      "(server CPU: the workerd process Miniflare started, from /proc (10 ms ticks): the worker, Miniflare's entry worker (the same in both) and workerd's I/O. " +
        "BENCH_CPU_PROF=1 adds a V8 profile of each worker's isolate.)",
    );
    if (edge.cpuProfiles.length) {
      const served = (target: string) =>
        edge.runs.filter((r) => r.target === target).reduce((s, r) => s + r.load.requests, 0);
      const [w, b] = edge.cpuProfiles as [string, string];
      log();
      log(
        `CPU profile of Waymark's worker isolate (${w}, mapped to source files through the bundle's source map; profiling adds overhead):`,
      );
      log(
        summarizeProfile(readProfile(w).profile, { requests: served('waymark-edge'), top: 15, sourcePositions: true }),
      );
      log();
      log(
        `the passthrough worker's isolate (${b}): ${summarizeProfile(readProfile(b).profile, { requests: served('bare-edge'), top: 0 }).split('\n')[0]}`,
      );
    }
    log();
  }
  if (websocket) {
    const rows = [
      ['WebSocket', 'msg/s', 'rtt p50 ms', 'rtt p99 ms', 'Waymark CPU µs/msg', 'messages', 'echoes intact'],
    ];
    for (const s of [websocket.waymark, websocket.direct]) {
      if (!s) continue;
      rows.push([
        s.target === 'waymark' ? 'through Waymark (Node)' : 'direct to the echo server',
        int(s.messagesPerSec),
        fixed(s.p50Ms, 2),
        fixed(s.p99Ms, 2),
        s.serverCpuUsPerMessage === null ? '' : fixed(s.serverCpuUsPerMessage, 0),
        int(s.messages),
        s.verified ? 'yes' : 'NO',
      ]);
    }
    log(table(rows));
    if (websocket.ratios) {
      const r = websocket.ratios;
      log(
        `waymark/direct (WebSocket, ${websocket.sockets} sockets): messages/s ${fixed(r.throughput, 2)}x; rtt p50 ${fixed(r.p50, 2)}x, p99 ${fixed(r.p99, 2)}x (lower is better)`,
      );
    } else {
      log(describeHandshake(websocket.handshake));
    }
    log();
  }
  if (scale?.length) {
    const largest = scale[scale.length - 1] as ScaleEntry;
    const at10k = (r: ScaleEntry, ok: boolean) => (r.services === 10_000 ? mark(ok) : '');
    const rows = [
      [
        'scale',
        'services',
        'clusters',
        'heap MB',
        `<= ${TARGET_SCALE_HEAP_MB} MB`,
        'heap before first use MB',
        'cold first response ms',
        'of which startNodeServer ms',
        `<= ${TARGET_SCALE_COLD_MS} ms`,
        'reload 1 change ms',
        'rows read per reload',
        'rows in store',
        'decide p99 µs',
        'workerd heap MB',
        `<= ${TARGET_SCALE_HEAP_MB} MB`,
        'workerd first response ms',
        'of which Waymark ms',
        `<= ${TARGET_SCALE_COLD_MS} ms`,
        'other procs (cores)',
      ],
    ];
    for (const r of scale) {
      rows.push([
        `N=${int(r.services)}`,
        int(r.services),
        int(r.clusters),
        fixed(r.heapMb, 1),
        at10k(r, r.heapMb <= TARGET_SCALE_HEAP_MB),
        fixed(r.detail.heap.sourceMb + r.detail.heap.compiledLazyMb, 1),
        fixed(r.coldFirstResponseMs, 0),
        fixed(median(r.detail.cold.map((c) => c.startServerMs)), 0),
        at10k(r, r.coldFirstResponseMs <= TARGET_SCALE_COLD_MS),
        fixed(r.reloadOneChangeMs, 1),
        int(r.rowsReadPerReload),
        int(r.detail.storeRows),
        fixed(r.decisionP99Us, 3),
        fixed(r.heapWorkerdMb, 1),
        at10k(r, r.heapWorkerdMb <= TARGET_SCALE_HEAP_MB),
        fixed(r.coldFirstResponseWorkerdMs, 1),
        fixed(r.coldFirstResponseWorkerdOwnMs, 1),
        at10k(r, r.coldFirstResponseWorkerdOwnMs <= TARGET_SCALE_COLD_MS),
        r.otherCores === null ? 'n/a' : fixed(r.otherCores, 2),
      ]);
    }
    log(table(rows));
    const smallest = scale[0] as ScaleEntry;
    if (largest !== smallest) {
      const growth = largest.rowsReadPerReload / smallest.rowsReadPerReload;
      log(
        `rows read per reload: ${fixed(growth, 2)}x from N=${int(smallest.services)} to N=${int(largest.services)} for the same one-cluster change ` +
          `(target: proportional to the change, not to the configuration; pass mark <= ${SCALE_ROWS_GROWTH_PASS}x) ${mark(growth <= SCALE_ROWS_GROWTH_PASS)}`,
      );
    }
    log(
      '(heap: source read from the store + the snapshot with every service compiled; "before first use": right after compileSnapshot(), services compiled lazily. ' +
        'cold first response: fork() of a fresh process to its first proxied response over loopback, Node and tsx start and module import included; ' +
        '"of which startNodeServer": migration check + snapshot load + compile + listen. The target excludes network; loopback adds well under 1 ms. ' +
        'Node heap figures are with 8-byte pointers. workerd: the worker bundle in a fresh workerd (Miniflare 4) whose KV holds the archive a writer published; ' +
        '"first response": its first proxied request over HTTP (store revision over Hrana, KV catalog and one shard, one service compiled, the upstream), median of 3 fresh isolates; ' +
        '"of which Waymark": less the first request of a bare worker in a fresh workerd doing the same I/O and nothing else (network excluded, as the target says); ' +
        '"heap": the isolate\'s whole heap (code, runtime state and snapshot; V8 with compressed pointers, as Cloudflare runs it) after a full GC, once every service served one request.)',
    );
    if (scale.some((r) => (r.otherCores ?? 0) > 0.2))
      log(
        'WARNING: other processes used CPU during the scale runs (see "other procs"): times are inflated; rerun on a quiet machine.',
      );
    log();
  }
  if (writers) {
    const rows = [
      [
        `writers (N=${int(writers.services)}, c=${writers.connections})`,
        'GET p50 ms',
        'GET p99 ms',
        'GET max ms',
        'req/s',
        'GET errors',
        'writes/s',
        'writes failed',
        'write p99 ms',
        'server cores',
        'loop delay max ms',
        'other procs (cores)',
      ],
    ];
    for (const p of writers.phases) {
      const busy = p.phase === 'writers';
      rows.push([
        `round ${p.round}, ${busy ? `${writers.writers} writers` : 'idle'}`,
        fixed(p.p50Ms, 2),
        fixed(p.p99Ms, 2),
        fixed(p.maxMs, 1),
        int(p.rps),
        int(p.getErrors),
        busy ? fixed(p.writesPerSec, 0) : '',
        busy ? int(p.writesFailed) : '',
        busy ? fixed(p.writeP99Ms, 1) : '',
        fixed(p.serverCores, 2),
        fixed(p.loopDelayMaxMs, 1),
        p.otherCores === null ? 'n/a' : fixed(p.otherCores, 2),
      ]);
    }
    rows.push(
      ['idle, median', fixed(writers.idle.p50Ms, 2), fixed(writers.idle.p99Ms, 2), '', '', '', '', '', '', '', '', ''],
      [
        `${writers.writers} writers, median`,
        fixed(writers.busy.p50Ms, 2),
        fixed(writers.busy.p99Ms, 2),
        '',
        '',
        '',
        fixed(writers.busy.writesPerSec, 0),
        '',
        fixed(writers.busy.writeP99Ms, 1),
        '',
        fixed(writers.busy.loopDelayMaxMs, 1),
        '',
      ],
    );
    log(table(rows));
    log(
      `GET p99 with ${writers.writers} writers / idle: ${fixed(writers.p99Ratio, 2)}x (median of rounds; target <= ${TARGET_WRITERS_P99_RATIO}x) ` +
        `${mark(writers.p99Ratio <= TARGET_WRITERS_P99_RATIO)}; per round: ${writers.roundP99Ratios.map((r) => `${fixed(r, 2)}x`).join(' ')}; ` +
        `GET errors ${int(writers.getErrors)} ${mark(writers.getErrors === 0)}; writes ${int(writers.writes)} answered, ${int(writers.writesFailed)} failed`,
    );
    log(
      "(GET latencies: the load generator's per-request percentiles, one run per phase; writes/s: writes answered while the load ran. " +
        'Server cores and event-loop delay (1 ms resolution) are measured inside the server process; load generator, upstream, writers and server share ' +
        `${cpus().length} cores.)`,
    );
    if (writers.phases.some((p) => (p.otherCores ?? 0) > 0.2))
      log(
        'WARNING: other processes used CPU during the writers runs (see "other procs"): latencies are noisy; rerun on a quiet machine.',
      );
    log();
  }
}

const TARGET_ROUTES_RATIO = 2;

function routesSection(): RouteBenchResult {
  const options = quick
    ? { batchSize: 100, batches: 500, passes: 3, warmup: 50_000, perCallSamples: 20_000, factsCount: 50_000 }
    : { batchSize: 100, batches: 1_000, passes: 5, warmup: 200_000, perCallSamples: 50_000, factsCount: 100_000 };
  const r = benchRouteMatching(options, (source) => buildFacts(source, options.factsCount, 17));
  log(
    `1b. Route matching: ${int(r.services)} services, the same requests with no routes and with ${r.routesPerService} routes per service`,
  );
  log(
    '    routes: path regex (10), exact paths with methods, prefixes with a header, header regex, prefixes with a query parameter, then a catch-all; most requests fall through to the catch-all',
  );
  log(
    `    no routes:  p50 ${fixed(r.noRoutes.p50Us, 3)} µs, p99 ${fixed(r.noRoutes.p99Us, 3)} µs, ${int(r.noRoutes.decisionsPerSec)} decisions/s`,
  );
  log(
    `    50 routes:  p50 ${fixed(r.withRoutes.p50Us, 3)} µs, p99 ${fixed(r.withRoutes.p99Us, 3)} µs, ${int(r.withRoutes.decisionsPerSec)} decisions/s`,
  );
  log(
    `    with/without: p50 ${fixed(r.p50Ratio, 2)}x, p99 ${fixed(r.p99Ratio, 2)}x (target: within ${TARGET_ROUTES_RATIO}x) ${mark(r.p99Ratio <= TARGET_ROUTES_RATIO)}`,
  );
  log(
    `    the same 50 routes but with text of their own in every service (no compiled match shared): p50 ${fixed(r.distinct.p50Us, 3)} µs, ` +
      `p99 ${fixed(r.distinct.p99Us, 3)} µs; with/without p50 ${fixed(r.distinctP50Ratio, 2)}x, p99 ${fixed(r.distinctP99Ratio, 2)}x (a larger working set: CPU cache misses)`,
  );
  return r;
}

/** Runs one I/O section; a failure is reported and the run goes on with the next section. */
async function attempt<T>(
  name: Section,
  failures: Record<string, string>,
  section: () => Promise<T>,
): Promise<T | null> {
  try {
    return await section();
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    failures[name] = message;
    console.error(`bench: the ${name} section failed: ${message}`);
    return null;
  }
}

async function main(): Promise<void> {
  const startedAt = Date.now();
  log(`Waymark benchmark${quick ? ' (BENCH_QUICK=1: short runs, N up to 1,000; for checking, not for quoting)' : ''}`);
  log(
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  log();
  const failures: Record<string, string> = {};
  const decisions = selected('decisions') ? decisionsSection() : null;
  if (decisions) log();
  const routes = selected('routes') ? routesSection() : null;
  if (routes) log();
  const proxy = selected('proxy') ? await attempt('proxy', failures, proxySection) : null;
  if (selected('proxy') && selected('edge')) log();
  const edge = selected('edge') ? await attempt('edge', failures, edgeSection) : null;
  if (selected('edge') && selected('websocket')) log();
  const websocket = selected('websocket') ? await attempt('websocket', failures, webSocketSection) : null;
  if (selected('websocket') && selected('scale')) log();
  const scale = selected('scale') ? await attempt('scale', failures, scaleSection) : null;
  if (selected('scale') && selected('writers')) log();
  const writers = selected('writers') ? await attempt('writers', failures, writersSection) : null;
  summarize(decisions, proxy, edge, websocket, scale, writers);
  for (const name of Object.keys(failures)) log(`FAILED: the ${name} section (see the error above)`);

  const out = {
    at: new Date().toISOString(),
    quick,
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    elapsedS: round((Date.now() - startedAt) / 1e3, 1),
    targets: {
      decisionP99Us: TARGET_DECISION_P99_US,
      flatnessPassMark: FLATNESS_PASS,
      proxyVsHonoThroughputRatio: TARGET_HONO_RATIO,
      proxyVsNginxThroughputRatio: TARGET_NGINX_RATIO,
      proxyVsUndiciThroughputRatio: TARGET_UNDICI_RATIO,
      edgeVsPassthroughThroughputRatio: TARGET_EDGE_RATIO,
      scaleHeapMbAt10k: TARGET_SCALE_HEAP_MB,
      scaleColdFirstResponseMsAt10k: TARGET_SCALE_COLD_MS,
      scaleRowsReadGrowthPassMark: SCALE_ROWS_GROWTH_PASS,
      writersP99Ratio: TARGET_WRITERS_P99_RATIO,
    },
    decisions: decisions && {
      method: decisions.method,
      mix: FACTS_MIX,
      results: decisions.results,
      flatness: decisions.flatness,
      p50Flatness: decisions.p50Flatness,
      hotSetFlatness: decisions.hotFlatness,
      hotSetP50Flatness: decisions.hotP50Flatness,
    },
    routes,
    proxy,
    edge,
    websocket,
    scale,
    writers,
    failures,
  };
  const file = join(ROOT_DIR, '.tmp', 'bench-latest.json');
  mkdirSync(join(ROOT_DIR, '.tmp'), { recursive: true });
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`figures written to ${file} (${out.elapsedS} s in all)`);
  if (Object.keys(failures).length) process.exitCode = 1;
}

try {
  await main();
  clearTimeout(watchdog);
} catch (error) {
  console.error('bench failed:', error instanceof Error ? (error.stack ?? error.message) : error);
  killAll();
  process.exitCode = 1;
}
