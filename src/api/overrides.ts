import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { createOverride, endOverride } from '../control/overrides.js';
import { notFound } from '../problem.js';
import { OVERRIDE_ACTIONS } from '../routing/types.js';
import type { Runtime } from '../runtime.js';
import { getOverride, listOverrides, viewOverride } from '../store/overrides.js';
import { requireScope, requireServices, servicePatterns } from './auth.js';
import { parseBody, parseParam } from './problem.js';
import { nameSchema, regionSchema } from '../spec/names.js';
import { actorOf, applied } from './write.js';

const MAX_TTL_SECONDS = 7 * 24 * 3600;

export const overrideSchema = z
  .strictObject({
    service: nameSchema,
    action: z.enum(OVERRIDE_ACTIONS),
    cluster: nameSchema.optional(),
    region: regionSchema.optional(),
    route: nameSchema.optional(),
    value: z.number().min(0).max(100).optional(),
    reason: z.string().trim().min(3, 'say why, in a few words').max(500),
    ttlSeconds: z.number().int().min(1).max(MAX_TTL_SECONDS),
    force: z.boolean().default(false),
  })
  .superRefine((o, ctx) => {
    if (o.action === 'drain' && !o.cluster && !o.region)
      ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'a drain names a cluster, a region, or both' });
    if (o.action === 'pin' && !o.cluster)
      ctx.addIssue({ code: 'custom', path: ['cluster'], message: 'a pin names the cluster clients go to' });
    if (o.action === 'pin' && !o.region)
      ctx.addIssue({ code: 'custom', path: ['region'], message: 'a pin names the client region it applies to' });
    const holds = o.action === 'mirror-percent' || o.action === 'canary-weight';
    if (holds && !o.route)
      ctx.addIssue({ code: 'custom', path: ['route'], message: `${o.action} names the route it holds` });
    if (holds && o.value === undefined)
      ctx.addIssue({ code: 'custom', path: ['value'], message: `${o.action} says the value to hold (0-100)` });
    if (!holds && o.value !== undefined)
      ctx.addIssue({ code: 'custom', path: ['value'], message: `${o.action} takes no value` });
    if ((o.action === 'drain' || o.action === 'pin') && o.route)
      ctx.addIssue({ code: 'custom', path: ['route'], message: `${o.action} applies to clusters, not routes` });
  });

/** `DELETE /overrides/{id}?reason=...`: why it ends early, said in its `override-ended` event. */
export const endQuery = z.strictObject({
  reason: z.string().trim().min(3, 'say why, in a few words').max(500).optional(),
});

export const listQuery = z.strictObject({
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
    if (q.service) requireServices(c, [q.service]);
    const now = rt.now();
    const active = q.active === undefined ? {} : { active: { now, active: q.active === 'true' } };
    const rows = await listOverrides(db, {
      limit: q.limit,
      services: servicePatterns(c),
      ...(q.service ? { service: q.service } : {}),
      ...active,
    });
    const views = rows.map((r) => viewOverride(r, now));
    return c.json({ overrides: views });
  });

  api.get('/overrides/:id', requireScope(rt.grants, 'read'), async (c) => {
    const row = await getOverride(db, c.req.param('id'));
    if (!row) throw notFound(`override "${c.req.param('id')}"`);
    requireServices(c, [row.service]);
    return c.json(viewOverride(row, rt.now()));
  });

  api.post('/overrides', requireScope(rt.grants, 'override'), async (c) => {
    const body = await parseBody(c, overrideSchema);
    requireServices(c, [body.service]);
    const row = await applied(rt, await createOverride(db, actorOf(c, rt), body));
    return c.json(viewOverride(row, rt.now()), 201);
  });

  api.delete('/overrides/:id', requireScope(rt.grants, 'override'), async (c) => {
    // An override's service never changes: checked before the command, which refuses what is gone.
    const { reason } = parseParam('query', c.req.query(), endQuery);
    const row = await getOverride(db, c.req.param('id'));
    if (row) requireServices(c, [row.service]);
    await applied(rt, await endOverride(db, actorOf(c, rt), c.req.param('id'), reason));
    return c.body(null, 204);
  });
}
