/**
 * The `scale` section's Workers half: the worker bundle (what `wrangler deploy` uploads) in a fresh workerd
 * started by Miniflare 4, its store the scale database behind the Hrana test server (libSQL over HTTP, as
 * Turso is), its WAYMARK_SNAPSHOTS namespace Miniflare's real KV holding the archive a writer publishes.
 *
 *  - cold: a fresh workerd (a new isolate) and its first proxied response for one service: Waymark reads the
 *    store's revision, the archive's catalog and the one shard that holds the host, then compiles that
 *    service alone;
 *  - heap: the isolate's heap (DevTools protocol, after a full GC) after that response, and again once every
 *    service has been served one request (each service compiled, with its plans for the client's region);
 *  - baseline: a bare worker in a fresh workerd doing the same I/O as that first request and nothing else,
 *    so that Waymark's own cold work is told apart from what loopback, Miniflare and workerd cost here.
 *
 * The clients are where Miniflare's placeholder `request.cf` puts them (Austin, Texas). Upstreams: every
 * cluster origin the worker fetches, other than the store's and the real upstream's (127.0.0.1), is
 * answered by Miniflare's outbound service in this process, so that 10,000 services need no 200,000
 * listening origins.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Miniflare } from 'miniflare';
import { startHranaServer } from '../scripts/hrana-server.js';
import { send } from '../scripts/http-client.js';
import { openStore } from '../src/store/client.js';
import { kvArchive } from '../src/store/kv-archive.js';
import { loadSnapshotSource } from '../src/store/snapshots.js';
import { descendantsNamed, killPids } from './proc-stat.js';
import { ADMIN_TOKEN, SERVED_BY } from './proxy.js';
import { median } from './stats.js';
import { workerdHeapMb } from './workerd-profile.js';
import { wranglerSettings } from './workerd.js';

export interface WorkerdScaleResult {
  /** Loading the source from the store and publishing it to KV as a writer does (catalog + shards). */
  publishMs: number;
  /** `new Miniflare()` until ready, per run: workerd's process start and the bundle's top level (not Waymark's work). */
  workerdStartMs: number[];
  /** Each fresh isolate's first proxied request, sent over HTTP on 127.0.0.1 (Waymark's cold start). */
  firstRequestMs: number[];
  /** The same isolate's second request, to another service (one more shard). */
  secondRequestMs: number[];
  /**
   * The first request of a fresh isolate running a bare worker that does the same I/O as Waymark's first
   * request and nothing else: the store's revision (one Hrana pipeline), the KV catalog and one shard
   * (not decoded), and the upstream. What loopback, Miniflare and workerd cost a first request here.
   */
  baselineFirstRequestMs: number[];
  /** Median first request minus the baseline's median: Waymark's own cold work, I/O excluded. */
  ownFirstRequestMs: number;
  heapAfterFirstMb: number;
  /** Every service served one request, 8 at a time. */
  servedAllMs: number;
  /** Requests of that pass that did not answer 200. */
  servedAllFailures: number;
  heapAfterAllMb: number;
}

/** One request per service to a whole isolate, this many at once. */
const CONCURRENCY = 8;
/** Fresh isolates timed, each of Waymark and of the baseline (the median is reported). */
const COLD_RUNS = 3;
const WORKER = 'waymark';
const KV_NAMESPACE = 'WAYMARK_SNAPSHOTS';

/** The baseline worker (see `baselineFirstRequestMs`); `SHARD` and `UPSTREAM` are bindings. */
const BASELINE_WORKER = `export default {
  async fetch(request, env) {
    const store = await fetch(env.STORE + '/v2/pipeline', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ baton: null, requests: [
        { type: 'execute', stmt: { sql: 'select "version" from "revision" where "revision"."id" = ?', args: [{ type: 'integer', value: '1' }] } },
        { type: 'close' },
      ] }),
    });
    await store.arrayBuffer();
    await env.${KV_NAMESPACE}.get('latest', 'arrayBuffer');
    await env.${KV_NAMESPACE}.get(env.SHARD, 'arrayBuffer');
    const res = await fetch(env.UPSTREAM + '/bench/cold');
    return new Response(res.body, res);
  },
};`;

