import { eq } from 'drizzle-orm';
import { notFound } from '../problem.js';
import type { WebhookCreate } from '../spec/webhook.js';
import type { Db } from '../store/client.js';
import { webhookDeliveries, webhooks } from '../store/schema.js';
import { getWebhook, lastEventId, viewWebhook, type WebhookRow } from '../store/webhooks.js';
import { done, refuse, runCommand, type Actor, type CommandResult } from './command.js';

/** 256 bits, base64url: a signing secret nobody guesses. */
const SECRET_BYTES = 32;

function newSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
  return `whsec_${btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')}`;
}

/**
 * Creates a webhook: it is sent the alerts of events recorded after it (not the history). The secret
 * is the caller's or a new one; the answer holds it, the audit entry (`webhook.create` on
 * `webhooks/<id>`) does not.
 */
export function createWebhook(db: Db, actor: Actor, input: WebhookCreate): Promise<CommandResult<WebhookRow>> {
  return runCommand(db, actor, async (c) => {
    const row: WebhookRow = {
      id: crypto.randomUUID(),
      url: input.url,
      events: input.events,
      services: input.services,
      secret: input.secret ?? newSecret(),
      description: input.description,
      afterEventId: await lastEventId(c.tx),
      createdAt: c.actor.now,
      createdBy: c.actor.name,
    };
    await c.tx.insert(webhooks).values(row);
    await c.audit({ action: 'webhook.create', target: `webhooks/${row.id}`, before: null, after: viewWebhook(row) });
    return done(row, false);
  });
}

/**
 * Deletes a webhook and its delivery log (audited as `webhook.delete`); a delivery in flight finishes
 * its attempt and is not tried again.
 */
export function deleteWebhook(db: Db, actor: Actor, id: string): Promise<CommandResult<WebhookRow>> {
  return runCommand(db, actor, async (c) => {
    const row = await getWebhook(c.tx, id);
    if (!row) return refuse(notFound(`webhook "${id}"`));
    await c.tx.delete(webhookDeliveries).where(eq(webhookDeliveries.webhookId, id));
    await c.tx.delete(webhooks).where(eq(webhooks.id, id));
    await c.audit({ action: 'webhook.delete', target: `webhooks/${id}`, before: viewWebhook(row), after: null });
    return done(row, false);
  });
}
