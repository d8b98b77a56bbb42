import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { failoverMatrix } from '../routing/matrix.js';
import type { Snapshot } from '../routing/types.js';
import type { Runtime } from '../runtime.js';
import { requireScope, requireServices } from './auth.js';
import { invalid, notFound, Problem } from '../problem.js';
import { parseParam } from './problem.js';
import { nameSchema } from '../spec/names.js';

export const downSchema = z
  .string()
  .optional()
  .transform((v) =>
    v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [],
  )
  .pipe(z.array(nameSchema).max(1000));

/** The routing table at the store's current revision (what every edge will use after its next refresh). */
export async function currentSnapshot(rt: Runtime): Promise<Snapshot> {
  const snapshot = await rt.snapshots.latest();
  if (!snapshot)
    throw new Problem({
      code: 'store-unavailable',
      detail: 'the routing table cannot be loaded from the store; retry shortly',
      headers: { 'retry-after': '5' },
    });
  return snapshot;
}

/**
 * A service's failover matrix at the store's current revision, as if the clusters in `down` were down
 * (400 naming `down` for a cluster the service does not have), with this instance's ejections.
 */
export async function failoverView(rt: Runtime, name: string, down: readonly string[]) {
  const snapshot = await currentSnapshot(rt);
  const service = snapshot.byName.get(name);
  if (!service) throw notFound(`service "${name}"`);
  const unknown = down.filter((d) => !service.clusters.some((cl) => cl.name === d));
  if (unknown.length)
    throw invalid('down names clusters this service does not have', [
      { field: 'down', message: `unknown clusters: ${unknown.join(', ')}` },
    ]);
  return {
    ...failoverMatrix(snapshot, service, new Set(down)),
    whatIf: down.length ? { down } : null,
    snapshotVersion: snapshot.version,
    ejectedHere: rt.outliers.ejected(name),
  };
}

/**
 * `GET /services/{service}/failover[?down=a,b]`: for every client region, the clusters in failover order
 * with their share of traffic, level, health and why; `down` answers as if those clusters were down.
 */
export function registerFailoverRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.get('/services/:service/failover', requireScope(rt.grants, 'read'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [name]);
    const down = parseParam('down', c.req.query('down'), downSchema);
    return c.json(await failoverView(rt, name, down));
  });
}
