import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { compileSnapshot } from '../routing/compile.js';
import type { CompiledService } from '../routing/types.js';
import type { Runtime } from '../runtime.js';
import { createOverride, endOverride, getOverride, listOverrides, toOverrideSpecRow, viewOverride, type OverrideRow } from '../store/overrides.js';
import { loadSnapshotSource } from '../store/queries.js';
import { requireScope } from './auth.js';
import { invalid, notFound, Problem } from '../problem.js';
import { parseBody, parseParam } from './problem.js';
import { nameSchema, regionSchema } from './schemas.js';
import { actorOf, changed } from './write.js';

const MAX_TTL_SECONDS = 7 * 24 * 3600;

const overrideSchema = z
  .strictObject({
    service: nameSchema,
    action: z.enum(['drain', 'pin', 'mirror-percent', 'canary-weight', 'freeze']),
    cluster: nameSchema.optional(),
    region: regionSchema.optional(),
    route: nameSchema.optional(),
    value: z.number().min(0).max(100).optional(),
    reason: z.string().trim().min(3, 'say why, in a few words').max(500),
    ttlSeconds: z.number().int().min(1).max(MAX_TTL_SECONDS),
    force: z.boolean().default(false),
  })
  .superRefine((o, ctx) => {
    if (o.action === 'drain' && !o.cluster && !o.region) ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'a drain names a cluster, a region, or both' });
    if (o.action === 'pin' && !o.cluster) ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'a pin names the cluster clients go to' });
    if (o.action === 'pin' && !o.region) ctx.addIssue({ code: 'custom', path: ['region'], message: 'a pin names the client region it applies to' });
    const holds = o.action === 'mirror-percent' || o.action === 'canary-weight';
    if (holds && !o.route) ctx.addIssue({ code: 'custom', path: ['route'], message: `${o.action} names the route it holds` });
    if (holds && o.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `${o.action} says the value to hold (0-100)` });
    if (!holds && o.value !== undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `${o.action} takes no value` });
    if ((o.action === 'drain' || o.action === 'pin') && o.route) ctx.addIssue({ code: 'custom', path: ['route'], message: `${o.action} applies to clusters, not routes` });
  });

const listQuery = z.strictObject({
  service: nameSchema.optional(),
  active: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `/overrides`: drain and pin clusters, hold a route's mirror percent or canary weight, freeze automation;
 * with reason and TTL; refused (409) when it would strand the service.
 */
export function registerOverrideRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/overrides', requireScope(rt.grants, 'read'), async (c) => {
    const q = parseParam('query', c.req.query(), listQuery);
    const now = rt.now();
    const active = q.active === undefined ? {} : { active: { now, active: q.active === 'true' } };
    const rows = await listOverrides(db, { limit: q.limit, ...(q.service ? { service: q.service } : {}), ...active });
    const views = rows.map((r) => viewOverride(r, now));
    return c.json({ overrides: views });
  });

  api.get('/overrides/:id', requireScope(rt.grants, 'read'), async (c) => {
    const row = await getOverride(db, c.req.param('id'));
    if (!row) throw notFound(`override "${c.req.param('id')}"`);
    return c.json(viewOverride(row, rt.now()));
  });

  api.post('/overrides', requireScope(rt.grants, 'override'), async (c) => {
    const body = await parseBody(c, overrideSchema);
    const now = rt.now();
    const source = await loadSnapshotSource(db);
    const spec = source.services.find((s) => s.name === body.service);
    if (!spec) throw notFound(`service "${body.service}"`);
    const errors = [];
    if (body.cluster && !spec.clusters.some((cl) => cl.name === body.cluster)) errors.push({ field: 'cluster', message: `service "${body.service}" has no cluster "${body.cluster}"` });
    if (body.action === 'drain' && body.region && !spec.clusters.some((cl) => cl.region === body.region && (!body.cluster || cl.name === body.cluster))) {
      errors.push({ field: 'region', message: `service "${body.service}" has no cluster${body.cluster ? ` "${body.cluster}"` : ''} in region "${body.region}"` });
    }
    if (body.action === 'pin' && body.region && !source.services.some((sv) => sv.clusters.some((cl) => cl.region === body.region) || sv.failover.some((r) => r.from === body.region))) {
      errors.push({ field: 'region', message: `no client region "${body.region}" is known to routing (no cluster or failover rule names it)` });
    }
    const route = body.route ? spec.routes?.find((r) => r.name === body.route) : undefined;
    if (body.route && !route) errors.push({ field: 'route', message: `service "${body.service}" has no route "${body.route}"` });
    if (route && body.action === 'mirror-percent' && !route.mirror) errors.push({ field: 'route', message: `route "${body.route}" has no mirror` });
    if (route && body.action === 'canary-weight' && !route.canary) errors.push({ field: 'route', message: `route "${body.route}" has no canary` });
    if (errors.length) throw invalid('the override names something that does not exist', errors);
    const rival = body.action === 'pin' ? source.overrides.find((o) => o.action === 'pin' && o.service === body.service && o.region === body.region && o.expiresAt > now) : undefined;
    if (rival) {
      throw new Problem({ code: 'conflicting-override', detail: `pin ${rival.id} already sends ${body.region} clients of "${body.service}" to ${rival.cluster}; delete it first` });
    }

    const row: OverrideRow = {
      id: crypto.randomUUID(),
      service: body.service,
      action: body.action,
      cluster: body.cluster ?? null,
      region: body.region ?? null,
      route: body.route ?? null,
      value: body.value ?? null,
      reason: body.reason,
      actor: c.get('actor'),
      forced: body.force,
      createdAt: now,
      expiresAt: now + body.ttlSeconds * 1000,
      endedAt: null,
      endedBy: null,
      endReason: null,
    };
    const withIt = compileSnapshot({ ...source, overrides: [...source.overrides, toOverrideSpecRow(row)] }, now);
    const stranded = strandedBy(withIt.byName.get(body.service) as CompiledService);
    if (stranded && !body.force) {
      throw new Problem({ code: 'would-strand', detail: `${stranded}; send "force": true to apply it anyway` });
    }
    await createOverride(db, actorOf(c, rt), row);
    await changed(rt);
    return c.json(viewOverride(row, now), 201);
  });

  api.delete('/overrides/:id', requireScope(rt.grants, 'override'), async (c) => {
    const id = c.req.param('id');
    const row = await getOverride(db, id);
    if (!row) throw notFound(`override "${id}"`);
    if (row.endedAt !== null || row.expiresAt <= rt.now()) {
      throw new Problem({ code: 'already-ended', detail: `override "${id}" is no longer active` });
    }
    await endOverride(db, actorOf(c, rt), row);
    await changed(rt);
    return c.body(null, 204);
  });
}

/** Why the service would have nowhere to send traffic, or null when it still has somewhere. */
function strandedBy(service: CompiledService): string | null {
  const plans = [service.anyRegion, ...service.byRegion.values(), ...[...service.byZone.values()].flatMap((zones) => [...zones.values()])];
  if (plans.every((p) => p.shares.levels.some((l) => l.pool.length > 0))) return null;
  const states = service.clusters.map((c) => `${c.name}: ${c.drained ? 'drained' : c.health}`).join(', ');
  const closed = plans.some((p) => p.shares.closed);
  return `this would leave service "${service.name}" with no routable cluster (${states})${closed ? ' and the service fails closed' : ''}`;
}
