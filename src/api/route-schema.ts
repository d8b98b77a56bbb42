import { z } from 'zod';
import { compileRegex } from '../routing/match.js';
import { subsetNameSchema } from './schemas.js';

const RETRY_CONDITIONS = ['connect-failure', 'reset', 'timeout', '5xx', 'gateway-error', 'retriable-4xx'] as const;

/** RE2 syntax, as Envoy and Istio take it: refused here with the reason, never compiled as a JavaScript RegExp. */
const regexSchema = z
  .string()
  .min(1)
  .max(1000)
  .superRefine((source, ctx) => {
    const compiled = compileRegex(source);
    if (!compiled.ok) ctx.addIssue({ code: 'custom', message: compiled.error });
  });

const stringMatchSchema = z.union(
  [
    z.strictObject({ exact: z.string().max(4096) }),
    z.strictObject({ prefix: z.string().min(1).max(4096) }),
    z.strictObject({ regex: regexSchema }),
    z.strictObject({ present: z.literal(true) }),
  ],
  { message: 'must be exactly one of {"exact": ...}, {"prefix": ...}, {"regex": ...} or {"present": true}' },
);

const pathMatchSchema = z.union(
  [
    z.strictObject({ exact: z.string().startsWith('/', 'must start with "/"') }),
    z.strictObject({ prefix: z.string().startsWith('/', 'must start with "/"') }),
    z.strictObject({ regex: regexSchema }),
  ],
  { message: 'must be exactly one of {"exact": "/..."}, {"prefix": "/..."} or {"regex": "..."}' },
);

const headerNameSchema = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name').transform((h) => h.toLowerCase());
const percentSchema = z.number().min(0).max(100);
export const subsetSchema = z.record(z.string().min(1).max(63), z.string().max(253));

/** A destination's subset: the name of one of the service's subsets (`"v1"`), or a label selector. */
const subsetRefSchema = z.union([subsetNameSchema, subsetSchema], {
  message: 'must be the name of one of the service\'s subsets (like "v1") or a label selector (like {"version": "v1"})',
});

export const matchSchema = z
  .strictObject({
    path: pathMatchSchema.optional(),
    methods: z
      .array(z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method').transform((m) => m.toUpperCase()))
      .min(1)
      .optional(),
    headers: z.record(headerNameSchema, stringMatchSchema).optional(),
    query: z.record(z.string().min(1).max(256), stringMatchSchema).optional(),
  })
  .default({});

export const retriesSchema = z.strictObject({
  attempts: z.number().int().min(1).max(6),
  perTryTimeoutMs: z.number().int().min(10).max(120_000).default(2_000),
  retryOn: z
    .array(
      z
        .union([z.enum(RETRY_CONDITIONS), z.number().int().min(400).max(599)], { message: `must be one of ${RETRY_CONDITIONS.join(', ')} or a status code from 400 to 599` })
        .transform(String),
    )
    .min(1)
    .default(['connect-failure', 'gateway-error']),
  budgetPercent: percentSchema.default(20),
  nonIdempotent: z.boolean().default(false),
});

const boundsShape = {
  minSamples: z.number().int().min(1).max(10_000_000).default(50),
  maxErrorRateDelta: z.number().min(0).max(1).default(0.01),
  maxLatencyRatio: z.number().min(1).max(100).default(1.5),
};

const rampSchema = z.strictObject({ step: z.number().min(0.1).max(100), max: percentSchema.default(100), ...boundsShape });

const canarySchema = z.strictObject({
  subset: subsetRefSchema,
  stepWeight: z.number().int().min(1).max(100),
  maxWeight: z.number().int().min(1).max(100),
  ...boundsShape,
});

/** A route as the admin API takes it (`PUT .../routes/{route}`); defaults are filled in. */
export const routePutSchema = z
  .strictObject({
    order: z.number().int().min(0).max(1_000_000),
    match: matchSchema,
    destinations: z
      .array(z.strictObject({ subset: subsetRefSchema.default({}), weight: z.number().int().min(0).max(10_000).default(100) }))
      .min(1)
      .max(20)
      .default([{ subset: {}, weight: 100 }]),
    affinity: z.union([z.strictObject({ cookie: z.string().min(1).max(256) }), z.strictObject({ header: headerNameSchema })]).optional(),
    mirror: z.strictObject({ subset: subsetRefSchema, percent: percentSchema, ramp: rampSchema.optional() }).optional(),
    canary: canarySchema.optional(),
    fault: z
      .strictObject({
        delay: z.strictObject({ percent: percentSchema, ms: z.number().int().min(1).max(60_000) }).optional(),
        abort: z.strictObject({ percent: percentSchema, status: z.number().int().min(200).max(599) }).optional(),
      })
      .optional(),
    retries: retriesSchema.optional(),
    timeoutMs: z.number().int().min(10).max(600_000).optional(),
    maxConcurrent: z.number().int().min(1).max(1_000_000).optional(),
    rateLimit: z
      .strictObject({
        requestsPerSecond: z.number().positive().max(1_000_000),
        burst: z.number().int().min(1).max(10_000_000),
        key: z.union([z.enum(['client-ip', 'global']), z.strictObject({ header: headerNameSchema })]).default('client-ip'),
      })
      .optional(),
  })
  .refine((r) => r.destinations.some((d) => d.weight > 0), { path: ['destinations'], message: 'at least one destination needs a weight above 0' })
  .refine((r) => !r.mirror?.ramp || r.mirror.ramp.max >= r.mirror.percent, { path: ['mirror', 'ramp', 'max'], message: 'must be at least the starting percent' })
  .refine((r) => !r.canary || r.canary.maxWeight >= r.canary.stepWeight, { path: ['canary', 'maxWeight'], message: 'must be at least stepWeight' });

export type RoutePut = z.infer<typeof routePutSchema>;
