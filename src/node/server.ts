import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getRequestListener } from '@hono/node-server';
import type { AlertOptions } from '../alerts/dispatcher.js';
import { WritePacer } from '../api/write-pacing.js';
import { createApp, isWaymarkPath, isWaymarkRequest } from '../app.js';
import { AccessLog, DEFAULT_ACCESS_LOG_SAMPLE } from '../observe/access-log.js';
import { errorFields, type Logger } from '../observe/log.js';
import { SpanExporter } from '../observe/traces.js';
import type { RandomSource } from '../routing/types.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { parseSettings } from '../settings.js';
import { openStore, type Store } from '../store/client.js';
import { fileArchive } from '../store/file-archive.js';
import { migrateStore } from '../store/migrate.js';
import { createNodeProxy } from './http-proxy.js';
import { undiciTransport } from './undici-transport.js';

export { MIGRATIONS_FOLDER } from '../store/migrate.js';

export interface NodeServer {
  url: string;
  port: number;
  runtime: Runtime;
  /**
   * A graceful stop: stop accepting, turn ready to 503, let requests and open streams finish (up to
   * WAYMARK_DRAIN_MS, then cut what is left), flush the report buffers, close the store.
   */
  close(): Promise<void>;
}

export interface NodeServerOptions {
  /** Settings source; process.env for the real server. */
  env: Record<string, string | undefined>;
  /** A store to use instead of opening WAYMARK_DATABASE_URL (tests wrap one to count queries). */
  store?: Store;
  now?: () => number;
  random?: RandomSource;
  log?: Logger;
  /** Where access log lines go; stdout, in one write per flush, by default. */
  accessLog?: (lines: string[]) => void;
  /** How alerts are delivered (tests shorten the backoff). */
  alerts?: Partial<AlertOptions>;
  /** A cold start over more services than this reads each one when a request first needs it (default 1,000). */
  partialAbove?: number;
}

/**
 * Above this many services a process starts without reading the configuration: the store tells where each
 * host's service is and the region catalog, and a service is read when a request first needs it (the
 * health sync and the admin views read the whole configuration later, in the background of traffic).
 */
const PARTIAL_ABOVE_SERVICES = 1_000;

