import { and, eq } from 'drizzle-orm';
import { invalid, notFound, Problem, type FieldError } from '../problem.js';
import { resolveSubset, selects } from '../routing/subset.js';
import type { RouteState, ServiceSubsets, SubsetRef } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { bookmarksOf, getRouteState, initialState, toRouteState } from '../store/route-state.js';
import { getRoute, type RouteConfig } from '../store/routes.js';
import { routes, routeSamples, routeState } from '../store/schema.js';
import { getService, listClusters, type ClusterConfig } from '../store/services.js';
import type { Tx } from '../store/transaction.js';
import { done, refuse, runCommand, type Actor, type CommandResult, type CommandTx, type Outcome } from './command.js';
import { endOverridesOf } from './overrides.js';

/**
 * PUT a route by name: its service must exist and define every subset the route names (checked in the
 * write's transaction). A route created under the name of a deleted one starts clean: automation
 * begins at its first step, with no samples of its namesake. Answers with subset warnings: subsets
 * that select no cluster yet are said, not refused.
 */
export function putRoute(
  db: Db,
  actor: Actor,
  after: RouteConfig,
): Promise<CommandResult<{ config: RouteConfig; created: boolean; warnings: string[] }>> {
  return runCommand(db, actor, (c) => writeRoute(c, after));
}

/** `putRoute` inside a command's transaction (a config apply writes many objects in one). */
export async function writeRoute(
  c: CommandTx,
  after: RouteConfig,
): Promise<Outcome<{ config: RouteConfig; created: boolean; warnings: string[] }>> {
  {
    const owner = await getService(c.tx, after.service);
    if (!owner) return refuse(notFound(`service "${after.service}"`));
    const unknown = undefinedSubsets(after, after.service, owner.subsets);
    if (unknown.length) return refuse(invalid('the route names subsets the service does not define', unknown));
    const before = await getRoute(c.tx, after.service, after.name);
    await upsertRoute(c, before, after);
    const warnings = subsetWarnings(after, owner.subsets, await listClusters(c.tx, after.service));
    return done({ config: after, created: !before, warnings });
  }
}

/** Writes a route (created clean, see `putRoute`) and its audit entry: for `putRoute` and the Istio import. */
export async function upsertRoute(c: CommandTx, before: RouteConfig | null, after: RouteConfig): Promise<void> {
  const { service, name, order, ...spec } = after;
  const { now } = c.actor;
  if (!before) await forgetRouteState(c.tx, service, name);
  await c.tx
    .insert(routes)
    .values({ service, name, order, spec, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: [routes.service, routes.name], set: { order, spec, updatedAt: now } });
  await c.audit({
    action: before ? 'route.update' : 'route.create',
    target: `services/${service}/routes/${name}`,
    before,
    after,
  });
  await c.configChange({ kind: 'route', service, name, before: withoutService(before), after: withoutService(after) });
}

/** A route as the config document holds it (under its service). */
const withoutService = (config: RouteConfig | null) => {
  if (!config) return null;
  const { service: _, ...route } = config;
  return route;
};

/** DELETE a route, its automation state and samples; the overrides that hold it end. */
export function deleteRoute(db: Db, actor: Actor, service: string, name: string): Promise<CommandResult<null>> {
  return runCommand(db, actor, (c) => removeRoute(c, service, name));
}

/** `deleteRoute` inside a command's transaction. */
export async function removeRoute(c: CommandTx, service: string, name: string): Promise<Outcome<null>> {
  {
    const before = await getRoute(c.tx, service, name);
    if (!before) return refuse(notFound(`route "${name}" of service "${service}"`));
    await c.tx.delete(routes).where(and(eq(routes.service, service), eq(routes.name, name)));
    await forgetRouteState(c.tx, service, name);
    await endOverridesOf(c, { service, route: name }, `route ${name} was deleted`);
    await c.audit({ action: 'route.delete', target: `services/${service}/routes/${name}`, before, after: null });
    await c.configChange({ kind: 'route', service, name, before: withoutService(before), after: null });
    return done(null);
  }
}

async function forgetRouteState(tx: Tx, service: string, route: string): Promise<void> {
  await tx.delete(routeState).where(and(eq(routeState.service, service), eq(routeState.route, route)));
  await tx.delete(routeSamples).where(and(eq(routeSamples.service, service), eq(routeSamples.route, route)));
}

