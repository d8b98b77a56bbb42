import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
import type { StoredPolicy } from '../routing/policy.js';
import type { SampleKind } from '../observe/route-samples.js';
import type { HealthCheck } from '../spec/cluster.js';
import type {
  ClusterHealth,
  FailoverRule,
  OverrideAction,
  RoutePhase,
  RouteSpec,
  ServiceSubsets,
} from '../routing/types.js';

export const services = sqliteTable(
  'services',
  {
    name: text('name').primaryKey(),
    failover: text('failover', { mode: 'json' }).$type<FailoverRule[]>().notNull().default([]),
    policy: text('policy', { mode: 'json' }).$type<StoredPolicy>().notNull().default({}),
    /** Named subsets (name -> label selector) that routes refer to by name. */
    subsets: text('subsets', { mode: 'json' }).$type<ServiceSubsets>().notNull().default({}),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    /**
     * The revision at which anything routing reads about this service last changed (the service, its hosts,
     * clusters, health, overrides, routes, route state, latency orders), so that an edge reloads only the
     * services whose revision moved. Kept by triggers (migration 0010), so no write can forget it.
     */
    revision: integer('revision').notNull().default(0),
  },
  (t) => [index('services_revision').on(t.revision)],
);

/** Services deleted, at the revision that deleted them: what a partial reload drops. Kept by a trigger. */
export const serviceRemovals = sqliteTable(
  'service_removals',
  {
    name: text('name').notNull(),
    revision: integer('revision').notNull(),
  },
  (t) => [index('service_removals_revision').on(t.revision)],
);

/** One row per hostname, so the store itself guarantees a host belongs to one service. */
export const serviceHosts = sqliteTable(
  'service_hosts',
  {
    host: text('host').primaryKey(),
    service: text('service')
      .notNull()
      .references(() => services.name, { onDelete: 'cascade' }),
  },
  (t) => [index('service_hosts_service').on(t.service)],
);

export const clusters = sqliteTable(
  'clusters',
  {
    service: text('service')
      .notNull()
      .references(() => services.name, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    region: text('region').notNull(),
    /** Istio's `zone` or `zone/subzone` inside the region; null: none. */
    zone: text('zone'),
    /** scheme://host[:port] with an optional base path, no trailing slash. */
    origin: text('origin').notNull(),
    /** The Host header the origin sees; null: the host of `origin`. */
    originHost: text('origin_host'),
    latitude: real('latitude').notNull(),
    longitude: real('longitude').notNull(),
    weight: integer('weight').notNull().default(100),
    labels: text('labels', { mode: 'json' }).$type<Record<string, string>>().notNull().default({}),
    healthCheck: text('health_check', { mode: 'json' }).$type<HealthCheck>().notNull(),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.name] })],
);

/** Every write through the admin API: who, what, when, and the object before and after. */
export const auditLog = sqliteTable(
  'audit_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull(),
    before: text('before', { mode: 'json' }),
    after: text('after', { mode: 'json' }),
    requestId: text('request_id'),
  },
  (t) => [index('audit_log_target').on(t.target, t.at), index('audit_log_at').on(t.at)],
);

/**
 * A single row whose version goes up in the same transaction as every change that affects routing.
 * Edges poll it (one cheap query) and reload the snapshot only when it moved.
 */
