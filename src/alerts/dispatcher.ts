import { mapBounded } from '../health/probe.js';
import { describeError, errorFields, type Logger } from '../observe/log.js';
import type { Db } from '../store/client.js';
import {
  claimDueDeliveries,
  insertDelivery,
  queueEvents,
  updateDelivery,
  type DeliveryRow,
  type NewDelivery,
  type WebhookRow,
} from '../store/webhooks.js';
import { alertFromEvent, backoffMs, retryable, wants, withText, type Alert } from './alert.js';
import { sendAlert, type AttemptResult } from './send.js';

/** How alerts are delivered. */
export interface AlertOptions {
  /** Attempts per delivery, the first included. */
  maxAttempts: number;
  /** The wait before the second attempt; each next wait doubles (1 s, 2 s, 4 s...). */
  backoffMs: number;
  /** One attempt's timeout. */
  timeoutMs: number;
}

export const DEFAULT_ALERT_OPTIONS: AlertOptions = { maxAttempts: 5, backoffMs: 1_000, timeoutMs: 5_000 };

/** Events read per queueing transaction, and transactions per dispatch (a backlog goes over the next runs). */
const QUEUE_BATCH_EVENTS = 500;
const QUEUE_BATCHES_PER_DISPATCH = 10;
/** Deliveries claimed at once, and sent at once (Workers allow 6 simultaneous outbound connections). */
const CLAIM_BATCH = 50;
const SEND_CONCURRENCY = 4;

export interface DispatcherDeps {
  db: Db;
  now: () => number;
  log: Logger;
  /** Names this instance in the store-unreachable alert. */
  instanceId: string;
  /** Whether the store answered this instance's last snapshot refresh (null: it did). */
  storeError: () => { at: number; message: string } | null;
  options: AlertOptions;
}

/**
 * Delivers alerts to the webhooks, never inside the health sync: it runs after the sync has committed
 * its events (and on its own), reads the events after its cursor, queues a delivery per webhook that
 * wants each (one transaction: once per webhook, however many instances dispatch), then claims the
 * due deliveries and sends them, each with its retries (exponential backoff; a 4xx other than 408 and
 * 429 is final), recording every attempt. The store's own outage is told by the instance that sees it,
 * once per outage, to the webhooks it last read (the store cannot say who they are then).
 */
export class AlertDispatcher {
  readonly #deps: DispatcherDeps;
  #inflight: Promise<void> | null = null;
  /** The webhooks as last read: whom to tell when the store cannot be read. */
  #known: WebhookRow[] = [];
  /** The store outage this instance has told of (since when), until it tells of the recovery. */
  #outage: { since: number; alertId: string } | null = null;
  /** Deliveries made while the store was down, logged once it answers again. */
  #unlogged: NewDelivery[] = [];
  /** Direct deliveries (store alerts) still sending: tests and shutdown may wait for them. */
  readonly #direct = new Set<Promise<void>>();

  constructor(deps: DispatcherDeps) {
    this.#deps = deps;
  }

