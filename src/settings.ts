import { z } from 'zod';
import { ZONE_NAME } from './routing/zone.js';

const bool = z
  .enum(['true', 'false', '1', '0'], { message: 'must be "true" or "false"' })
  .transform((v) => v === 'true' || v === '1');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** Names the audit log uses for Waymark itself; a token may not pose as them. */
const RESERVED_ACTORS = new Set(['admin', 'health-sync', 'expiry']);

/** "name:token,name:token": who holds each token, for the audit log. */
const tokenList = z.string().transform((value, ctx) => {
  const grants: { name: string; token: string }[] = [];
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const colon = part.indexOf(':');
    const name = part.slice(0, colon).trim();
    const token = part.slice(colon + 1).trim();
    if (
      colon < 1 ||
      !/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(name) ||
      token.length < 16 ||
      /\s/.test(token) ||
      RESERVED_ACTORS.has(name)
    ) {
      ctx.addIssue({
        code: 'custom',
        message: `must be "name:token" pairs separated by commas; names are letters, digits, ".", "_" or "-" (not ${[...RESERVED_ACTORS].join(', ')}); tokens at least 16 characters without spaces`,
      });
      return z.NEVER;
    }
    grants.push({ name, token });
  }
  return grants;
});
const zone = z.string().regex(ZONE_NAME, 'must be a zone name like "us-east1-b", or "zone/subzone"');
/** "COLO:zone,COLO:zone": the zone each Cloudflare colo (request.cf.colo, an IATA code) serves clients in. */
const coloZones = z.string().transform((value, ctx) => {
  const map = new Map<string, string>();
  for (const part of value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const colon = part.indexOf(':');
    const colo = part.slice(0, colon).trim().toUpperCase();
    const name = part.slice(colon + 1).trim();
    if (colon < 1 || !/^[A-Z]{3}$/.test(colo) || !ZONE_NAME.test(name) || map.has(colo)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'must be "COLO:zone" pairs separated by commas, each colo a three-letter code given once, like "DUB:eu-west1-a,NRT:ap-northeast1-a"',
      });
      return z.NEVER;
    }
    map.set(colo, name);
  }
  return map as ReadonlyMap<string, string>;
});
const FRACTION = 'must be a number from 0 to 1';
/** A share of requests, 0-1 ("0.01": one in a hundred). */
const fraction = z.coerce.number({ message: FRACTION }).min(0, FRACTION).max(1, FRACTION);
const region = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a region name like "eu-west1"');
/** Lowercase DNS labels joined by dots (the form the proxy compares Host in, see normalizeHost). */
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
/** "admin.example.com,admin.internal": hostnames, any case, a trailing dot allowed (the same host), no port. */
const hostList = z.string().transform((value, ctx) => {
  const hosts = value
    .split(',')
    .map((h) => h.trim().toLowerCase().replace(/\.$/, ''))
    .filter(Boolean);
  if (hosts.length === 0 || !hosts.every((h) => HOSTNAME.test(h))) {
    ctx.addIssue({
      code: 'custom',
      message: 'must be hostnames separated by commas, like "admin.example.com" (no scheme, port or path)',
    });
    return z.NEVER;
  }
  return new Set(hosts) as ReadonlySet<string>;
});

