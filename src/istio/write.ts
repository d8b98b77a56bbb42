import { eq } from 'drizzle-orm';
import type { Db } from '../store/client.js';
import { audit, commit, type Actor, type ServiceConfig, type Write } from '../store/queries.js';
import { routeWrites, type RouteConfig } from '../store/routes.js';
import { services } from '../store/schema.js';

/** What an import changes for one service, with the state before for the audit log. */
export interface ServiceChange {
  before: ServiceConfig;
  /** The service with its new policy and failover rules; null: the service row is left as it is. */
  after: ServiceConfig | null;
  routes: { before: RouteConfig | null; after: RouteConfig }[];
}

/**
 * Writes an import in one batch with one revision bump, so edges see all of it or none: routes upserted
 * as `PUT .../routes/{route}` does, policy and failover set on the service, one audit entry per object.
 */
export async function writeIstioImport(db: Db, actor: Actor, changes: ServiceChange[]): Promise<void> {
  const writes: Write[] = [];
  for (const change of changes) {
    for (const { before, after } of change.routes) writes.push(...routeWrites(db, actor, before, after));
    if (change.after) {
      const { name, failover, policy } = change.after;
      writes.push(
        db.update(services).set({ failover, policy, updatedAt: actor.now }).where(eq(services.name, name)),
        audit(db, actor, 'service.update', `services/${name}`, change.before, change.after),
      );
    }
  }
  if (writes.length) await commit(db, actor, writes);
}
