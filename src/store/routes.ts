import { and, asc, eq } from 'drizzle-orm';
import type { RouteSample } from '../observe/route-samples.js';
import type { RouteSpec } from '../routing/types.js';
import type { Db } from './client.js';
import { audit, commit, type Actor } from './queries.js';
import { routeSamples, routes } from './schema.js';

/** A route as the admin API shows it. */
export type RouteConfig = RouteSpec & { service: string };

export function toRouteConfig(row: typeof routes.$inferSelect): RouteConfig {
  return { service: row.service, name: row.name, order: row.order, ...row.spec };
}

export async function listRoutes(db: Db, service: string): Promise<RouteConfig[]> {
  const rows = await db.select().from(routes).where(eq(routes.service, service)).orderBy(asc(routes.order), asc(routes.name));
  return rows.map(toRouteConfig);
}

export async function getRoute(db: Db, service: string, name: string): Promise<RouteConfig | null> {
  const rows = await db
    .select()
    .from(routes)
    .where(and(eq(routes.service, service), eq(routes.name, name)));
  return rows[0] ? toRouteConfig(rows[0]) : null;
}

export async function putRoute(db: Db, actor: Actor, before: RouteConfig | null, after: RouteConfig): Promise<void> {
  const { service, name, order, ...spec } = after;
  await commit(db, actor, [
    db
      .insert(routes)
      .values({ service, name, order, spec, createdAt: actor.now, updatedAt: actor.now })
      .onConflictDoUpdate({ target: [routes.service, routes.name], set: { order, spec, updatedAt: actor.now } }),
    audit(db, actor, before ? 'route.update' : 'route.create', `services/${service}/routes/${name}`, before, after),
  ]);
}

export async function deleteRoute(db: Db, actor: Actor, before: RouteConfig): Promise<void> {
  await commit(db, actor, [
    db.delete(routes).where(and(eq(routes.service, before.service), eq(routes.name, before.name))),
    audit(db, actor, 'route.delete', `services/${before.service}/routes/${before.name}`, before, null),
  ]);
}

/** One batch insert of what an instance saw of routes' primary, mirrored and canary requests. */
export async function insertRouteSamples(db: Db, instance: string, at: number, rows: RouteSample[]): Promise<void> {
  if (rows.length === 0) return;
  await db.insert(routeSamples).values(rows.map((r) => ({ ...r, at, instance })));
}
