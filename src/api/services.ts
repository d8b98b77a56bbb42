import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import * as q from '../store/queries.js';
import { requireScope } from './auth.js';
import { actorOf, changed } from './write.js';
import { notFound, Problem } from '../problem.js';
import { isConstraintError, parseBody, parseParam } from './problem.js';
import { nameSchema, servicePutSchema } from './schemas.js';

/** `/services` and `/services/{service}`: idempotent PUT by name, GET, DELETE. */
export function registerServiceRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  const refuseTakenHosts = async (service: string, hosts: string[]): Promise<void> => {
    const taken = await q.hostsTakenByOthers(db, service, hosts);
    if (taken.length === 0) return;
    throw new Problem({ code: 'host-taken', detail: taken.map((t) => `${t.host} belongs to service "${t.service}"`).join('; '), errors: taken.map((t) => ({ field: `hosts.${hosts.indexOf(t.host)}`, message: `already belongs to service "${t.service}"` })) });
  };

  api.get('/services', requireScope(rt.grants, 'read'), async (c) => c.json({ services: await q.listServices(db) }));

  api.get('/services/:service', requireScope(rt.grants, 'read'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    const service = await q.getService(db, name);
    if (!service) throw notFound(`service "${name}"`);
    return c.json({ ...service, clusters: await q.listClusters(db, name) });
  });

  api.put('/services/:service', requireScope(rt.grants, 'write'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    const body = await parseBody(c, servicePutSchema);
    await refuseTakenHosts(name, body.hosts);
    const before = await q.getService(db, name);
    const after: q.ServiceConfig = { name, hosts: body.hosts, failover: body.failover, policy: body.policy, subsets: body.subsets };
    try {
      await q.putService(db, actorOf(c, rt), before, after);
    } catch (error) {
      // Another writer took a host between the check and the write: the store refused the batch.
      if (isConstraintError(error)) await refuseTakenHosts(name, body.hosts);
      throw error;
    }
    await changed(rt);
    return c.json(after, before ? 200 : 201);
  });

  api.delete('/services/:service', requireScope(rt.grants, 'write'), async (c) => {
    const name = parseParam('service', c.req.param('service'), nameSchema);
    const before = await q.getService(db, name);
    if (!before) throw notFound(`service "${name}"`);
    await q.deleteService(db, actorOf(c, rt), before, await q.listClusters(db, name));
    await changed(rt);
    return c.body(null, 204);
  });
}
