/**
 * The `scale` section's Workers half: the worker bundle (what `wrangler deploy` uploads) in a fresh workerd
 * started by Miniflare 4, its store the scale database behind the Hrana test server (libSQL over HTTP, as
 * Turso is), its WAYMARK_SNAPSHOTS namespace Miniflare's real KV holding the archive a writer publishes.
 *
 *  - cold: a fresh workerd (a new isolate) and its first proxied response for one service: Waymark reads the
 *    store's revision, the archive's catalog and the one shard that holds the host, then compiles that
 *    service alone;
 *  - heap: the isolate's heap (DevTools protocol, after a full GC) after that response, and again once every
 *    service has been served one request (each service compiled, with its plans for the client's region).
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
import { workerdHeapMb } from './workerd-profile.js';
import { wranglerSettings } from './workerd.js';

export interface WorkerdScaleResult {
  /** Loading the source from the store and publishing it to KV as a writer does (catalog + shards). */
  publishMs: number;
  /** `new Miniflare()` until ready: workerd's process start and the bundle's top level (not Waymark's work). */
  workerdStartMs: number;
  /** The fresh isolate's first proxied request, sent over HTTP on 127.0.0.1 (Waymark's cold start). */
  firstRequestMs: number;
  /** A second request, to another service (one more shard). */
  secondRequestMs: number;
  heapAfterFirstMb: number;
  /** Every service served one request, 8 at a time. */
  servedAllMs: number;
  /** Requests of that pass that did not answer 200. */
  servedAllFailures: number;
  heapAfterAllMb: number;
}

/** One request per service to a whole isolate, this many at once. */
const CONCURRENCY = 8;
const WORKER = 'waymark';

export async function measureWorkerd(options: {
  dbPath: string;
  bundleDir: string;
  kvDir: string;
  services: number;
  hostOf: (i: number) => string;
}): Promise<WorkerdScaleResult> {
  const { dbPath, bundleDir, kvDir } = options;
  const hrana = await startHranaServer({ dbPath });
  const settings = wranglerSettings();
  const logTail: string[] = [];
  const pids = new Set<number>();
  const start = async (inspect: boolean) => {
    const before = new Set(descendantsNamed('workerd'));
    const mf = new Miniflare({
      name: WORKER,
      modules: true,
      scriptPath: join(bundleDir, 'worker.js'),
      modulesRoot: bundleDir,
      compatibilityDate: settings.compatibilityDate,
      compatibilityFlags: settings.compatibilityFlags,
      bindings: {
        ...settings.vars,
        WAYMARK_DATABASE_URL: hrana.url,
        WAYMARK_ADMIN_TOKEN: ADMIN_TOKEN,
        WAYMARK_ACCESS_LOG_SAMPLE: '0',
        WAYMARK_LOG_LEVEL: 'error',
      },
      kvNamespaces: ['WAYMARK_SNAPSHOTS'],
      kvPersist: kvDir,
      host: '127.0.0.1',
      port: 0,
      cf: false,
      ...(inspect ? { inspectorPort: 0 } : {}),
      outboundService: answerOrigins,
      handleRuntimeStdio(stdout: Readable, stderr: Readable) {
        const keep = (d: Buffer) => {
          logTail.push(d.toString());
          if (logTail.length > 20) logTail.shift();
        };
        stdout.on('data', keep);
        stderr.on('data', keep);
      },
    } as ConstructorParameters<typeof Miniflare>[0]);
    const url = await mf.ready;
    for (const pid of descendantsNamed('workerd')) if (!before.has(pid)) pids.add(pid);
    return { mf, origin: url.origin };
  };
  const store = openStore(`file:${dbPath}`);
  let mf: Miniflare | null = null;
  try {
    // A writer's publish: the source at the store's revision, as catalog and shards.
    let t = performance.now();
    const writer = await start(false);
    mf = writer.mf;
    const source = await loadSnapshotSource(store.db);
    // Miniflare's KV from Node: the same namespace; its types are Miniflare's copy of workers-types.
    const namespace = (await writer.mf.getKVNamespace('WAYMARK_SNAPSHOTS')) as unknown as KVNamespace;
    await kvArchive(namespace).put(source);
    await writer.mf.dispose();
    mf = null;
    const publishMs = performance.now() - t;

    t = performance.now();
    const edge = await start(true);
    mf = edge.mf;
    const workerdStartMs = performance.now() - t;
    const get = (i: number) => send(`${edge.origin}/bench/cold`, { host: options.hostOf(i) });
    t = performance.now();
    const first = await get(0);
    const firstRequestMs = performance.now() - t;
    t = performance.now();
    const second = await get(1);
    const secondRequestMs = performance.now() - t;
    for (const res of [first, second])
      if (res.status !== 200)
        throw new Error(`the fresh isolate answered ${res.status}: ${res.body.slice(0, 300)}\n${logTail.join('')}`);
    if (first.headers['x-served-by'] !== SERVED_BY)
      throw new Error(`the first request did not reach the real upstream: ${JSON.stringify(first.headers)}`);
    const inspector = await edge.mf.getInspectorURL();
    const nudge = async () => {
      await send(`${edge.origin}/_waymark/health/live`);
    };
    const heapAfterFirstMb = await workerdHeapMb(inspector, WORKER, nudge);

    t = performance.now();
    let servedAllFailures = 0;
    for (let i = 0; i < options.services; i += CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONCURRENCY, options.services - i) }, (_, k) => get(i + k));
      for (const res of await Promise.all(batch)) if (res.status !== 200) servedAllFailures += 1;
    }
    const servedAllMs = performance.now() - t;
    const heapAfterAllMb = await workerdHeapMb(inspector, WORKER, nudge);
    return {
      publishMs,
      workerdStartMs,
      firstRequestMs,
      secondRequestMs,
      heapAfterFirstMb,
      servedAllMs,
      servedAllFailures,
      heapAfterAllMb,
    };
  } finally {
    await mf?.dispose().catch(() => undefined);
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
