import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import type { Readable } from 'node:stream';
import Database from 'libsql';
import { Miniflare } from 'miniflare';
import { descendantsNamed, killPids } from '../../bench/proc-stat.js';
import { ROOT_DIR, stopChild, track } from '../../bench/procs.js';
import { percentile } from '../../bench/stats.js';
import { buildBundle, wranglerSettings } from '../../bench/workerd.js';
import { FILE_BUSY_WAIT_MS, STORE_REQUEST_TIMEOUT_MS } from '../../src/store/client.js';
import { type LoadReport, openLoop } from '../load.js';
import { steadyLoad } from '../steady-load.js';
import {
  CHAOS_ADMIN_TOKEN,
  RssWatch,
  startUpstreamProcess,
  startWaymark,
  type UpstreamProcess,
  type WaymarkProcess,
} from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';

/**
 * Scenario 2, store faults: proxied load (~100 GET/s) through one Waymark process while its store fails,
 * then recovers, on a local file store and on a remote (Hrana over HTTP) store. During every fault an
 * admin writer changes a cluster's weight, one write after another. Claims: no proxied request fails (the
 * snapshot in memory serves); every admin write answers 2xx or 503 `store-unavailable` (a problem
 * document), never another 5xx, a reset or a hang; afterwards the store holds exactly the acknowledged
 * writes, each with its audit entry, and the row holds the last one that committed (nothing half-written);
 * after each fault the process catches up with the store's revision.
 *
 * Faults on a file store: "locked" (another connection holds BEGIN EXCLUSIVE, longer than a write waits
 * for it, FILE_BUSY_WAIT_MS, so writes must be refused) and "slow" (that connection takes the write lock
 * for 1.5 s, lets go for 0.2 s, again and again: writes wait up to 1.5 s each). Neither may stall the
 * proxy: the waits are asynchronous (src/store/transaction.ts). "Unreachable" has no honest meaning for
 * a file the process already holds open (rename or delete it and the open file lives on; permissions do
 * not stop root), so it is tried on the remote store only.
 *
 * Faults on the remote store (the Hrana test server over the embedded engine, behind a TCP proxy of our
 * own): "unreachable" (the proxy stops listening and cuts every connection: connection refused; then it
 * accepts and never answers, as a stuck server or a partition under established connections does),
 * "locked" (BEGIN EXCLUSIVE held on the server's file: the server answers SQLITE_BUSY after its 5 s) and
 * "slow" (every chunk each way delayed by 1.5 s: seconds per query).
 *
 * While the remote store is unreachable, three cold starts: a fresh Node process with the warm one's
 * snapshot file (WAYMARK_SNAPSHOT_CACHE) while connections are refused, another while the store hangs,
 * and a fresh workerd (Miniflare 4, the bundle `wrangler deploy --dry-run` builds) with real KV holding
 * what a warm isolate published, while connections are refused. Each must route with no error.
 */

const HOST = 'shop.chaos.test';
const EDGE_HOST = 'edge-kv.chaos.test';
const CLUSTER_PATH = '/services/shop/clusters/ew1';
const LOAD_PER_SEC = 100;
const COLD_LOAD_PER_SEC = 50;
const EDGE_PER_SEC = 20;
const LOAD_TIMEOUT_MS = 10_000;
/** How long a write waits for another process's lock on a file store: a lock held longer must refuse writes. */
const LOCK_LONGER_THAN_BUSY_MS = FILE_BUSY_WAIT_MS + 1_000;
const WRITE_GAP_MS = 400;
/** How long the lock holder waits for the write lock before the store counts as stuck. */
const LOCK_TAKE_LIMIT_MS = 30_000;
/**
 * How long an admin write may take to answer while the store fails: it may queue behind the health
 * sync's and the report flush's writes (one at a time per process, store/transaction.ts), each bounded by
 * STORE_REQUEST_TIMEOUT_MS per request when the store hangs, then take as long itself.
 */
const WRITE_ANSWER_LIMIT_MS = 3 * STORE_REQUEST_TIMEOUT_MS + 5_000;
/** How long a store fault's recovery may take before the process must serve the store's revision again. */
const CATCH_UP_MS = 10_000;
/**
 * How long a cold start while the store hangs may take to listen before it counts as not serving: its
 * first try of the store (2 s, src/node/server.ts), then its first snapshot refresh, which gives up after
 * STORE_REQUEST_TIMEOUT_MS and serves the snapshot file, plus the process's own start (tsx) under load.
 */
