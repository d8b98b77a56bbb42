import type { ClusterSpec, ServiceSpec } from './types.js';

/**
 * One copy of each repeated value of a snapshot source: region names, health states, label sets,
 * policies. A configuration of 10,000 services x 20 clusters repeats the same few regions, labels and
 * policies hundreds of thousands of times; as read from the store or parsed from an archive each
 * occurrence is an object or a string of its own. Values are shared read-only: nothing mutates a spec.
 */
class Interner {
  readonly #strings = new Map<string, string>();
  readonly #values = new Map<string, unknown>();

  string<T extends string | null | undefined>(text: T): T {
    if (typeof text !== 'string') return text;
    const known = this.#strings.get(text);
    if (known !== undefined) return known as T;
    this.#strings.set(text, text);
    return text;
  }

  /** A plain JSON value, shared with every equal one (compared as JSON text). */
  value<T>(value: T): T {
    const key = JSON.stringify(value);
    const known = this.#values.get(key);
    if (known !== undefined) return known as T;
    this.#values.set(key, value);
    return value;
  }
}

/**
 * A cluster as routing keeps it: only the fields routing reads (not the health check, not the service's
 * name again), zone and originHost left out when there are none, repeated values shared.
 */
function leanCluster(c: ClusterSpec, intern: Interner): ClusterSpec {
  const lean: ClusterSpec = {
    // Cluster names repeat across services (`us-east1-a` in each of them): one copy of each.
    name: intern.string(c.name),
    region: intern.string(c.region),
    origin: c.origin,
    latitude: c.latitude,
    longitude: c.longitude,
    weight: c.weight,
    labels: intern.value(c.labels),
    health: intern.string(c.health ?? 'unknown'),
  };
  if (c.zone != null) lean.zone = intern.string(c.zone);
  if (c.originHost != null) lean.originHost = c.originHost;
  return lean;
}

/** A service spec with its clusters lean and its repeated values (policy, failover, subsets) shared. */
function leanService(spec: ServiceSpec, intern: Interner): ServiceSpec {
  const lean: ServiceSpec = {
    name: spec.name,
    hosts: spec.hosts,
    failover: intern.value(spec.failover),
    clusters: spec.clusters.map((c) => leanCluster(c, intern)),
  };
  if (spec.policy !== undefined) lean.policy = intern.value(spec.policy);
  if (spec.subsets !== undefined) lean.subsets = intern.value(spec.subsets);
  if (spec.routes !== undefined) lean.routes = spec.routes.length ? spec.routes : intern.value(spec.routes);
  if (spec.latencyOrders !== undefined) lean.latencyOrders = spec.latencyOrders;
  return lean;
}

/** Services as routing keeps them (see `leanService`), sharing one set of repeated values. */
export function leanServices(services: readonly ServiceSpec[]): ServiceSpec[] {
  const intern = new Interner();
  return services.map((s) => leanService(s, intern));
}
