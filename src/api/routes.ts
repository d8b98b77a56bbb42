import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import { deleteRoute, putRoute, setAutomation, subsetWarnings } from '../control/routes.js';
import { notFound } from '../problem.js';
import { routeHolds } from '../routing/holds.js';
import type { RouteState } from '../routing/types.js';
import type { Runtime } from '../runtime.js';
import { nameSchema } from '../spec/names.js';
import { routePutSchema } from '../spec/route.js';
import { listOverrides } from '../store/overrides.js';
import { getRouteState, initialState, toRouteState } from '../store/route-state.js';
import { getRoute, listRoutes, loadSampleWindows, summarizeWindow, type RouteConfig } from '../store/routes.js';
import { getService, listClusters } from '../store/services.js';
import { requireScope, requireServices } from './auth.js';
import { parseBody, parseParam } from './problem.js';
import { actorOf, applied } from './write.js';

/** How far back a route's GET reports what edges observed. */
const OBSERVED_WINDOW_MS = 15 * 60_000;

/** A route's read-only status: where automation has it, and what holds it (pause, freeze, overrides). */
export async function routeStatus(rt: Runtime, route: RouteConfig & { state?: RouteState }) {
  const automated = Boolean(route.mirror?.ramp || route.canary);
  const row = route.state || !automated ? null : await getRouteState(rt.store.db, route.service, route.name);
  const state = route.state ?? (row ? toRouteState(row) : initialState(route));
  const now = rt.now();
  const active = await listOverrides(rt.store.db, {
    service: route.service,
    active: { now, active: true },
    limit: 1000,
  });
  const held = routeHolds(active, route.service, route.name, now);
  return {
    mirrorPercent: held.mirrorPercent ?? state.mirrorPercent,
    canaryWeight: held.canaryWeight ?? state.canaryWeight,
    phase: automated ? state.phase : null,
    paused: state.paused,
    heldBy: held.by.map((o) => ({
      override: o.id,
      action: o.action,
      value: o.value,
      expiresAt: new Date(o.expiresAt).toISOString(),
    })),
  };
}

/** What edges saw of a route lately: the primary's outcomes next to its mirror's (and canary's). */
export async function routeObserved(rt: Runtime, service: string, route: string) {
  const windows = await loadSampleWindows(rt.store.db, service, route, { since: rt.now() - OBSERVED_WINDOW_MS });
  return {
    windowMinutes: OBSERVED_WINDOW_MS / 60_000,
    primary: summarizeWindow(windows.primary),
    mirror: summarizeWindow(windows.mirror),
    canary: summarizeWindow(windows.canary),
  };
}

/** `/services/{service}/routes[/{route}]`: ordered rules, first match wins; idempotent PUT by name. */
export function registerRouteRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/services/:service/routes', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    if (!(await getService(db, service))) throw notFound(`service "${service}"`);
    return c.json({ routes: await listRoutes(db, service) });
  });

  api.get('/services/:service/routes/:route', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const route = await getRoute(db, service, name);
    if (!route) throw notFound(`route "${name}" of service "${service}"`);
    const observed = await routeObserved(rt, service, name);
    const [owner, clusters] = await Promise.all([getService(db, service), listClusters(db, service)]);
    const warnings = subsetWarnings(route, owner?.subsets ?? {}, clusters);
    return c.json({ ...route, status: await routeStatus(rt, route), observed, warnings });
  });

  api.put('/services/:service/routes/:route', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const body = await parseBody(c, routePutSchema);
    const { config, created, warnings } = await applied(
      rt,
      await putRoute(db, actorOf(c, rt), { service, name, ...body }),
    );
    return c.json({ ...config, warnings }, created ? 201 : 200);
  });

  // Automation controls: pause stops mirror/canary moves; resume restarts a halted or rolled-back ramp.
  for (const action of ['pause', 'resume'] as const) {
    api.post(`/services/:service/routes/:route/${action}`, requireScope(rt.grants, 'override'), async (c) => {
      const service = parseParam('service', c.req.param('service'), nameSchema);
      requireServices(c, [service]);
      const name = parseParam('route', c.req.param('route'), nameSchema);
      const { route, state } = await applied(rt, await setAutomation(db, actorOf(c, rt), service, name, action));
      return c.json({ status: await routeStatus(rt, { ...route, state }) });
    });
  }

  api.delete('/services/:service/routes/:route', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    await applied(rt, await deleteRoute(db, actorOf(c, rt), service, name));
    return c.body(null, 204);
  });
}
