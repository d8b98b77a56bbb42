import { and, asc, eq, gt, gte } from 'drizzle-orm';
import { emptyBuckets, quantileMs } from '../observe/latency.js';
import type { RouteSample, SampleKind } from '../observe/route-samples.js';
import type { RouteSpec } from '../routing/types.js';
import type { Db } from './client.js';
import { audit, commit, type Actor, type Write } from './queries.js';
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
  await commit(db, actor, routeWrites(db, actor, before, after));
}

/** A route upsert and its audit entry, for a caller's batch. */
export function routeWrites(db: Db, actor: Actor, before: RouteConfig | null, after: RouteConfig): Write[] {
  const { service, name, order, ...spec } = after;
  return [
    db
      .insert(routes)
      .values({ service, name, order, spec, createdAt: actor.now, updatedAt: actor.now })
      .onConflictDoUpdate({ target: [routes.service, routes.name], set: { order, spec, updatedAt: actor.now } }),
    audit(db, actor, before ? 'route.update' : 'route.create', `services/${service}/routes/${name}`, before, after),
  ];
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

/** A route's samples of one kind over a window, summed across instances. */
export interface SampleWindow {
  requests: number;
  errors: number;
  latencyMsSum: number;
  latencyBuckets: number[];
  lastId: number;
}

/** Route samples flushed after `afterId` (and at or after `since`), summed per kind. */
export async function loadSampleWindows(
  db: Db,
  service: string,
  route: string,
  opts: { since?: number; afterId?: number } = {},
): Promise<Record<SampleKind, SampleWindow>> {
  const rows = await db
    .select()
    .from(routeSamples)
    .where(and(eq(routeSamples.service, service), eq(routeSamples.route, route), gte(routeSamples.at, opts.since ?? 0), gt(routeSamples.id, opts.afterId ?? 0)));
  const windows = { primary: emptyWindow(), mirror: emptyWindow(), canary: emptyWindow() };
  for (const r of rows) {
    const w = windows[r.kind];
    w.requests += r.requests;
    w.errors += r.errors;
    w.latencyMsSum += r.latencyMsSum;
    r.latencyBuckets.forEach((n, i) => (w.latencyBuckets[i] = (w.latencyBuckets[i] ?? 0) + n));
    w.lastId = Math.max(w.lastId, r.id);
  }
  return windows;
}

function emptyWindow(): SampleWindow {
  return { requests: 0, errors: 0, latencyMsSum: 0, latencyBuckets: emptyBuckets(), lastId: 0 };
}

/** A window as people read it: requests, error rate, mean, p50 and p95 latency. */
export function summarizeWindow(w: SampleWindow) {
  return {
    requests: w.requests,
    errorRate: w.requests ? w.errors / w.requests : null,
    meanMs: w.requests ? w.latencyMsSum / w.requests : null,
    p50Ms: quantileMs(w.latencyBuckets, 0.5),
    p95Ms: quantileMs(w.latencyBuckets, 0.95),
  };
}
