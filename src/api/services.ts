import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import { deleteService, putService } from '../control/services.js';
import { notFound } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { nameSchema } from '../spec/names.js';
import { servicePutSchema } from '../spec/service.js';
import { getService, listClusters, listServices } from '../store/services.js';
import { requireScope, requireServices, serviceFilter } from './auth.js';
import { parseBody, parseParam } from './problem.js';
import { actorOf, applied } from './write.js';

/** `/services` and `/services/{service}`: idempotent PUT by name, GET, DELETE. */
export function registerServiceRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/services', requireScope(rt.grants, 'read'), async (c) => {
    const allowed = serviceFilter(c);
    return c.json({ services: (await listServices(db)).filter((s) => allowed(s.name)) });
  });

  api.get('/services/:service', requireScope(rt.grants, 'read'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [name]);
    const service = await getService(db, name);
    if (!service) throw notFound(`service "${name}"`);
    return c.json({ ...service, clusters: await listClusters(db, name) });
  });

  api.put('/services/:service', requireScope(rt.grants, 'write'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [name]);
    const body = await parseBody(c, servicePutSchema);
    const { config, created } = await applied(rt, await putService(db, actorOf(c, rt), { name, ...body }));
    return c.json(config, created ? 201 : 200);
  });

  api.delete('/services/:service', requireScope(rt.grants, 'write'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    requireServices(c, [name]);
    await applied(rt, await deleteService(db, actorOf(c, rt), name));
    return c.body(null, 204);
  });
}
