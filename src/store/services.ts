import { and, eq, sql } from 'drizzle-orm';
import type { ClusterPut } from '../spec/cluster.js';
import type { ServicePut } from '../spec/service.js';
import { readTogether, type Reader } from './reader.js';
import { clusters, serviceHosts, services } from './schema.js';

/** A service as the admin API shows it: what was PUT, under its name. */
export type ServiceConfig = ServicePut & { name: string };

/** A cluster as the admin API shows it: what was PUT, with its service and name. */
export type ClusterConfig = ClusterPut & { service: string; name: string };

export async function listServices(db: Reader): Promise<ServiceConfig[]> {
  const [serviceRows, hostRows] = await readTogether(db, [
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

export async function getService(db: Reader, name: string): Promise<ServiceConfig | null> {
  const [serviceRows, hostRows] = await readTogether(db, [
    db.select().from(services).where(eq(services.name, name)),
    db.select().from(serviceHosts).where(eq(serviceHosts.service, name)).orderBy(serviceHosts.host),
  ]);
  const row = serviceRows[0];
  return row
    ? {
        name: row.name,
        hosts: hostRows.map((h) => h.host),
        failover: row.failover,
        policy: row.policy,
        subsets: row.subsets,
      }
    : null;
}

/** Hosts among `hosts` that already belong to a service other than `service`. */
export async function hostsTakenByOthers(
  db: Reader,
  service: string,
  hosts: string[],
): Promise<{ host: string; service: string }[]> {
  if (hosts.length === 0) return [];
  const rows = await db
    .select()
    .from(serviceHosts)
    .where(sql`${serviceHosts.host} in ${hosts} and ${serviceHosts.service} <> ${service}`);
  return rows.map((r) => ({ host: r.host, service: r.service }));
}

export async function listClusters(db: Reader, service: string): Promise<ClusterConfig[]> {
  const rows = await db.select().from(clusters).where(eq(clusters.service, service)).orderBy(clusters.name);
  return rows.map(toClusterConfig);
}

export async function listAllClusters(db: Reader): Promise<ClusterConfig[]> {
  const rows = await db.select().from(clusters).orderBy(clusters.service, clusters.name);
  return rows.map(toClusterConfig);
}

export async function getCluster(db: Reader, service: string, name: string): Promise<ClusterConfig | null> {
  const rows = await db
    .select()
    .from(clusters)
    .where(and(eq(clusters.service, service), eq(clusters.name, name)));
  return rows[0] ? toClusterConfig(rows[0]) : null;
}

export function toClusterConfig(row: typeof clusters.$inferSelect): ClusterConfig {
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
