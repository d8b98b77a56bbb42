import type { Hono } from 'hono';
import { createApp, isWaymarkRequest } from './app.js';
import type { AppEnv } from './app-env.js';
import { AccessLog, DEFAULT_ACCESS_LOG_SAMPLE } from './observe/access-log.js';
import { analyticsObserver } from './observe/analytics.js';
import { consoleLogger, errorFields, type Logger } from './observe/log.js';
import type { RequestObserver } from './observe/observer.js';
import { SpanExporter } from './observe/traces.js';
import { requestIdFrom } from './observe/request-id.js';
import { Problem } from './problem.js';
import { proxyFetch } from './proxy/fetch-proxy.js';
import { fetchTransport } from './proxy/fetch-transport.js';
import { createRuntime, type Runtime } from './runtime.js';
import { openStore } from './store/client.js';
import { kvArchive } from './store/kv-archive.js';
import {
  defineSyncCoordinator,
  SYNC_COORDINATOR_NAME,
  type SyncCoordinator as SyncCoordinatorObject,
} from './sync-coordinator.js';
import { checkEnv, type Env, type Misconfiguration, misconfiguredResponse, problemResponse } from './worker-env.js';

export type { Env } from './worker-env.js';

export interface WorkerOptions {
  /** Where log lines go; by default JSON lines on the console at WAYMARK_LOG_LEVEL (tests pass a silent one). */
  log?: Logger;
  /** Where access log lines go; console.log, a line each (Workers Logs), by default. */
  accessLog?: (lines: string[]) => void;
  /** The access log's sample draw; Math.random by default. */
  sampleRandom?: () => number;
}

export interface WaymarkWorker {
  fetch: ExportedHandlerFetchHandler<Env>;
  scheduled: ExportedHandlerScheduledHandler<Env>;
}

type Isolate =
  | {
      env: Env;
      runtime: Runtime;
      app: Hono<AppEnv>;
      sync: DurableObjectNamespace<SyncCoordinatorObject> | undefined;
      misconfiguration?: undefined;
    }
  | { env: Env; misconfiguration: Misconfiguration };

/** Workers allow 6 simultaneous outbound connections per invocation. */
const WORKERS_MAX_CONNECTIONS = 6;

/** The runtime for these bindings, as every Worker entry (handlers, sync coordinator) builds it. */
function buildRuntime(
  env: Env,
  options: WorkerOptions,
):
  | { runtime: Runtime; sync: DurableObjectNamespace<SyncCoordinatorObject> | undefined; misconfiguration?: undefined }
  | { misconfiguration: Misconfiguration } {
  const checked = checkEnv(env);
  if (!checked.ok) {
    // Once per isolate, not per request: every request gets the same 503 until the bindings change.
    (options.log ?? consoleLogger()).log('error', 'waymark is misconfigured; answering 503 to all traffic', {
      ...checked.misconfiguration,
    });
    return { misconfiguration: checked.misconfiguration };
  }
  const { settings, snapshots, sync, analytics } = checked;
  const runtime = createRuntime({
    settings,
    store: openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN),
    maxProbeConcurrency: WORKERS_MAX_CONNECTIONS,
    transport: fetchTransport,
    // Only writers publish (after a committed write, or a sync that moved the revision): a read-only
    // isolate writing KV on every load would hit KV's one write per second per key.
    ...(snapshots ? { archive: kvArchive(snapshots), archiveEveryLoad: false } : {}),
    ...(options.log ? { log: options.log } : {}),
    observers: (metrics) => {
      const observers: RequestObserver[] = [
        new AccessLog({
          sample: settings.WAYMARK_ACCESS_LOG_SAMPLE ?? DEFAULT_ACCESS_LOG_SAMPLE.workers,
          write: options.accessLog ?? ((lines) => lines.forEach((line) => console.log(line))),
          // An isolate may be evicted at any time: each line leaves through its request's waitUntil.
          buffered: false,
          ...(options.sampleRandom ? { random: options.sampleRandom } : {}),
        }),
      ];
      if (settings.WAYMARK_OTLP_ENDPOINT)
        observers.push(
          new SpanExporter({
            endpoint: settings.WAYMARK_OTLP_ENDPOINT,
            // No timers between requests on Workers: each request's spans go out through its waitUntil.
            flushEveryMs: 0,
            now: Date.now,
            onDrop: (n) => metrics.spansDropped.inc([], n),
          }),
        );
      if (analytics) observers.push(analyticsObserver(analytics));
      return observers;
    },
  });
  return { runtime, sync };
}

