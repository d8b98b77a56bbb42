import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import * as q from '../store/queries.js';
import { requireScope } from './auth.js';
import { notFound } from '../problem.js';
import { isConstraintError, parseBody, parseParam } from './problem.js';
import { clusterPutSchema, nameSchema } from './schemas.js';
import { actorOf, changed } from './write.js';

/** `/services/{service}/clusters[/{cluster}]`: idempotent PUT by name, GET, DELETE. */
export function registerClusterRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  const existingService = async (raw: string | undefined): Promise<string> => {
    const name = parseParam('service', raw, nameSchema);
    if (!(await q.getService(db, name))) throw notFound(`service "${name}"`);
    return name;
  };

  api.get('/services/:service/clusters', requireScope(rt.grants, 'read'), async (c) => {
    const service = await existingService(c.req.param('service'));
    return c.json({ clusters: await q.listClusters(db, service) });
  });

  api.get('/services/:service/clusters/:cluster', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    const cluster = await q.getCluster(db, service, name);
    if (!cluster) throw notFound(`cluster "${name}" of service "${service}"`);
    return c.json(cluster);
  });

  api.put('/services/:service/clusters/:cluster', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    const body = await parseBody(c, clusterPutSchema);
    await existingService(service);
    const before = await q.getCluster(db, service, name);
    const after: q.ClusterConfig = { service, name, ...body };
    try {
      await q.putCluster(db, actorOf(c, rt), before, after);
    } catch (error) {
      // The service was deleted between the check and the write: the foreign key refused the batch.
      if (isConstraintError(error)) await existingService(service);
      throw error;
    }
    await changed(rt);
    return c.json(after, before ? 200 : 201);
  });

  api.delete('/services/:service/clusters/:cluster', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    const before = await q.getCluster(db, service, name);
    if (!before) throw notFound(`cluster "${name}" of service "${service}"`);
    await q.deleteCluster(db, actorOf(c, rt), before);
    await changed(rt);
    return c.body(null, 204);
  });
}
