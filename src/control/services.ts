import { and, eq, inArray, ne } from 'drizzle-orm';
import { Problem, notFound } from '../problem.js';
import type { Db } from '../store/client.js';
import {
  clusterHealth,
  clusters,
  latencyOrders,
  routes,
  routeSamples,
  routeState,
  serviceHosts,
  services,
} from '../store/schema.js';
import { listRoutes } from '../store/routes.js';
import { getService, listClusters, type ServiceConfig } from '../store/services.js';
import type { Tx } from '../store/transaction.js';
import { done, refuse, runCommand, type Actor, type CommandResult, type CommandTx, type Outcome } from './command.js';
import { endOverridesOf } from './overrides.js';

/**
 * PUT a service by name: its hosts must belong to no other service (checked and written in one
 * transaction, so two services cannot take one host at once). A service created under the name of a
 * deleted one starts clean: no health, route state or samples of its namesake.
 */
export function putService(
  db: Db,
  actor: Actor,
  after: ServiceConfig,
): Promise<CommandResult<{ config: ServiceConfig; created: boolean }>> {
  return runCommand(db, actor, (c) => writeService(c, after));
}

/** `putService` inside a command's transaction (a config apply writes many objects in one). */
export async function writeService(
  c: CommandTx,
  after: ServiceConfig,
): Promise<Outcome<{ config: ServiceConfig; created: boolean }>> {
  {
    const taken = after.hosts.length
      ? await c.tx
          .select()
          .from(serviceHosts)
          .where(and(inArray(serviceHosts.host, after.hosts), ne(serviceHosts.service, after.name)))
      : [];
    if (taken.length) {
      return refuse(
        new Problem({
          code: 'host-taken',
          detail: taken.map((t) => `${t.host} belongs to service "${t.service}"`).join('; '),
          errors: taken.map((t) => ({
            field: `hosts.${after.hosts.indexOf(t.host)}`,
            message: `already belongs to service "${t.service}"`,
          })),
        }),
      );
    }
    const before = await getService(c.tx, after.name);
    const { now } = c.actor;
    if (!before) await forgetDerivedState(c.tx, after.name);
    await c.tx
      .insert(services)
      .values({
        name: after.name,
        failover: after.failover,
        policy: after.policy,
        subsets: after.subsets,
        createdAt: now,
        updatedAt: now,
      })
      .onConflictDoUpdate({
        target: services.name,
        set: { failover: after.failover, policy: after.policy, subsets: after.subsets, updatedAt: now },
      });
    await c.tx.delete(serviceHosts).where(eq(serviceHosts.service, after.name));
    if (after.hosts.length)
      await c.tx.insert(serviceHosts).values(after.hosts.map((host) => ({ host, service: after.name })));
    await c.audit({
      action: before ? 'service.update' : 'service.create',
      target: `services/${after.name}`,
      before,
      after,
    });
    await c.configChange({ kind: 'service', service: after.name, name: '', before, after });
    return done({ config: after, created: !before });
  }
}

/** DELETE a service: its clusters, routes and hosts, the state derived from them, and its overrides end. */
export function deleteService(db: Db, actor: Actor, name: string): Promise<CommandResult<null>> {
  return runCommand(db, actor, (c) => removeService(c, name));
}

/** `deleteService` inside a command's transaction. */
export async function removeService(c: CommandTx, name: string): Promise<Outcome<null>> {
  {
    const before = await getService(c.tx, name);
    if (!before) return refuse(notFound(`service "${name}"`));
    const clustersBefore = await listClusters(c.tx, name);
    const routesBefore = await listRoutes(c.tx, name);
    await endOverridesOf(c, { service: name }, 'its service was deleted');
    await forgetDerivedState(c.tx, name);
    await c.tx.delete(clusters).where(eq(clusters.service, name));
    await c.tx.delete(routes).where(eq(routes.service, name));
    await c.tx.delete(serviceHosts).where(eq(serviceHosts.service, name));
    await c.tx.delete(services).where(eq(services.name, name));
    await c.audit({
      action: 'service.delete',
      target: `services/${name}`,
      before: { ...before, clusters: clustersBefore },
      after: null,
    });
    // Its clusters and routes go with it: each is a change of the configuration's version.
    await c.configChange({ kind: 'service', service: name, name: '', before, after: null });
    for (const { service, ...cluster } of clustersBefore)
      await c.configChange({ kind: 'cluster', service, name: cluster.name, before: cluster, after: null });
    for (const { service, ...route } of routesBefore)
      await c.configChange({ kind: 'route', service, name: route.name, before: route, after: null });
    return done(null);
  }
}

/** What the sync and the edges derived for a service: health verdicts, route state, samples, latency orders. */
async function forgetDerivedState(tx: Tx, service: string): Promise<void> {
  await tx.delete(clusterHealth).where(eq(clusterHealth.service, service));
  await tx.delete(routeState).where(eq(routeState.service, service));
  await tx.delete(routeSamples).where(eq(routeSamples.service, service));
  await tx.delete(latencyOrders).where(eq(latencyOrders.service, service));
}
