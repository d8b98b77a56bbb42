import { serviceMatcher } from '../spec/token.js';
import type { AlertKind } from '../spec/webhook.js';

/** An alert as a webhook receives it (the JSON body). */
export interface Alert {
  /** Unique per alert: `event-<id>` for a stored event; a receiver may use it to drop a repeat. */
  id: string;
  kind: AlertKind;
  service: string | null;
  cluster: string | null;
  /** ISO 8601 UTC. */
  at: string;
  message: string;
  detail: unknown;
  /** One line for people, Slack-compatible (`text` is what Slack's incoming webhooks show). */
  text: string;
}

/** A stored event, as the dispatcher reads it. */
export interface StoredEvent {
  id: number;
  at: number;
  service: string;
  cluster: string | null;
  kind: string;
  message: string;
  detail: unknown;
}

/** Who a webhook is for: the kinds it asked for (`*`: all) and the services (patterns; null: all). */
export interface WebhookFilter {
  events: readonly string[];
  services: readonly string[] | null;
}

const EMOJI: Record<AlertKind, string> = {
  'cluster-state': ':large_orange_circle:',
  shares: ':twisted_rightwards_arrows:',
  'override-applied': ':construction:',
  'override-ended': ':white_check_mark:',
  'override-expired': ':hourglass:',
  'mirror-halted': ':octagonal_sign:',
  'canary-promoted': ':rocket:',
  'canary-rolled-back': ':rewind:',
  'store-unreachable': ':rotating_light:',
  'store-recovered': ':white_check_mark:',
  test: ':wave:',
};

/** What an event's phase turns a `mirror-ramp` or `canary` event into; other phases alert nobody. */
const PHASE_KINDS: Record<string, Record<string, AlertKind>> = {
  'mirror-ramp': { halted: 'mirror-halted' },
  canary: { promoted: 'canary-promoted', 'rolled-back': 'canary-rolled-back' },
};

const DIRECT_KINDS: ReadonlySet<string> = new Set([
  'cluster-state',
  'shares',
  'override-applied',
  'override-ended',
  'override-expired',
]);

/**
 * The alert a stored event raises, or null when it raises none (a mirror step up, a latency order, a
 * pause). Mirror and canary events alert by the phase they reached: `halted`, `promoted`, `rolled-back`.
 */
export function alertFromEvent(event: StoredEvent): Alert | null {
  const kind = alertKindOf(event);
  if (!kind) return null;
  return withText({
    id: `event-${event.id}`,
    kind,
    service: event.service,
    cluster: event.cluster,
    at: new Date(event.at).toISOString(),
    message: event.message,
    detail: event.detail ?? null,
  });
}

function alertKindOf(event: StoredEvent): AlertKind | null {
  if (DIRECT_KINDS.has(event.kind)) return event.kind as AlertKind;
  const phases = PHASE_KINDS[event.kind];
  const phase = isRecord(event.detail) ? event.detail.phase : undefined;
  return phases && typeof phase === 'string' ? (phases[phase] ?? null) : null;
}

/** Adds the one-line summary: `:red_circle: shop/ew1 healthy -> unhealthy: 3 failed probes`. */
export function withText(alert: Omit<Alert, 'text'>): Alert {
  return { ...alert, text: `${emojiOf(alert)} ${summaryOf(alert)}` };
}

function emojiOf(alert: Omit<Alert, 'text'>): string {
  if (alert.kind === 'cluster-state' && isRecord(alert.detail)) {
    if (alert.detail.to === 'unhealthy') return ':red_circle:';
    if (alert.detail.to === 'healthy') return ':large_green_circle:';
  }
  return EMOJI[alert.kind];
}

function summaryOf(alert: Omit<Alert, 'text'>): string {
  if (alert.service === null) return alert.message;
  // A cluster-state message starts with the cluster's name: say which service it belongs to.
  if (alert.kind === 'cluster-state' && alert.cluster && alert.message.startsWith(`${alert.cluster} `))
    return `${alert.service}/${alert.message}`;
  return `${alert.service}: ${alert.message}`;
}

/**
 * Whether a webhook wants an alert: its kind is asked for (or `*`), and its service matches the
 * webhook's patterns. Alerts about no service (the store's) say nothing about any one service: every
 * webhook that asks for their kind gets them.
 */
export function wants(webhook: WebhookFilter, alert: Pick<Alert, 'kind' | 'service'>): boolean {
  if (!webhook.events.includes('*') && !webhook.events.includes(alert.kind)) return false;
  return alert.service === null || serviceMatcher(webhook.services)(alert.service);
}

/**
 * Whether a failed attempt is worth another: network errors, timeouts, 5xx, 408 and 429 are; any other
 * 4xx says the receiver refuses this request, and sending it again would not change that.
 */
export function retryable(status: number | null): boolean {
  return status === null || status >= 500 || status === 408 || status === 429;
}

/** The wait before attempt `attempt + 1` (1-based): base, 2 x base, 4 x base... */
export function backoffMs(attempt: number, baseMs: number): number {
  return baseMs * 2 ** Math.max(0, attempt - 1);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
