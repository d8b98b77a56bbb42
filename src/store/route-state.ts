import { and, eq } from 'drizzle-orm';
import type { RouteSpec, RouteState } from '../routing/types.js';
import type { Db } from './client.js';
import { audit, commit, type Actor, type Write } from './queries.js';
import { events, routeState } from './schema.js';

export type RouteStateRow = typeof routeState.$inferSelect;

/** Where automation starts a route: the mirror at its configured percent, a canary at its first step. */
export function initialState(spec: Pick<RouteSpec, 'mirror' | 'canary'>): RouteState {
  return { mirrorPercent: spec.mirror ? spec.mirror.percent : null, canaryWeight: spec.canary ? spec.canary.stepWeight : null, phase: 'ramping', paused: false };
}

export function toRouteState(row: RouteStateRow): RouteState {
  return { mirrorPercent: row.mirrorPercent, canaryWeight: row.canaryWeight, phase: row.phase, paused: row.paused };
}

export async function loadRouteStates(db: Db): Promise<Map<string, RouteStateRow>> {
  const rows = await db.select().from(routeState);
  return new Map(rows.map((r) => [`${r.service}/${r.route}`, r]));
}

export async function getRouteState(db: Db, service: string, route: string): Promise<RouteStateRow | null> {
  const rows = await db
    .select()
    .from(routeState)
    .where(and(eq(routeState.service, service), eq(routeState.route, route)));
  return rows[0] ?? null;
}

/** Where the mirror's and the canary's evidence starts for their next steps (route sample ids). */
export interface Bookmarks {
  mirror: number;
  canary: number;
}

export function bookmarksOf(row: RouteStateRow | null | undefined): Bookmarks {
  return { mirror: row?.sampleBookmark ?? 0, canary: row?.canaryBookmark ?? 0 };
}

export function saveRouteState(db: Db, service: string, route: string, state: RouteState, bookmarks: Bookmarks, at: number): Write {
  const values = { service, route, ...state, sampleBookmark: bookmarks.mirror, canaryBookmark: bookmarks.canary, updatedAt: at };
  const { service: _s, route: _r, ...set } = values;
  return db.insert(routeState).values(values).onConflictDoUpdate({ target: [routeState.service, routeState.route], set });
}

export function deleteRouteState(db: Db, service: string, route: string): Write {
  return db.delete(routeState).where(and(eq(routeState.service, service), eq(routeState.route, route)));
}

/** An operator's pause or resume: the state, its audit entry and an event, in one batch. */
export async function setRouteState(
  db: Db,
  actor: Actor,
  service: string,
  route: string,
  before: RouteState,
  after: RouteState,
  bookmarks: Bookmarks,
  action: 'pause' | 'resume',
): Promise<void> {
  await commit(db, actor, [
    saveRouteState(db, service, route, after, bookmarks, actor.now),
    audit(db, actor, `route.${action}`, `services/${service}/routes/${route}`, before, after),
    db.insert(events).values({
      at: actor.now,
      service,
      cluster: null,
      kind: `route-${action}`,
      message: `route ${route} ${action === 'pause' ? 'paused' : 'resumed'} by ${actor.name}`,
      detail: { before, after },
    }),
  ]);
}
