import { Hono } from 'hono';
import { except } from 'hono/combine';
import { registerConfigRoutes } from './api/config.js';
import { referencePage } from './api/docs.js';
import { registerDashboard } from './dashboard/routes.js';
import { registerOpenApiRoutes } from './api/openapi.js';
import { paceWrites, type WritePacer } from './api/write-pacing.js';
import { bodyLimit } from 'hono/body-limit';
import { registerAuditRoutes } from './api/audit.js';
import { registerClusterRoutes } from './api/clusters.js';
import { registerExplainRoutes } from './api/explain.js';
import { registerFailoverRoutes } from './api/failover.js';
import { registerHealthSyncRoutes } from './api/health-sync.js';
import { registerIstioRoutes } from './api/istio.js';
import { registerMetricsRoutes } from './api/metrics.js';
import { registerOverrideRoutes } from './api/overrides.js';
import { registerRouteRoutes } from './api/routes.js';
import { notFound, Problem } from './problem.js';
import { problemResponse, storeProblem } from './api/problem.js';
import { registerServiceRoutes } from './api/services.js';
import { registerTokenRoutes } from './api/tokens.js';
import { registerWebhookRoutes } from './api/webhooks.js';
import type { AppEnv } from './app-env.js';
import { errorFields } from './observe/log.js';
import { requestIdMiddleware } from './observe/request-id.js';
import { requestTarget } from './proxy/handle.js';
import { requestHost } from './proxy/headers.js';
import { normalizeHost } from './routing/decide.js';
import { inBackground, type Runtime } from './runtime.js';

/** Reserved path prefix: never proxied. */
const WAYMARK_PREFIX = '/_waymark';

/** Whether a request path (query allowed) is one of Waymark's own: those are never proxied. */
export function isWaymarkPath(path: string): boolean {
  return (
    path.startsWith(WAYMARK_PREFIX) &&
    (path.length === WAYMARK_PREFIX.length || '/?'.includes(path[WAYMARK_PREFIX.length] as string))
  );
}

/** What load balancers and orchestrators probe: answered on every host, and they reveal nothing. */
const PUBLIC_PATHS: ReadonlySet<string> = new Set([`${WAYMARK_PREFIX}/health/live`, `${WAYMARK_PREFIX}/health/ready`]);

/**
 * Whether Waymark answers a request itself rather than the proxy. With WAYMARK_ADMIN_HOSTS set, the
 * admin surface (everything under /_waymark but the health checks) exists only on those hosts; on any
 * other host such a path is an ordinary request for the service there. The Host is compared as the
 * proxy routes by it (one value, lower case, no port, no trailing dot); the health paths are matched
 * exactly, so no dot segment or escape can reach the admin API through them.
 */
export function isWaymarkRequest(
  pathAndQuery: string,
  hostValues: readonly string[],
  adminHosts: ReadonlySet<string> | undefined,
): boolean {
  if (!isWaymarkPath(pathAndQuery)) return false;
  if (adminHosts === undefined || PUBLIC_PATHS.has(requestTarget(pathAndQuery).path)) return true;
  const host = requestHost(hostValues);
  return host.ok && adminHosts.has(normalizeHost(host.host));
}

/** Admin documents are a few KiB; the Istio import has its own cap (MAX_IMPORT_BYTES) and reads its body itself. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

const limitJsonBody = except(
  [`${WAYMARK_PREFIX}/api/v1/import/istio`, `${WAYMARK_PREFIX}/api/v1/config`],
  bodyLimit({
    maxSize: MAX_JSON_BODY_BYTES,
    onError: (c) =>
      problemResponse(
        c,
        new Problem({
          code: 'payload-too-large',
          detail: `the body is over ${MAX_JSON_BODY_BYTES} bytes (1 MiB)`,
          // Answered before the body is read: the connection cannot carry another request after it.
          headers: { connection: 'close' },
        }),
      ),
  }),
);

export interface AppOptions {
  /** Paces the admin API's writes (Node over a local file, whose store calls run on the proxy's thread). */
  writePacer?: WritePacer;
  /** Serve Prometheus metrics at /_waymark/metrics (Node); without it that path says to use Analytics Engine. */
  metrics?: boolean;
}

