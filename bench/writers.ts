/**
 * The `writers` section (issue 11): "admin writes never stall the proxy". One Waymark Node server
 * (bench/writers-child.ts, its own process) over a migrated libSQL file seeded with N services x 20 clusters
 * (the `decisions` fixture, as the `scale` section seeds it), in front of a real upstream (bench/child.ts
 * upstream). Proxied GETs with Host: svc-0.example.com come from the bench's load generator (its own
 * process) at a fixed, modest concurrency; phases alternate:
 *
 *  - idle: the GETs alone;
 *  - writers: the same GETs while `writers` async loops in this process each PUT
 *    /_waymark/api/v1/services/<svc-k>/clusters/<name> back to back (one cluster's weight toggled; the body is
 *    the cluster as GET returns it), each writer on its own clusters, spread over the services other than svc-0.
 *
 * Every phase reports the GETs' p50/p99 (the load generator's per-request latencies), the writes answered
 * during the load run, and, from the server's process, its event-loop delay and snapshot reloads.
 *
 * With BENCH_CPU_PROF=1 the server's process runs with --cpu-prof (idle and writers phases alike) and writes its
 * profile to .tmp/bench-prof/writers (summarize with: npx tsx bench/profile.ts .tmp/bench-prof/writers).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { migrateStore } from '../src/store/migrate.js';
import { openStore } from '../src/store/client.js';
import { buildSource, CLUSTERS_PER_SERVICE } from './decisions.js';
import type { LoadGenerator, LoadResult } from './load.js';
import { startNoiseMonitor } from './noise.js';
import { forkTs, nextMessage, onAbort, ROOT_DIR, stopChild } from './procs.js';
import { ADMIN_TOKEN, BENCH_PATH, SERVED_BY, startChild, stopServers, type Server } from './proxy.js';
import { PROBE_HOST, PROBE_SERVICE, seedStore } from './scale.js';
import { median, percentile, round } from './stats.js';
import type { WritersChildMessage } from './writers-child.js';

/** Distinct clusters each writer cycles through (each written by that writer only). */
const CLUSTERS_PER_WRITER = 10;
/** Writers run this long before a phase's load starts, so that the load meets them at full pace. */
const WRITERS_RAMP_MS = 300;
const API = '/_waymark/api/v1';

export interface WritersOptions {
  services: number;
  loadgen: LoadGenerator;
  /** Keep-alive connections of the proxied GETs. */
  connections: number;
  writers: number;
  /** One untimed idle phase and one untimed writers phase of this length first. */
  warmupS: number;
  phaseS: number;
  /** Rounds of (idle, writers). */
  rounds: number;
  log: (line: string) => void;
}

type Stats = Extract<WritersChildMessage, { type: 'stats' }>;

export interface WritersPhase {
  phase: 'idle' | 'writers';
  round: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** GETs that were not 200 from the upstream, or failed (connect, read, write, timeout). */
  getErrors: number;
  getErrorSample: string;
  /** Writes answered while the load ran; failed: not 2xx, or no answer. */
  writes: number;
  writesFailed: number;
  writesPerSec: number;
  writeP50Ms: number;
  writeP99Ms: number;
  writeFailureSample: string;
  /** The server's process, during the load run. */
  serverCores: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  reloads: number;
  reloadP50Ms: number;
  reloadMaxMs: number;
  revisionsMoved: number;
  /** Cores other processes used on average (null without /proc). */
  otherCores: number | null;
}

export interface WritersResult {
  loadgen: string;
  services: number;
  clusters: number;
  connections: number;
  writers: number;
  phaseS: number;
  rounds: number;
  /** Medians over the rounds of the idle phases, and of the phases with writers. */
  idle: { p50Ms: number; p99Ms: number };
  busy: { p50Ms: number; p99Ms: number; writesPerSec: number; writeP99Ms: number; loopDelayMaxMs: number };
  /** busy p99 / idle p99 (the medians), and the same ratio per round. */
  p99Ratio: number;
  roundP99Ratios: number[];
  getErrors: number;
  writes: number;
  writesFailed: number;
  phases: WritersPhase[];
}

