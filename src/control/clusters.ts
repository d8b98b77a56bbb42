import { and, eq, sql } from 'drizzle-orm';
import { notFound } from '../problem.js';
import type { Db } from '../store/client.js';
import { clusterHealth, clusters, latencyOrders } from '../store/schema.js';
import { getCluster, getService, listClusters, type ClusterConfig } from '../store/services.js';
import { done, refuse, runCommand, type Actor, type CommandResult, type CommandTx, type Outcome } from './command.js';
import { endOverridesOf, strandingChange } from './overrides.js';

/**
 * PUT a cluster by name into an existing service (checked in the same transaction as the write). A
 * cluster created under the name of a deleted one starts clean, with no health verdict of its namesake.
 */
export function putCluster(
  db: Db,
  actor: Actor,
  after: ClusterConfig,
): Promise<CommandResult<{ config: ClusterConfig; created: boolean }>> {
  return runCommand(db, actor, (c) => writeCluster(c, after));
}

/** `putCluster` inside a command's transaction (a config apply writes many objects in one). */
export async function writeCluster(
  c: CommandTx,
  after: ClusterConfig,
): Promise<Outcome<{ config: ClusterConfig; created: boolean }>> {
  {
    if (!(await getService(c.tx, after.service))) return refuse(notFound(`service "${after.service}"`));
    const before = await getCluster(c.tx, after.service, after.name);
    const { service, name, ...fields } = after;
    const { now } = c.actor;
    if (before && before.region !== after.region) {
      const rest = await listClusters(c.tx, service);
      const moved = rest.map((cl) => (cl.name === name ? { name, region: after.region } : cl));
      const stranding = await strandingChange(c, service, moved, `moving cluster "${name}" to ${after.region}`);
      if (stranding) return refuse(stranding);
    }
    if (!before)
      await c.tx.delete(clusterHealth).where(and(eq(clusterHealth.service, service), eq(clusterHealth.cluster, name)));
    await c.tx
      .insert(clusters)
      .values({ service, name, ...fields, createdAt: now, updatedAt: now })
      .onConflictDoUpdate({ target: [clusters.service, clusters.name], set: { ...fields, updatedAt: now } });
    await c.audit({
      action: before ? 'cluster.update' : 'cluster.create',
      target: `services/${service}/clusters/${name}`,
      before,
      after,
    });
    await c.configChange({
      kind: 'cluster',
      service,
      name,
      before: withoutService(before),
      after: withoutService(after),
    });
    return done({ config: after, created: !before });
  }
}

/** A cluster as the config document holds it (under its service). */
const withoutService = (config: ClusterConfig | null) => {
  if (!config) return null;
  const { service: _, ...cluster } = config;
  return cluster;
};

/**
 * DELETE a cluster, with what was derived from it: its health verdict and counters, the overrides that
 * name it (ended), and the latency orders that placed its region (the sync measures them again).
 */
export function deleteCluster(db: Db, actor: Actor, service: string, name: string): Promise<CommandResult<null>> {
  return runCommand(db, actor, (c) => removeCluster(c, service, name));
}

/** `deleteCluster` inside a command's transaction. */
export async function removeCluster(c: CommandTx, service: string, name: string): Promise<Outcome<null>> {
  {
    const before = await getCluster(c.tx, service, name);
    if (!before) return refuse(notFound(`cluster "${name}" of service "${service}"`));
    const rest = (await listClusters(c.tx, service)).filter((cl) => cl.name !== name);
    const stranding = await strandingChange(c, service, rest, `deleting cluster "${name}"`);
    if (stranding) return refuse(stranding);
    await c.tx.delete(clusters).where(and(eq(clusters.service, service), eq(clusters.name, name)));
    await c.tx.delete(clusterHealth).where(and(eq(clusterHealth.service, service), eq(clusterHealth.cluster, name)));
    await c.tx
      .delete(latencyOrders)
      .where(
        and(
          eq(latencyOrders.service, service),
          sql`exists (select 1 from json_each(${latencyOrders.regions}) where json_extract(value, '$.region') = ${before.region})`,
        ),
      );
    await endOverridesOf(c, { service, cluster: name }, `cluster ${name} was deleted`);
    await c.audit({ action: 'cluster.delete', target: `services/${service}/clusters/${name}`, before, after: null });
    await c.configChange({ kind: 'cluster', service, name, before: withoutService(before), after: null });
    return done(null);
  }
}
