/**
 * The one way configuration reaches the edge: read the revision (one cheap query) -> load the snapshot
 * source (one consistent batch) -> compile (reusing the services that did not change) -> cache. The
 * runtime's hot path, the health sync, the failover matrix, explain and the override checks all get
 * their snapshot from here.
 */
import { and, eq, gt, inArray, isNull, sql } from 'drizzle-orm';
import type { SQLiteColumn } from 'drizzle-orm/sqlite-core';
import { describeError } from '../observe/log.js';
import { compileSnapshot, regionCatalog } from '../routing/compile.js';
import { leanServices } from '../routing/intern.js';
import { resolvePolicy } from '../routing/policy.js';
import type { ClusterSpec, GeoPoint, ServiceSpec, Snapshot, SnapshotSource } from '../routing/types.js';
import { toOverrideSpec } from './overrides.js';
import { readTogether, type Reader } from './reader.js';
import { initialState, toRouteState } from './route-state.js';
import {
  clusterHealth,
  clusters,
  latencyOrders,
  overrides,
  revision,
  routes,
  routeState,
  serviceHosts,
  serviceRemovals,
  services,
} from './schema.js';
import type { Db } from './client.js';
import { toClusterConfig } from './services.js';

export interface SnapshotCacheOptions {
  /** The store's current revision: one cheap query. */
  readVersion: () => Promise<number>;
  /**
   * Loads and compiles the snapshot at `version`, the store's current revision; `whole`: the whole
   * configuration, never a partial one from the archive's catalog.
   */
  load: (version: number, whole: boolean) => Promise<Snapshot>;
  /** Reads one shard of a partial snapshot (see `PartialSource`) and merges it into a snapshot. */
  shards?: {
    read: (key: string) => Promise<SourcePart>;
    merge: (snapshot: Snapshot, key: string, part: SourcePart) => Snapshot;
  };
  /**
   * A snapshot to serve when nothing is loaded and the store cannot be read (the last good one kept by
   * an archive); null when there is none.
   */
  fallback?: () => Promise<Snapshot | null>;
  /** Makes a snapshot a writer just loaded available to every other instance (the archive's latest). */
  publish?: (snapshot: Snapshot) => Promise<void>;
  /** Rebuilds a snapshot for a later time from what it was compiled from (no store query). */
  rebuild: (snapshot: Snapshot, now: number) => Snapshot;
  refreshMs: number;
  now: () => number;
  onError: (error: unknown) => void;
}

/**
 * The routing snapshot held in memory by an isolate or process.
 *
 * Stale-while-revalidate: once loaded, the hot path always gets the snapshot at once; at most every
 * `refreshMs` a request starts a background version check (single-flight), which reloads only when
 * the revision moved. An override that expires is dropped in memory at once. Store errors keep the
 * last good snapshot serving.
 */
export class SnapshotCache {
  #current: Snapshot | null = null;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | null = null;
  #wholeInflight: Promise<void> | null = null;
  /** Shards being read, by key: the requests for the hosts of one shard share one read. */
  #taking = new Map<string, Promise<void>>();
  #lastError: { at: number; message: string } | null = null;
  #degraded = false;
  /** The last version handed to `publish`. */
  #published = -1;

  constructor(private readonly options: SnapshotCacheOptions) {}

  /** Serving a snapshot that did not come from the store (the store was unreachable when this started). */
  get degraded(): boolean {
    return this.#degraded;
  }

  get current(): Snapshot | null {
    return this.#current;
  }

  get lastError(): { at: number; message: string } | null {
    return this.#lastError;
  }

  /** When the last version check ended, successful or not. */
  get checkedAt(): number {
    return this.#checkedAt;
  }

  /**
   * The snapshot to route with. Waits for the store only when nothing is loaded yet; otherwise hands a
   * due refresh to `background` (waitUntil on Workers) and answers with what it has.
   */
  async get(background: (work: Promise<unknown>) => void): Promise<Snapshot | null> {
    const loaded = this.peek(background);
    if (loaded) return loaded;
    await this.refresh();
    return this.#current;
  }

