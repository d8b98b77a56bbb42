import type { ClusterDoc, ConfigDocument, RouteDoc, ServiceDoc } from '../spec/config.js';

/** A service's own fields in the config document (its clusters and routes are objects of their own). */
type ServiceFields = Omit<ServiceDoc, 'clusters' | 'routes'>;

type ConfigKind = 'service' | 'cluster' | 'route';

/** One object of the configuration: a service's own fields, a cluster or a route, in the document's form. */
export type ConfigObject =
  | { kind: 'service'; service: string; name: ''; value: ServiceFields }
  | { kind: 'cluster'; service: string; name: string; value: ClusterDoc }
  | { kind: 'route'; service: string; name: string; value: RouteDoc };

export type ChangeAction = 'create' | 'update' | 'delete' | 'unchanged';

/** A field that an update changes: its path in the object (`policy.retries.attempts`), old and new values. */
export interface FieldChange {
  path: string;
  old: unknown;
  new: unknown;
}

/** What applying a document does to one object. */
export interface ObjectChange {
  kind: ConfigKind;
  service: string;
  /** The cluster's or route's name; '' for a service. */
  name: string;
  action: ChangeAction;
  before: ConfigObject['value'] | null;
  after: ConfigObject['value'] | null;
  /** For an update: the fields it changes. */
  fields: FieldChange[];
}

/** The objects of a document, each service followed by its clusters and routes. */
export function configObjects(doc: ConfigDocument): ConfigObject[] {
  const out: ConfigObject[] = [];
  for (const { clusters, routes, ...fields } of doc.services) {
    // Hosts are a set (the store gives them back sorted): their order is no change.
    out.push({
      kind: 'service',
      service: fields.name,
      name: '',
      value: { ...fields, hosts: [...fields.hosts].sort() },
    });
    for (const c of clusters) out.push({ kind: 'cluster', service: fields.name, name: c.name, value: c });
    for (const r of routes) out.push({ kind: 'route', service: fields.name, name: r.name, value: r });
  }
  return out;
}

/** The document holding these objects: services by name, their clusters by name, their routes in order. */
export function documentOf(objects: readonly ConfigObject[]): ConfigDocument {
  const services = new Map<string, ServiceDoc>();
  for (const o of objects) if (o.kind === 'service') services.set(o.service, { ...o.value, clusters: [], routes: [] });
  for (const o of objects) {
    const owner = services.get(o.service);
    if (!owner) continue;
    if (o.kind === 'cluster') owner.clusters.push(o.value);
    else if (o.kind === 'route') owner.routes.push(o.value);
  }
  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const sorted = [...services.values()].sort(byName).map((s) => ({
    ...s,
    clusters: s.clusters.sort(byName),
    routes: s.routes.sort((a, b) => a.order - b.order || byName(a, b)),
  }));
  return { apiVersion: 'waymark/v1', kind: 'Config', services: sorted };
}

const keyOf = (o: { kind: ConfigKind; service: string; name: string }) => `${o.kind}:${o.service}/${o.name}`;

/** Writes go services first, then clusters, then routes (which name subsets over clusters); deletions in reverse. */
const RANK: Record<ConfigKind, number> = { service: 0, cluster: 1, route: 2 };

/**
 * What applying `desired` over `current` does, object by object, in the order the writes go: creations
 * and updates (services, then clusters, then routes), then deletions (routes, then clusters, then
 * services). Objects `desired` does not hold are deleted only with `prune`; without it they are left out.
 * Both documents are in their parsed form (defaults filled in), so a field left to its default in one and
 * spelled out in the other is no change.
 */
export function diffConfig(current: ConfigDocument, desired: ConfigDocument, prune: boolean): ObjectChange[] {
  const before = new Map(configObjects(current).map((o) => [keyOf(o), o]));
  const wanted = configObjects(desired);
  const changes: ObjectChange[] = [];
  for (const o of wanted) {
    const old = before.get(keyOf(o));
    const fields = old ? fieldChanges(old.value, o.value) : [];
    changes.push({
      kind: o.kind,
      service: o.service,
      name: o.name,
      action: !old ? 'create' : fields.length ? 'update' : 'unchanged',
      before: old?.value ?? null,
      after: o.value,
      fields,
    });
  }
  changes.sort((a, b) => RANK[a.kind] - RANK[b.kind]);
  if (!prune) return changes;
  const kept = new Set(wanted.map(keyOf));
  const deletions = [...before.values()]
    .filter((o) => !kept.has(keyOf(o)))
    .map((o): ObjectChange => ({ ...o, action: 'delete', before: o.value, after: null, fields: [] }))
    .sort((a, b) => RANK[b.kind] - RANK[a.kind]);
  return [...changes, ...deletions];
}

type Json = unknown;

const isRecord = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The fields that differ between two values: objects field by field, anything else (arrays too) whole. */
export function fieldChanges(old: Json, next: Json, path = ''): FieldChange[] {
  if (isRecord(old) && isRecord(next)) {
    const keys = [...new Set([...Object.keys(old), ...Object.keys(next)])].sort();
    return keys.flatMap((k) => fieldChanges(old[k], next[k], path ? `${path}.${k}` : k));
  }
  return sameJson(old, next) ? [] : [{ path, old: old ?? null, new: next ?? null }];
}

/** Equal as JSON values (object key order aside; an absent field equals an undefined one). */
export function sameJson(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) if (!sameJson(a[k], b[k])) return false;
    return true;
  }
  return false;
}