const HUNG_START_LIMIT_MS = STORE_REQUEST_TIMEOUT_MS + 8_000;
/** A bound on each step of workerd's life (start, one request, stop): a stuck one fails the scenario, saying which. */
const EDGE_STEP_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `promise`, or an error naming `what` after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// --- the remote store, in a process of its own ----------------------------------------------------------

/**
 * The Hrana test server (scripts/hrana-server.ts) as a child process: its libSQL calls are synchronous
 * (a write waiting for the lock blocks its thread for up to 20 ms per try), which must not slow this
 * process's load generator, proxy and lock holder.
 */
async function startStoreProcess(
  dir: string,
  dbPath: string,
): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const script = join(dir, 'hrana-child.mts');
  writeFileSync(
    script,
    `import { startHranaServer } from ${JSON.stringify(pathToFileURL(join(ROOT_DIR, 'scripts', 'hrana-server.ts')).href)};
const server = await startHranaServer({ dbPath: ${JSON.stringify(dbPath)} });
console.log(\`hrana listening on \${server.url}\`);
process.once('SIGTERM', () => void server.close().then(() => process.exit(0)));
`,
  );
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT_DIR, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the store process did not start: ${output}`)), 30_000);
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      const m = /hrana listening on (\S+)/.exec(output);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => reject(new Error(`the store process exited (${code}): ${output}`)));
  });
  return {
    url,
    pid: child.pid ?? -1,
    stop: () => stopChild(child, 3_000),
  };
}

// --- a TCP proxy in front of the remote store ---------------------------------------------------------------

type ProxyMode = 'pass' | 'refuse' | 'hang' | 'slow';

interface TcpProxy {
  url: string;
  setMode(mode: ProxyMode, delayMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:<port> to the target, chunk by chunk, in order, each direction on a promise chain so
 * that a hang holds the chunks behind it. `refuse` closes the listener (new connections are
 * refused) and resets the open ones; `hang` keeps every connection open and forwards nothing until the
 * mode changes (then what was held goes through, as TCP retransmits once a partition heals); `slow`
 * delays each chunk by `delayMs`.
 */
async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  let delayMs = 0;
  let modeChanged: () => void = () => {};
  let changed = new Promise<void>((resolve) => (modeChanged = resolve));
  const pairs = new Set<{ a: Socket; b: Socket }>();

  const forwardIn = (from: Socket, to: Socket) => {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      // A latency, not a rate: each chunk leaves `delayMs` after it arrived (in order), however many follow.
      const arrived = performance.now();
      chain = chain.then(async () => {
        if (mode === 'slow') await sleep(Math.max(0, arrived + delayMs - performance.now()));
        while (mode === 'hang') await changed;
        if (!to.destroyed) to.write(chunk);
      });
    });
    from.on('end', () => {
      chain = chain.then(() => {
        if (!to.destroyed) to.end();
      });
    });
  };

  const onConnection = (client: Socket) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { a: client, b: upstream };
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    forwardIn(client, upstream);
    forwardIn(upstream, client);
  };

  let server: Server = createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;

  const listen = async () => {
    // The port was ours a moment ago; another process taking it meanwhile is unlikely, but retry a little.
    for (let attempt = 1; ; attempt++) {
      server = createServer(onConnection);
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', resolve);
        });
        return;
      } catch (error) {
        if (attempt >= 50) throw error;
        await sleep(100);
      }
    }
  };

  return {
    url: `http://127.0.0.1:${port}`,
    async setMode(next, delay = 0) {
      const wasListening = mode !== 'refuse';
      mode = next;
      delayMs = delay;
      modeChanged();
      changed = new Promise<void>((resolve) => (modeChanged = resolve));
      if (next === 'refuse' && wasListening) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const { a, b } of pairs) {
            a.resetAndDestroy();
            b.destroy();
          }
          pairs.clear();
        });
      } else if (next !== 'refuse' && !wasListening) await listen();
    },
    async close() {
      mode = 'pass';
      modeChanged();
      for (const { a, b } of pairs) {
        a.destroy();
        b.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// --- another connection that holds the database's write lock ----------------------------------------------

/** A second connection to a store file, as another process would hold it. Its calls never wait (busy_timeout 0). */
class LockHolder {
  private readonly db: Database.Database;
  constructor(path: string) {
    this.db = new Database(path);
    this.db.exec('PRAGMA busy_timeout = 0');
  }

  /** Takes the write lock (waiting, without blocking this thread, for a writer that holds it) and keeps it `ms`. */
  async hold(ms: number): Promise<number> {
    const asked = performance.now();
    for (;;) {
      try {
        this.db.exec('BEGIN EXCLUSIVE');
        break;
      } catch (error) {
        if (!String((error as { code?: string }).code).startsWith('SQLITE_BUSY')) throw error;
        // Every writer gives the lock up within seconds (a write's wait, a stream's 10 s idle expiry).
        if (performance.now() - asked > LOCK_TAKE_LIMIT_MS)
          throw new Error(`another connection held the write lock for over ${LOCK_TAKE_LIMIT_MS} ms`);
        await sleep(5);
      }
    }
    const waitedMs = performance.now() - asked;
    await sleep(ms);
    this.db.exec('ROLLBACK');
    return waitedMs;
  }

  /** Holds the lock `holdMs`, lets go for `gapMs`, until `totalMs` have passed. */
  async intermittently(totalMs: number, holdMs: number, gapMs: number): Promise<void> {
    // The waits to take the lock are the other writers' business here: a slow store, not a stuck one.
    const end = performance.now() + totalMs;
    while (performance.now() < end) {
      await this.hold(Math.min(holdMs, Math.max(0, end - performance.now())));
      await sleep(gapMs);
    }
  }

  close(): void {
    this.db.close();
  }
}

// --- the store as it is, read directly ----------------------------------------------------------------------

interface StoreView {
  revision: number;
  weight: number | null;
  /** The weights the audit log says were written to the cluster, oldest first. */
  audited: number[];
}

function readStore(path: string): StoreView {
  const db = new Database(path, { readonly: true });
  try {
    const revision = (db.prepare('select version from revision where id = 1').get() as { version?: number })?.version;
    const row = db.prepare("select weight from clusters where service = 'shop' and name = 'ew1'").get() as
      | { weight: number }
      | undefined;
    const audited = (
      db
        .prepare('select "after" as after from audit_log where target = ? order by id')
        .all(`services/shop/clusters/ew1`) as { after: string | null }[]
    )
      .map((r) => (r.after ? (JSON.parse(r.after) as { weight?: number }).weight : undefined))
      .filter((w): w is number => typeof w === 'number');
    return { revision: Number(revision ?? 0), weight: row?.weight ?? null, audited };
  } finally {
    db.close();
  }
}

// --- admin writes during a fault ----------------------------------------------------------------------------

interface WriteOutcome {
  phase: string;
  weight: number;
  /** The answer's status; null: no answer (reset, timeout). */
  status: number | null;
  problem: string | null;
  error: string | null;
  ms: number;
}

function clusterBody(origin: string, weight: number) {
  return {
    region: 'eu-west1',
    zone: null,
    origin,
    originHost: null,
    latitude: 50.4,
    longitude: 3.8,
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

/** Writes the cluster's weight, one write after another, each with a weight never used before, until `stop`. */
async function writeWhile(
  wm: WaymarkProcess,
  origin: string,
  phase: string,
  weights: { next: number },
  outcomes: WriteOutcome[],
  stop: { done: boolean },
): Promise<void> {
  while (!stop.done) {
    const weight = weights.next++;
    const started = performance.now();
    try {
      const res = await fetch(`${wm.url}/_waymark/api/v1${CLUSTER_PATH}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${wm.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(clusterBody(origin, weight)),
        signal: AbortSignal.timeout(WRITE_ANSWER_LIMIT_MS),
      });
      const text = await res.text();
      const type = res.headers.get('content-type') ?? '';
      outcomes.push({
        phase,
        weight,
        status: res.status,
        problem: type.startsWith('application/problem+json') ? String(JSON.parse(text).code ?? '') : null,
        error: null,
        ms: performance.now() - started,
      });
    } catch (error) {
      outcomes.push({
        phase,
        weight,
        status: null,
        problem: null,
        error: String(error),
        ms: performance.now() - started,
      });
    }
    await sleep(WRITE_GAP_MS);
  }
}

/** Whether an answer keeps the claim: a 2xx, or a 503 `store-unavailable` problem document. */
const writeAnswerOk = (o: WriteOutcome) =>
  (o.status !== null && o.status >= 200 && o.status < 300) || (o.status === 503 && o.problem === 'store-unavailable');

/**
 * Compares the store with what the writer was told. Acknowledged (2xx) and missing from the audit log: a
 * lost write. The row's weight not the last committed write's: half-written. A write answered 503 that
 * committed anyway is counted apart (`committedDespite503`): an answer lost after COMMIT cannot be told
 * from a failed COMMIT by any client of a remote database, so it is reported, not claimed.
 */
function checkWrites(view: StoreView, outcomes: WriteOutcome[], log: (line: string) => void) {
  const committed = new Set(view.audited);
  let lost = 0;
  let halfWritten = 0;
  let committedDespite503 = 0;
  for (const o of outcomes) {
    const acked = o.status !== null && o.status >= 200 && o.status < 300;
    if (acked && !committed.has(o.weight)) {
      lost += 1;
      log(`lost write: weight ${o.weight} (${o.phase}) acknowledged ${o.status} but not in the audit log`);
    }
    if (!acked && committed.has(o.weight)) committedDespite503 += 1;
  }
  // Writes were sent one after another, each weight once: the last committed is the highest audited weight.
  const sent = new Set(outcomes.map((o) => o.weight));
  const lastCommitted = [...committed]
    .filter((w) => sent.has(w))
    .sort((a, b) => a - b)
    .pop();
  if (lastCommitted !== undefined && view.weight !== lastCommitted) {
    halfWritten += 1;
    log(`half-written: the row says weight ${view.weight}, the audit log's last write ${lastCommitted}`);
  }
  // Every audited weight must be one the writer sent (or the setup's 100): no invented writes.
  for (const w of committed) if (w !== 100 && !sent.has(w)) halfWritten += 1;
  return { lost, halfWritten, committedDespite503 };
}

// --- readiness ------------------------------------------------------------------------------------------

async function ready(url: string): Promise<{ status: number; json: Record<string, unknown> | null }> {
  try {
    const res = await fetch(`${url}/_waymark/health/ready`, { signal: AbortSignal.timeout(5_000) });
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = null;
    }
    return { status: res.status, json };
  } catch {
    return { status: 0, json: null };
  }
}

/** Waits until the process serves the store's revision and says ready; false after `limitMs`. */
async function caughtUp(url: string, revision: () => number, limitMs: number): Promise<boolean> {
  const end = performance.now() + limitMs;
  while (performance.now() < end) {
    const r = await ready(url);
    if (r.status === 200 && r.json?.status === 'ready' && r.json.snapshotVersion === revision()) return true;
    await sleep(200);
  }
  return false;
}

// --- the worker in workerd ------------------------------------------------------------------------------

interface Edge {
  mf: Miniflare;
  pids: number[];
}

/** One workerd (a fresh isolate) running the bundle, its KV persisted in `kvDir` (shared by every start). */
async function startEdge(bundleDir: string, kvDir: string, storeUrl: string, logTail: string[]): Promise<Edge> {
  const settings = wranglerSettings();
  const before = new Set(descendantsNamed('workerd'));
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(bundleDir, 'worker.js'),
    modulesRoot: bundleDir,
    compatibilityDate: settings.compatibilityDate,
    compatibilityFlags: settings.compatibilityFlags,
    bindings: {
      ...settings.vars,
      WAYMARK_DATABASE_URL: storeUrl,
      WAYMARK_ADMIN_TOKEN: CHAOS_ADMIN_TOKEN,
      WAYMARK_SNAPSHOT_REFRESH_MS: '500',
      WAYMARK_ACCESS_LOG_SAMPLE: '0',
      WAYMARK_LOG_LEVEL: 'error',
    },
    kvNamespaces: ['WAYMARK_SNAPSHOTS'],
    kvPersist: kvDir,
    host: '127.0.0.1',
    port: 0,
    cf: false,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      const keep = (d: Buffer) => {
        logTail.push(d.toString());
        if (logTail.length > 20) logTail.shift();
      };
      stdout.on('data', keep);
      stderr.on('data', keep);
    },
  } as ConstructorParameters<typeof Miniflare>[0]);
  await bounded(mf.ready, EDGE_STEP_MS, 'starting workerd');
  return { mf, pids: descendantsNamed('workerd').filter((pid) => !before.has(pid)) };
}

async function stopEdge(edge: Edge): Promise<void> {
  await bounded(edge.mf.dispose(), EDGE_STEP_MS, 'stopping workerd').catch(() => undefined);
  killPids(edge.pids, 'workerd');
}

/** A client in New York (request.cf as Cloudflare sets it): routed to us-east1 first. */
const NEW_YORK = { latitude: '40.71', longitude: '-74.01', colo: 'EWR', country: 'US' };

/** An open loop through a workerd's dispatchFetch: `perSec` requests for `ms`, each failure a 5xx or an error. */
async function edgeLoad(edge: Edge, perSec: number, ms: number) {
  const total = Math.round((perSec * ms) / 1000);
  const failures: string[] = [];
  const latencies: number[] = [];
  const sends: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / perSec;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sends.push(
      (async () => {
        const t0 = performance.now();
        try {
          const res = await edge.mf.dispatchFetch(`http://${HOST}/edge-cold-${i}`, {
            cf: NEW_YORK,
            signal: AbortSignal.timeout(LOAD_TIMEOUT_MS),
          } as Parameters<Miniflare['dispatchFetch']>[1]);
          await res.arrayBuffer();
          latencies.push(performance.now() - t0);
          if (res.status >= 500) failures.push(`${res.status} ${res.headers.get('content-type')}`);
        } catch (error) {
          failures.push(String(error));
        }
      })(),
    );
  }
  await Promise.all(sends);
  return { requests: total, failures, latencies };
}

// --- the scenario ---------------------------------------------------------------------------------------

interface Tally {
  requests: number;
  clientErrors: number;
  lostWrites: number;
  invariantViolations: number;
  details: Record<string, number | string>;
}

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  return Math.round(percentile(Float64Array.from(values).sort(), 99));
}