interface Target {
  path: string;
  body: Record<string, unknown>;
  weights: [number, number];
  next: 0 | 1;
}

interface Write {
  endedAt: number;
  ms: number;
  ok: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function stats(server: Server): Promise<Stats> {
  const reply = nextMessage<Stats>(server.child, (m) => m?.type === 'stats', 5_000, 'the Waymark server stats');
  server.child.send({ type: 'stats' });
  return reply;
}

async function startWaymark(databaseUrl: string, cpuProfDir: string | null): Promise<Server> {
  const prof = cpuProfDir ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', cpuProfDir] : [];
  const child = forkTs('writers-child.ts', [databaseUrl, ADMIN_TOKEN], prof);
  try {
    const ready = await nextMessage<Extract<WritersChildMessage, { type: 'ready' }>>(
      child,
      (m) => m?.type === 'ready',
      60_000,
      'the Waymark server',
    );
    return { role: 'waymark', child, url: ready.url };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

const headers = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

/**
 * The clusters to write: `writers` x CLUSTERS_PER_WRITER of them, spread evenly over the services after
 * svc-0, each read once through the admin API (GET) for its body.
 */
async function readTargets(pool: Pool, source: ReturnType<typeof buildSource>, writers: number): Promise<Target[][]> {
  const count = writers * CLUSTERS_PER_WRITER;
  const others = source.services.filter((s) => s.name !== PROBE_SERVICE);
  const out: Target[][] = Array.from({ length: writers }, () => []);
  for (let t = 0; t < count; t++) {
    const service = others[Math.floor((t * others.length) / count)];
    const cluster = service?.clusters[t % CLUSTERS_PER_SERVICE];
    if (!service || !cluster) throw new Error('the fixture has too few services to spread the writers over');
    const path = `${API}/services/${service.name}/clusters/${cluster.name}`;
    const res = await pool.request({ method: 'GET', path, headers });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`GET ${path}: ${res.statusCode} ${text.slice(0, 300)}`);
    const { service: _service, name: _name, ...body } = JSON.parse(text) as Record<string, unknown>;
    const weight = Number(body.weight);
    (out[t % writers] as Target[]).push({
      path,
      body,
      weights: [weight < 10_000 ? weight + 1 : weight - 1, weight],
      next: 0,
    });
  }
  return out;
}

/** `targets.length` loops, each PUTting its clusters in turn as fast as they are answered, until stop(). */
function startWriters(pool: Pool, targets: Target[][]): { stop(): Promise<{ writes: Write[]; sample: string }> } {
  let stopping = false;
  const writes: Write[] = [];
  let sample = '';
  const loop = async (mine: Target[]): Promise<void> => {
    for (let i = 0; !stopping; i++) {
      const target = mine[i % mine.length] as Target;
      const weight = target.weights[target.next];
      const t0 = performance.now();
      let ok = false;
      try {
        const res = await pool.request({
          method: 'PUT',
          path: target.path,
          headers,
          body: JSON.stringify({ ...target.body, weight }),
        });
        const text = await res.body.text();
        ok = res.statusCode >= 200 && res.statusCode < 300;
        if (ok) target.next = target.next === 0 ? 1 : 0;
        else sample ||= `PUT ${target.path}: ${res.statusCode} ${text.slice(0, 200)}`;
      } catch (error) {
        sample ||= `PUT ${target.path}: ${error instanceof Error ? error.message : String(error)}`;
        // No answer at all (the server is gone?): do not spin.
        await sleep(10);
      }
      const endedAt = performance.now();
      writes.push({ endedAt, ms: endedAt - t0, ok });
    }
  };
  const loops = targets.map(loop);
  return {
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return { writes, sample };
    },
  };
}

export async function benchWriters(options: WritersOptions): Promise<WritersResult> {
  const { log, loadgen } = options;
  const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-writers-'));
  const forget = onAbort(() => rmSync(dir, { recursive: true, force: true }));
  const servers: Server[] = [];
  let pool: Pool | null = null;
  try {
    const upstream = await startChild('upstream', []);
    servers.push(upstream);
    const url = `file:${join(dir, 'waymark.db')}`;
    const t = performance.now();
    const store = openStore(url);
    const migrated = await migrateStore(store, { holder: 'bench-writers' });
    if (!migrated.ok) throw new Error(migrated.message);
    const source = buildSource(options.services);
    const rows = await seedStore(store, source, upstream.url);
    store.client.close();
    const cpuProfDir = process.env.BENCH_CPU_PROF === '1' ? join(ROOT_DIR, '.tmp', 'bench-prof', 'writers') : null;
    if (cpuProfDir) {
      rmSync(cpuProfDir, { recursive: true, force: true });
      mkdirSync(cpuProfDir, { recursive: true });
      log(`   BENCH_CPU_PROF=1: the server runs with --cpu-prof (profile in ${cpuProfDir}; profiling adds overhead)`);
    }
    const waymark = await startWaymark(url, cpuProfDir);
    servers.push(waymark);
    log(
      `   store seeded (${rows.toLocaleString('en-US')} rows) and server started in ${((performance.now() - t) / 1e3).toFixed(1)} s; ` +
        `upstream ${upstream.url} | waymark ${waymark.url} (pid ${waymark.child.pid}) (each in its own process)`,
    );

    pool = new Pool(waymark.url, {
      connections: options.writers,
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const targets = await readTargets(pool, source, options.writers);
    const spread = new Set(targets.flat().map((x) => x.path.split('/')[5])).size;

    const spec = (durationS: number) => ({
      url: waymark.url,
      path: BENCH_PATH,
      host: PROBE_HOST,
      connections: options.connections,
      durationS,
      expectServedBy: SERVED_BY,
    });
    const phase = async (kind: WritersPhase['phase'], roundNo: number, durationS: number): Promise<WritersPhase> => {
      const noise = startNoiseMonitor();
      const writers = kind === 'writers' ? startWriters(pool as Pool, targets) : null;
      if (writers) await sleep(WRITERS_RAMP_MS);
      const before = await stats(waymark);
      const t0 = performance.now();
      let load: LoadResult | null = null;
      let failure: unknown = null;
      try {
        load = await loadgen.run(spec(durationS));
      } catch (error) {
        failure = error;
      }
      const t1 = performance.now();
      const after = await stats(waymark).catch(() => null);
      // The writers stop whatever happened to the load run.
      const written = writers ? await writers.stop() : { writes: [], sample: '' };
      if (!load) throw failure;
      if (!after) throw new Error('the Waymark server did not answer its stats after the load run');
      const otherCores = noise.stop();
      const inWindow = written.writes.filter((w) => w.endedAt >= t0 && w.endedAt <= t1);
      const writeMs = inWindow.map((w) => w.ms).sort((a, b) => a - b);
      const seconds = (t1 - t0) / 1e3;
      const reloads = [...after.reloadsMs].sort((a, b) => a - b);
      const e = load.errors;
      return {
        phase: kind,
        round: roundNo,
        requests: load.requests,
        rps: round(load.rps, 0),
        p50Ms: load.latencyUs.p50 / 1e3,
        p99Ms: load.latencyUs.p99 / 1e3,
        maxMs: load.latencyUs.max / 1e3,
        getErrors: load.bad + e.connect + e.read + e.write + e.timeout,
        getErrorSample: load.badSample,
        writes: inWindow.length,
        writesFailed: inWindow.filter((w) => !w.ok).length,
        writesPerSec: round(inWindow.length / seconds, 1),
        writeP50Ms: percentile(writeMs, 50),
        writeP99Ms: percentile(writeMs, 99),
        writeFailureSample: written.sample,
        serverCores: round(
          (after.cpuUserUs + after.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs) / 1e6 / seconds,
          2,
        ),
        loopDelayP99Ms: after.loopDelayP99Ms,
        loopDelayMaxMs: after.loopDelayMaxMs,
        reloads: reloads.length,
        reloadP50Ms: percentile(reloads, 50),
        reloadMaxMs: reloads[reloads.length - 1] ?? Number.NaN,
        revisionsMoved: after.revision - before.revision,
        otherCores,
      };
    };
    const describe = (p: WritersPhase) =>
      `GET p50 ${p.p50Ms.toFixed(2)} ms, p99 ${p.p99Ms.toFixed(2)} ms, max ${p.maxMs.toFixed(1)} ms, ${Math.round(p.rps)} req/s` +
      `${p.getErrors ? `, ${p.getErrors} GET errors (${p.getErrorSample})` : ''}` +
      (p.phase === 'writers'
        ? `; ${p.writesPerSec.toFixed(0)} writes/s (${p.writes} answered, ${p.writesFailed} failed${p.writesFailed ? `: ${p.writeFailureSample}` : ''}), ` +
          `write p50 ${p.writeP50Ms.toFixed(1)} ms, p99 ${p.writeP99Ms.toFixed(1)} ms; ` +
          `${p.reloads} reloads (p50 ${p.reloadP50Ms.toFixed(1)} ms, max ${p.reloadMaxMs.toFixed(1)} ms) for ${p.revisionsMoved} revisions`
        : '') +
      `; server ${p.serverCores.toFixed(2)} cores, event-loop delay p99 ${p.loopDelayP99Ms.toFixed(1)} ms, max ${p.loopDelayMaxMs.toFixed(1)} ms` +
      `${p.otherCores === null ? '' : `; other processes ${p.otherCores.toFixed(2)} cores`}`;

    log(
      `   ${options.writers} writers over ${options.writers * CLUSTERS_PER_WRITER} clusters of ${spread} services; warm-up: ${options.warmupS} s idle, ${options.warmupS} s with writers`,
    );
    await phase('idle', 0, options.warmupS);
    await phase('writers', 0, options.warmupS);
    const phases: WritersPhase[] = [];
    for (let r = 1; r <= options.rounds; r++) {
      for (const kind of ['idle', 'writers'] as const) {
        const p = await phase(kind, r, options.phaseS);
        phases.push(p);
        log(`   round ${r} ${kind === 'idle' ? 'idle:        ' : 'with writers:'} ${describe(p)}`);
      }
    }

    const idle = phases.filter((p) => p.phase === 'idle');
    const busy = phases.filter((p) => p.phase === 'writers');
    const med = (list: WritersPhase[], pick: (p: WritersPhase) => number) => median(list.map(pick));
    const idleP99 = med(idle, (p) => p.p99Ms);
    const busyP99 = med(busy, (p) => p.p99Ms);
    return {
      loadgen: loadgen.describe,
      services: options.services,
      clusters: options.services * CLUSTERS_PER_SERVICE,
      connections: options.connections,
      writers: options.writers,
      phaseS: options.phaseS,
      rounds: options.rounds,
      idle: {
        p50Ms: round(
          med(idle, (p) => p.p50Ms),
          3,
        ),
        p99Ms: round(idleP99, 3),
      },
      busy: {
        p50Ms: round(
          med(busy, (p) => p.p50Ms),
          3,
        ),
        p99Ms: round(busyP99, 3),
        writesPerSec: round(
          med(busy, (p) => p.writesPerSec),
          1,
        ),
        writeP99Ms: round(
          med(busy, (p) => p.writeP99Ms),
          1,
        ),
        loopDelayMaxMs: round(
          med(busy, (p) => p.loopDelayMaxMs),
          1,
        ),
      },
      p99Ratio: round(busyP99 / idleP99, 3),
      roundP99Ratios: busy.map((b) => {
        const a = idle.find((p) => p.round === b.round);
        return round(a ? b.p99Ms / a.p99Ms : Number.NaN, 3);
      }),
      getErrors: phases.reduce((s, p) => s + p.getErrors, 0),
      writes: busy.reduce((s, p) => s + p.writes, 0),
      writesFailed: busy.reduce((s, p) => s + p.writesFailed, 0),
      phases,
    };
  } finally {
    await pool?.close().catch(() => undefined);
    await stopServers(servers);
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}
