import { desc, gt, inArray, sql } from 'drizzle-orm';
import { type ConfigObject, configObjects, documentOf } from '../control/config-diff.js';
import type { ConfigDocument } from '../spec/config.js';
import { readTogether, type Reader } from './reader.js';
import { toRouteConfig } from './routes.js';
import { serviceIn } from './tokens.js';
import { clusters, configChanges, configVersions, routes, serviceHosts, services } from './schema.js';
import { toClusterConfig } from './services.js';

/** The configuration as a document, and the number of its latest version (0 before the first). */
export interface ConfigState {
  version: number;
  document: ConfigDocument;
}

/** The configuration and its version, read in one consistent batch. */
export async function readConfig(db: Reader): Promise<ConfigState> {
  const { version, objects } = await readObjects(db, null);
  return { version, document: documentOf(objects) };
}

/**
 * The document as it was at version `n`: today's, with every change recorded after n undone, newest
 * first (an object created after n goes, one deleted after n comes back as it was). Null when n is not
 * a version (0 is the configuration before the first recorded change).
 */
export async function configAt(db: Reader, n: number): Promise<ConfigDocument | null> {
  const { version, objects, later } = await readObjects(db, n);
  if (n < 0 || n > version) return null;
  const byKey = new Map(objects.map((o) => [keyOf(o), o]));
  for (const change of later) {
    if (change.before === null) byKey.delete(keyOf(change));
    // Recorded by the commands in the document's form (control/command.ts, configChange).
    else
      byKey.set(keyOf(change), {
        kind: change.kind,
        service: change.service,
        name: change.name,
        value: change.before,
      } as unknown as ConfigObject);
  }
  return documentOf([...byKey.values()]);
}

const keyOf = (o: { kind: string; service: string; name: string }) => `${o.kind}:${o.service}/${o.name}`;

const latestVersion = (db: Reader) =>
  db.select({ version: sql<number>`coalesce(max(${configVersions.version}), 0)` }).from(configVersions);

/** The number of the latest configuration version; 0 before the first. */
export async function currentConfigVersion(db: Reader): Promise<number> {
  const rows = await latestVersion(db);
  return Number(rows[0]?.version ?? 0);
}

async function readObjects(db: Reader, since: number | null) {
  const [versionRows, serviceRows, hostRows, clusterRows, routeRows, later] = await readTogether(db, [
    latestVersion(db),
    db.select().from(services),
    db.select().from(serviceHosts),
    db.select().from(clusters),
    db.select().from(routes),
    db
      .select()
      .from(configChanges)
      .where(gt(configChanges.version, since ?? Number.MAX_SAFE_INTEGER))
      .orderBy(desc(configChanges.version), desc(configChanges.id)),
  ]);
  const hosts = new Map<string, string[]>();
  for (const h of hostRows) hosts.set(h.service, [...(hosts.get(h.service) ?? []), h.host]);
  const objects: ConfigObject[] = [
    ...serviceRows.map(
      (s): ConfigObject => ({
        kind: 'service',
        service: s.name,
        name: '',
        value: {
          name: s.name,
          hosts: hosts.get(s.name) ?? [],
          failover: s.failover,
          policy: s.policy,
          subsets: s.subsets,
        },
      }),
    ),
    ...clusterRows.map((row): ConfigObject => {
      const { service, ...value } = toClusterConfig(row);
      return { kind: 'cluster', service, name: value.name, value };
    }),
    ...routeRows.map((row): ConfigObject => {
      const { service, ...value } = toRouteConfig(row);
      return { kind: 'route', service, name: value.name, value };
    }),
  ];
  return { version: Number(versionRows[0]?.version ?? 0), objects: configObjects(documentOf(objects)), later };
}

export interface ConfigVersion {
  version: number;
  at: string;
  actor: string;
  requestId: string | null;
  message: string;
  /** Objects it changed. */
  changes: number;
}

/** The configuration's versions, newest first; with `patterns` (a key's), only those that changed one of its services. */
export async function listConfigVersions(
  db: Reader,
  limit: number,
  patterns: readonly string[] | null = null,
): Promise<ConfigVersion[]> {
  const touched = serviceIn(configChanges.service, patterns);
  const rows = await db
    .select({
      version: configVersions.version,
      at: configVersions.at,
      actor: configVersions.actor,
      requestId: configVersions.requestId,
      message: configVersions.message,
      changes: sql<number>`(select count(*) from config_changes where config_changes.version = config_versions.version)`,
    })
    .from(configVersions)
    .where(
      touched &&
        inArray(
          configVersions.version,
          db.select({ version: configChanges.version }).from(configChanges).where(touched),
        ),
    )
    .orderBy(desc(configVersions.version))
    .limit(limit);
  return rows.map((r) => ({ ...r, at: new Date(r.at).toISOString(), changes: Number(r.changes) }));
}