  /**
   * The loaded snapshot without waiting (null when none is loaded yet): the hot path's form of `get`,
   * with no promise to settle per request.
   */
  peek(background: (work: Promise<unknown>) => void): Snapshot | null {
    const now = this.options.now();
    // An override in the snapshot just expired: rebuild in memory so this very request is routed without it.
    if (this.#current && now >= this.#current.validUntil) this.#current = this.options.rebuild(this.#current, now);
    if (this.#current && now - this.#checkedAt >= this.options.refreshMs) background(this.refresh());
    return this.#current;
  }

  /**
   * The snapshot at the store's current revision (a version check first; the last good one when the
   * store cannot be read): what the admin API shows, as every edge will route after its next refresh.
   * A partial snapshot (a cold isolate that started from the archive's catalog) is made whole first.
   */
  async latest(): Promise<Snapshot | null> {
    await this.refresh();
    if (this.#current?.source.partial) await this.#refreshWhole();
    return this.peek(() => undefined);
  }

  /**
   * The snapshot to route `host` with: `snapshot` itself, unless it is partial and `host`'s shard is yet
   * to be taken; then the current snapshot with that shard in it (one read for every request waiting on
   * that shard), or the whole configuration from the store when the shard cannot be read. Null when
   * neither can be had: the host's configuration is not known here.
   */
  async withHost(snapshot: Snapshot, host: string): Promise<Snapshot | null> {
    const missing = (s: Snapshot) => {
      const key = s.source.partial?.shardOf.get(host);
      return key !== undefined && !s.source.partial?.loaded.has(key) && !s.index.serviceOf.has(host) ? key : null;
    };
    const key = missing(snapshot);
    if (key === null) return snapshot;
    let taking = this.#taking.get(key);
    if (!taking) {
      taking = this.#take(key).finally(() => this.#taking.delete(key));
      this.#taking.set(key, taking);
    }
    await taking;
    const current = this.#current;
    return current && missing(current) === null ? current : null;
  }

  async #take(key: string): Promise<void> {
    const { shards } = this.options;
    try {
      if (!shards) throw new Error('a partial snapshot without a way to read its shards');
      const part = await shards.read(key);
      // Merged into whatever is current once the shard is here (a reload may have replaced the snapshot meanwhile).
      const current = this.#current;
      if (current?.source.partial && !current.source.partial.loaded.has(key))
        this.#current = shards.merge(current, key, part);
    } catch (error) {
      this.options.onError(error);
      await this.#refreshWhole();
      // The store cannot be read either: the last good whole snapshot kept outside it serves every host.
      if (this.#current?.source.partial && this.options.fallback) {
        const kept = await this.options.fallback().catch(() => null);
        if (kept && !kept.source.partial) {
          this.#current = kept;
          this.#degraded = true;
        }
      }
    }
  }

  /**
   * After a write that committed `revision` (after every write of a sync when omitted): reload until the
   * snapshot holds it, then publish what was loaded, so that new instances start from it without reading
   * the configuration from the store. Writes that commit while a reload runs share the next one, so a
   * burst of writes costs a few reloads, not one each. Publishing failures are reported, never thrown.
   */
  async refreshAndPublish(revision?: number): Promise<void> {
    await this.refreshTo(revision);
    // Only a whole snapshot is published: a writer that started partial reads the whole configuration once.
    if (this.#current?.source.partial && this.options.publish) await this.#refreshWhole();
    const current = this.#current;
    if (!current || current.source.partial || this.#degraded || !this.options.publish) return;
    if (current.version === this.#published) return;
    this.#published = current.version;
    await this.options.publish(current).catch(this.options.onError);
  }

  /**
   * Reloads until the snapshot holds `revision` (any revision committed before this call when omitted).
   * A reload already running may have read the revision before the write committed; the one after it
   * began after this call, so at most two are awaited (fewer when the store cannot be read).
   */
  async refreshTo(revision?: number): Promise<void> {
    const behind = () => revision === undefined || (this.#current?.version ?? -1) < revision;
    const running = this.#inflight;
    await this.refresh();
    if (running && behind()) await this.refresh();
  }

  /** Checks the store's revision and reloads when it moved. Concurrent calls share one check. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#refresh(false).finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  /** A refresh that also reads the whole configuration when the snapshot is partial (after any refresh running). */
  #refreshWhole(): Promise<void> {
    this.#wholeInflight ??= (this.#inflight ?? Promise.resolve())
      .then(() => this.#refresh(true))
      .finally(() => {
        this.#wholeInflight = null;
      });
    return this.#wholeInflight;
  }

  async #refresh(whole: boolean): Promise<void> {
    try {
      const version = await this.options.readVersion();
      const current = this.#current;
      if (!current || this.#degraded || version !== current.version || (whole && current.source.partial))
        this.#current = await this.options.load(version, whole);
      this.#degraded = false;
      this.#lastError = null;
    } catch (error) {
      // `at` says since when the store has been failing: kept while failures continue.
      this.#lastError = { at: this.#lastError?.at ?? this.options.now(), message: describeError(error) };
      this.options.onError(error);
      if (!this.#current && this.options.fallback) {
        this.#current = await this.options.fallback().catch(() => null);
        this.#degraded = this.#current !== null;
      }
    } finally {
      this.#checkedAt = this.options.now();
    }
  }
}

/** The current revision; 0 for a store that has never been written. One cheap query. */
export async function readRevision(db: Reader): Promise<number> {
  const rows = await db.select({ version: revision.version }).from(revision).where(eq(revision.id, 1));
  return rows[0]?.version ?? 0;
}

/**
 * Everything routing needs, read in one consistent batch (one round trip): config, the health sync's
 * verdicts and the overrides not yet ended (routing drops the expired ones by the clock).
 */
export async function loadSnapshotSource(db: Reader): Promise<SnapshotSource> {
  const { version, services, overrides } = await readServices(db, null);
  return { version, services, overrides };
}

/** What changed since a revision: the services to replace (whole), and the services deleted. */
export interface SourceDelta extends SnapshotSource {
  /** The revision the delta was read against. */
  since: number;
  removed: string[];
}

/**
 * The services named, whole, with their active overrides, in one consistent batch: a partial snapshot's
 * shard when the store itself is its catalog (see `loadStoreCatalog`).
 */
async function loadServices(db: Reader, names: readonly string[]): Promise<SourcePart> {
  const { services, overrides } = await readServices(db, { names });
  return { services, overrides };
}

/**
 * The store as a catalog (see `PartialSource`) when it holds more than `above` services, else null: every
 * host's service (each service its own shard, keyed by its name) and the region catalog, computed by the
 * store from every cluster's coordinates as a compile computes it. Rows read: the hosts, the regions and
 * the failover rules, not the clusters.
 */
async function loadStoreCatalog(db: Reader, above: number): Promise<SnapshotSource | null> {
  const [rev, counted, hostRows, regionRows, ruleRows] = await readTogether(db, [
    db.select({ version: revision.version }).from(revision).where(eq(revision.id, 1)),
    db.select({ n: sql<number>`count(*)` }).from(services),
    db.select({ host: serviceHosts.host, service: serviceHosts.service }).from(serviceHosts),
    db
      .select({
        region: clusters.region,
        lat: sql<number>`sum(round(${clusters.latitude} * 1e6))`,
        lon: sql<number>`sum(round(${clusters.longitude} * 1e6))`,
        n: sql<number>`count(*)`,
      })
      .from(clusters)
      .groupBy(clusters.region),
    db.select({ failover: services.failover }).from(services).where(sql`${services.failover} != '[]'`),
  ]);
  if ((counted[0]?.n ?? 0) <= above) return null;
  const named = new Map<string, number>();
  for (const { failover } of ruleRows)
    for (const rule of failover) for (const region of [rule.from, ...rule.to]) named.set(region, 1);
  const located = new Map(regionRows.map((r) => [r.region, { lat: r.lat, lon: r.lon, n: r.n }]));
  return {
    version: rev[0]?.version ?? 0,
    services: [],
    overrides: [],
    partial: {
      regions: [...regionCatalog({ located, named })],
      shardOf: new Map(hostRows.map((h) => [h.host, h.service])),
      loaded: new Set(),
      removed: new Set(),
    },
  };
}

/**
 * What changed after revision `since`, in one consistent batch: every service whose revision moved (see
 * the `revision` column of services) read whole with its active overrides, and the names of the services
 * deleted. Rows read are in proportion to the change, not to the configuration.
 */
export async function loadSnapshotDelta(db: Reader, since: number): Promise<SourceDelta> {
  return { since, ...(await readServices(db, { since })) };
}

/**
 * The services whose revision is after `since` (or those named; every service when null), with their
 * hosts, clusters, health, routes and their state, latency orders and active overrides; and, for a delta,
 * the services removed after `since`.
 */
async function readServices(
  db: Reader,
  scope: { since: number } | { names: readonly string[] } | null,
): Promise<SnapshotSource & { removed: string[] }> {
  const since = scope && 'since' in scope ? scope.since : null;
  const changed =
    scope && 'names' in scope
      ? [...scope.names]
      : db
          .select({ name: services.name })
          .from(services)
          .where(gt(services.revision, since ?? 0));
  const scoped = (column: SQLiteColumn) => (scope === null ? undefined : inArray(column, changed));
  const [
    rev,
    serviceRows,
    hostRows,
    clusterRows,
    healthRows,
    overrideRows,
    routeRows,
    stateRows,
    latencyRows,
    removedRows,
  ] = await readTogether(db, [
    db.select({ version: revision.version }).from(revision).where(eq(revision.id, 1)),
    db.select().from(services).where(scoped(services.name)),
    db.select().from(serviceHosts).where(scoped(serviceHosts.service)).orderBy(serviceHosts.service, sql`rowid`),
    db.select().from(clusters).where(scoped(clusters.service)).orderBy(clusters.service, clusters.name),
    db
      .select({ service: clusterHealth.service, cluster: clusterHealth.cluster, state: clusterHealth.state })
      .from(clusterHealth)
      .where(scoped(clusterHealth.service)),
    db
      .select()
      .from(overrides)
      .where(and(isNull(overrides.endedAt), scoped(overrides.service))),
    db.select().from(routes).where(scoped(routes.service)).orderBy(routes.order, routes.name),
    db.select().from(routeState).where(scoped(routeState.service)),
    db.select().from(latencyOrders).where(scoped(latencyOrders.service)),
    db
      .selectDistinct({ name: serviceRemovals.name })
      .from(serviceRemovals)
      .where(gt(serviceRemovals.revision, since ?? Number.MAX_SAFE_INTEGER)),
  ]);
  const states = new Map(stateRows.map((r) => [`${r.service}/${r.route}`, toRouteState(r)]));
  const health = new Map(healthRows.map((h) => [`${h.service}/${h.cluster}`, h.state]));
  const specs = new Map<string, ServiceSpec>(
    serviceRows.map((s) => [
      s.name,
      {
        name: s.name,
        failover: s.failover,
        policy: resolvePolicy(s.policy),
        subsets: s.subsets,
        hosts: [],
        clusters: [],
        routes: [],
      },
    ]),
  );
  for (const r of routeRows) {
    const automated = r.spec.mirror?.ramp || r.spec.canary;
    const state = automated ? (states.get(`${r.service}/${r.name}`) ?? initialState(r.spec)) : undefined;
    specs.get(r.service)?.routes?.push({ name: r.name, order: r.order, ...r.spec, ...(state ? { state } : {}) });
  }
  for (const l of latencyRows) {
    const spec = specs.get(l.service);
    if (spec) spec.latencyOrders = { ...spec.latencyOrders, [l.clientRegion]: l.regions.map((x) => x.region) };
  }
  for (const h of hostRows) specs.get(h.service)?.hosts.push(h.host);
  for (const c of clusterRows) {
    const spec: ClusterSpec = { ...toClusterConfig(c), health: health.get(`${c.service}/${c.name}`) ?? 'unknown' };
    specs.get(c.service)?.clusters.push(spec);
  }
  return {
    version: rev[0]?.version ?? 0,
    services: leanServices([...specs.values()]),
    overrides: overrideRows.map(toOverrideSpec),
    // A service deleted and created again since is among the changed ones: it is replaced, not removed.
    removed: removedRows.map((r) => r.name).filter((name) => !specs.has(name)),
  };
}

/**
 * The source after a delta: the services it changed replaced (in place, new ones at the end), the
 * removed ones dropped, their overrides replaced likewise. Every other service keeps its objects, so
 * compiling against the previous snapshot reuses them as they are. A partial source stays partial and
 * remembers the removed services, so that no shard read later brings them back.
 */
export function mergeSource(previous: SnapshotSource, delta: SourceDelta): SnapshotSource {
  const changed = new Map(delta.services.map((s) => [s.name, s]));
  const removed = new Set(delta.removed);
  const services: ServiceSpec[] = [];
  for (const s of previous.services) {
    if (removed.has(s.name)) continue;
    const replacement = changed.get(s.name);
    services.push(replacement ?? s);
    changed.delete(s.name);
  }
  services.push(...changed.values());
  const replaced = new Set([...removed, ...delta.services.map((s) => s.name)]);
  const overrides = [...previous.overrides.filter((o) => !replaced.has(o.service)), ...delta.overrides];
  const { partial } = previous;
  if (!partial || delta.removed.length === 0)
    return { version: delta.version, services, overrides, ...(partial ? { partial } : {}) };
  return {
    version: delta.version,
    services,
    overrides,
    partial: { ...partial, removed: new Set([...partial.removed, ...delta.removed]) },
  };
}

/** Part of a configuration: some services, whole, with the overrides not yet ended of those services. */
export type SourcePart = Pick<SnapshotSource, 'services' | 'overrides'>;

/**
 * A partial source with the shard `key` taken: its services that the source does not hold already (a
 * later delta brought a newer one) and that were not removed since, with their overrides.
 */
function mergePart(source: SnapshotSource, key: string, part: SourcePart): SnapshotSource {
  const partial = source.partial;
  if (!partial) return source;
  const held = new Set(source.services.map((s) => s.name));
  const taken = part.services.filter((s) => !held.has(s.name) && !partial.removed.has(s.name));
  const names = new Set(taken.map((s) => s.name));
  return {
    version: source.version,
    services: [...source.services, ...leanServices(taken)],
    overrides: [...source.overrides, ...part.overrides.filter((o) => names.has(o.service))],
    partial: { ...partial, loaded: new Set([...partial.loaded, key]) },
  };
}

/**
 * Where snapshot sources are kept outside the store, so that an instance can start without reading the
 * whole configuration from it, or at all while it is unreachable: a file on Node, Workers KV at the edge.
 */
export interface SnapshotArchive {
  /**
   * The source at `version`, or the latest kept when `version` is undefined; null when there is none.
   * It may be partial (see `PartialSource`): then `shard` reads the rest, a shard at a time.
   */
  get(version?: number): Promise<SnapshotSource | null>;
  /** Keeps `source` (whole, at its version, with the region catalog compiled from it) as the latest. */
  put(source: SnapshotSource, regions?: ReadonlyMap<string, GeoPoint | null>): Promise<void>;
  /** One shard of a partial source this archive gave. */
  shard?(key: string): Promise<SourcePart>;
}

/** A source parsed from an archive, kept as one read from the store is (see `leanServices`). */
const leanSource = (source: SnapshotSource): SnapshotSource => ({ ...source, services: leanServices(source.services) });

/** What a pipeline needs beyond the store. */
export interface PipelineOptions {
  now: () => number;
  refreshMs: number;
  onError: (error: unknown) => void;
  /** Called with each snapshot loaded (say, to forget state about clusters that are gone). */
  onLoad?: (snapshot: Snapshot) => void;
  /**
   * The archive: a cold start takes the source of the store's current revision from it when it has it,
   * and the latest it has when the store is unreachable.
   */
  archive?: SnapshotArchive;
  /** Keep every source loaded from the store in the archive (a local file), or only published ones. */
  archiveEveryLoad?: boolean;
  /**
   * A cold start over a store with more services than this starts partial, with the store as its
   * catalog, and reads each service the first time a request needs it (see `loadStoreCatalog`); unset:
   * it reads the whole configuration. Not used with an archive that has shards of its own (Workers KV).
   */
  partialAbove?: number;
}

/** The pipeline over a store: a cache whose loads read the store (or the archive) and compile against the last snapshot. */
export function snapshotPipeline(db: Db, options: PipelineOptions): SnapshotCache {
  const { archive } = options;
  const { partialAbove } = options;
  const storeIsCatalog = partialAbove !== undefined && !archive?.shard;
  const readShard = storeIsCatalog ? (name: string) => loadServices(db, [name]) : archive?.shard?.bind(archive);
  const compiled = (source: SnapshotSource): Snapshot => {
    const snapshot = compileSnapshot(source, options.now(), cache.current ?? undefined);
    options.onLoad?.(snapshot);
    return snapshot;
  };
  const cache: SnapshotCache = new SnapshotCache({
    readVersion: () => readRevision(db),
    load: async (version, whole) => {
      const current = cache.current;
      // A warm instance reads only what changed since its snapshot (a store whose revision went back, a
      // snapshot from the archive, or a partial one that must be made whole, is read whole).
      const delta = current && !cache.degraded && version > current.version && !(whole && current.source.partial);
      // A cold start over a large store reads only where each host's service is.
      const catalog = !current && !whole && storeIsCatalog ? await loadStoreCatalog(db, partialAbove) : null;
      if (catalog) return compiled(catalog);
      // A cold start reads the configuration from the archive when it holds this very revision.
      const archived = !current && !whole && archive ? await archive.get(version).catch(() => null) : null;
      if (archived?.version === version) return compiled(leanSource(archived));
      const source = delta
        ? mergeSource(current.source, await loadSnapshotDelta(db, current.version))
        : await loadSnapshotSource(db);
      const snapshot = compiled(source);
      // In the background: the reload (and the write waiting on it) never waits for the file.
      if (archive && options.archiveEveryLoad && !source.partial)
        void archive.put(source, snapshot.regions).catch(options.onError);
      return snapshot;
    },
    ...(readShard
      ? {
          shards: {
            read: readShard,
            merge: (snapshot: Snapshot, key: string, part: SourcePart) =>
              compiled(mergePart(snapshot.source, key, part)),
          },
        }
      : {}),
    ...(archive
      ? {
          fallback: async () => {
            const latest = await archive.get();
            return latest ? compiled(leanSource(latest)) : null;
          },
        }
      : {}),
    ...(archive && !options.archiveEveryLoad
      ? { publish: (snapshot: Snapshot) => archive.put(snapshot.source, snapshot.regions) }
      : {}),
    rebuild: (snapshot, at) => compileSnapshot(snapshot.source, at, snapshot),
    refreshMs: options.refreshMs,
    now: options.now,
    onError: options.onError,
  });
  return cache;
}
