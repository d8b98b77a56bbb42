import { and, eq } from 'drizzle-orm';
import type { RouteSpec, RouteState } from '../routing/types.js';
import { byServiceThen, type Reader } from './reader.js';
import { routeState } from './schema.js';

export type RouteStateRow = typeof routeState.$inferSelect;

/** Where automation starts a route: the mirror at its configured percent, a canary at its first step. */
export function initialState(spec: Pick<RouteSpec, 'mirror' | 'canary'>): RouteState {
  return {
    mirrorPercent: spec.mirror ? spec.mirror.percent : null,
    canaryWeight: spec.canary ? spec.canary.stepWeight : null,
    phase: 'ramping',
    paused: false,
  };
}

export function toRouteState(row: RouteStateRow): RouteState {
  return { mirrorPercent: row.mirrorPercent, canaryWeight: row.canaryWeight, phase: row.phase, paused: row.paused };
}

/** Every route's automation state, by service then route. */
export async function loadRouteStates(db: Reader): Promise<Map<string, Map<string, RouteStateRow>>> {
  return byServiceThen(
    await db.select().from(routeState),
    (r) => r.route,
    (r) => r,
  );
}

export async function getRouteState(db: Reader, service: string, route: string): Promise<RouteStateRow | null> {
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
