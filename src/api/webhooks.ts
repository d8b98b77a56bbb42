import type { Context, Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { createWebhook, deleteWebhook } from '../control/webhooks.js';
import { notFound, Problem } from '../problem.js';
import { inBackground, type Runtime } from '../runtime.js';
import { serviceMatcher } from '../spec/token.js';
import { webhookCreateSchema } from '../spec/webhook.js';
import {
  getWebhook,
  listDeliveries,
  listWebhooks,
  viewDelivery,
  viewWebhook,
  type WebhookRow,
} from '../store/webhooks.js';
import { requireScope, servicePatterns } from './auth.js';
import { parseParam, parseBody } from './problem.js';
import { actorOf, applied } from './write.js';

export const deliveriesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/**
 * Whether a token limited to `mine` covers every service of `patterns`: each pattern, read as text
 * (its `*` a literal character), matches one of `mine`. Sound for `*`-only patterns: a `*` that one of
 * `mine`'s `*` covers stays covered whatever it stands for (`pay-eu-*` is within `pay-*`).
 */
function within(mine: readonly string[] | null, patterns: readonly string[] | null): boolean {
  if (mine === null) return true;
  if (patterns === null) return false;
  const allowed = serviceMatcher(mine);
  return patterns.every(allowed);
}

/** The webhook `id`, if the request's token may see it (a limited key: only webhooks within its services). */
async function visibleWebhook(c: Context<AppEnv>, rt: Runtime, id: string): Promise<WebhookRow> {
  const row = await getWebhook(rt.store.db, id);
  if (!row) throw notFound(`webhook "${id}"`);
  const mine = servicePatterns(c);
  if (!within(mine, row.services)) {
    throw new Problem({
      code: 'forbidden',
      detail: `${c.get('actor')} may not touch webhook "${id}": it is for ${row.services?.join(', ') ?? 'every service'}, the token is limited to ${mine?.join(', ')}`,
    });
  }
  return row;
}

/**
 * `/webhooks`: where alerts go. Creating one answers its signing secret, once. A key limited to some
 * services manages only webhooks limited to those (and must say which: `services` is required of it).
 */
export function registerWebhookRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/webhooks', requireScope(rt.grants, 'read'), async (c) => {
    const mine = servicePatterns(c);
    const rows = (await listWebhooks(db)).filter((row) => within(mine, row.services));
    return c.json({ webhooks: rows.map(viewWebhook) });
  });

  api.get('/webhooks/:id', requireScope(rt.grants, 'read'), async (c) =>
    c.json(viewWebhook(await visibleWebhook(c, rt, c.req.param('id')))),
  );

  api.get('/webhooks/:id/deliveries', requireScope(rt.grants, 'read'), async (c) => {
    const q = parseParam('query', c.req.query(), deliveriesQuery);
    const row = await visibleWebhook(c, rt, c.req.param('id'));
    return c.json({ deliveries: (await listDeliveries(db, row.id, q.limit)).map(viewDelivery) });
  });

  api.post('/webhooks', requireScope(rt.grants, 'write'), async (c) => {
    const body = await parseBody(c, webhookCreateSchema);
    const mine = servicePatterns(c);
    if (!within(mine, body.services)) {
      throw new Problem({
        code: 'forbidden',
        detail: `${c.get('actor')} is limited to ${mine?.join(', ')}: its webhooks must be limited to those services`,
        errors: [
          {
            field: 'services',
            message:
              body.services === null
                ? `required of a key limited to ${mine?.join(', ')}`
                : `each pattern must be within ${mine?.join(', ')}`,
          },
        ],
      });
    }
    const row = await applied(rt, await createWebhook(db, actorOf(c, rt), body));
    // This instance learns of it now: it is whom the instance tells if the store becomes unreachable.
    inBackground(c, rt.alerts.dispatch());
    return c.json({ ...viewWebhook(row), secret: row.secret }, 201);
  });

  api.delete('/webhooks/:id', requireScope(rt.grants, 'write'), async (c) => {
    await visibleWebhook(c, rt, c.req.param('id'));
    await applied(rt, await deleteWebhook(db, actorOf(c, rt), c.req.param('id')));
    return c.body(null, 204);
  });

  api.post('/webhooks/:id/test', requireScope(rt.grants, 'write'), async (c) => {
    const row = await visibleWebhook(c, rt, c.req.param('id'));
    const delivery = await rt.alerts.sendTest(row, c.get('actor'));
    return c.json(viewDelivery(delivery));
  });
}