/** The Worker's handlers; the runtime is built once per isolate, on the first event. */
export function createWorker(options: WorkerOptions = {}): WaymarkWorker {
  let isolate: Isolate | undefined;
  const isolateFor = (env: Env): Isolate => {
    if (isolate?.env === env) return isolate;
    const built = buildRuntime(env, options);
    isolate = built.misconfiguration
      ? { env, misconfiguration: built.misconfiguration }
      : { env, runtime: built.runtime, app: createApp(built.runtime), sync: built.sync };
    return isolate;
  };

  return {
    fetch(request, env, ctx) {
      let built: Isolate;
      try {
        built = isolateFor(env);
      } catch (error) {
        // A bug, not a setting: the stack goes to the log, the client gets no internals.
        const requestId = requestIdFrom(request.headers.get('x-request-id'));
        (options.log ?? consoleLogger()).log('error', 'waymark cannot start', { requestId, ...errorFields(error) });
        return problemResponse(
          new Problem({
            code: 'internal',
            detail: 'an unexpected error occurred; the request id finds it in the logs',
          }),
          requestId,
        );
      }
      const url = request.url;
      const hostStart = url.indexOf('://') + 3;
      const pathStart = url.indexOf('/', hostStart);
      const path = pathStart < 0 ? '/' : url.slice(pathStart);
      if (built.misconfiguration) return misconfiguredResponse(request, path, built.misconfiguration);
      const { app, runtime } = built;
      const host = request.headers.get('host') ?? url.slice(hostStart, pathStart < 0 ? undefined : pathStart);
      if (isWaymarkRequest(path, [host], runtime.settings.WAYMARK_ADMIN_HOSTS)) return app.fetch(request, env, ctx);
      return proxyFetch(request, runtime, (work) => ctx.waitUntil(work.catch(() => undefined)));
    },
    /**
     * The Cron Trigger, a backstop: flush what this isolate saw, then wake the sync coordinator (it syncs
     * only if its last sync is older than the interval); without the WAYMARK_SYNC binding, sync here.
     */
    async scheduled(_controller, env, ctx) {
      const built = isolateFor(env);
      // Already logged when the isolate was built; a sync with bad settings would only add noise.
      if (built.misconfiguration) return;
      const { runtime, sync } = built;
      if (sync) {
        const wake = async () => {
          await runtime.flushReports();
          const { outcome } = await sync.get(sync.idFromName(SYNC_COORDINATOR_NAME)).wake();
          runtime.log.log('debug', 'sync coordinator woken', { outcome });
        };
        ctx.waitUntil(
          wake().catch((error: unknown) =>
            runtime.log.log('error', 'could not wake the sync coordinator', errorFields(error)),
          ),
        );
        return;
      }
      ctx.waitUntil(
        runtime
          .flushReports()
          .then(() => runtime.runSync())
          .then((summary) => runtime.log.log('info', 'health sync', { ...summary }))
          .catch((error: unknown) => runtime.log.log('error', 'health sync failed', errorFields(error))),
      );
    },
  } satisfies ExportedHandler<Env>;
}

/** The sync coordinator's class for these options; its runtime is built as the Worker's is. */
export function createSyncCoordinator(options: WorkerOptions = {}) {
  return defineSyncCoordinator((env) => {
    const built = buildRuntime(env, options);
    return built.misconfiguration ? undefined : built.runtime;
  });
}

/** The Durable Object class behind the WAYMARK_SYNC binding (wrangler.toml). */
export const SyncCoordinator = createSyncCoordinator();

/** What wrangler deploys: log lines as JSON on the console (Workers Logs). */
export default createWorker();
