import { and, asc, eq, gt, gte, sql } from 'drizzle-orm';
import { emptyBuckets, quantileMs } from '../observe/latency.js';
import type { RouteSample, SampleKind } from '../observe/route-samples.js';
import type { RouteSpec } from '../routing/types.js';
import type { Db } from './client.js';
import type { Reader } from './reader.js';
import { serialized } from './transaction.js';
import { routeSamples, routes, routeState } from './schema.js';

/** A route as the admin API shows it. */
export type RouteConfig = RouteSpec & { service: string };

export function toRouteConfig(row: typeof routes.$inferSelect): RouteConfig {
  return { service: row.service, name: row.name, order: row.order, ...row.spec };
}

export async function listRoutes(db: Reader, service: string): Promise<RouteConfig[]> {
  const rows = await db
    .select()
    .from(routes)
    .where(eq(routes.service, service))
    .orderBy(asc(routes.order), asc(routes.name));
  return rows.map(toRouteConfig);
}

export async function getRoute(db: Reader, service: string, name: string): Promise<RouteConfig | null> {
  const rows = await db
    .select()
    .from(routes)
    .where(and(eq(routes.service, service), eq(routes.name, name)));
  return rows[0] ? toRouteConfig(rows[0]) : null;
}

/** One batch insert of what an instance saw of routes' primary, mirrored and canary requests. */
export async function insertRouteSamples(db: Db, instance: string, at: number, rows: RouteSample[]): Promise<void> {
  if (rows.length === 0) return;
  await serialized(db, () => db.insert(routeSamples).values(rows.map((r) => ({ ...r, at, instance }))));
}

/** A route's samples of one kind over a window, summed across instances. */
export interface SampleWindow {
  requests: number;
  errors: number;
  latencyMsSum: number;
  latencyBuckets: number[];
  lastId: number;
}

/** Route samples flushed after `afterId` (and at or after `since`), summed per kind: the GET route's view. */
export async function loadSampleWindows(
  db: Reader,
  service: string,
  route: string,
  opts: { since?: number; afterId?: number } = {},
): Promise<Record<SampleKind, SampleWindow>> {
  const rows = await db
    .select()
    .from(routeSamples)
    .where(
      and(
        eq(routeSamples.service, service),
        eq(routeSamples.route, route),
        gte(routeSamples.at, opts.since ?? 0),
        gt(routeSamples.id, opts.afterId ?? 0),
      ),
    );
  return sumWindows(rows, opts.afterId ?? 0);
}

export type RouteSampleRow = typeof routeSamples.$inferSelect;

/**
 * The evidence automation has not used yet, for every route, in one query: each route's samples after
 * the older of its two bookmarks (all of them for a route without state). By service, then route.
 */
export async function loadUnusedSamples(db: Reader): Promise<Map<string, Map<string, RouteSampleRow[]>>> {
  const rows = await db
    .select({ sample: routeSamples })
    .from(routeSamples)
    .leftJoin(routeState, and(eq(routeState.service, routeSamples.service), eq(routeState.route, routeSamples.route)))
    .where(
      sql`${routeSamples.id} > min(coalesce(${routeState.sampleBookmark}, 0), coalesce(${routeState.canaryBookmark}, 0))`,
    );
  const byService = new Map<string, Map<string, RouteSampleRow[]>>();
  for (const { sample } of rows) {
    const routes = byService.get(sample.service) ?? new Map<string, RouteSampleRow[]>();
    byService.set(sample.service, routes);
    routes.set(sample.route, [...(routes.get(sample.route) ?? []), sample]);
  }
  return byService;
}

/** Samples after `afterId`, summed per kind. */
export function sumWindows(rows: readonly RouteSampleRow[], afterId: number): Record<SampleKind, SampleWindow> {
  const windows = { primary: emptyWindow(), mirror: emptyWindow(), canary: emptyWindow() };
  for (const r of rows) {
    if (r.id <= afterId) continue;
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