/** Waymark's own endpoints under /_waymark (the entries send everything else to the proxy). */
export function createApp(rt: Runtime, options: AppOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(`${WAYMARK_PREFIX}/*`, requestIdMiddleware);

  app.get(`${WAYMARK_PREFIX}/health/live`, (c) => c.json({ status: 'live' }));
  // Unauthenticated: the store's error (SQL text, addresses) goes to the log only (the snapshot cache logs it).
  app.get(`${WAYMARK_PREFIX}/health/ready`, async (c) => {
    const snapshot = await rt.snapshots.get((work) => inBackground(c, work));
    const lastError = rt.snapshots.lastError;
    const storeUnreachableSince = lastError ? new Date(lastError.at).toISOString() : null;
    if (!snapshot) {
      throw new Problem({
        code: 'not-ready',
        detail: `the routing table is not loaded${storeUnreachableSince ? `: the store is unreachable since ${storeUnreachableSince}` : ''}`,
      });
    }
    if (rt.lifecycle.draining)
      throw new Problem({
        code: 'draining',
        detail: 'this instance is shutting down; in-flight requests are finishing',
      });
    // Degraded: serving the last good snapshot kept outside the store (the store was unreachable when this
    // instance started); still ready, since it routes.
    const degraded = rt.snapshots.degraded;
    return c.json({
      status: degraded ? 'degraded' : 'ready',
      degraded,
      snapshotVersion: snapshot.version,
      // A partial snapshot (a cold isolate that started from the archive's catalog) counts the services it holds.
      services: snapshot.byName.size,
      partial: snapshot.source.partial !== undefined,
      storeUnreachableSince,
    });
  });

  app.use(`${WAYMARK_PREFIX}/api/*`, limitJsonBody);
  if (options.writePacer) app.use(`${WAYMARK_PREFIX}/api/*`, paceWrites(options.writePacer));

  const api = new Hono<AppEnv>();
  registerServiceRoutes(api, rt);
  registerClusterRoutes(api, rt);
  registerRouteRoutes(api, rt);
  registerFailoverRoutes(api, rt);
  registerExplainRoutes(api, rt);
  registerOverrideRoutes(api, rt);
  registerHealthSyncRoutes(api, rt);
  registerAuditRoutes(api, rt);
  registerIstioRoutes(api, rt);
  registerTokenRoutes(api, rt);
  registerWebhookRoutes(api, rt);
  registerConfigRoutes(api, rt);
  registerOpenApiRoutes(api);
  app.route(`${WAYMARK_PREFIX}/api/v1`, api);
  // The reference needs no token, like GET /openapi.json: it describes the API and holds no data.
  app.get(`${WAYMARK_PREFIX}/docs`, referencePage);
  registerMetricsRoutes(app, `${WAYMARK_PREFIX}/metrics`, rt, options.metrics ?? false);
  if (options.writePacer) app.use(`${WAYMARK_PREFIX}/dashboard/*`, paceWrites(options.writePacer));
  registerDashboard(app, rt);

  app.all('*', () => {
    throw notFound('this Waymark endpoint');
  });

  app.onError((error, c) => {
    if (error instanceof Problem) return problemResponse(c, error);
    const fromStore = storeProblem(error);
    if (fromStore) {
      rt.log.log('warn', 'store error', { requestId: c.get('requestId'), path: c.req.path, ...errorFields(error) });
      return problemResponse(c, fromStore);
    }
    rt.log.log('error', 'unhandled error', { requestId: c.get('requestId'), path: c.req.path, ...errorFields(error) });
    return problemResponse(
      c,
      new Problem({ code: 'internal', detail: 'an unexpected error occurred; the request id finds it in the logs' }),
    );
  });
  return app;
}
