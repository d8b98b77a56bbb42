import type { AnalyticsDataset } from './observe/analytics.js';
import { requestIdFrom } from './observe/request-id.js';
import { Problem, renderProblem } from './problem.js';
import { parseSettings, type SettingProblem, SettingsError, type Settings } from './settings.js';
import type { SyncCoordinator } from './sync-coordinator.js';

/**
 * Bindings: the settings as vars and secrets, the optional WAYMARK_SNAPSHOTS KV namespace, the optional
 * WAYMARK_SYNC Durable Object namespace (the sync coordinator; see README) and the optional
 * WAYMARK_ANALYTICS Analytics Engine dataset (a data point per request).
 */
export type Env = Record<string, unknown>;

const READY_PATH = '/_waymark/health/ready';

/** Why this Worker cannot serve: the offending variables (names only, for the ready answer) and the full reason (for the log). */
export interface Misconfiguration {
  variables: string[];
  reason: string;
}

/** The settings and bindings a Worker runs with, or what is wrong with them (every offending variable). */
export function checkEnv(env: Env):
  | {
      ok: true;
      settings: Settings;
      snapshots: KVNamespace | undefined;
      sync: DurableObjectNamespace<SyncCoordinator> | undefined;
      analytics: AnalyticsDataset | undefined;
    }
  | { ok: false; misconfiguration: Misconfiguration } {
  const problems: SettingProblem[] = [];
  const url = env.WAYMARK_DATABASE_URL;
  // The settings' default (a local file) is meaningless in workerd, which can only reach a store over HTTP.
  if (typeof url !== 'string' || url === '' || url.startsWith('file:'))
    problems.push({
      variable: 'WAYMARK_DATABASE_URL',
      message: `${url ? 'a file: database cannot be opened on Workers; it' : 'not set; it'} must be a libsql:// or https:// URL (your Turso database)`,
    });
  const snapshots = env.WAYMARK_SNAPSHOTS;
  if (snapshots !== undefined && !isKvNamespace(snapshots))
    problems.push({ variable: 'WAYMARK_SNAPSHOTS', message: 'must be a KV namespace binding' });
  const sync = env.WAYMARK_SYNC;
  if (sync !== undefined && !isDurableObjectNamespace(sync))
    problems.push({
      variable: 'WAYMARK_SYNC',
      message: 'must be a Durable Object namespace binding (SyncCoordinator)',
    });
  const analytics = env.WAYMARK_ANALYTICS;
  if (analytics !== undefined && !isAnalyticsDataset(analytics))
    problems.push({ variable: 'WAYMARK_ANALYTICS', message: 'must be an Analytics Engine dataset binding' });
  let settings: Settings | undefined;
  try {
    settings = parseSettings(env);
  } catch (error) {
    if (!(error instanceof SettingsError)) throw error;
    problems.push(...error.problems.filter((p) => !problems.some((q) => q.variable === p.variable)));
  }
  if (settings && problems.length === 0)
    return {
      ok: true,
      settings,
      snapshots: isKvNamespace(snapshots) ? snapshots : undefined,
      sync: isDurableObjectNamespace(sync) ? sync : undefined,
      analytics: isAnalyticsDataset(analytics) ? analytics : undefined,
    };
  return {
    ok: false,
    misconfiguration: {
      variables: [...new Set(problems.map((p) => p.variable))],
      reason: new SettingsError(problems).message,
    },
  };
}

function isKvNamespace(value: unknown): value is KVNamespace {
  return typeof value === 'object' && value !== null && 'get' in value && 'put' in value && 'list' in value;
}

function isAnalyticsDataset(value: unknown): value is AnalyticsDataset {
  return typeof value === 'object' && value !== null && 'writeDataPoint' in value;
}

function isDurableObjectNamespace(value: unknown): value is DurableObjectNamespace<SyncCoordinator> {
  return typeof value === 'object' && value !== null && 'idFromName' in value && 'get' in value;
}

/**
 * A misconfigured Worker fails safe: public traffic gets a generic 503 (no variable names, no values, no
 * internal text), and the ready check names the offending variables (never their values) so whoever
 * deployed it sees what to fix.
 */
export function misconfiguredResponse(request: Request, path: string, misconfiguration: Misconfiguration): Response {
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

export function problemResponse(problem: Problem, requestId: string): Response {
  const rendered = renderProblem(problem, requestId);
  return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
}
