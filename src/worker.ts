import type { Hono } from 'hono';
import { createApp, isWaymarkPath } from './app.js';
import type { AppEnv } from './app-env.js';
import { consoleLogger, errorFields } from './observe/log.js';
import { proxyFetch } from './proxy/fetch-proxy.js';
import { fetchTransport } from './proxy/fetch-transport.js';
import { createRuntime, type Runtime } from './runtime.js';
import { parseSettings } from './settings.js';
import { openStore } from './store/client.js';

/** Bindings: the settings as vars and secrets (see README). */
export type Env = Record<string, unknown>;

interface Isolate {
  env: Env;
  runtime: Runtime;
  app: Hono<AppEnv>;
}

/** Workers allow 6 simultaneous outbound connections per invocation. */
const WORKERS_MAX_CONNECTIONS = 6;

let isolate: Isolate | undefined;

/** Built once per isolate (settings are parsed and the store opened on the first event). */
function isolateFor(env: Env): Isolate {
  if (isolate?.env !== env) {
    const settings = parseSettings(env);
    const runtime = createRuntime({
      settings,
      store: openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN),
      maxProbeConcurrency: WORKERS_MAX_CONNECTIONS,
      transport: fetchTransport,
    });
    isolate = { env, runtime, app: createApp(runtime) };
  }
  return isolate;
}

export default {
  fetch(request, env, ctx) {
    try {
      const { app, runtime } = isolateFor(env);
      const url = request.url;
      const path = url.slice(url.indexOf('/', url.indexOf('://') + 3));
      if (isWaymarkPath(path)) return app.fetch(request, env, ctx);
      return proxyFetch(request, runtime, (work) => ctx.waitUntil(work.catch(() => undefined)));
    } catch (error) {
      consoleLogger().log('error', 'waymark cannot start', errorFields(error));
      const detail = error instanceof Error ? error.message : String(error);
      return Response.json({ type: 'urn:waymark:problem:misconfigured', title: 'Misconfigured', status: 500, code: 'misconfigured', detail }, {
        status: 500,
        headers: { 'content-type': 'application/problem+json' },
      });
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
