import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import { listEvents } from '../store/health.js';
import { requireScope } from './auth.js';
import { parseParam } from './problem.js';
import { nameSchema } from './schemas.js';

const eventsQuery = z.strictObject({
  service: nameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** `POST /sync` runs the health sync now; `GET /events` says what changed and why. */
export function registerHealthSyncRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.post('/sync', requireScope(rt.grants, 'override'), async (c) => {
    await rt.flushReports();
    return c.json(await rt.runSync(c.get('requestId')));
  });

  api.get('/events', requireScope(rt.grants, 'read'), async (c) => {
    const q = parseParam('query', c.req.query(), eventsQuery);
    return c.json({ events: await listEvents(rt.store.db, { limit: q.limit, ...(q.service ? { service: q.service } : {}) }) });
  });
}
