import { and, eq, isNull, sql, type SQL } from 'drizzle-orm';
import type { BatchItem } from 'drizzle-orm/batch';
import { resolvePolicy, type StoredPolicy } from '../routing/policy.js';
import type { ClusterSpec, FailoverRule, ServiceSpec, ServiceSubsets, SnapshotSource } from '../routing/types.js';
import type { Db } from './client.js';
import { toOverrideSpecRow } from './overrides.js';
import { initialState, toRouteState } from './route-state.js';
import { auditLog, clusterHealth, clusters, latencyOrders, overrides, revision, routes, routeState, serviceHosts, services, type HealthCheck } from './schema.js';

/** A service as the admin API shows it. */
export interface ServiceConfig {
  name: string;
  hosts: string[];
  failover: FailoverRule[];
  policy: StoredPolicy;
  /** Named subsets: name -> label selector. */
  subsets: ServiceSubsets;
}

/** A cluster as the admin API shows it: its routing fields, its service and its health check. */
export type ClusterConfig = Omit<ClusterSpec, 'health' | 'originHost' | 'zone'> & { service: string; zone: string | null; originHost: string | null; healthCheck: HealthCheck };

/** Who made a write, and under which request, for the audit log. */
export interface Actor {
  name: string;
  requestId: string;
  now: number;
}

export type Write = BatchItem<'sqlite'>;

/** The current revision; 0 for a store that has never been written. One cheap query. */
export async function readRevision(db: Db): Promise<number> {
  const rows = await db.select({ version: revision.version }).from(revision).where(eq(revision.id, 1));
  return rows[0]?.version ?? 0;
}

/**
 * Everything routing needs, read in one consistent batch (one round trip): config, the health sync's
 * verdicts and the overrides not yet ended (routing drops the expired ones by the clock).
 */
export async function loadSnapshotSource(db: Db): Promise<SnapshotSource> {
  const [rev, serviceRows, hostRows, clusterRows, healthRows, overrideRows, routeRows, stateRows, latencyRows] = await db.batch([
    db.select({ version: revision.version }).from(revision).where(eq(revision.id, 1)),
    db.select().from(services),
    db.select().from(serviceHosts),
    db.select().from(clusters),
    db.select({ service: clusterHealth.service, cluster: clusterHealth.cluster, state: clusterHealth.state }).from(clusterHealth),
    db.select().from(overrides).where(isNull(overrides.endedAt)),
    db.select().from(routes).orderBy(routes.order, routes.name),
    db.select().from(routeState),
    db.select().from(latencyOrders),
  ]);
  const states = new Map(stateRows.map((r) => [`${r.service}/${r.route}`, toRouteState(r)]));
  const health = new Map(healthRows.map((h) => [`${h.service}/${h.cluster}`, h.state]));
  const specs = new Map<string, ServiceSpec>(
    serviceRows.map((s) => [s.name, { name: s.name, failover: s.failover, policy: resolvePolicy(s.policy), subsets: s.subsets, hosts: [], clusters: [], routes: [] }]),
  );
  for (const r of routeRows) {
    const automated = r.spec.mirror?.ramp || r.spec.canary;
    const state = automated ? (states.get(`${r.service}/${r.name}`) ?? initialState(r.spec)) : undefined;
    specs.get(r.service)?.routes?.push({ name: r.name, order: r.order, ...r.spec, ...(state ? { state } : {}) });
  }
  for (const l of latencyRows) {
    const spec = specs.get(l.service);
    if (spec) spec.latencyOrders = { ...spec.latencyOrders, [l.clientRegion]: l.regions.map((x) => x.region) };
  }
  for (const h of hostRows) specs.get(h.service)?.hosts.push(h.host);
  for (const c of clusterRows) {
    const spec: ClusterSpec = { ...toClusterConfig(c), health: health.get(`${c.service}/${c.name}`) ?? 'unknown' };
    specs.get(c.service)?.clusters.push(spec);
  }
  return { version: rev[0]?.version ?? 0, services: [...specs.values()], overrides: overrideRows.map(toOverrideSpecRow) };
}



export async function listServices(db: Db): Promise<ServiceConfig[]> {
  const [serviceRows, hostRows] = await db.batch([
    db.select().from(services).orderBy(services.name),
    db.select().from(serviceHosts).orderBy(serviceHosts.host),
  ]);
  return serviceRows.map((s) => ({
    name: s.name,
    hosts: hostRows.filter((h) => h.service === s.name).map((h) => h.host),
    failover: s.failover,
    policy: s.policy,
    subsets: s.subsets,
  }));
}

export async function getService(db: Db, name: string): Promise<ServiceConfig | null> {
  const [serviceRows, hostRows] = await db.batch([
    db.select().from(services).where(eq(services.name, name)),
    db.select().from(serviceHosts).where(eq(serviceHosts.service, name)).orderBy(serviceHosts.host),
  ]);
  const row = serviceRows[0];
  return row ? { name: row.name, hosts: hostRows.map((h) => h.host), failover: row.failover, policy: row.policy, subsets: row.subsets } : null;
}

/** Hosts among `hosts` that already belong to a service other than `service`. */
export async function hostsTakenByOthers(db: Db, service: string, hosts: string[]): Promise<{ host: string; service: string }[]> {
  if (hosts.length === 0) return [];
  const rows = await db
    .select()
    .from(serviceHosts)
    .where(sql`${serviceHosts.host} in ${hosts} and ${serviceHosts.service} <> ${service}`);
  return rows.map((r) => ({ host: r.host, service: r.service }));
}

