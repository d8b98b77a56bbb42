import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import { deleteCluster, putCluster } from '../control/clusters.js';
import { notFound } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { clusterPutSchema } from '../spec/cluster.js';
import { nameSchema } from '../spec/names.js';
import { getCluster, getService, listClusters } from '../store/services.js';
import { requireScope, requireServices } from './auth.js';
import { parseBody, parseParam } from './problem.js';
import { actorOf, applied } from './write.js';

/** `/services/{service}/clusters[/{cluster}]`: idempotent PUT by name, GET, DELETE. */
export function registerClusterRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/services/:service/clusters', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    if (!(await getService(db, service))) throw notFound(`service "${service}"`);
    return c.json({ clusters: await listClusters(db, service) });
  });

  api.get('/services/:service/clusters/:cluster', requireScope(rt.grants, 'read'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    const cluster = await getCluster(db, service, name);
    if (!cluster) throw notFound(`cluster "${name}" of service "${service}"`);
    return c.json(cluster);
  });

  api.put('/services/:service/clusters/:cluster', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    const body = await parseBody(c, clusterPutSchema);
    const { config, created } = await applied(rt, await putCluster(db, actorOf(c, rt), { service, name, ...body }));
    return c.json(config, created ? 201 : 200);
  });

  api.delete('/services/:service/clusters/:cluster', requireScope(rt.grants, 'write'), async (c) => {
    const service = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [service]);
    const name = parseParam('cluster', c.req.param('cluster'), nameSchema);
    await applied(rt, await deleteCluster(db, actorOf(c, rt), service, name));
    return c.body(null, 204);
  });
}
