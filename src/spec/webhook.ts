import { z } from 'zod';
import { isFetchBlockedPort } from './blocked-ports.js';
import { servicePatternSchema } from './token.js';

/**
 * What a webhook can be told. Most are stored events (`cluster-state`, `shares`, the override ones);
 * `mirror-halted`, `canary-promoted` and `canary-rolled-back` are the `mirror-ramp` and `canary` events
 * whose phase says so; `store-unreachable` and `store-recovered` are raised by an instance itself (the
 * store cannot record them); `test` only by `POST /webhooks/{id}/test`.
 */
const ALERT_KINDS = [
  'cluster-state',
  'shares',
  'override-applied',
  'override-ended',
  'override-expired',
  'mirror-halted',
  'canary-promoted',
  'canary-rolled-back',
  'store-unreachable',
  'store-recovered',
] as const;

export type AlertKind = (typeof ALERT_KINDS)[number] | 'test';

const WEBHOOK_URL_SHAPE =
  'must be an http(s) URL without credentials or fragment, like "https://hooks.slack.com/services/..."';

/** Where alerts are sent: http(s), no credentials (the secret signs instead), no port fetch refuses. */
const webhookUrlSchema = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: WEBHOOK_URL_SHAPE });
    return z.NEVER;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.hash) {
    ctx.addIssue({ code: 'custom', message: WEBHOOK_URL_SHAPE });
    return z.NEVER;
  }
  if (url.port !== '' && isFetchBlockedPort(Number(url.port))) {
    ctx.addIssue({
      code: 'custom',
      message: `port ${url.port} is blocked by fetch (a bad port in the Fetch standard)`,
    });
    return z.NEVER;
  }
  return url.href;
});

/**
 * `POST /webhooks`: where to send (`url`), which alert kinds (`["*"]` for all), about which services
 * (patterns, `*` any characters; omitted or null: every service), the signing secret (omitted: one is
 * made and shown once) and a description.
 */
export const webhookCreateSchema = z.strictObject({
  url: webhookUrlSchema,
  events: z
    .array(z.enum(['*', ...ALERT_KINDS]))
    .min(1, 'must name at least one alert kind, or "*" for all')
    .transform((e) => [...new Set(e)]),
  services: z
    .array(servicePatternSchema)
    .min(1, 'must name at least one service pattern (omit it, or send null, for every service)')
    .max(100)
    .transform((s) => [...new Set(s)])
    .nullable()
    .default(null),
  secret: z.string().min(16, 'must be at least 16 characters').max(256).optional(),
  description: z.string().max(500).default(''),
});

export type WebhookCreate = z.infer<typeof webhookCreateSchema>;