/** Opens the store (creating a file database's folder), applies migrations, loads the snapshot, listens. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const settings = parseSettings(options.env);
  const store =
    options.store ?? openStore(localPath(settings.WAYMARK_DATABASE_URL), settings.WAYMARK_DATABASE_AUTH_TOKEN);
  const transport = undiciTransport({ streamIdleMs: settings.WAYMARK_STREAM_IDLE_MS });
  const cachePath = snapshotCachePath(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_SNAPSHOT_CACHE);
  const archive = cachePath ? fileArchive(cachePath) : null;
  const now = options.now ?? Date.now;
  const accessLog = new AccessLog({
    sample: settings.WAYMARK_ACCESS_LOG_SAMPLE ?? DEFAULT_ACCESS_LOG_SAMPLE.node,
    write: options.accessLog ?? ((lines) => void process.stdout.write(`${lines.join('\n')}\n`)),
    buffered: true,
  });
  let spans: SpanExporter | null = null;
  const runtime = createRuntime({
    settings,
    store,
    transport,
    ...(archive ? { archive, archiveEveryLoad: true } : {}),
    partialAbove: options.partialAbove ?? PARTIAL_ABOVE_SERVICES,
    ...(options.now ? { now: options.now } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.alerts ? { alerts: options.alerts } : {}),
    observers: (metrics) => {
      const endpoint = settings.WAYMARK_OTLP_ENDPOINT;
      if (endpoint)
        spans = new SpanExporter({
          endpoint,
          flushEveryMs: OBSERVE_FLUSH_MS,
          now,
          onDrop: (n) => metrics.spansDropped.inc([], n),
        });
      return spans ? [accessLog, spans] : [accessLog];
    },
  });
  // An unreachable store does not stop the start: the last good snapshot (the file) serves, ready says
  // `degraded`, and the store is retried with back-off; migrations run once it answers.
  const storeReady = prepareStore(store, runtime);
  // This wait holds the event loop (the back-off sleeps do not): with the store refusing connections
  // nothing else would, and the process would end before it listens (exit 13, found by `npm run chaos`).
  await Promise.race([storeReady, sleep(STORE_FIRST_TRY_MS, { ref: true })]);
  await runtime.snapshots.refresh();
  // On a local file the store's calls run on this thread: admin writes are paced so the proxy keeps it.
  const writePacer =
    store.client.protocol === 'file' ? new WritePacer(() => performance.eventLoopUtilization().active) : undefined;
  const app = createApp(runtime, { metrics: true, ...(writePacer ? { writePacer } : {}) });
  const log = (what: string) => (error: unknown) => runtime.log.log('error', `${what} failed`, errorFields(error));
  // The health sync on a timer (a Cron Trigger on Workers); 0 turns it off for this process.
  const syncTimer =
    settings.WAYMARK_SYNC_INTERVAL_MS > 0
      ? setInterval(
          () => void runtime.runSync({ everyMs: settings.WAYMARK_SYNC_INTERVAL_MS }).catch(log('health sync')),
          settings.WAYMARK_SYNC_INTERVAL_MS,
        )
      : null;
  const flushTimer = setInterval(
    () => {
      if (runtime.reports.due()) void runtime.flushReports();
    },
    Math.min(settings.WAYMARK_REPORT_FLUSH_MS, 1_000),
  );
  // Access log lines and spans leave in the background, never on a request's path.
  const observeTimer = setInterval(() => {
    accessLog.flush();
    void spans?.flush();
  }, OBSERVE_FLUSH_MS);
  syncTimer?.unref();
  flushTimer.unref();
  observeTimer.unref();

  const proxy = createNodeProxy(runtime, transport);
  // Keep the runtime's own Response: admin answers then leave with a content-length in one write.
  const admin = getRequestListener((request, env) => app.fetch(rebuildable(request), env), {
    overrideGlobalObjects: false,
  });
  const adminHosts = settings.WAYMARK_ADMIN_HOSTS;
  // Slow clients: the request head must arrive within WAYMARK_HEADERS_TIMEOUT_MS (Node checks every second,
  // not every 30 s as by default); the body and the response are bounded by the stream idle timeout.
  const headersTimeout = settings.WAYMARK_HEADERS_TIMEOUT_MS;
  const server = createServer({ headersTimeout, connectionsCheckingInterval: 1_000 }, (req, res) => {
    const url = req.url ?? '/';
    // The Host is read (all its values: two are refused) only for Waymark's own paths, never on the proxy's hot path.
    if (isWaymarkPath(url) && isWaymarkRequest(url, req.headersDistinct.host ?? [], adminHosts)) void admin(req, res);
    else proxy.onRequest(req, res);
  });
  server.on('upgrade', proxy.onUpgrade);
  server.on('connect', proxy.onConnect);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.PORT, settings.HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | null = null;
  const close = async () => {
    runtime.lifecycle.draining = true;
    proxy.drain();
    if (syncTimer) clearInterval(syncTimer);
    clearInterval(flushTimer);
    clearInterval(observeTimer);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overdue = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, settings.WAYMARK_DRAIN_MS);
    });
    await Promise.race([proxy.idle(), overdue]);
    clearTimeout(timer);
    // What is left past the drain time is cut; idle keep-alive connections go now.
    server.closeAllConnections();
    proxy.cut();
    await closed;
    await transport.close();
    if (runtime.reports.pending > 0 || runtime.routeSamples.size > 0) await runtime.flushReports();
    await archive?.flush();
    accessLog.flush();
    await spans?.flush();
    store.client.close();
  };
  return {
    url: `http://${settings.HOST.includes(':') ? `[${settings.HOST}]` : settings.HOST}:${port}`,
    port,
    runtime,
    close: () => (closing ??= close()),
  };
}

/**
 * node-server hands Hono a lightweight Request (with overrideGlobalObjects: false, the globals stay
 * undici's), and undici's `new Request(request, init)` cannot read one. hono/body-limit rebuilds the
 * request that way once it has counted a body of undeclared length (chunked, or a DELETE without one):
 * such a request becomes undici's own Request over the same stream first.
 */
function rebuildable(request: Request): Request {
  if (request.method === 'GET' || request.method === 'HEAD' || request.headers.has('content-length')) return request;
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    signal: request.signal,
    duplex: 'half',
  } as RequestInit);
}

/** How often buffered access log lines and spans are written out. */
const OBSERVE_FLUSH_MS = 1_000;
/** How long the start waits for the store (migrations) before serving from the snapshot file. */
const STORE_FIRST_TRY_MS = 2_000;
const STORE_RETRY_MS = [1_000, 2_000, 5_000, 10_000, 30_000] as const;

/** Migrates the store, retrying with back-off while it cannot be reached; then loads the snapshot. */
async function prepareStore(store: Store, runtime: Runtime): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      const migrated = await migrateStore(store, { holder: 'node-server' });
      if (!migrated.ok) throw new Error(migrated.message);
      if (attempt > 0) await runtime.snapshots.refresh();
      return;
    } catch (error) {
      const waitMs = STORE_RETRY_MS[Math.min(attempt, STORE_RETRY_MS.length - 1)] as number;
      runtime.log.log('warn', `the store cannot be migrated; retrying in ${waitMs} ms`, errorFields(error));
      await sleep(waitMs);
    }
  }
}

/** WAYMARK_SNAPSHOT_CACHE, or its default beside a file database (else .waymark/snapshot.json); null: off. */
function snapshotCachePath(databaseUrl: string, setting: string | undefined): string | null {
  if (setting === 'off') return null;
  if (setting) return setting;
  const file =
    databaseUrl.startsWith('file:') && !databaseUrl.startsWith('file::memory:')
      ? databaseUrl.slice('file:'.length).split('?')[0]
      : '';
  return file ? `${file}.snapshot.json` : '.waymark/snapshot.json';
}

function sleep(ms: number, options: { ref?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (!options.ref) timer.unref();
  });
}

function localPath(url: string): string {
  if (url.startsWith('file:') && !url.startsWith('file::memory:')) {
    const path = url.slice('file:'.length).split('?')[0] as string;
    if (path) mkdirSync(dirname(path), { recursive: true });
  }
  return url;
}