function addLoad(t: Tally, label: string, report: LoadReport, log: (line: string) => void): void {
  t.requests += report.requests;
  t.clientErrors += report.failures.length;
  t.details[`${label}.p99Ms`] = p99(report.latenciesMs.get);
  t.details[`${label}.maxMs`] = Math.round(Math.max(0, ...report.latenciesMs.get));
  if (report.failures.length > 0) {
    t.details[`${label}.errors`] = report.failures.length;
    const first = report.failures[0];
    log(`${label}: ${report.failures.length} failed, first at ${first?.at} ms: ${first?.status ?? first?.error}`);
  }
}

/** Configures the shop service (two clusters) through a process's admin API. */
async function configure(wm: WaymarkProcess, us: UpstreamProcess, eu: UpstreamProcess): Promise<void> {
  const steps: [string, string, unknown][] = [
    ['PUT', '/services/shop', { hosts: [HOST], failover: [], policy: {}, subsets: {} }],
    [
      'PUT',
      '/services/shop/clusters/ue1',
      { ...clusterBody(us.url, 100), region: 'us-east1', latitude: 33.2, longitude: -80 },
    ],
    ['PUT', CLUSTER_PATH, clusterBody(eu.url, 100)],
  ];
  for (const [method, path, body] of steps) {
    const res = await wm.admin(method, path, body);
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
  }
}