export async function putService(db: Db, actor: Actor, before: ServiceConfig | null, after: ServiceConfig): Promise<void> {
  await commit(db, actor, [
    db
      .insert(services)
      .values({ name: after.name, failover: after.failover, policy: after.policy, subsets: after.subsets, createdAt: actor.now, updatedAt: actor.now })
      .onConflictDoUpdate({ target: services.name, set: { failover: after.failover, policy: after.policy, subsets: after.subsets, updatedAt: actor.now } }),
    db.delete(serviceHosts).where(eq(serviceHosts.service, after.name)),
    db.insert(serviceHosts).values(after.hosts.map((host) => ({ host, service: after.name }))),
    audit(db, actor, before ? 'service.update' : 'service.create', `services/${after.name}`, before, after),
  ]);
}

export async function deleteService(db: Db, actor: Actor, before: ServiceConfig, clustersBefore: ClusterConfig[]): Promise<void> {
  await commit(db, actor, [
    db.delete(clusters).where(eq(clusters.service, before.name)),
    db.delete(routes).where(eq(routes.service, before.name)),
    db.delete(routeState).where(eq(routeState.service, before.name)),
    db.delete(latencyOrders).where(eq(latencyOrders.service, before.name)),
    db.delete(serviceHosts).where(eq(serviceHosts.service, before.name)),
    db.delete(services).where(eq(services.name, before.name)),
    audit(db, actor, 'service.delete', `services/${before.name}`, { ...before, clusters: clustersBefore }, null),
  ]);
}

export async function listClusters(db: Db, service: string): Promise<ClusterConfig[]> {
  const rows = await db.select().from(clusters).where(eq(clusters.service, service)).orderBy(clusters.name);
  return rows.map(toClusterConfig);
}

export async function listAllClusters(db: Db): Promise<ClusterConfig[]> {
  const rows = await db.select().from(clusters).orderBy(clusters.service, clusters.name);
  return rows.map(toClusterConfig);
}

export async function getCluster(db: Db, service: string, name: string): Promise<ClusterConfig | null> {
  const rows = await db
    .select()
    .from(clusters)
    .where(and(eq(clusters.service, service), eq(clusters.name, name)));
  return rows[0] ? toClusterConfig(rows[0]) : null;
}

export async function putCluster(db: Db, actor: Actor, before: ClusterConfig | null, after: ClusterConfig): Promise<void> {
  const { service, name, ...fields } = after;
  await commit(db, actor, [
    db
      .insert(clusters)
      .values({ service, name, ...fields, createdAt: actor.now, updatedAt: actor.now })
      .onConflictDoUpdate({ target: [clusters.service, clusters.name], set: { ...fields, updatedAt: actor.now } }),
    audit(db, actor, before ? 'cluster.update' : 'cluster.create', `services/${service}/clusters/${name}`, before, after),
  ]);
}

export async function deleteCluster(db: Db, actor: Actor, before: ClusterConfig): Promise<void> {
  await commit(db, actor, [
    db.delete(clusters).where(and(eq(clusters.service, before.service), eq(clusters.name, before.name))),
    audit(db, actor, 'cluster.delete', `services/${before.service}/clusters/${before.name}`, before, null),
  ]);
}

export interface AuditEntry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  before: unknown;
  after: unknown;
  requestId: string | null;
}

/**
 * The newest audit entries first, optionally only those about `target` and what lies under it
 * (`services/shop` matches `services/shop/clusters/ew1`, not `services/shop-eu`). Matched literally.
 */
export async function listAudit(db: Db, opts: { target?: string; limit: number }): Promise<AuditEntry[]> {
  const t = opts.target?.replace(/\/+$/, '');
  const where: SQL | undefined = t
    ? sql`(${auditLog.target} = ${t} or substr(${auditLog.target}, 1, ${t.length + 1}) = ${`${t}/`})`
    : undefined;
  return db.select().from(auditLog).where(where).orderBy(sql`${auditLog.id} desc`).limit(opts.limit);
}

export function audit(db: Db, actor: Actor, action: string, target: string, before: unknown, after: unknown): Write {
  return db.insert(auditLog).values({ at: actor.now, actor: actor.name, action, target, before, after, requestId: actor.requestId });
}

/** Applies writes, their audit entry and a revision bump atomically, so edges see all of it or none. */
export async function commit(db: Db, actor: Actor, writes: Write[]): Promise<void> {
  const bump = db
    .insert(revision)
    .values({ id: 1, version: 1, updatedAt: actor.now })
    .onConflictDoUpdate({ target: revision.id, set: { version: sql`${revision.version} + 1`, updatedAt: sql`excluded.updated_at` } });
  await db.batch([bump, ...writes]);
}

function toClusterConfig(row: typeof clusters.$inferSelect): ClusterConfig {
  return {
    service: row.service,
    name: row.name,
    region: row.region,
    zone: row.zone,
    origin: row.origin,
    originHost: row.originHost,
    latitude: row.latitude,
    longitude: row.longitude,
    weight: row.weight,
    labels: row.labels,
    healthCheck: row.healthCheck,
  };
}
