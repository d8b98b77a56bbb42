import { z } from 'zod';
import { DEFAULT_POLICY } from '../routing/policy.js';
import { ZONE_NAME } from '../routing/zone.js';
import { isFetchBlockedPort } from './blocked-ports.js';

/** Names of services and clusters: DNS-label style, so they are safe in URLs, headers and logs. */
export const nameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit');

export const regionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a region name like "eu-west1"');

/** Istio's `zone` or `zone/subzone` inside a region. */
export const zoneSchema = z.string().regex(ZONE_NAME, 'must be a zone name like "us-east1-b", or "zone/subzone"');

/** Lowercase DNS labels joined by dots, 253 characters at most. */
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

const hostnameSchema = z
  .string()
  .transform((h) => h.toLowerCase())
  .pipe(z.string().max(253).regex(HOSTNAME, 'must be a hostname like "shop.example.com" (no scheme, port or path)'));

const failoverRuleSchema = z.strictObject({
  from: regionSchema,
  to: z.array(regionSchema).min(1, 'must name at least one region'),
});

/** Istio's locality pattern: `region`, `region/zone` or `region/zone/subzone`, any part `*` (the rest then omitted or `*`). */
const localityPatternSchema = z
  .string()
  .regex(/^(\*|[a-z0-9][a-z0-9-]{0,62})(\/(\*|[a-z0-9][a-z0-9-]{0,62})){0,2}$/, 'must be a locality like "region1/zone1/*" (region, zone, subzone; "*" matches any)');

/** Istio's localityLbSetting.distribute rules. */
const distributeSchema = z
  .array(
    z.strictObject({
      from: localityPatternSchema,
      to: z
        .record(localityPatternSchema, z.number().int().min(0).max(100))
        .refine((to) => Object.keys(to).length > 0, 'must name at least one locality')
        .refine((to) => Object.values(to).reduce((a, b) => a + b, 0) === 100, 'the percents must add up to 100'),
    }),
  )
  .max(100)
  .refine((rules) => new Set(rules.map((r) => r.from)).size === rules.length, 'must have at most one rule per "from" locality');

export const policySchema = z.strictObject({
  panicThresholdPercent: z.number().min(0).max(100).optional(),
  failClosed: z.boolean().optional(),
  maxConcurrent: z.number().int().min(1).max(1_000_000).optional(),
  distribute: distributeSchema.optional(),
  outlierDetection: z
    .strictObject({
      consecutiveFailures: z.number().int().min(1).max(1000).optional(),
      intervalMs: z.number().int().min(1000, 'must be at least 1000 (1 s)').max(3_600_000, 'must be at most 3600000 (1 h)').optional(),
      baseEjectionMs: z.number().int().min(1000).max(3_600_000).optional(),
      maxEjectionMs: z.number().int().min(1000, 'must be at least 1000 (1 s)').max(86_400_000, 'must be at most 86400000 (24 h)').optional(),
      maxEjectionPercent: z.number().min(0).max(100).optional(),
    })
    .superRefine((o, ctx) => {
      // Envoy refuses a max_ejection_time below base_ejection_time; so does Waymark, against the default base when none is given.
      const base = o.baseEjectionMs ?? DEFAULT_POLICY.outlierDetection.baseEjectionMs;
      if (o.maxEjectionMs !== undefined && o.maxEjectionMs < base) {
        ctx.addIssue({ code: 'custom', path: ['maxEjectionMs'], message: `must be at least baseEjectionMs (${base})` });
      }
    })
    .optional(),
});

const labelKeySchema = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,62})$/, 'label keys are 1-63 letters, digits, ".", "_", "/" or "-"');

/** Cluster labels, and the label selectors that pick clusters by them. */
export const labelsSchema = z.record(labelKeySchema, z.string().max(253));

/** A service subset's name: a DNS-1123 label, as Istio requires of DestinationRule subset names. */
export const subsetNameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a subset name: 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit (like "v1")');