export const revision = sqliteTable('revision', {
  id: integer('id').primaryKey(),
  version: integer('version').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

/** What the health sync last concluded about each cluster, with the counters its hysteresis needs. */
export const clusterHealth = sqliteTable(
  'cluster_health',
  {
    service: text('service').notNull(),
    cluster: text('cluster').notNull(),
    state: text('state').$type<ClusterHealth>().notNull(),
    consecutiveSuccesses: integer('consecutive_successes').notNull().default(0),
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    lastProbeAt: integer('last_probe_at'),
    lastStatus: integer('last_status'),
    lastLatencyMs: real('last_latency_ms'),
    lastError: text('last_error'),
    reason: text('reason'),
    changedAt: integer('changed_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.cluster] })],
);

/** Operator overrides: drain and pin, with reason, author and expiry; ended ones stay for history. */
export const overrides = sqliteTable(
  'overrides',
  {
    id: text('id').primaryKey(),
    service: text('service').notNull(),
    action: text('action').$type<OverrideAction>().notNull(),
    cluster: text('cluster'),
    region: text('region'),
    /** For mirror-percent, canary-weight and freeze: the route they hold. */
    route: text('route'),
    /** For mirror-percent and canary-weight: the value held. */
    value: real('value'),
    reason: text('reason').notNull(),
    actor: text('actor').notNull(),
    forced: integer('forced', { mode: 'boolean' }).notNull().default(false),
    createdAt: integer('created_at').notNull(),
    expiresAt: integer('expires_at').notNull(),
    endedAt: integer('ended_at'),
    endedBy: text('ended_by'),
    endReason: text('end_reason').$type<'expired' | 'deleted'>(),
  },
  (t) => [index('overrides_active').on(t.endedAt, t.expiresAt)],
);

/** What changed and why: cluster states, traffic shares, overrides applied and ended. */
export const events = sqliteTable(
  'events',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    service: text('service').notNull(),
    cluster: text('cluster'),
    kind: text('kind').notNull(),
    message: text('message').notNull(),
    detail: text('detail', { mode: 'json' }),
  },
  (t) => [index('events_service').on(t.service, t.id), index('events_at').on(t.at)],
);

/** Passive outcomes that edges observed, flushed in batches: per cluster and client region. */
export const edgeReports = sqliteTable(
  'edge_reports',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    instance: text('instance').notNull(),
    service: text('service').notNull(),
    cluster: text('cluster').notNull(),
    clientRegion: text('client_region').notNull(),
    requests: integer('requests').notNull(),
    failures: integer('failures').notNull(),
    latencyMsSum: real('latency_ms_sum').notNull(),
    /** Requests per latency bucket (src/observe/latency.ts); null in reports from before migration 0013. */
    latencyBuckets: text('latency_buckets', { mode: 'json' }).$type<number[]>(),
  },
  (t) => [index('edge_reports_at').on(t.at)],
);

/** The health sync's own bookmark: the last edge report it folded in. */
export const syncState = sqliteTable('sync_state', {
  id: integer('id').primaryKey(),
  lastRunAt: integer('last_run_at').notNull(),
  lastReportId: integer('last_report_id').notNull(),
});

/** Routes: ordered rules of a service (match -> destinations and policies), first match wins. */
export const routes = sqliteTable(
  'routes',
  {
    service: text('service')
      .notNull()
      .references(() => services.name, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    order: integer('order').notNull(),
    spec: text('spec', { mode: 'json' }).$type<Omit<RouteSpec, 'name' | 'order'>>().notNull(),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.name] })],
);

/**
 * What edges saw of a route's primary and mirrored requests, flushed in batches: the evidence for
 * comparing a shadow with the primary (and for moving mirror percentages and canary weights).
 */
export const routeSamples = sqliteTable(
  'route_samples',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    instance: text('instance').notNull(),
    service: text('service').notNull(),
    route: text('route').notNull(),
    /** primary, mirror, or canary (requests a route's canary destination served). */
    kind: text('kind').$type<SampleKind>().notNull(),
    requests: integer('requests').notNull(),
    errors: integer('errors').notNull(),
    latencyMsSum: real('latency_ms_sum').notNull(),
    /** Counts per latency bucket (bounds in src/observe/latency.ts), for percentiles. */
    latencyBuckets: text('latency_buckets', { mode: 'json' }).$type<number[]>().notNull(),
  },
  (t) => [index('route_samples_route').on(t.service, t.route, t.id), index('route_samples_at').on(t.at)],
);

/** Where automation has brought each route with a mirror ramp or a canary (see src/health/ramp.ts). */
export const routeState = sqliteTable(
  'route_state',
  {
    service: text('service').notNull(),
    route: text('route').notNull(),
    mirrorPercent: real('mirror_percent'),
    canaryWeight: real('canary_weight'),
    phase: text('phase').$type<RoutePhase>().notNull(),
    paused: integer('paused', { mode: 'boolean' }).notNull().default(false),
    /** The last route sample the mirror's previous step used: evidence for its next step arrives after it. */
    sampleBookmark: integer('sample_bookmark').notNull().default(0),
    /** The same for the canary, which moves on its own evidence. */
    canaryBookmark: integer('canary_bookmark').notNull().default(0),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.route] })],
);

/**
 * Measured latency from a client region to a cluster region (from edge reports), and the order the
 * health sync settled on for failover beyond the client's own region (with hysteresis).
 */
export const latencyOrders = sqliteTable(
  'latency_orders',
  {
    service: text('service').notNull(),
    clientRegion: text('client_region').notNull(),
    /** Regions in the order to fail over to, each with the mean latency and samples that placed it. */
    regions: text('regions', { mode: 'json' }).$type<{ region: string; meanMs: number; samples: number }[]>().notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.service, t.clientRegion] })],
);

/**
 * Leases on jobs that must run in one place at a time (migrations, the health sync): who holds each,
 * since when and until when. A lease is taken and released with one conditional statement each
 * (src/store/lease.ts), so it holds across processes and across edges on a remote store.
 */
