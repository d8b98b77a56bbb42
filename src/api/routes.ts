import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import * as q from '../store/queries.js';
import { deleteRoute, getRoute, listRoutes, loadSampleWindows, putRoute, summarizeWindow, type RouteConfig } from '../store/routes.js';
import { requireScope } from './auth.js';
import { isConstraintError, notFound, parseBody, parseParam } from './problem.js';
import { routePutSchema } from './route-schema.js';
import { nameSchema } from './schemas.js';
import { actorOf, changed } from './write.js';

/** How far back a route's GET reports what edges observed. */
const OBSERVED_WINDOW_MS = 15 * 60_000;

/** Destinations and mirrors whose subset matches no cluster of the service (yet): said, not refused. */
export function subsetWarnings(route: Pick<RouteConfig, 'destinations' | 'mirror'>, clusters: q.ClusterConfig[]): string[] {
  const matches = (subset: Record<string, string>) => clusters.some((c) => Object.entries(subset).every(([k, v]) => c.labels[k] === v));
  const warnings = route.destinations.flatMap((d, i) => (matches(d.subset) ? [] : [`destinations.${i}.subset ${JSON.stringify(d.subset)} matches no cluster yet`]));
  if (route.mirror && !matches(route.mirror.subset)) warnings.push(`mirror.subset ${JSON.stringify(route.mirror.subset)} matches no cluster yet`);
  return warnings;
}

/** `/services/{service}/routes[/{route}]`: ordered rules, first match wins; idempotent PUT by name. */
export function registerRouteRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/services/:service/routes', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    if (!(await q.getService(db, service))) throw notFound(`service "${service}"`);
    return c.json({ routes: await listRoutes(db, service) });
  });

  api.get('/services/:service/routes/:route', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const route = await getRoute(db, service, name);
    if (!route) throw notFound(`route "${name}" of service "${service}"`);
    // What edges saw of this route lately: the primary's outcomes next to its mirror's (and canary's).
    const windows = await loadSampleWindows(db, service, name, { since: rt.now() - OBSERVED_WINDOW_MS });
    const observed = {
      windowMinutes: OBSERVED_WINDOW_MS / 60_000,
      primary: summarizeWindow(windows.primary),
      mirror: summarizeWindow(windows.mirror),
      canary: summarizeWindow(windows.canary),
    };
    return c.json({ ...route, observed });
  });

  api.put('/services/:service/routes/:route', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const body = await parseBody(c, routePutSchema);
    if (!(await q.getService(db, service))) throw notFound(`service "${service}"`);
    const before = await getRoute(db, service, name);
    const after: RouteConfig = { service, name, ...body };
    try {
      await putRoute(db, actorOf(c, rt), before, after);
    } catch (error) {
      if (isConstraintError(error)) throw notFound(`service "${service}"`);
      throw error;
    }
    await changed(rt);
    return c.json({ ...after, warnings: subsetWarnings(after, await q.listClusters(db, service)) }, before ? 200 : 201);
  });

  api.delete('/services/:service/routes/:route', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const before = await getRoute(db, service, name);
    if (!before) throw notFound(`route "${name}" of service "${service}"`);
    await deleteRoute(db, actorOf(c, rt), before);
    await changed(rt);
    return c.body(null, 204);
  });
}
