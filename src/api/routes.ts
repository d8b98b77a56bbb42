import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import * as q from '../store/queries.js';
import { deleteRoute, getRoute, listRoutes, loadSampleWindows, putRoute, summarizeWindow, type RouteConfig } from '../store/routes.js';
import { requireScope } from './auth.js';
import { invalid, notFound, Problem, type FieldError } from '../problem.js';
import { isConstraintError, parseBody, parseParam } from './problem.js';
import { resolveSubset, selects } from '../routing/subset.js';
import type { RouteState, ServiceSubsets, SubsetRef } from '../routing/types.js';
import { listOverrides } from '../store/overrides.js';
import { bookmarksOf, getRouteState, initialState, setRouteState, toRouteState } from '../store/route-state.js';
import { routePutSchema } from './route-schema.js';
import { nameSchema } from './schemas.js';
import { actorOf, changed } from './write.js';

/** A resumed route: unpaused, and a halted mirror or rolled-back canary starts over from its first step. */
function resumed(route: RouteConfig, state: RouteState): RouteState {
  const start = initialState(route);
  return {
    mirrorPercent: state.phase === 'halted' || state.mirrorPercent === 0 ? start.mirrorPercent || (route.mirror?.ramp?.step ?? null) : state.mirrorPercent,
    canaryWeight: state.phase === 'rolled-back' ? start.canaryWeight : state.canaryWeight,
    phase: state.phase === 'halted' || state.phase === 'rolled-back' ? 'ramping' : state.phase,
    paused: false,
  };
}

/** A route's read-only status: where automation has it, and what holds it (pause, freeze, overrides). */
async function routeStatus(rt: Runtime, route: RouteConfig & { state?: RouteState }) {
  const automated = Boolean(route.mirror?.ramp || route.canary);
  const row = route.state || !automated ? null : await getRouteState(rt.store.db, route.service, route.name);
  const state = route.state ?? (row ? toRouteState(row) : initialState(route));
  const now = rt.now();
  const holds = (await listOverrides(rt.store.db, { service: route.service, active: { now, active: true }, limit: 1000 })).filter(
    (o) => o.route === route.name || (o.action === 'freeze' && !o.route),
  );
  const value = (action: string) => holds.find((o) => o.action === action)?.value ?? undefined;
  return {
    mirrorPercent: value('mirror-percent') ?? state.mirrorPercent,
    canaryWeight: value('canary-weight') ?? state.canaryWeight,
    phase: automated ? state.phase : null,
    paused: state.paused,
    heldBy: holds.map((o) => ({ override: o.id, action: o.action, value: o.value, expiresAt: new Date(o.expiresAt).toISOString() })),
  };
}

/** How far back a route's GET reports what edges observed. */
const OBSERVED_WINDOW_MS = 15 * 60_000;

type SubsetFields = Pick<RouteConfig, 'destinations' | 'mirror' | 'canary'>;

/** Every subset a route names, with the field it is in. */
function subsetRefs(route: SubsetFields): { field: string; ref: SubsetRef }[] {
  const refs = route.destinations.map((d, i) => ({ field: `destinations.${i}.subset`, ref: d.subset }));
  if (route.mirror) refs.push({ field: 'mirror.subset', ref: route.mirror.subset });
  if (route.canary) refs.push({ field: 'canary.subset', ref: route.canary.subset });
  return refs;
}

function namedSubsets(subsets: ServiceSubsets): string {
  const names = Object.keys(subsets);
  return names.length ? `one of ${names.map((n) => `"${n}"`).join(', ')}` : 'a subset defined on the service first (it has none)';
}

/** Subset names the service does not define: a route naming one is refused, each field named. */
export function undefinedSubsets(route: SubsetFields, service: string, subsets: ServiceSubsets): FieldError[] {
  return subsetRefs(route).flatMap(({ field, ref }) =>
    typeof ref === 'string' && resolveSubset(ref, subsets) === null
      ? [{ field, message: `names subset "${ref}", which service "${service}" does not define: expected ${namedSubsets(subsets)}, or a label selector like {"version": "v1"}` }]
      : [],
  );
}

/**
 * Subsets that select no cluster: labels no cluster carries (yet), or a name the service no longer
 * defines (its traffic has nowhere to go). Said, not refused: clusters and subsets may come later.
 */
export function subsetWarnings(route: SubsetFields, subsets: ServiceSubsets, clusters: q.ClusterConfig[]): string[] {
  return subsetRefs(route).flatMap(({ field, ref }) => {
    const labels = resolveSubset(ref, subsets);
    if (labels === null) return [`${field} "${ref}" is not a subset of the service: it selects no cluster until the service defines it (expected ${namedSubsets(subsets)})`];
    if (clusters.some((c) => selects(labels, c.labels))) return [];
    return [`${field} ${typeof ref === 'string' ? `"${ref}" (${JSON.stringify(labels)})` : JSON.stringify(ref)} matches no cluster yet`];
  });
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
    const [owner, clusters] = await Promise.all([q.getService(db, service), q.listClusters(db, service)]);
    const warnings = subsetWarnings(route, owner?.subsets ?? {}, clusters);
    return c.json({ ...route, status: await routeStatus(rt, route), observed, warnings });
  });

  api.put('/services/:service/routes/:route', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('route', c.req.param('route'), nameSchema);
    const body = await parseBody(c, routePutSchema);
    const owner = await q.getService(db, service);
    if (!owner) throw notFound(`service "${service}"`);
    const unknown = undefinedSubsets(body, service, owner.subsets);
    if (unknown.length) throw invalid('the route names subsets the service does not define', unknown);
    const before = await getRoute(db, service, name);
    const after: RouteConfig = { service, name, ...body };
    try {
      await putRoute(db, actorOf(c, rt), before, after);
    } catch (error) {
      if (isConstraintError(error)) throw notFound(`service "${service}"`);
      throw error;
    }
    await changed(rt);
    return c.json({ ...after, warnings: subsetWarnings(after, owner.subsets, await q.listClusters(db, service)) }, before ? 200 : 201);
  });

  // Automation controls: pause stops mirror/canary moves; resume restarts a halted or rolled-back ramp.
  for (const action of ['pause', 'resume'] as const) {
    api.post(`/services/:service/routes/:route/${action}`, requireScope(rt.grants, 'override'), async (c) => {
      const service = parseParam('service', c.req.param('service'), nameSchema);
      const name = parseParam('route', c.req.param('route'), nameSchema);
      const route = await getRoute(db, service, name);
      if (!route) throw notFound(`route "${name}" of service "${service}"`);
      if (!route.mirror?.ramp && !route.canary) throw new Problem({ code: 'not-automated', detail: `route "${name}" has no mirror ramp and no canary` });
      const row = await getRouteState(db, service, name);
      const before = row ? toRouteState(row) : initialState(route);
      if (action === 'resume' && before.phase === 'promoted') {
        throw new Problem({ code: 'already-promoted', detail: 'make the canary subset a destination of the route (PUT the route) instead of resuming it' });
      }
      const after = action === 'pause' ? { ...before, paused: true } : resumed(route, before);
      await setRouteState(db, actorOf(c, rt), service, name, before, after, bookmarksOf(row), action);
      await changed(rt);
      return c.json({ status: await routeStatus(rt, { ...route, state: after }) });
    });
  }

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