export const leases = sqliteTable('leases', {
  name: text('name').primaryKey(),
  holder: text('holder').notNull(),
  acquiredAt: integer('acquired_at').notNull(),
  expiresAt: integer('expires_at').notNull(),
});

/**
 * Numbered versions of the configuration (services, clusters, routes: what the config document holds):
 * one per transaction that changed it (a config apply, a single-object write, an Istio import, a rollback),
 * with who, when and why. Each version's changes are in `config_changes`.
 */
export const configVersions = sqliteTable(
  'config_versions',
  {
    version: integer('version').primaryKey({ autoIncrement: true }),
    at: integer('at').notNull(),
    actor: text('actor').notNull(),
    requestId: text('request_id'),
    /** What the writer said it was for (a config apply's or a rollback's message), or the action. */
    message: text('message').notNull(),
  },
  (t) => [index('config_versions_at').on(t.at)],
);

/**
 * Each configuration object a version changed, before and after, in the config document's form (null:
 * absent). The document at version n is today's with every change after n undone, newest first.
 */
export const configChanges = sqliteTable(
  'config_changes',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    version: integer('version')
      .notNull()
      .references(() => configVersions.version, { onDelete: 'cascade' }),
    /** `service`, `cluster` or `route`. */
    kind: text('kind').notNull(),
    service: text('service').notNull(),
    /** The cluster's or route's name; '' for the service itself. */
    name: text('name').notNull(),
    before: text('before', { mode: 'json' }),
    after: text('after', { mode: 'json' }),
  },
  (t) => [index('config_changes_version').on(t.version)],
);

/**
 * API keys created through the admin API (besides the settings' tokens): only a hash of the key is kept
 * (the key is shown once, at creation), with its scopes, the services it may touch (name patterns, `*`
 * as a wildcard; null: all), its expiry and whether it was revoked.
 */
export const apiTokens = sqliteTable('api_tokens', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  /** SHA-256 of the key, hex. */
  hash: text('hash').notNull().unique(),
  scopes: text('scopes', { mode: 'json' }).$type<string[]>().notNull(),
  services: text('services', { mode: 'json' }).$type<string[] | null>(),
  createdAt: integer('created_at').notNull(),
  createdBy: text('created_by').notNull(),
  expiresAt: integer('expires_at'),
  revokedAt: integer('revoked_at'),
});

/**
 * Alert webhooks: where alerts go (`url`), which kinds (`events`, `*` for all) about which services
 * (patterns as keys use; null: all), and the secret that signs them. The secret is kept as it is (it
 * must sign every delivery) and shown once, at creation. `afterEventId`: the last event stored when it
 * was made; it is sent only events after that one.
 */
export const webhooks = sqliteTable('webhooks', {
  id: text('id').primaryKey(),
  url: text('url').notNull(),
  events: text('events', { mode: 'json' }).$type<string[]>().notNull(),
  services: text('services', { mode: 'json' }).$type<string[] | null>(),
  secret: text('secret').notNull(),
  description: text('description').notNull().default(''),
  afterEventId: integer('after_event_id').notNull(),
  createdAt: integer('created_at').notNull(),
  createdBy: text('created_by').notNull(),
});

/**
 * One alert to one webhook and how its delivery went: `pending` (due at `next_attempt_at`), `delivered`
 * or `failed` (attempts used up, or refused). A dispatcher claims a row (`claimed_until`) before sending,
 * so several instances never send it twice at once; (webhook, alert) is unique, so an event is queued
 * once per webhook.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    webhookId: text('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    /** `event:<id>` for a stored event; `test:<uuid>`, `store:<instance>:<since>` for the others. */
    alertId: text('alert_id').notNull(),
    eventId: integer('event_id'),
    kind: text('kind').notNull(),
    service: text('service'),
    /** The JSON body sent, as sent. */
    payload: text('payload').notNull(),
    status: text('status').$type<'pending' | 'delivered' | 'failed'>().notNull(),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at').notNull(),
    claimedUntil: integer('claimed_until'),
    lastError: text('last_error'),
    responseStatus: integer('response_status'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
    deliveredAt: integer('delivered_at'),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_alert').on(t.webhookId, t.alertId),
    index('webhook_deliveries_due').on(t.status, t.nextAttemptAt),
    index('webhook_deliveries_created').on(t.createdAt),
  ],
);

/** The alert dispatcher's cursor: the last event it queued for the webhooks (one row, id 1). */
export const webhookCursor = sqliteTable('webhook_cursor', {
  id: integer('id').primaryKey(),
  lastEventId: integer('last_event_id').notNull(),
});
