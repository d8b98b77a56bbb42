import { eq } from 'drizzle-orm';
import type { Db } from '../store/client.js';
import { audit, commit, type Actor, type ServiceConfig, type Write } from '../store/queries.js';
import { routeWrites, type RouteConfig } from '../store/routes.js';
import { services } from '../store/schema.js';

/** What an import does to a route: one it creates, one it changes, or one that already says the same. */
export type RouteAction = 'create' | 'update' | 'unchanged';

/** What an import changes for one service, with the state before for the audit log. */
export interface ServiceChange {
  before: ServiceConfig;
  /** The service with its new policy, failover rules and subsets; null: the service row is left as it is. */
  after: ServiceConfig | null;
  routes: { before: RouteConfig | null; after: RouteConfig; action: RouteAction }[];
}

/**
 * Writes an import in one batch with one revision bump, so edges see all of it or none: routes upserted
 * as `PUT .../routes/{route}` does, policy, failover and subsets set on the service, one audit entry per
 * object. What is unchanged is not written, so applying the same YAML again writes nothing at all (no
 * revision bump, no audit entry), as `kubectl apply` of an unchanged object does. Whether it wrote.
 */
export async function writeIstioImport(db: Db, actor: Actor, changes: ServiceChange[]): Promise<boolean> {
  const writes: Write[] = [];
  for (const change of changes) {
    for (const { before, after, action } of change.routes) if (action !== 'unchanged') writes.push(...routeWrites(db, actor, before, after));
    if (change.after) {
      const { name, failover, policy, subsets } = change.after;
      writes.push(
        db.update(services).set({ failover, policy, subsets, updatedAt: actor.now }).where(eq(services.name, name)),
        audit(db, actor, 'service.update', `services/${name}`, change.before, change.after),
      );
    }
  }
  if (writes.length) await commit(db, actor, writes);
  return writes.length > 0;
}
