import { z } from 'zod';
import { compileRegex } from '../routing/match.js';
import { subsetNameSchema } from './names.js';

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

/** How a header or query parameter is compared. Exactly one field is set. */
const stringMatchSchema = z.union(
  [
    z.strictObject({ exact: z.string().max(4096) }),
    z.strictObject({ prefix: z.string().min(1).max(4096) }),
    z.strictObject({ regex: regexSchema }),
    z.strictObject({ present: z.literal(true) }),
  ],
  { message: 'must be exactly one of {"exact": ...}, {"prefix": ...}, {"regex": ...} or {"present": true}' },
);

/** How a path is compared. Exactly one field is set. */
const pathMatchSchema = z.union(
  [
    z.strictObject({ exact: z.string().startsWith('/', 'must start with "/"') }),
    z.strictObject({ prefix: z.string().startsWith('/', 'must start with "/"') }),
    z.strictObject({ regex: regexSchema }),
  ],
  { message: 'must be exactly one of {"exact": "/..."}, {"prefix": "/..."} or {"regex": "..."}' },
);

const headerNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be a header name')
  .transform((h) => h.toLowerCase());
const percentSchema = z.number().min(0).max(100);

/** A label selector over a service's clusters (Istio's DestinationRule subset). Empty: every cluster. */
const subsetSchema = z.record(z.string().min(1).max(63), z.string().max(253));

/**
 * Where a route sends traffic: a label selector, or the name of one of the service's subsets (`"v1"`),
 * resolved to its labels when the snapshot compiles (a name the service does not define selects no cluster).
 */
const subsetRefSchema = z.union([subsetNameSchema, subsetSchema], {
  message: 'must be the name of one of the service\'s subsets (like "v1") or a label selector (like {"version": "v1"})',
});

/** Which requests a route takes; every field given must match. */
const matchSchema = z
  .strictObject({
    path: pathMatchSchema.optional(),
    /** Stored uppercase. */
    methods: z
      .array(
        z
          .string()
          .regex(/^[A-Za-z]+$/, 'must be an HTTP method')
          .transform((m) => m.toUpperCase()),
      )
      .min(1)
      .optional(),
    /** Keyed by lowercase header name. */
    headers: z.record(headerNameSchema, stringMatchSchema).optional(),
    query: z.record(z.string().min(1).max(256), stringMatchSchema).optional(),
  })
  .default({});

const destinationSchema = z.strictObject({
  subset: subsetRefSchema.default({}),
  weight: z.number().int().min(0).max(10_000).default(100),
});

const retriesSchema = z.strictObject({
  attempts: z.number().int().min(1).max(6),
  perTryTimeoutMs: z.number().int().min(10).max(120_000).default(2_000),
  /** connect-failure, reset, timeout, 5xx, gateway-error (502/503/504), retriable-4xx (409), or a status code (stored as a string). */
  retryOn: z
    .array(
      z
        .union([z.enum(RETRY_CONDITIONS), z.number().int().min(400).max(599)], {
          message: `must be one of ${RETRY_CONDITIONS.join(', ')} or a status code from 400 to 599`,
        })
        .transform(String),
    )
    .min(1)
    .default(['connect-failure', 'gateway-error']),
  /** Retries may be at most this percent of the route's recent requests (with a small floor). */
  budgetPercent: percentSchema.default(20),
  /** Also retry non-idempotent methods after a response or timeout, not only after a connect failure. */
  nonIdempotent: z.boolean().default(false),
});

/** The bounds a shadow or canary must keep against the primary for automation to move on. */
const evidenceBoundsShape = {
  /** Outcomes needed since the last step before the next one. */
  minSamples: z.number().int().min(1).max(10_000_000).default(50),
  /** The shadow's (canary's) error rate may exceed the primary's by at most this much (0.01 = 1 point). */
  maxErrorRateDelta: z.number().min(0).max(1).default(0.01),
  /** The shadow's (canary's) p95 latency may be at most this multiple of the primary's. */
  maxLatencyRatio: z.number().min(1).max(100).default(1.5),
};

/** Mirror percent automation: up by `step` to `max` while the shadow keeps within bounds. */
const rampSchema = z.strictObject({
  step: z.number().min(0.1).max(100),
  max: percentSchema.default(100),
  ...evidenceBoundsShape,
});

/** Canary automation: weight up by `stepWeight` to `maxWeight`, then promotion; rollback on a breach. */
const canarySchema = z.strictObject({
  subset: subsetRefSchema,
  stepWeight: z.number().int().min(1).max(100),
  maxWeight: z.number().int().min(1).max(100),
  ...evidenceBoundsShape,
});

/** A route as the admin API takes it (`PUT .../routes/{route}`); defaults are filled in. */
export const routePutSchema = z
  .strictObject({
    order: z.number().int().min(0).max(1_000_000),
    match: matchSchema,
    destinations: z
      .array(destinationSchema)
      .min(1)
      .max(20)
      .default([{ subset: {}, weight: 100 }]),
    affinity: z
      .union([z.strictObject({ cookie: z.string().min(1).max(256) }), z.strictObject({ header: headerNameSchema })])
      .optional(),
    mirror: z.strictObject({ subset: subsetRefSchema, percent: percentSchema, ramp: rampSchema.optional() }).optional(),
    /** A canary subset whose weight the health sync moves step by step from what edges observe. */
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
        key: z
          .union([z.enum(['client-ip', 'global']), z.strictObject({ header: headerNameSchema })])
          .default('client-ip'),
      })
      .optional(),
  })
  .refine((r) => r.destinations.some((d) => d.weight > 0), {
    path: ['destinations'],
    message: 'at least one destination needs a weight above 0',
  })
  .refine((r) => !r.mirror?.ramp || r.mirror.ramp.max >= r.mirror.percent, {
    path: ['mirror', 'ramp', 'max'],
    message: 'must be at least the starting percent',
  })
  .refine((r) => !r.canary || r.canary.maxWeight >= r.canary.stepWeight, {
    path: ['canary', 'maxWeight'],
    message: 'must be at least stepWeight',
  });

export type StringMatch = z.output<typeof stringMatchSchema>;
export type RouteMatch = z.output<typeof matchSchema>;
export type Subset = z.output<typeof subsetSchema>;
export type SubsetRef = z.output<typeof subsetRefSchema>;
export type RampPolicy = z.output<typeof rampSchema>;
export type EvidenceBounds = Pick<RampPolicy, keyof typeof evidenceBoundsShape>;
export type CanaryPolicy = z.output<typeof canarySchema>;
/** A route as parsed from a PUT body (without its name): names and methods normalised, defaults filled in. */
export type RoutePut = z.output<typeof routePutSchema>;
