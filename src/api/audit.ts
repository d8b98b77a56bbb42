import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import { listAudit } from '../store/queries.js';
import { requireScope } from './auth.js';
import { parseParam } from './problem.js';

const auditQuery = z.strictObject({
  target: z.string().max(300).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** `GET /audit?target=services/shop&limit=100`: the newest writes first. */
export function registerAuditRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.get('/audit', requireScope(rt.grants, 'read'), async (c) => {
    const query = parseParam('query', c.req.query(), auditQuery);
    const entries = await listAudit(rt.store.db, { limit: query.limit, ...(query.target ? { target: query.target } : {}) });
    return c.json({ entries });
  });
}
