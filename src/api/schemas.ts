import { z } from 'zod';

/** Names of services and clusters: DNS-label style, so they are safe in URLs, headers and logs. */
export const nameSchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit');

export const regionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a region name like "eu-west1"');

const hostnameSchema = z
  .string()
  .transform((h) => h.toLowerCase())
  .pipe(
    z
      .string()
      .max(253)
      .regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/, 'must be a hostname like "shop.example.com" (no scheme, port or path)'),
  );

const failoverRuleSchema = z.strictObject({
  from: regionSchema,
  to: z.array(regionSchema).min(1, 'must name at least one region'),
});

export const policySchema = z.strictObject({
  panicThresholdPercent: z.number().min(0).max(100).optional(),
  failClosed: z.boolean().optional(),
  outlierDetection: z
    .strictObject({
      consecutiveFailures: z.number().int().min(1).max(1000).optional(),
      baseEjectionMs: z.number().int().min(1000).max(3_600_000).optional(),
      maxEjectionPercent: z.number().min(0).max(100).optional(),
    })
    .optional(),
});

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
});

const originSchema = z
  .string()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === 'http:' || url.protocol === 'https:') && !url.username && !url.password && !url.search && !url.hash && url.pathname === '/';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL with no path, query, fragment or credentials, like "https://eu.shop.internal"')
  .transform((value) => new URL(value).origin);

const labelKeySchema = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,62})$/, 'label keys are 1-63 letters, digits, ".", "_", "/" or "-"');

export const clusterPutSchema = z.strictObject({
  region: regionSchema,
  origin: originSchema,
  latitude: z.number().min(-90).max(90),
  longitude: z.number().min(-180).max(180),
  weight: z.number().int().min(0).max(10_000).default(100),
  labels: z.record(labelKeySchema, z.string().max(253)).default({}),
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
