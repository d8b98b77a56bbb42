import { index, integer, primaryKey, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';

/** An explicit failover rule: clients of `from` fail over to `to`, in order, before distance decides. */
export interface FailoverRule {
  from: string;
  to: string[];
}

export interface HealthCheck {
  path: string;
}

export const services = sqliteTable('services', {
  name: text('name').primaryKey(),
  failover: text('failover', { mode: 'json' }).$type<FailoverRule[]>().notNull().default([]),
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
});

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
    origin: text('origin').notNull(),
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
  (t) => [index('audit_log_target').on(t.target, t.at)],
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
