import type { Hono } from 'hono';
import { createApp, isWaymarkRequest } from './app.js';
import type { AppEnv } from './app-env.js';
import { consoleLogger, errorFields, type Logger } from './observe/log.js';
import { requestIdFrom } from './observe/request-id.js';
import { Problem, renderProblem } from './problem.js';
import { proxyFetch } from './proxy/fetch-proxy.js';
import { fetchTransport } from './proxy/fetch-transport.js';
import { createRuntime, type Runtime } from './runtime.js';
import { parseSettings, SettingsError, type Settings } from './settings.js';
import { openStore } from './store/client.js';
import { kvArchive } from './store/kv-archive.js';

/** Bindings: the settings as vars and secrets, and the optional WAYMARK_SNAPSHOTS KV namespace (see README). */
export type Env = Record<string, unknown>;

export interface WorkerOptions {
  /** Where log lines go; by default JSON lines on the console at WAYMARK_LOG_LEVEL (tests pass a silent one). */
  log?: Logger;
}

export interface WaymarkWorker {
  fetch: ExportedHandlerFetchHandler<Env>;
  scheduled: ExportedHandlerScheduledHandler<Env>;
}

/** Why this Worker cannot serve: the offending variables (names only, for the ready answer) and the full reason (for the log). */
interface Misconfiguration {
  variables: string[];
  reason: string;
}

type Isolate =
  | { env: Env; runtime: Runtime; app: Hono<AppEnv>; misconfiguration?: undefined }
  | { env: Env; misconfiguration: Misconfiguration };

/** Workers allow 6 simultaneous outbound connections per invocation. */
const WORKERS_MAX_CONNECTIONS = 6;
const READY_PATH = '/_waymark/health/ready';

/** The Worker's handlers; the runtime is built once per isolate, on the first event. */
export function createWorker(options: WorkerOptions = {}): WaymarkWorker {
  let isolate: Isolate | undefined;
  const isolateFor = (env: Env): Isolate => {
    if (isolate?.env === env) return isolate;
    const checked = checkEnv(env);
    if (!checked.ok) {
      // Once per isolate, not per request: every request gets the same 503 until the bindings change.
      (options.log ?? consoleLogger()).log('error', 'waymark is misconfigured; answering 503 to all traffic', {
        ...checked.misconfiguration,
      });
      isolate = { env, misconfiguration: checked.misconfiguration };
      return isolate;
    }
    const { settings, snapshots } = checked;
    const runtime = createRuntime({
      settings,
      store: openStore(settings.WAYMARK_DATABASE_URL, settings.WAYMARK_DATABASE_AUTH_TOKEN),
      maxProbeConcurrency: WORKERS_MAX_CONNECTIONS,
      transport: fetchTransport,
      // Only writers publish (after a committed write, or a sync that moved the revision): a read-only
      // isolate writing KV on every load would hit KV's one write per second per key.
      ...(snapshots ? { archive: kvArchive(snapshots), archiveEveryLoad: false } : {}),
      ...(options.log ? { log: options.log } : {}),
    });
    isolate = { env, runtime, app: createApp(runtime) };
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
    /** The Cron Trigger: flush what this isolate saw, then run the health sync. */
    async scheduled(_controller, env, ctx) {
      const built = isolateFor(env);
      // Already logged when the isolate was built; a sync with bad settings would only add noise.
      if (built.misconfiguration) return;
      const { runtime } = built;
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

/** The settings and bindings a Worker runs with, or what is wrong with them (every offending variable). */
function checkEnv(
  env: Env,
):
  | { ok: true; settings: Settings; snapshots: KVNamespace | undefined }
  | { ok: false; misconfiguration: Misconfiguration } {
  const problems: { variable: string; line: string }[] = [];
  const url = env.WAYMARK_DATABASE_URL;
  // The settings' default (a local file) is meaningless in workerd, which can only reach a store over HTTP.
  if (typeof url !== 'string' || url === '' || url.startsWith('file:'))
    problems.push({
      variable: 'WAYMARK_DATABASE_URL',
      line: `  WAYMARK_DATABASE_URL: ${url ? 'a file: database cannot be opened on Workers; it' : 'not set; it'} must be a libsql:// or https:// URL (your Turso database)`,
    });
  const snapshots = env.WAYMARK_SNAPSHOTS;
  if (snapshots !== undefined && !isKvNamespace(snapshots))
    problems.push({ variable: 'WAYMARK_SNAPSHOTS', line: '  WAYMARK_SNAPSHOTS: must be a KV namespace binding' });
  let settings: Settings | undefined;
  try {
    settings = parseSettings(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    problems.push(...settingsProblems(error).filter((p) => !problems.some((q) => q.variable === p.variable)));
  }
  if (settings && problems.length === 0)
    return { ok: true, settings, snapshots: isKvNamespace(snapshots) ? snapshots : undefined };
  return {
    ok: false,
    misconfiguration: {
      variables: [...new Set(problems.map((p) => p.variable))],
      reason: `invalid settings:\n${problems.map((p) => p.line).join('\n')}`,
    },
  };
}

/** A SettingsError's lines ("  VARIABLE: what is wrong"), each with the variable it names. */
function settingsProblems(error: SettingsError): { variable: string; line: string }[] {
  return error.message
    .split('\n')
    .map((line) => ({ line, variable: /^\s+([A-Z][A-Z0-9_]*):/.exec(line)?.[1] }))
    .filter((p): p is { line: string; variable: string } => p.variable !== undefined);
}

function isKvNamespace(value: unknown): value is KVNamespace {
  return typeof value === 'object' && value !== null && 'get' in value && 'put' in value && 'list' in value;
}

/**
 * A misconfigured Worker fails safe: public traffic gets a generic 503 (no variable names, no values, no
 * internal text), and the ready check names the offending variables (never their values) so whoever
 * deployed it sees what to fix.
 */
function misconfiguredResponse(request: Request, path: string, misconfiguration: Misconfiguration): Response {
  const requestId = requestIdFrom(request.headers.get('x-request-id'));
  const ready = path === READY_PATH || path.startsWith(`${READY_PATH}?`);
  const problem = ready
    ? new Problem({
        code: 'misconfigured',
        detail: `Waymark cannot start: fix ${misconfiguration.variables.join(', ') || 'its settings'} (the Worker's log says why)`,
        errors: misconfiguration.variables.map((field) => ({ field, message: 'missing or invalid' })),
      })
    : new Problem({ code: 'misconfigured', detail: 'this service is not available; its operators have been told' });
  return problemResponse(problem, requestId);
}

function problemResponse(problem: Problem, requestId: string): Response {
  const rendered = renderProblem(problem, requestId);
  return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
}

/** What wrangler deploys: log lines as JSON on the console (Workers Logs). */
export default createWorker();