/** Every setting Waymark reads, with its default. Both runtimes parse it once, at start. */
const settingsSchema = z.object({
  WAYMARK_DATABASE_URL: z
    .string()
    .regex(/^(file:|libsql:\/\/|https?:\/\/|wss?:\/\/)/, 'must be a file:, libsql://, https:// or wss:// URL')
    .default('file:.waymark/waymark.db'),
  WAYMARK_DATABASE_AUTH_TOKEN: z.string().min(1, 'must not be empty when set').optional(),
  /**
   * Node: the file that keeps the last good snapshot, to serve from when the store is unreachable at start
   * ("off": none). Unset: beside a file database (`<file>.snapshot.json`), else `.waymark/snapshot.json`.
   */
  WAYMARK_SNAPSHOT_CACHE: z.string().min(1).optional(),
  WAYMARK_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters when set').optional(),
  WAYMARK_READ_TOKENS: tokenList.default([]),
  WAYMARK_ONCALL_TOKENS: tokenList.default([]),
  /** The hosts the admin API answers on; unset: any host. */
  WAYMARK_ADMIN_HOSTS: hostList.optional(),
  WAYMARK_REGION: region.optional(),
  WAYMARK_ZONE: zone.optional(),
  WAYMARK_COLO_ZONES: coloZones.default(new Map()),
  WAYMARK_TRUST_LOCALITY_HEADERS: bool.default(false),
  WAYMARK_SNAPSHOT_REFRESH_MS: int(100, 60_000).default(2_000),
  WAYMARK_MAX_ATTEMPTS: int(1, 6).default(3),
  WAYMARK_TRY_TIMEOUT_MS: int(50, 120_000).default(5_000),
  WAYMARK_RETRY_BUFFER_BYTES: int(0, 16 * 1024 * 1024).default(64 * 1024),
  WAYMARK_MIRROR_BODY_BYTES: int(0, 16 * 1024 * 1024).default(64 * 1024),
  WAYMARK_SYNC_INTERVAL_MS: int(0, 3_600_000).default(10_000),
  WAYMARK_PROBE_CONCURRENCY: int(1, 64).default(6),
  WAYMARK_REPORT_FLUSH_MS: int(100, 600_000).default(10_000),
  WAYMARK_TRUSTED_HOPS: int(0, 10).default(0),
  WAYMARK_DRAIN_MS: int(0, 600_000).default(30_000),
  WAYMARK_STREAM_IDLE_MS: int(1_000, 3_600_000).default(60_000),
  /** Node: a client that has not sent its request headers in this long gets 408 and is closed (slowloris). */
  WAYMARK_HEADERS_TIMEOUT_MS: int(500, 120_000).default(10_000),
  /** How long events and route samples are kept. */
  WAYMARK_RETENTION_DAYS: int(1, 3_650).default(14),
  WAYMARK_AUDIT_RETENTION_DAYS: int(1, 36_500).default(365),
  /** A bearer token that may read /_waymark/metrics and nothing else (a read-scoped token may too). */
  WAYMARK_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters when set').optional(),
  /** The share of requests the access log keeps; unset: 1 in Node, 0.01 on Workers. */
  WAYMARK_ACCESS_LOG_SAMPLE: fraction.optional(),
  /** An OTLP/HTTP traces URL (JSON): spans are exported there when set. */
  WAYMARK_OTLP_ENDPOINT: z
    .string()
    .regex(/^https?:\/\/[^\s/]+/, 'must be an http:// or https:// URL, like http://collector:4318/v1/traces')
    .optional(),
  /** The share of requests arriving without a traceparent whose new trace is sampled (exported). */
  WAYMARK_TRACE_SAMPLE: fraction.default(1),
  WAYMARK_LOG_LEVEL: z
    .enum(['debug', 'info', 'warn', 'error', 'silent'], { message: 'must be debug, info, warn, error or silent' })
    .default('info'),
  /** Node: server processes sharing the port (node:cluster); `auto`: one per core. */
  WAYMARK_PROCESSES: z
    .union([z.literal('auto'), int(1, 256)], { message: 'must be a number of processes (1-256) or "auto"' })
    .default(1),
  PORT: int(0, 65_535).default(8787),
  HOST: z.string().min(1).default('127.0.0.1'),
});

export type Settings = z.infer<typeof settingsSchema>;

/** Every token must be distinct, or one holder could act with another's scopes. */
function duplicateTokens(s: Settings): SettingProblem[] {
  const seen = new Map<string, string>();
  const problems: SettingProblem[] = [];
  const all = [
    ...(s.WAYMARK_ADMIN_TOKEN
      ? [{ variable: 'WAYMARK_ADMIN_TOKEN', name: 'admin', token: s.WAYMARK_ADMIN_TOKEN }]
      : []),
    ...s.WAYMARK_READ_TOKENS.map((g) => ({ variable: 'WAYMARK_READ_TOKENS', ...g })),
    ...s.WAYMARK_ONCALL_TOKENS.map((g) => ({ variable: 'WAYMARK_ONCALL_TOKENS', ...g })),
    ...(s.WAYMARK_METRICS_TOKEN
      ? [{ variable: 'WAYMARK_METRICS_TOKEN', name: 'metrics', token: s.WAYMARK_METRICS_TOKEN }]
      : []),
  ];
  const names = new Set<string>();
  for (const g of all) {
    const other = seen.get(g.token);
    if (other) problems.push({ variable: g.variable, message: `the token of "${g.name}" is also used by ${other}` });
    seen.set(g.token, `${g.variable} ("${g.name}")`);
    if (g.variable !== 'WAYMARK_ADMIN_TOKEN' && g.variable !== 'WAYMARK_METRICS_TOKEN' && names.has(g.name))
      problems.push({ variable: g.variable, message: `the name "${g.name}" is used twice` });
    names.add(g.name);
  }
  return problems;
}

/** One variable that cannot be used, and why. */
export interface SettingProblem {
  variable: string;
  message: string;
}

/** Settings could not be parsed; `problems` (and the message) name every offending variable. */
export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  constructor(readonly problems: SettingProblem[]) {
    super(`invalid settings:\n${problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n')}`);
  }
}

/**
 * Parses settings from an environment (process.env in Node, the bindings on Workers). Empty strings
 * count as unset. Throws a SettingsError naming each bad variable.
 */
export function parseSettings(env: Record<string, unknown>): Settings {
  const input: Record<string, unknown> = {};
  for (const key of Object.keys(settingsSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = typeof value === 'string' ? value : String(value);
  }
  const parsed = settingsSchema.safeParse(input);
  const problems = parsed.success
    ? duplicateTokens(parsed.data)
    : parsed.error.issues.map((issue) => ({ variable: issue.path.join('.'), message: issue.message }));
  if (parsed.success && problems.length === 0) return parsed.data;
  throw new SettingsError(problems);
}