/**
 * An operator's pause (automation stops moving the route) or resume (it moves again; a halted mirror
 * or rolled-back canary starts over from its first step). A promoted canary is not resumed: the canary
 * subset should become a destination of the route instead.
 */
export function setAutomation(
  db: Db,
  actor: Actor,
  service: string,
  name: string,
  action: 'pause' | 'resume',
): Promise<CommandResult<{ route: RouteConfig; state: RouteState }>> {
  return runCommand(db, actor, async (c) => {
    const route = await getRoute(c.tx, service, name);
    if (!route) return refuse(notFound(`route "${name}" of service "${service}"`));
    if (!route.mirror?.ramp && !route.canary)
      return refuse(new Problem({ code: 'not-automated', detail: `route "${name}" has no mirror ramp and no canary` }));
    const row = await getRouteState(c.tx, service, name);
    const before = row ? toRouteState(row) : initialState(route);
    if (action === 'resume' && before.phase === 'promoted') {
      return refuse(
        new Problem({
          code: 'already-promoted',
          detail: 'make the canary subset a destination of the route (PUT the route) instead of resuming it',
        }),
      );
    }
    const after = action === 'pause' ? { ...before, paused: true } : resumed(route, before);
    await saveRouteState(c, service, name, after, bookmarksOf(row));
    await c.audit({ action: `route.${action}`, target: `services/${service}/routes/${name}`, before, after });
    await c.event({
      at: c.actor.now,
      service,
      cluster: null,
      kind: `route-${action}`,
      message: `route ${name} ${action === 'pause' ? 'paused' : 'resumed'} by ${c.actor.name}`,
      detail: { before, after },
    });
    return done({ route, state: after });
  });
}

/** Writes where automation has a route, with the bookmarks of the evidence its next steps start after. */
export async function saveRouteState(
  c: Pick<CommandTx, 'tx' | 'actor'>,
  service: string,
  route: string,
  state: RouteState,
  bookmarks: { mirror: number; canary: number },
): Promise<void> {
  const set = { ...state, sampleBookmark: bookmarks.mirror, canaryBookmark: bookmarks.canary, updatedAt: c.actor.now };
  await c.tx
    .insert(routeState)
    .values({ service, route, ...set })
    .onConflictDoUpdate({ target: [routeState.service, routeState.route], set });
}

/** A resumed route: unpaused, and a halted mirror or rolled-back canary starts over from its first step. */
function resumed(route: RouteConfig, state: RouteState): RouteState {
  const start = initialState(route);
  return {
    mirrorPercent:
      state.phase === 'halted' || state.mirrorPercent === 0
        ? start.mirrorPercent || (route.mirror?.ramp?.step ?? null)
        : state.mirrorPercent,
    canaryWeight: state.phase === 'rolled-back' ? start.canaryWeight : state.canaryWeight,
    phase: state.phase === 'halted' || state.phase === 'rolled-back' ? 'ramping' : state.phase,
    paused: false,
  };
}

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
  return names.length
    ? `one of ${names.map((n) => `"${n}"`).join(', ')}`
    : 'a subset defined on the service first (it has none)';
}

/** Subset names the service does not define: a route naming one is refused, each field named. */
function undefinedSubsets(route: SubsetFields, service: string, subsets: ServiceSubsets): FieldError[] {
  return subsetRefs(route).flatMap(({ field, ref }) =>
    typeof ref === 'string' && resolveSubset(ref, subsets) === null
      ? [
          {
            field,
            message: `names subset "${ref}", which service "${service}" does not define: expected ${namedSubsets(subsets)}, or a label selector like {"version": "v1"}`,
          },
        ]
      : [],
  );
}

/**
 * Subsets that select no cluster: labels no cluster carries (yet), or a name the service no longer
 * defines (its traffic has nowhere to go). Said, not refused: clusters and subsets may come later.
 */
export function subsetWarnings(route: SubsetFields, subsets: ServiceSubsets, clusters: ClusterConfig[]): string[] {
  return subsetRefs(route).flatMap(({ field, ref }) => {
    const labels = resolveSubset(ref, subsets);
    if (labels === null)
      return [
        `${field} "${ref}" is not a subset of the service: it selects no cluster until the service defines it (expected ${namedSubsets(subsets)})`,
      ];
    if (clusters.some((c) => selects(labels, c.labels))) return [];
    return [
      `${field} ${typeof ref === 'string' ? `"${ref}" (${JSON.stringify(labels)})` : JSON.stringify(ref)} matches no cluster yet`,
    ];
  });
}
