import { and, asc, desc, eq, gt, inArray, isNull, lte, max, min, or, sql } from 'drizzle-orm';
import type { Db } from './client.js';
import type { Reader } from './reader.js';
import { events, webhookCursor, webhookDeliveries, webhooks } from './schema.js';
import { serialized, transact } from './transaction.js';

export type WebhookRow = typeof webhooks.$inferSelect;
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;
export type NewDelivery = typeof webhookDeliveries.$inferInsert;
type EventRow = typeof events.$inferSelect;

/** A webhook as the API shows it: never its secret. */
export interface WebhookView {
  id: string;
  url: string;
  events: string[];
  services: string[] | null;
  description: string;
  createdAt: string;
  createdBy: string;
}

export function viewWebhook(row: WebhookRow): WebhookView {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    services: row.services ?? null,
    description: row.description,
    createdAt: new Date(row.createdAt).toISOString(),
    createdBy: row.createdBy,
  };
}

/** A delivery as the log shows it: what was sent, how it went, when. */
export interface DeliveryView {
  id: number;
  alertId: string;
  eventId: number | null;
  kind: string;
  service: string | null;
  status: DeliveryRow['status'];
  attempts: number;
  lastError: string | null;
  responseStatus: number | null;
  createdAt: string;
  updatedAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

export function viewDelivery(row: DeliveryRow): DeliveryView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: row.id,
    alertId: row.alertId,
    eventId: row.eventId,
    kind: row.kind,
    service: row.service,
    status: row.status,
    attempts: row.attempts,
    lastError: row.lastError,
    responseStatus: row.responseStatus,
    createdAt: iso(row.createdAt) as string,
    updatedAt: iso(row.updatedAt) as string,
    deliveredAt: iso(row.deliveredAt),
    nextAttemptAt: row.status === 'pending' ? iso(row.nextAttemptAt) : null,
  };
}

/** Every webhook, newest first (a team has a handful). */
export function listWebhooks(db: Reader): Promise<WebhookRow[]> {
  return db.select().from(webhooks).orderBy(desc(webhooks.createdAt), sql`rowid desc`);
}

export async function getWebhook(db: Reader, id: string): Promise<WebhookRow | null> {
  const rows = await db.select().from(webhooks).where(eq(webhooks.id, id));
  return rows[0] ?? null;
}

/** The newest event's id (0: none yet): a new webhook is sent only what comes after it. */
export async function lastEventId(db: Reader): Promise<number> {
  const [row] = await db.select({ id: max(events.id) }).from(events);
  return row?.id ?? 0;
}

/** A webhook's delivery log, newest first, `limit` rows. */
export function listDeliveries(db: Reader, webhookId: string, limit: number): Promise<DeliveryRow[]> {
  return db
    .select()
    .from(webhookDeliveries)
    .where(eq(webhookDeliveries.webhookId, webhookId))
    .orderBy(desc(webhookDeliveries.id))
    .limit(limit);
}

/**
 * Queues the stored events after the dispatcher's cursor for the webhooks that want them, and moves the
 * cursor past them, in one write transaction: with several instances dispatching, each event is queued
 * once per webhook (and the unique (webhook, alert) index would refuse a second anyway). `deliveriesOf`
 * says which deliveries an event makes. Answers the webhooks read, and how many events were read.
 */
export function queueEvents(
  db: Db,
  limit: number,
  deliveriesOf: (event: EventRow, hooks: readonly WebhookRow[]) => NewDelivery[],
): Promise<{ hooks: WebhookRow[]; read: number }> {
  return transact(db, async (tx) => {
    const hooks = await tx.select().from(webhooks);
    const [cursor] = await tx.select().from(webhookCursor).where(eq(webhookCursor.id, 1));
    let after = cursor?.lastEventId;
    if (hooks.length === 0) {
      // Nobody to tell: the cursor follows the events, so that a webhook made later starts from there.
      const last = await lastEventId(tx);
      if (last !== after) await saveCursor(tx, last);
      return { hooks, read: 0 };
    }
    if (after === undefined) {
      const [first] = await tx.select({ id: min(webhooks.afterEventId) }).from(webhooks);
      after = first?.id ?? 0;
    }
    const rows = await tx.select().from(events).where(gt(events.id, after)).orderBy(asc(events.id)).limit(limit);
    const queued = rows.flatMap((e) => deliveriesOf(e, hooks));
    for (const row of queued) await tx.insert(webhookDeliveries).values(row).onConflictDoNothing();
    const last = rows.at(-1);
    if (last) await saveCursor(tx, last.id);
    else if (cursor === undefined) await saveCursor(tx, after);
    return { hooks, read: rows.length };
  });
}

async function saveCursor(tx: Reader, lastId: number): Promise<void> {
  await tx
    .insert(webhookCursor)
    .values({ id: 1, lastEventId: lastId })
    .onConflictDoUpdate({ target: webhookCursor.id, set: { lastEventId: lastId } });
}

/** A claimed delivery with where it goes. */
export interface ClaimedDelivery {
  delivery: DeliveryRow;
  url: string;
  secret: string;
}

/**
 * Claims up to `limit` pending deliveries that are due and not claimed by a live claim, until
 * `claimUntil`, in one write transaction: two dispatchers never hold the same delivery. A dispatcher
 * that dies mid-delivery leaves its claim to expire; another one then takes the rest of the attempts.
 */
export function claimDueDeliveries(db: Db, now: number, claimUntil: number, limit: number): Promise<ClaimedDelivery[]> {
  return transact(db, async (tx) => {
    const due = and(
      eq(webhookDeliveries.status, 'pending'),
      lte(webhookDeliveries.nextAttemptAt, now),
      or(isNull(webhookDeliveries.claimedUntil), lte(webhookDeliveries.claimedUntil, now)),
    );
    const rows = await tx
      .select({ delivery: webhookDeliveries, url: webhooks.url, secret: webhooks.secret })
      .from(webhookDeliveries)
      .innerJoin(webhooks, eq(webhooks.id, webhookDeliveries.webhookId))
      .where(due)
      .orderBy(asc(webhookDeliveries.id))
      .limit(limit);
    if (rows.length === 0) return [];
    await tx
      .update(webhookDeliveries)
      .set({ claimedUntil: claimUntil })
      .where(
        inArray(
          webhookDeliveries.id,
          rows.map((r) => r.delivery.id),
        ),
      );
    return rows.map((r) => ({ ...r, delivery: { ...r.delivery, claimedUntil: claimUntil } }));
  });
}

/** Inserts a delivery (a test, or one an instance made while the store was down) and answers it. */
export async function insertDelivery(db: Db, row: NewDelivery): Promise<DeliveryRow> {
  const [inserted] = await serialized(db, () =>
    db.insert(webhookDeliveries).values(row).onConflictDoNothing().returning(),
  );
  if (!inserted) throw new Error(`delivery ${row.alertId} to webhook ${row.webhookId} is already logged`);
  return inserted;
}

/** Records an attempt's outcome on a delivery. */
export async function updateDelivery(
  db: Db,
  id: number,
  set: Partial<
    Pick<
      DeliveryRow,
      | 'status'
      | 'attempts'
      | 'nextAttemptAt'
      | 'claimedUntil'
      | 'lastError'
      | 'responseStatus'
      | 'updatedAt'
      | 'deliveredAt'
    >
  >,
): Promise<void> {
  await serialized(db, () => db.update(webhookDeliveries).set(set).where(eq(webhookDeliveries.id, id)));
}