export async function measureWorkerd(options: {
  dbPath: string;
  bundleDir: string;
  kvDir: string;
  services: number;
  hostOf: (i: number) => string;
  /** The upstream the first service's clusters point at (the baseline fetches it too). */
  upstream: string;
}): Promise<WorkerdScaleResult> {
  const { dbPath, bundleDir, kvDir } = options;
  const hrana = await startHranaServer({ dbPath });
  const settings = wranglerSettings();
  const logTail: string[] = [];
  const pids = new Set<number>();
  const common = {
    compatibilityDate: settings.compatibilityDate,
    compatibilityFlags: settings.compatibilityFlags,
    kvNamespaces: [KV_NAMESPACE],
    kvPersist: kvDir,
    host: '127.0.0.1',
    port: 0,
    cf: false,
    outboundService: answerOrigins,
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      const keep = (d: Buffer) => {
        logTail.push(d.toString());
        if (logTail.length > 20) logTail.shift();
      };
      stdout.on('data', keep);
      stderr.on('data', keep);
    },
  };
  const start = async (worker: Record<string, unknown>) => {
    const before = new Set(descendantsNamed('workerd'));
    const t = performance.now();
    const mf = new Miniflare({ ...common, ...worker } as ConstructorParameters<typeof Miniflare>[0]);
    const url = await mf.ready;
    const startMs = performance.now() - t;
    for (const pid of descendantsNamed('workerd')) if (!before.has(pid)) pids.add(pid);
    return { mf, origin: url.origin, startMs };
  };
  const waymark = (inspect: boolean) =>
    start({
      name: WORKER,
      modules: true,
      scriptPath: join(bundleDir, 'worker.js'),
      modulesRoot: bundleDir,
      bindings: {
        ...settings.vars,
        WAYMARK_DATABASE_URL: hrana.url,
        WAYMARK_ADMIN_TOKEN: ADMIN_TOKEN,
        WAYMARK_ACCESS_LOG_SAMPLE: '0',
        WAYMARK_LOG_LEVEL: 'error',
      },
      ...(inspect ? { inspectorPort: 0 } : {}),
    });
  const timed = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
    const t = performance.now();
    const value = await f();
    return [value, performance.now() - t];
  };
  const store = openStore(`file:${dbPath}`);
  let mf: Miniflare | null = null;
  try {
    // A writer's publish: the source at the store's revision, as catalog and shards.
    const [shard, publishMs] = await timed(async () => {
      const writer = await waymark(false);
      mf = writer.mf;
      const source = await loadSnapshotSource(store.db);
      // Miniflare's KV from Node: the same namespace; its types are Miniflare's copy of workers-types.
      const namespace = (await writer.mf.getKVNamespace(KV_NAMESPACE)) as unknown as KVNamespace;
      const archive = kvArchive(namespace);
      await archive.put(source);
      const key = (await archive.get(source.version))?.partial?.shardOf.get(options.hostOf(0));
      await writer.mf.dispose();
      mf = null;
      if (key === undefined) throw new Error('the published catalog does not name the first host');
      return key;
    });

    const workerdStartMs: number[] = [];
    const firstRequestMs: number[] = [];
    const secondRequestMs: number[] = [];
    let heapAfterFirstMb = Number.NaN;
    let servedAllMs = Number.NaN;
    let servedAllFailures = 0;
    let heapAfterAllMb = Number.NaN;
    for (let run = 0; run < COLD_RUNS; run++) {
      // The last run's isolate is also weighed and then served every service.
      const last = run === COLD_RUNS - 1;
      const edge = await waymark(last);
      mf = edge.mf;
      workerdStartMs.push(edge.startMs);
      const get = (i: number) => send(`${edge.origin}/bench/cold`, { host: options.hostOf(i) });
      const [first, firstMs] = await timed(() => get(0));
      const [second, secondMs] = await timed(() => get(1));
      firstRequestMs.push(firstMs);
      secondRequestMs.push(secondMs);
      for (const res of [first, second])
        if (res.status !== 200)
          throw new Error(`the fresh isolate answered ${res.status}: ${res.body.slice(0, 300)}\n${logTail.join('')}`);
      if (first.headers['x-served-by'] !== SERVED_BY)
        throw new Error(`the first request did not reach the real upstream: ${JSON.stringify(first.headers)}`);
      if (last) {
        const inspector = await edge.mf.getInspectorURL();
        const nudge = async () => {
          await send(`${edge.origin}/_waymark/health/live`);
        };
        heapAfterFirstMb = await workerdHeapMb(inspector, WORKER, nudge);
        const t = performance.now();
        for (let i = 0; i < options.services; i += CONCURRENCY) {
          const batch = Array.from({ length: Math.min(CONCURRENCY, options.services - i) }, (_, k) => get(i + k));
          for (const res of await Promise.all(batch)) if (res.status !== 200) servedAllFailures += 1;
        }
        servedAllMs = performance.now() - t;
        heapAfterAllMb = await workerdHeapMb(inspector, WORKER, nudge);
      }
      await edge.mf.dispose();
      mf = null;
    }

    const baselineFirstRequestMs: number[] = [];
    for (let run = 0; run < COLD_RUNS; run++) {
      const bare = await start({
        name: 'baseline',
        modules: true,
        script: BASELINE_WORKER,
        bindings: { STORE: hrana.url, SHARD: shard, UPSTREAM: options.upstream },
      });
      mf = bare.mf;
      const [res, ms] = await timed(() => send(`${bare.origin}/bench/cold`, { host: options.hostOf(0) }));
      if (res.status !== 200 || res.headers['x-served-by'] !== SERVED_BY)
        throw new Error(`the baseline worker answered ${res.status}: ${res.body.slice(0, 300)}\n${logTail.join('')}`);
      baselineFirstRequestMs.push(ms);
      await bare.mf.dispose();
      mf = null;
    }
    return {
      publishMs,
      workerdStartMs,
      firstRequestMs,
      secondRequestMs,
      baselineFirstRequestMs,
      ownFirstRequestMs: median(firstRequestMs) - median(baselineFirstRequestMs),
      heapAfterFirstMb,
      servedAllMs,
      servedAllFailures,
      heapAfterAllMb,
    };
  } finally {
    await (mf as Miniflare | null)?.dispose().catch(() => undefined);
    killPids(pids, 'workerd');
    store.client.close();
    await hrana.close();
  }
}

/**
 * Miniflare's outbound service: the worker's requests to 127.0.0.1 (the store, the real upstream) go
 * there; any other origin is answered here as the upstream would answer it.
 */
async function answerOrigins(request: Request): Promise<Response> {
  const url = new URL(request.url);
  if (url.hostname !== '127.0.0.1') return new Response('ok', { headers: { 'x-served-by': SERVED_BY } });
  const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
  const res = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    body: hasBody ? await request.arrayBuffer() : undefined,
  });
  return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
}
