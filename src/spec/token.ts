import { z } from 'zod';

/** What a token may do: read everything, manage overrides and run the sync, change the configuration. */
export const SCOPES = ['read', 'override', 'write'] as const;

export type Scope = (typeof SCOPES)[number];

/** A key's name, as the audit log shows it (`key:<name>`): the same alphabet as the settings' token names. */
const tokenNameSchema = z
  .string()
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}$/,
    'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit',
  );

/** Service names where `*` stands for any run of characters: `shop`, `pay-*`, `*-eu`. */
export const servicePatternSchema = z
  .string()
  .regex(/^[a-z0-9*-]{1,63}$/, 'must be a service name, where "*" matches any characters (like "pay-*")');

/** The latest instant a JavaScript Date can hold (ECMA-262 §21.4.1.22). */
const MAX_EPOCH_MS = 8.64e15;

/** An instant, as ISO 8601 with an offset or as epoch milliseconds; epoch milliseconds after parsing. */
const instantSchema = z
  .union([z.iso.datetime({ offset: true }), z.number().int().min(1).max(MAX_EPOCH_MS)], {
    error: 'must be an ISO 8601 time like "2027-01-31T00:00:00Z" or epoch milliseconds',
  })
  .transform((v) => (typeof v === 'number' ? v : Date.parse(v)));

/**
 * `POST /tokens`: a key's name, its scopes, the services it may touch (patterns; omitted or null: every
 * service) and when it expires (omitted or null: never; it must be in the future, checked when created).
 */
export const tokenCreateSchema = z.strictObject({
  name: tokenNameSchema,
  scopes: z
    .array(z.enum(SCOPES))
    .min(1, 'must name at least one scope')
    .transform((s) => [...new Set(s)]),
  services: z
    .array(servicePatternSchema)
    .min(1, 'must name at least one service pattern (omit it, or send null, for every service)')
    .max(100)
    .transform((s) => [...new Set(s)])
    .nullable()
    .default(null),
  expiresAt: instantSchema.nullable().default(null),
});

export type TokenCreate = z.infer<typeof tokenCreateSchema>;

/**
 * Which service names a key may touch: those matching one of `patterns`, where `*` matches any run of
 * characters (as SQLite's GLOB does over these names, which the store's filters use); null: every service.
 */
export function serviceMatcher(patterns: readonly string[] | null): (service: string) => boolean {
  if (patterns === null) return () => true;
  const regexes = patterns.map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`));
  return (service) => regexes.some((r) => r.test(service));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
