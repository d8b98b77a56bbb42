import { z } from 'zod';
import { DEFAULT_POLICY } from '../routing/policy.js';
import { hostnameSchema, labelsSchema, regionSchema, subsetNameSchema } from './names.js';

/** Clients of `from` fail over to the regions in `to`, in that order, before distance decides. */
const failoverRuleSchema = z.strictObject({
  from: regionSchema,
  to: z.array(regionSchema).min(1, 'must name at least one region'),
});

/** Istio's locality pattern: `region`, `region/zone` or `region/zone/subzone`, any part `*` (the rest then omitted or `*`). */
const localityPatternSchema = z
  .string()
  .regex(
    /^(\*|[a-z0-9][a-z0-9-]{0,62})(\/(\*|[a-z0-9][a-z0-9-]{0,62})){0,2}$/,
    'must be a locality like "region1/zone1/*" (region, zone, subzone; "*" matches any)',
  );

/**
 * Istio's localityLbSetting.distribute: clients in `from` (a locality `region`, `region/zone` or
 * `region/zone/subzone`, where `*` or a missing part matches any) send each `to` locality its percent of
 * their traffic (the percents add up to 100), spread inside a locality by cluster weight.
 */
const localityDistributionSchema = z.strictObject({
  from: localityPatternSchema,
  to: z
    .record(localityPatternSchema, z.number().int().min(0).max(100))
    .refine((to) => Object.keys(to).length > 0, 'must name at least one locality')
    .refine((to) => Object.values(to).reduce((a, b) => a + b, 0) === 100, 'the percents must add up to 100'),
});

/** Istio's localityLbSetting.distribute rules. */
const distributeSchema = z
  .array(localityDistributionSchema)
  .max(100)
  .refine(
    (rules) => new Set(rules.map((r) => r.from)).size === rules.length,
    'must have at most one rule per "from" locality',
  );

/** Passive health at the edge (Envoy's outlier detection, consecutive-5xx flavour); any field may be left to its default. */
const outlierDetectionSchema = z
  .strictObject({
    /** Consecutive 5xx answers or connect failures that eject a cluster (Envoy's consecutive_5xx). */
    consecutiveFailures: z.number().int().min(1).max(1000).optional(),
    /** Each interval a cluster spends back in rotation takes one off its ejection multiplier (Envoy's interval). */
    intervalMs: z
      .number()
      .int()
      .min(1000, 'must be at least 1000 (1 s)')
      .max(3_600_000, 'must be at most 3600000 (1 h)')
      .optional(),
    /** An ejection lasts this long times the cluster's ejection multiplier (Envoy's base_ejection_time). */
    baseEjectionMs: z.number().int().min(1000).max(3_600_000).optional(),
    /** No ejection lasts longer than this, or than baseEjectionMs if that is longer (Envoy's max_ejection_time). */
    maxEjectionMs: z
      .number()
      .int()
      .min(1000, 'must be at least 1000 (1 s)')
      .max(86_400_000, 'must be at most 86400000 (24 h)')
      .optional(),
    /** Never more than this percent of a service's clusters ejected at once (Envoy's max_ejection_percent). */
    maxEjectionPercent: z.number().min(0).max(100).optional(),
  })
  .superRefine((o, ctx) => {
    // Envoy refuses a max_ejection_time below base_ejection_time; so does Waymark, against the default base when none is given.
    const base = o.baseEjectionMs ?? DEFAULT_POLICY.outlierDetection.baseEjectionMs;
    if (o.maxEjectionMs !== undefined && o.maxEjectionMs < base) {
      ctx.addIssue({ code: 'custom', path: ['maxEjectionMs'], message: `must be at least baseEjectionMs (${base})` });
    }
  });

/** How a service behaves when clusters fail, as stored: any field may be left to its default (`resolvePolicy` fills them in). */
export const policySchema = z.strictObject({
  /** Below this normalised total health (percent), health is not trusted. */
  panicThresholdPercent: z.number().min(0).max(100).optional(),
  /** In panic, send nothing (true) instead of ignoring health (false, the default). */
  failClosed: z.boolean().optional(),
  /**
   * Requests in flight per cluster for every request of the service, routed or not (Istio's
   * DestinationRule connectionPool, Envoy's circuit breaker max_requests); a route's own limit applies too.
   */
  maxConcurrent: z.number().int().min(1).max(1_000_000).optional(),
  /**
   * Fixed locality shares for the clients each rule's `from` matches (the first that does): the `to`
   * localities' clusters form their level 0 with those shares; the rest keep their failover order.
   */
  distribute: distributeSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
});

/** A service's named subsets (Istio's DestinationRule subsets): name -> label selector over its clusters. */
const serviceSubsetsSchema = z
  .record(subsetNameSchema, labelsSchema)
  .refine((subsets) => Object.keys(subsets).length <= 100, 'must have at most 100 subsets');

/** A service as the admin API takes it (`PUT /services/{service}`); defaults are filled in. */
export const servicePutSchema = z.strictObject({
  hosts: z
    .array(hostnameSchema)
    .min(1, 'must list at least one host')
    .max(100)
    .refine((hosts) => new Set(hosts).size === hosts.length, 'must not repeat a host'),
  failover: z
    .array(failoverRuleSchema)
    .refine(
      (rules) => new Set(rules.map((r) => r.from)).size === rules.length,
      'must have at most one rule per "from" region',
    )
    .default([]),
  policy: policySchema.default({}),
  /** Absent: none; routes name them as `"subset": "v1"`. */
  subsets: serviceSubsetsSchema.default({}),
});

export type FailoverRule = z.output<typeof failoverRuleSchema>;
export type LocalityDistribution = z.output<typeof localityDistributionSchema>;
/** Outlier detection as stored: any field may be left to its default. */
export type StoredOutlierPolicy = z.output<typeof outlierDetectionSchema>;
/** A policy as stored: any field may be left to its default. */
export type StoredPolicy = z.output<typeof policySchema>;
/** A service's named subsets: name -> label selector. */
export type ServiceSubsets = z.output<typeof serviceSubsetsSchema>;
/** A service as parsed from a PUT body: hosts lowercased, defaults filled in. */
export type ServicePut = z.output<typeof servicePutSchema>;
