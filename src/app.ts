import { Hono } from 'hono';
import { registerAuditRoutes } from './api/audit.js';
import { registerClusterRoutes } from './api/clusters.js';
import { registerExplainRoutes } from './api/explain.js';
import { registerFailoverRoutes } from './api/failover.js';
import { registerHealthSyncRoutes } from './api/health-sync.js';
import { registerIstioRoutes } from './api/istio.js';
import { registerOverrideRoutes } from './api/overrides.js';
import { registerRouteRoutes } from './api/routes.js';
import { notFound, Problem } from './problem.js';
import { problemResponse, storeProblem } from './api/problem.js';
import { registerServiceRoutes } from './api/services.js';
import type { AppEnv } from './app-env.js';
import { errorFields } from './observe/log.js';
import { requestIdMiddleware } from './observe/request-id.js';
import { inBackground, type Runtime } from './runtime.js';

/** Reserved path prefix: never proxied. */
export const WAYMARK_PREFIX = '/_waymark';

/** Whether a request path (query allowed) is one of Waymark's own: those are never proxied. */
export function isWaymarkPath(path: string): boolean {
  return path.startsWith(WAYMARK_PREFIX) && (path.length === WAYMARK_PREFIX.length || '/?'.includes(path[WAYMARK_PREFIX.length] as string));
}

/** Waymark's own endpoints under /_waymark (the entries send everything else to the proxy). */
export function createApp(rt: Runtime): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(`${WAYMARK_PREFIX}/*`, requestIdMiddleware);

  app.get(`${WAYMARK_PREFIX}/health/live`, (c) => c.json({ status: 'live' }));
  app.get(`${WAYMARK_PREFIX}/health/ready`, async (c) => {
    const snapshot = await rt.snapshots.get((work) => inBackground(c, work));
    const lastError = rt.snapshots.lastError;
    if (!snapshot) throw new Problem({ code: 'not-ready', detail: `the routing table is not loaded${lastError ? `: ${lastError.message}` : ''}` });
    if (rt.lifecycle.draining) throw new Problem({ code: 'draining', detail: 'this instance is shutting down; in-flight requests are finishing' });
    return c.json({ status: 'ready', snapshotVersion: snapshot.version, services: snapshot.byName.size, storeError: lastError?.message ?? null });
  });

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
  app.route(`${WAYMARK_PREFIX}/api/v1`, api);

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
    return problemResponse(c, new Problem({ code: 'internal', detail: 'an unexpected error occurred; the request id finds it in the logs' }));
  });
  return app;
}