  /** Runs one dispatch (single-flight: a call while one runs joins it). Never rejects: failures are logged. */
  dispatch(): Promise<void> {
    this.#inflight ??= this.#dispatch()
      .catch((error: unknown) => this.#deps.log.log('warn', 'alert dispatch failed', errorFields(error)))
      .finally(() => {
        this.#inflight = null;
      });
    return this.#inflight;
  }

  /** Settles once this instance's dispatch and direct deliveries in flight have. */
  async idle(): Promise<void> {
    await this.#inflight;
    await Promise.all([...this.#direct]);
  }

  /**
   * The snapshot refresh failed: the first failure of an outage tells the webhooks (`store-unreachable`),
   * the ones after it tell nobody until the store has answered again.
   */
  storeFailed(): Promise<void> {
    const error = this.#deps.storeError();
    if (this.#outage || !error) return Promise.resolve();
    this.#outage = { since: error.at, alertId: `store-unreachable-${this.#deps.instanceId}-${error.at}` };
    return this.#tellDirectly(
      withText({
        id: this.#outage.alertId,
        kind: 'store-unreachable',
        service: null,
        cluster: null,
        at: new Date(error.at).toISOString(),
        message: `instance ${this.#deps.instanceId} cannot reach the store since ${new Date(error.at).toISOString()}; it serves its last good snapshot: ${error.message}`,
        detail: { instance: this.#deps.instanceId, since: new Date(error.at).toISOString(), error: error.message },
      }),
    );
  }

  /**
   * Sends a test alert to `webhook` now, one attempt, and answers its delivery as logged (the dispatcher's
   * retries are not for tests: the caller sees the receiver's answer at once).
   */
  async sendTest(webhook: WebhookRow, actor: string): Promise<DeliveryRow> {
    const now = this.#deps.now();
    const alert = withText({
      id: `test-${crypto.randomUUID()}`,
      kind: 'test',
      service: null,
      cluster: null,
      at: new Date(now).toISOString(),
      message: `test alert from Waymark, sent by ${actor}`,
      detail: { webhook: webhook.id },
    });
    const body = JSON.stringify(alert);
    const row = await insertDelivery(this.#deps.db, {
      ...deliveryFor(webhook.id, alert, null, body, now),
      claimedUntil: now + this.#claimMs(),
    });
    const result = await this.#attempt(webhook, alert, body);
    const outcome = attemptOutcome(result, 1, 1, this.#deps.now(), this.#deps.options.backoffMs);
    await updateDelivery(this.#deps.db, row.id, { ...outcome, claimedUntil: null });
    return { ...row, ...outcome, claimedUntil: null };
  }

  async #dispatch(): Promise<void> {
    const { db, now } = this.#deps;
    this.#noteRecovery();
    await this.#logUnlogged();
    for (let i = 0; i < QUEUE_BATCHES_PER_DISPATCH; i++) {
      const { hooks, read } = await queueEvents(db, QUEUE_BATCH_EVENTS, (event, hooks) => {
        const alert = alertFromEvent(event);
        if (!alert) return [];
        const body = JSON.stringify(alert);
        return hooks
          .filter((h) => event.id > h.afterEventId && wants(h, alert))
          .map((h) => deliveryFor(h.id, alert, event.id, body, now()));
      });
      this.#known = hooks;
      if (read < QUEUE_BATCH_EVENTS) break;
    }
    for (;;) {
      const at = now();
      const claimed = await claimDueDeliveries(db, at, at + this.#claimMs(), CLAIM_BATCH);
      if (claimed.length === 0) break;
      await mapBounded(claimed, SEND_CONCURRENCY, (c) => this.#deliver(c.delivery, { url: c.url, secret: c.secret }));
      if (claimed.length < CLAIM_BATCH) break;
    }
  }

  /** Sends one claimed delivery with the attempts it has left, recording each. */
  async #deliver(delivery: DeliveryRow, to: { url: string; secret: string }): Promise<void> {
    const { db, now, options } = this.#deps;
    const alert = JSON.parse(delivery.payload) as Alert;
    for (let attempt = delivery.attempts + 1; attempt <= options.maxAttempts; attempt++) {
      const result = await this.#attempt(to, alert, delivery.payload);
      const outcome = attemptOutcome(result, attempt, options.maxAttempts, now(), options.backoffMs);
      await updateDelivery(db, delivery.id, outcome);
      if (outcome.status !== 'pending') return;
      await sleep(Math.max(0, outcome.nextAttemptAt - now()));
    }
  }

  #attempt(to: { url: string; secret: string }, alert: Alert, body: string): Promise<AttemptResult> {
    return sendAlert({
      url: to.url,
      secret: to.secret,
      alert,
      body,
      timestamp: Math.floor(this.#deps.now() / 1000),
      timeoutMs: this.#deps.options.timeoutMs,
    });
  }

  /** How long a claim lasts: every attempt timing out, with every backoff, and some slack. */
  #claimMs(): number {
    const { maxAttempts, timeoutMs, backoffMs: base } = this.#deps.options;
    let total = maxAttempts * timeoutMs + 5_000;
    for (let a = 1; a < maxAttempts; a++) total += backoffMs(a, base);
    return total;
  }

  /** The store answered again since the outage this instance told of: say so (`store-recovered`). */
  #noteRecovery(): void {
    const outage = this.#outage;
    if (!outage || this.#deps.storeError() !== null) return;
    this.#outage = null;
    const at = this.#deps.now();
    void this.#tellDirectly(
      withText({
        id: `store-recovered-${this.#deps.instanceId}-${outage.since}`,
        kind: 'store-recovered',
        service: null,
        cluster: null,
        at: new Date(at).toISOString(),
        message: `instance ${this.#deps.instanceId} reaches the store again (unreachable from ${new Date(outage.since).toISOString()})`,
        detail: {
          instance: this.#deps.instanceId,
          since: new Date(outage.since).toISOString(),
          downMs: at - outage.since,
        },
      }),
    );
  }

  /** Sends an alert the store cannot queue to every known webhook that wants it; logs it in the store later. */
  #tellDirectly(alert: Alert): Promise<void> {
    const body = JSON.stringify(alert);
    const { now, options } = this.#deps;
    const work = Promise.all(
      this.#known
        .filter((h) => wants(h, alert))
        .map(async (hook) => {
          const row: NewDelivery = deliveryFor(hook.id, alert, null, body, now());
          for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
            const outcome = attemptOutcome(
              await this.#attempt(hook, alert, body),
              attempt,
              options.maxAttempts,
              now(),
              options.backoffMs,
            );
            Object.assign(row, outcome);
            if (outcome.status !== 'pending') break;
            await sleep(Math.max(0, outcome.nextAttemptAt - now()));
          }
          this.#unlogged.push(row);
        }),
    ).then(
      () => undefined,
      (error: unknown) => this.#deps.log.log('warn', 'store alert delivery failed', errorFields(error)),
    );
    this.#direct.add(work);
    void work.finally(() => this.#direct.delete(work));
    return work;
  }

  async #logUnlogged(): Promise<void> {
    const rows = this.#unlogged.splice(0);
    for (const [i, row] of rows.entries()) {
      try {
        await insertDelivery(this.#deps.db, row);
      } catch (error) {
        // Still unreachable, or the webhook is gone: keep what is left for the next dispatch.
        if (describeError(error).includes('already logged')) continue;
        this.#unlogged.push(...rows.slice(i));
        throw error;
      }
    }
  }
}

/** A new pending delivery of `alert` to a webhook. */
function deliveryFor(webhookId: string, alert: Alert, eventId: number | null, body: string, now: number): NewDelivery {
  return {
    webhookId,
    alertId: alert.id,
    eventId,
    kind: alert.kind,
    service: alert.service,
    payload: body,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: now,
    createdAt: now,
    updatedAt: now,
  };
}

/** What an attempt makes of a delivery: delivered, failed for good, or pending until its next attempt. */
function attemptOutcome(
  result: AttemptResult,
  attempt: number,
  maxAttempts: number,
  now: number,
  baseBackoffMs: number,
): Pick<
  DeliveryRow,
  'status' | 'attempts' | 'nextAttemptAt' | 'lastError' | 'responseStatus' | 'updatedAt' | 'deliveredAt'
> {
  const common = { attempts: attempt, responseStatus: result.status, updatedAt: now };
  if (result.ok) return { ...common, status: 'delivered', lastError: null, deliveredAt: now, nextAttemptAt: now };
  const again = attempt < maxAttempts && retryable(result.status);
  return {
    ...common,
    status: again ? 'pending' : 'failed',
    lastError: result.error,
    deliveredAt: null,
    nextAttemptAt: again ? now + backoffMs(attempt, baseBackoffMs) : now,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
