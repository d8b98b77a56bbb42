import type { Hono, MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import type { AppEnv } from '../app-env.js';
import { Problem } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { requireScope } from './auth.js';

/** Prometheus' text exposition format. */
const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * GET /_waymark/metrics: this process's Prometheus metrics, for WAYMARK_METRICS_TOKEN or any token with
 * the `read` scope. `exposed` false (Workers: each isolate holds its own counters, which no scraper can
 * reach one by one): 404 pointing at Analytics Engine instead.
 */
export function registerMetricsRoutes(app: Hono<AppEnv>, path: string, rt: Runtime, exposed: boolean): void {
  app.get(path, metricsAuth(rt), (c) => {
    if (!exposed)
      throw new Problem({
        code: 'not-found',
        detail:
          'Workers keep no scrapeable metrics: bind an Analytics Engine dataset as WAYMARK_ANALYTICS (see README, Observability)',
      });
    const body = rt.metrics.render({
      snapshot: rt.snapshots.current,
      confirmedAt: confirmedAt(rt),
      now: rt.now(),
      ejectedHere: (cluster) => rt.outliers.isEjected(cluster.key),
    });
    return c.body(body, 200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'cache-control': 'no-store' });
  });
}

/** The metrics token lets a scraper in without an admin token; any other token needs `read`. */
function metricsAuth(rt: Runtime): MiddlewareHandler<AppEnv> {
  const readScope = requireScope(rt.grants, 'read');
  const metricsToken = rt.settings.WAYMARK_METRICS_TOKEN;
  return async (c, next) => {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1];
    if (metricsToken && bearer && (await timingSafeEqual(metricsToken, bearer))) return next();
    if (rt.grants.settings.length === 0)
      throw new Problem({
        code: 'unauthorized',
        detail: metricsToken ? 'the metrics token is required' : 'set WAYMARK_METRICS_TOKEN to scrape metrics',
        headers: { 'www-authenticate': 'Bearer realm="waymark"' },
      });
    return readScope(c, next);
  };
}

/** When the store last confirmed the snapshot: the last version check, or, while it fails, when it began failing. */
function confirmedAt(rt: Runtime): number | null {
  if (!rt.snapshots.current) return null;
  const failing = rt.snapshots.lastError;
  if (failing) return failing.at;
  const checked = rt.snapshots.checkedAt;
  return Number.isFinite(checked) ? checked : null;
}