/**
 * One fault: its action runs while the load and the admin writer run; then the store is back, the load
 * goes on for `recoverMs`, and the process must serve the store's revision again within CATCH_UP_MS.
 */
async function fault(
  t: Tally,
  o: {
    label: string;
    wm: WaymarkProcess;
    origin: string;
    recoverMs: number;
    act: () => Promise<void>;
    revision: () => number;
    weights: { next: number };
    outcomes: WriteOutcome[];
    log: (line: string) => void;
  },
): Promise<void> {
  o.log(`${o.label}: fault`);
  const load = steadyLoad({
    url: o.wm.url,
    host: HOST,
    ratePerSec: LOAD_PER_SEC,
    postShare: 0,
    path: `/${o.label}`,
    timeoutMs: LOAD_TIMEOUT_MS,
  });
  const stop = { done: false };
  const writer = writeWhile(o.wm, o.origin, o.label, o.weights, o.outcomes, stop);
  // This process's own event-loop delay: latencies it adds (starting workerd, say) are not Waymark's.
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  const started = performance.now();
  await o.act();
  t.details[`${o.label}.faultS`] = Math.round((performance.now() - started) / 100) / 10;
  stop.done = true;
  o.log(`${o.label}: recovering (the writer's last write answers, the load goes on ${o.recoverMs} ms)`);
  // The cause of the last refusal as the admin API logged it (a `store error` line's innermost cause).
  const causes = o.wm
    .output()
    .filter((line) => line.includes('"message":"store error"'))
    .map((line) => /"error":"((?:[^"\\]|\\.)*)"/.exec(line)?.[1]?.split('caused by: ').at(-1))
    .filter((e): e is string => e !== undefined);
  if (causes.length > 0) t.details[`${o.label}.lastStoreError`] = (causes.at(-1) ?? '').slice(0, 120);
  await sleep(o.recoverMs);
  await writer;
  addLoad(t, o.label, await load.stop(), o.log);
  o.log(`${o.label}: waiting for the process to catch up`);
  loopDelay.disable();
  t.details[`${o.label}.runnerLoopDelayMaxMs`] = Math.round(loopDelay.max / 1e6);
  if (!(await caughtUp(o.wm.url, o.revision, CATCH_UP_MS))) {
    t.invariantViolations += 1;
    o.log(
      `${o.label}: the process did not catch up with the store's revision ${o.revision()} within ${CATCH_UP_MS} ms`,
    );
  }
}

