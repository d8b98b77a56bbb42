import type { Hono } from 'hono';
import { createApp, isWaymarkRequest } from './app.js';
import type { AppEnv } from './app-env.js';
import { consoleLogger, errorFields, type Logger } from './observe/log.js';
import { proxyFetch } from './proxy/fetch-proxy.js';
import { fetchTransport } from './proxy/fetch-transport.js';
import { createRuntime, type Runtime } from './runtime.js';
import { parseSettings } from './settings.js';
import { openStore } from './store/client.js';

/** Bindings: the settings as vars and secrets (see README). */
export type Env = Record<string, unknown>;

export interface WorkerOptions {
  /** Where log lines go; by default JSON lines on the console at WAYMARK_LOG_LEVEL (tests pass a silent one). */
  log?: Logger;
}

export interface WaymarkWorker {
  fetch: ExportedHandlerFetchHandler<Env>;
  scheduled: ExportedHandlerScheduledHandler<Env>;
}

interface Isolate {
  env: Env;
  runtime: Runtime;
  app: Hono<AppEnv>;
}

/** Workers allow 6 simultaneous outbound connections per invocation. */
const WORKERS_MAX_CONNECTIONS = 6;

/** The Worker's handlers; the runtime is built once per isolate, on the first event. */
export function createWorker(options: WorkerOptions = {}): WaymarkWorker {
  let isolate: Isolate | undefined;
  const isolateFor = (env: Env): Isolate => {
    if (isolate?.env !== env) {
      const settings = parseSettings(env);
      const runtime = createRuntime({
        settings,
        store: openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN),
        maxProbeConcurrency: WORKERS_MAX_CONNECTIONS,
        transport: fetchTransport,
        ...(options.log ? { log: options.log } : {}),
      });
      isolate = { env, runtime, app: createApp(runtime) };
    }
    return isolate;
  };

  return {
    fetch(request, env, ctx) {
      try {
        const { app, runtime } = isolateFor(env);
        const url = request.url;
        const hostStart = url.indexOf('://') + 3;
        const pathStart = url.indexOf('/', hostStart);
        const path = pathStart < 0 ? '/' : url.slice(pathStart);
        const host = request.headers.get('host') ?? url.slice(hostStart, pathStart < 0 ? undefined : pathStart);
        if (isWaymarkRequest(path, [host], runtime.settings.WAYMARK_ADMIN_HOSTS)) return app.fetch(request, env, ctx);
        return proxyFetch(request, runtime, (work) => ctx.waitUntil(work.catch(() => undefined)));
      } catch (error) {
        (options.log ?? consoleLogger()).log('error', 'waymark cannot start', errorFields(error));
        const detail = error instanceof Error ? error.message : String(error);
        return Response.json(
          {
            type: 'urn:waymark:problem:misconfigured',
            title: 'Misconfigured',
            status: 500,
            code: 'misconfigured',
            detail,
          },
          {
            status: 500,
            headers: { 'content-type': 'application/problem+json' },
          },
        );
      }
    },
    /** The Cron Trigger: flush what this isolate saw, then run the health sync. */
    async scheduled(_controller, env, ctx) {
      const { runtime } = isolateFor(env);
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

/** What wrangler deploys: log lines as JSON on the console (Workers Logs). */
export default createWorker();
