import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import { listAudit } from '../store/audit.js';
import { requireScope, requireServices, servicePatterns } from './auth.js';
import { cursorSchema } from './cursor.js';
import { parseParam } from './problem.js';

export const auditQuery = z.strictObject({
  target: z.string().max(300).optional(),
  after: cursorSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `GET /audit?target=services/shop&limit=100`: the newest writes first; with `after=<id>` (a poller's
 * cursor, from the last answer's `next`), the writes after it, oldest first.
 */
export function registerAuditRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.get('/audit', requireScope(rt.grants, 'read'), async (c) => {
    const query = parseParam('query', c.req.query(), auditQuery);
    const about = /^services\/([^/]+)/.exec(query.target ?? '');
    if (about) requireServices(c, [about[1] as string]);
    const page = await listAudit(rt.store.db, {
      limit: query.limit,
      services: servicePatterns(c),
      ...(query.target ? { target: query.target } : {}),
      ...(query.after !== undefined ? { after: query.after } : {}),
    });
    return c.json(page);
  });
}