/** Counts every write answer that breaks the claim, and sums up the writes of a store. */
function tallyWrites(t: Tally, store: string, outcomes: WriteOutcome[], view: StoreView, log: (line: string) => void) {
  for (const o of outcomes)
    if (!writeAnswerOk(o)) {
      t.invariantViolations += 1;
      log(
        `${o.phase}: write ${o.weight} answered ${o.status ?? o.error} ${o.problem ?? ''} after ${Math.round(o.ms)} ms`,
      );
    }
  const checked = checkWrites(view, outcomes, log);
  t.lostWrites += checked.lost;
  t.invariantViolations += checked.halfWritten;
  t.requests += outcomes.length;
  const count = (f: (o: WriteOutcome) => boolean) => outcomes.filter(f).length;
  t.details[`${store}.writes`] = outcomes.length;
  for (const phase of new Set(outcomes.map((o) => o.phase)))
    t.details[`${phase}.writes`] = outcomes
      .filter((o) => o.phase === phase)
      .map((o) => o.status ?? 'none')
      .join(' ');
  t.details[`${store}.writes2xx`] = count((o) => o.status !== null && o.status < 300);
  t.details[`${store}.writes503`] = count((o) => o.status === 503);
  t.details[`${store}.writesOther`] = count((o) => !writeAnswerOk(o));
  t.details[`${store}.writeMaxMs`] = Math.round(Math.max(0, ...outcomes.map((o) => o.ms)));
  t.details[`${store}.committedDespite503`] = checked.committedDespite503;
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const { quick, dir, log } = context;
  const faultMs = quick ? 4_000 : 20_000;
  const lockMs = quick ? LOCK_LONGER_THAN_BUSY_MS : 20_000;
  const recoverMs = quick ? 2_000 : 8_000;
  const coldLoadMs = quick ? 2_000 : 10_000;
  const t: Tally = { requests: 0, clientErrors: 0, lostWrites: 0, invariantViolations: 0, details: {} };
  const pids = new Set<number>();
  const rss = new RssWatch(() => [...pids]);
  const cleanups: (() => Promise<void> | void)[] = [];
  const logTail: string[] = [];
  const env = {
    WAYMARK_REGION: 'us-east1',
    WAYMARK_SNAPSHOT_REFRESH_MS: '500',
    WAYMARK_SYNC_INTERVAL_MS: '3000',
    // warn: the admin API's "store error" lines say why each write was refused (in the details).
    WAYMARK_LOG_LEVEL: 'warn',
  };
  try {
    const bundleDir = join(dir, 'bundle');
    mkdirSync(bundleDir, { recursive: true });
    // The bundle builds while the file store's faults run (it is needed only for the remote store's).
    const bundled = buildBundle(dir, bundleDir).then(() => log('the worker bundle is built'));
    bundled.catch(() => undefined);
    const [us, eu] = await Promise.all([
      startUpstreamProcess('ue1', 'us-east1'),
      startUpstreamProcess('ew1', 'eu-west1'),
    ]);
    cleanups.push(
      () => us.stop(),
      () => eu.stop(),
    );

    // --- a file store: locked, slow ---------------------------------------------------------------------
    {
      const fileDir = join(dir, 'file');
      const dbPath = join(fileDir, 'waymark.db');
      log('file: starting');
      const wm = await startWaymark({ databaseUrl: `file:${dbPath}`, dir: fileDir, env });
      pids.add(wm.pid);
      cleanups.push(() => wm.stop());
      await configure(wm, us, eu);
      const outcomes: WriteOutcome[] = [];
      const weights = { next: 1_000 };
      const holder = new LockHolder(dbPath);
      cleanups.push(() => holder.close());
      const revision = () => readStore(dbPath).revision;
      const common = { wm, origin: eu.url, recoverMs, revision, weights, outcomes, log };
      await fault(t, {
        ...common,
        label: 'file-locked',
        act: async () => {
          t.details['file-locked.lockWaitMs'] = Math.round(await holder.hold(lockMs));
        },
      });
      await fault(t, {
        ...common,
        label: 'file-slow',
        act: () => holder.intermittently(faultMs, 1_500, 200),
      });
      holder.close();
      tallyWrites(t, 'file', outcomes, readStore(dbPath), log);
      await wm.stop();
      pids.delete(wm.pid);
    }

    // --- a remote store: unreachable (refused, then hanging) with cold starts, locked, slow --------------
    {
      const remoteDir = join(dir, 'remote');
      mkdirSync(remoteDir, { recursive: true });
      const dbPath = join(remoteDir, 'remote.db');
      log('remote: starting the store and a warm process');
      const hrana = await startStoreProcess(remoteDir, dbPath);
      cleanups.push(() => hrana.stop());
      const proxy = await startTcpProxy(Number(new URL(hrana.url).port));
      cleanups.push(() => proxy.close());
      const warmDir = join(remoteDir, 'warm');
      const wm = await startWaymark({ databaseUrl: proxy.url, dir: warmDir, env });
      pids.add(wm.pid);
      cleanups.push(() => wm.stop());
      await configure(wm, us, eu);
      const revision = () => readStore(dbPath).revision;

      log('remote: waiting for the worker bundle');
      await bundled;
      log('remote: a warm isolate publishes to KV');
      // A warm isolate publishes a write to KV (what every writer on Workers does), then goes away.
      const kvDir = join(remoteDir, 'kv');
      const warmEdge = await startEdge(bundleDir, kvDir, proxy.url, logTail);
      for (const pid of warmEdge.pids) pids.add(pid);
      const published = await bounded(
        warmEdge.mf.dispatchFetch(`http://${EDGE_HOST}/_waymark/api/v1/services/edge-kv`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${CHAOS_ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ hosts: [EDGE_HOST], failover: [], policy: {}, subsets: {} }),
        }),
        EDGE_STEP_MS,
        'a write through the warm isolate',
      );
      await published.arrayBuffer();
      const latest = await (await warmEdge.mf.getKVNamespace('WAYMARK_SNAPSHOTS')).get('latest', 'arrayBuffer');
      if (published.status >= 300 || latest === null)
        throw new Error(`the warm isolate did not publish to KV (${published.status})`);
      await stopEdge(warmEdge);
      log("remote: waiting for the warm process's snapshot file");

      // The warm process's snapshot file holds the store's revision before the outage starts.
      const warmCache = join(warmDir, 'waymark-snapshot.json');
      const fileEnd = performance.now() + 10_000;
      while (
        performance.now() < fileEnd &&
        !(
          existsSync(warmCache) &&
          (JSON.parse(readFileSync(warmCache, 'utf8')) as { version: number }).version === revision()
        )
      )
        await sleep(100);

      log('remote: the store fails');
      const outcomes: WriteOutcome[] = [];
      const weights = { next: 5_000 };
      const common = { wm, origin: eu.url, recoverMs, revision, weights, outcomes, log };

      const coldNode = async (label: string, mode: string) => {
        log(`${label}: starting cold while the store ${mode}`);
        const coldDir = join(remoteDir, label);
        mkdirSync(coldDir, { recursive: true });
        copyFileSync(warmCache, join(coldDir, 'waymark-snapshot.json'));
        const starting = startWaymark({ databaseUrl: proxy.url, dir: coldDir, env });
        // A start that never listens is stopped by startWaymark itself (30 s); we stop waiting sooner.
        starting.then((p) => pids.add(p.pid)).catch(() => undefined);
        cleanups.push(async () => (await starting.catch(() => null))?.kill());
        const cold = await Promise.race([
          starting.catch((error: unknown) => {
            log(`${label}: ${String(error).slice(0, 1_500)}`);
            return null;
          }),
          sleep(HUNG_START_LIMIT_MS).then(() => null),
        ]);
        if (!cold) {
          t.invariantViolations += 1;
          t.details[`${label}.listening`] = 'no';
          log(`${label}: a cold start while the store ${mode} did not listen within ${HUNG_START_LIMIT_MS} ms`);
          return;
        }
        log(`${label}: listening`);
        const r = await ready(cold.url);
        t.details[`${label}.ready`] = `${r.status} ${String(r.json?.status)}`;
        if (r.status !== 200) t.invariantViolations += 1;
        const report = await openLoop({
          url: cold.url,
          host: HOST,
          ratePerSec: COLD_LOAD_PER_SEC,
          durationMs: coldLoadMs,
          postShare: 0,
          path: `/${label}`,
          timeoutMs: LOAD_TIMEOUT_MS,
        });
        addLoad(t, label, report, log);
        await cold.kill();
      };

      const coldEdge = async () => {
        log('cold-edge: starting a fresh workerd');
        const edge = await startEdge(bundleDir, kvDir, proxy.url, logTail);
        log('cold-edge: workerd is ready');
        for (const pid of edge.pids) pids.add(pid);
        try {
          const r = await bounded(
            edge.mf.dispatchFetch(`http://${HOST}/_waymark/health/ready`),
            EDGE_STEP_MS,
            "the cold isolate's ready check",
          );
          const body = (await r.json().catch(() => null)) as Record<string, unknown> | null;
          t.details['cold-edge.ready'] = `${r.status} ${String(body?.status)}`;
          if (r.status !== 200) t.invariantViolations += 1;
          const load = await edgeLoad(edge, EDGE_PER_SEC, coldLoadMs);
          t.requests += load.requests;
          t.clientErrors += load.failures.length;
          t.details['cold-edge.p99Ms'] = p99(load.latencies);
          if (load.failures.length > 0) {
            t.details['cold-edge.errors'] = load.failures.length;
            log(`cold-edge: ${load.failures.length} failed: ${load.failures[0]}`);
          }
        } finally {
          await stopEdge(edge);
        }
      };

      await fault(t, {
        ...common,
        label: 'remote-unreachable',
        act: async () => {
          await proxy.setMode('refuse');
          const started = performance.now();
          await Promise.all([coldNode('cold-node-refused', 'refused connections'), coldEdge()]);
          await sleep(Math.max(0, faultMs / 2 - (performance.now() - started)));
          await proxy.setMode('hang');
          const hung = performance.now();
          await coldNode('cold-node-hanging', 'hung');
          await sleep(Math.max(0, faultMs / 2 - (performance.now() - hung)));
          await proxy.setMode('pass');
        },
      });
      const holder = new LockHolder(dbPath);
      cleanups.push(() => holder.close());
      await fault(t, {
        ...common,
        label: 'remote-locked',
        act: async () => {
          const waited = await holder.hold(lockMs).catch(async (error: unknown) => {
            // Who holds the lock: the store's open streams, as the Hrana test server sees them.
            const streams = await fetch(`${hrana.url}/_debug/streams`, { signal: AbortSignal.timeout(5_000) })
              .then((r) => r.text())
              .catch((e: unknown) => String(e));
            throw new Error(`${String(error)}; the store's open streams: ${streams.slice(0, 3_000)}`);
          });
          t.details['remote-locked.lockWaitMs'] = Math.round(waited);
        },
      });
      holder.close();
      await fault(t, {
        ...common,
        label: 'remote-slow',
        act: async () => {
          await proxy.setMode('slow', 1_500);
          await sleep(faultMs);
          await proxy.setMode('pass');
        },
      });
      // Give a write still waiting on the slow store its answer before the store is read.
      await sleep(2_000);
      tallyWrites(t, 'remote', outcomes, readStore(dbPath), log);
      if (await Promise.race([wm.exited.then(() => true), sleep(0).then(() => false)])) {
        t.invariantViolations += 1;
        log('the warm process exited during the run');
      }
    }
  } catch (error) {
    if (logTail.length) log(`workerd's last output:\n${logTail.join('').trimEnd()}`);
    throw error;
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
  }
  const peakRssMb = Math.round(rss.stop());
  return {
    scenario: '2 store faults',
    requests: t.requests,
    clientErrors: t.clientErrors,
    savableErrors: 0,
    duplicatedNonIdempotent: 0,
    lostWrites: t.lostWrites,
    invariantViolations: t.invariantViolations,
    peakRssMb,
    details: t.details,
  };
}

const scenario: Scenario = { name: '2 store faults', run };
export default scenario;
