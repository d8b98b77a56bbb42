import { z } from 'zod';
import { isFetchBlockedPort } from './blocked-ports.js';
import { HOSTNAME, labelsSchema, regionSchema, zoneSchema } from './names.js';

const ORIGIN_SHAPE =
  'must be an http(s) URL, optionally with a base path, and no query, fragment or credentials, like "https://eu.shop.internal" or "https://api.internal/shop"';

/**
 * A cluster's origin: scheme, host, port, and an optional base path every upstream path goes under.
 * Stored normalised and without a trailing slash (`https://api.internal/shop/` -> `https://api.internal/shop`),
 * so routing splits it once and appends request paths as they are.
 */
const originSchema = z.string().transform((value, ctx) => {
  const url = parseUrl(value);
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username ||
    url.password ||
    /[?#]/.test(value)
  ) {
    ctx.addIssue({ code: 'custom', message: ORIGIN_SHAPE });
    return z.NEVER;
  }
  // The URL parser leaves `port` empty for the scheme's default port, which fetch always allows.
  if (url.port !== '' && isFetchBlockedPort(Number(url.port))) {
    ctx.addIssue({
      code: 'custom',
      message: `port ${url.port} is blocked by fetch (a bad port in the Fetch standard, refused by Node and browsers); use another port`,
    });
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
  .refine(
    isHostWithPort,
    'must be a hostname with an optional port, like "shop.example.com" or "shop.example.com:8443" (no scheme or path)',
  )
  .transform((h) => h.toLowerCase());

function isHostWithPort(value: string): boolean {
  const [host = '', port, ...rest] = value.toLowerCase().split(':');
  if (rest.length > 0 || !HOSTNAME.test(host)) return false;
  return port === undefined || (/^[1-9][0-9]{0,4}$/.test(port) && Number(port) <= 65_535);
}

/** How the health sync probes a cluster's origin. */
const healthCheckSchema = z.strictObject({
  path: z.string().startsWith('/', 'must start with "/"').max(1024).default('/'),
  /** Statuses that count as healthy: exact codes (204) or classes ("2xx"). */
  expectedStatuses: z
    .array(
      z.union([
        z.number().int().min(100).max(599),
        z.string().regex(/^[1-5]xx$/, 'must be a status like 204 or a class like "2xx"'),
      ]),
    )
    .min(1)
    .default(['2xx']),
  timeoutMs: z.number().int().min(100).max(30_000).default(2_000),
  /** Consecutive passing probes that bring an unhealthy cluster back. */
  healthyThreshold: z.number().int().min(1).max(20).default(2),
  /** Consecutive failing probes that take a healthy cluster out. */
  unhealthyThreshold: z.number().int().min(1).max(20).default(2),
});

/** A cluster (one regional deployment of a service) as the admin API takes it; defaults are filled in. */
export const clusterPutSchema = z.strictObject({
  region: regionSchema,
  /** Istio's `zone` or `zone/subzone` inside the region; absent or null: the cluster is in no particular zone of its region. */
  zone: zoneSchema.nullable().default(null),
  /** scheme://host[:port], optionally followed by a base path (no trailing slash), as stored. */
  origin: originSchema,
  /** The Host header the origin sees; absent or null: the host of its own URL. */
  originHost: originHostSchema.nullable().default(null),
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  weight: z.number().int().min(0).max(10_000).default(100),
  labels: labelsSchema.default({}),
  healthCheck: healthCheckSchema.default({
    path: '/',
    expectedStatuses: ['2xx'],
    timeoutMs: 2_000,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
  }),
});

export type HealthCheck = z.output<typeof healthCheckSchema>;
/** A cluster as parsed from a PUT body: origin normalised, defaults filled in. */
export type ClusterPut = z.output<typeof clusterPutSchema>;
