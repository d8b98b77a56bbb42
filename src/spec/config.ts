import { z } from 'zod';
import { clusterPutSchema } from './cluster.js';
import { nameSchema } from './names.js';
import { routePutSchema } from './route.js';
import { servicePutSchema } from './service.js';

/** A cluster in the config document: the cluster as `PUT .../clusters/{name}` takes it, with its name. */
const clusterDocSchema = clusterPutSchema.extend({ name: nameSchema });

/** A route in the config document: the route as `PUT .../routes/{name}` takes it, with its name. */
const routeDocSchema = routePutSchema.extend({ name: nameSchema });

const uniqueNames = (items: readonly { name: string }[]) => new Set(items.map((i) => i.name)).size === items.length;

/** A service in the config document: the service as `PUT /services/{name}` takes it, with its clusters and routes. */
const serviceDocSchema = servicePutSchema.extend({
  name: nameSchema,
  clusters: z.array(clusterDocSchema).refine(uniqueNames, 'must not repeat a cluster name').default([]),
  routes: z.array(routeDocSchema).refine(uniqueNames, 'must not repeat a route name').default([]),
});

/**
 * The configuration as one document (`apiVersion: waymark/v1`, `kind: Config`), in YAML or JSON: every
 * service with its hosts, subsets, failover rules, policy, clusters and routes; everything the admin API
 * can PUT, nothing the runtime decides (health, overrides, automation state). The one definition of it:
 * apply, export, versions and rollback all go through this schema.
 */
export const configDocumentSchema = z.strictObject({
  apiVersion: z.literal('waymark/v1'),
  kind: z.literal('Config'),
  services: z.array(serviceDocSchema).refine(uniqueNames, 'must not repeat a service name').default([]),
});

export type ConfigDocument = z.output<typeof configDocumentSchema>;
export type ServiceDoc = z.output<typeof serviceDocSchema>;
export type ClusterDoc = z.output<typeof clusterDocSchema>;
export type RouteDoc = z.output<typeof routeDocSchema>;
