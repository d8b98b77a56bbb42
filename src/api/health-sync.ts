import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { inBackground, type Runtime } from '../runtime.js';
import { listEvents } from '../store/health.js';
import { requireScope, requireServices, requireUnrestricted, servicePatterns } from './auth.js';
import { cursorSchema } from './cursor.js';
import { parseParam } from './problem.js';
import { nameSchema } from '../spec/names.js';

export const eventsQuery = z.strictObject({
  service: nameSchema.optional(),
  after: cursorSchema.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * `POST /sync` runs the health sync now (unless another instance is running it); `GET /events` says what
 * changed and why, newest first, or after a poller's cursor (`after=<id>`, from `next`) oldest first.
 */
export function registerHealthSyncRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.post('/sync', requireScope(rt.grants, 'override'), async (c) => {
    requireUnrestricted(c, 'the health sync (it probes every service)');
    await rt.flushReports();
    const summary = await rt.runSync({ requestId: c.get('requestId') });
    // The alerts of this sync's events go out after the answer (waitUntil on Workers).
    inBackground(c, rt.alerts.dispatch());
    return c.json(summary);
  });

  api.get('/events', requireScope(rt.grants, 'read'), async (c) => {
    const q = parseParam('query', c.req.query(), eventsQuery);
    if (q.service) requireServices(c, [q.service]);
    const page = await listEvents(rt.store.db, {
      limit: q.limit,
      services: servicePatterns(c),
      ...(q.service ? { service: q.service } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
    });
    return c.json({ events: page.entries, next: page.next });
  });
}