/** A service's named subsets (Istio's DestinationRule subsets): name -> label selector over its clusters. */
export const serviceSubsetsSchema = z
  .record(subsetNameSchema, labelsSchema)
  .refine((subsets) => Object.keys(subsets).length <= 100, 'must have at most 100 subsets');

export const servicePutSchema = z.strictObject({
  hosts: z
    .array(hostnameSchema)
    .min(1, 'must list at least one host')
    .max(100)
    .refine((hosts) => new Set(hosts).size === hosts.length, 'must not repeat a host'),
  failover: z
    .array(failoverRuleSchema)
    .refine((rules) => new Set(rules.map((r) => r.from)).size === rules.length, 'must have at most one rule per "from" region')
    .default([]),
  policy: policySchema.default({}),
  /** Absent: none; routes name them as `"subset": "v1"`. */
  subsets: serviceSubsetsSchema.default({}),
});

const ORIGIN_SHAPE =
  'must be an http(s) URL, optionally with a base path, and no query, fragment or credentials, like "https://eu.shop.internal" or "https://api.internal/shop"';

/**
 * A cluster's origin: scheme, host, port, and an optional base path every upstream path goes under.
 * Stored normalised and without a trailing slash (`https://api.internal/shop/` -> `https://api.internal/shop`),
 * so routing splits it once and appends request paths as they are.
 */
const originSchema = z.string().transform((value, ctx) => {
  const url = parseUrl(value);
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || /[?#]/.test(value)) {
    ctx.addIssue({ code: 'custom', message: ORIGIN_SHAPE });
    return z.NEVER;
  }
  // The URL parser leaves `port` empty for the scheme's default port, which fetch always allows.
  if (url.port !== '' && isFetchBlockedPort(Number(url.port))) {
    ctx.addIssue({ code: 'custom', message: `port ${url.port} is blocked by fetch (a bad port in the Fetch standard, refused by Node and browsers); use another port` });
    return z.NEVER;
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
});

function parseUrl(value: string): URL | null {
  try {
    return new URL(value);
  } catch {
    return null;
  }
}

/** The Host header a cluster's origin sees (a virtual host behind a shared load balancer). */
const originHostSchema = z
  .string()
  .refine(isHostWithPort, 'must be a hostname with an optional port, like "shop.example.com" or "shop.example.com:8443" (no scheme or path)')
  .transform((h) => h.toLowerCase());

function isHostWithPort(value: string): boolean {
  const [host = '', port, ...rest] = value.toLowerCase().split(':');
  if (rest.length > 0 || !HOSTNAME.test(host)) return false;
  return port === undefined || (/^[1-9][0-9]{0,4}$/.test(port) && Number(port) <= 65_535);
}

export const clusterPutSchema = z.strictObject({
  region: regionSchema,
  /** Absent or null: the cluster is in no particular zone of its region. */
  zone: zoneSchema.nullable().default(null),
  origin: originSchema,
  /** Absent or null: the origin sees the host of its own URL. */
  originHost: originHostSchema.nullable().default(null),
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  weight: z.number().int().min(0).max(10_000).default(100),
  labels: labelsSchema.default({}),
  healthCheck: z
    .strictObject({
      path: z.string().startsWith('/', 'must start with "/"').max(1024).default('/'),
      expectedStatuses: z
        .array(z.union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]xx$/, 'must be a status like 204 or a class like "2xx"')]))
        .min(1)
        .default(['2xx']),
      timeoutMs: z.number().int().min(100).max(30_000).default(2_000),
      healthyThreshold: z.number().int().min(1).max(20).default(2),
      unhealthyThreshold: z.number().int().min(1).max(20).default(2),
    })
    .default({ path: '/', expectedStatuses: ['2xx'], timeoutMs: 2_000, healthyThreshold: 2, unhealthyThreshold: 2 }),
});
