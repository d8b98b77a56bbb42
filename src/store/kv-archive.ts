import { compileSnapshot } from '../routing/compile.js';
import { hash53 } from '../routing/hash.js';
import type { GeoPoint, OverrideSpec, ServiceSpec, SnapshotSource } from '../routing/types.js';
import type { SnapshotArchive, SourcePart } from './snapshots.js';

/** Where each revision's catalog is kept (see `Catalog`). */
const SNAPSHOT_KEY_PREFIX = 'snapshot/';
/**
 * The latest published catalog: it never expires, so an isolate starting while the store is unreachable
 * still finds it after a week without writes, when every revision key has expired.
 */
export const LATEST_KEY = 'latest';
/**
 * How long a revision key is kept: long enough for every isolate to start at that revision, short
 * enough that KV does not grow with every write forever (KV's minimum is 60 s).
 */
export const REVISION_KEY_TTL_SECONDS = 24 * 60 * 60;
/** Shards are named by their content, so a key is written once and read for as long as a catalog names it. */
const SHARD_KEY_PREFIX = 'shard/';
/** How long a shard is kept: a writer writes again every shard its catalog names that it has not written for a week. */
export const SHARD_TTL_SECONDS = 30 * 24 * 60 * 60;
const SHARD_REWRITE_MS = 7 * 24 * 60 * 60 * 1000;
/** About this many services per shard: a cold isolate reads the catalog and then one shard of tens of KB. */
const SERVICES_PER_SHARD = 32;
/** Workers KV refuses values over 25 MiB. */
const KV_MAX_VALUE_BYTES = 25 * 1024 * 1024;

/** The key of the catalog at `version`. */
export function snapshotKey(version: number): string {
  return `${SNAPSHOT_KEY_PREFIX}${version}`;
}

/**
 * What a revision's key (and `latest`) holds: not the configuration but where it is. Services are grouped
 * into shards by a hash of their name; a cold isolate reads the catalog (every host, the region catalog)
 * and the shard of each host the first time a request needs it, so its first response waits for one
 * shard, not for the configuration, and it holds only the services it serves.
 */
export interface Catalog {
  format: 2;
  version: number;
  /** The region catalog of the whole configuration (a part of it cannot compute it). */
  regions: [string, GeoPoint | null][];
  shards: string[];
  /** Host -> index in `shards`. */
  hosts: Record<string, number>;
}

/** What a shard holds: some services, whole, and the overrides not yet ended of those services. */
type Shard = SourcePart;

/** A shard as a writer last wrote it: the objects it was made of, so an unchanged shard is not made again. */
interface Written {
  services: readonly ServiceSpec[];
  overrides: readonly OverrideSpec[];
  key: string;
  at: number;
}

/**
 * Snapshot sources in Workers KV, published by writers (the admin API after a write, the health sync when
 * it moved the revision) and read by isolates at a cold start.
 *
 * Layout: `snapshot/<revision>` and `latest` hold a `Catalog`; `shard/<sha-256 of its value>` hold the
 * services. A publish writes the shards whose services changed (a writer remembers what it wrote) and the
 * catalog: a change costs a few KB of writes, not the configuration. Values are gzipped JSON.
 *
 * KV's limits, and what happens beyond them:
 * - A value is at most 25 MiB: shards are small; a catalog (every host) still larger is not published
 *   (put rejects, the pipeline logs it), so cold starts read the store as without an archive.
 * - One write per second per key: revision keys and shards are written once each and never contend;
 *   `latest` may be refused (429) when writes come faster than that. Cold starts at that revision still
 *   find its revision key; only a start while the store is unreachable serves the older `latest` until
 *   the next publish. Two writers racing may also leave the older of their catalogs in `latest` (the last
 *   write wins): the next publish corrects it, and a cold start with the store up checks the revision.
 * - Reads are eventually consistent (other locations may see a write up to a minute late): a cold start
 *   that does not find the store's current revision falls back to the store, and a shard a catalog names
 *   but KV does not have yet is read from the store too (see `SnapshotCache.withHost`).
 * - Shards expire after 30 days unless a writer writes them again (each writer does for the shards it
 *   has not written for a week): after a month without a single write, a start while the store is down
 *   finds the catalog but not its shards.
 */
export function kvArchive(namespace: KVNamespace, now: () => number = Date.now): SnapshotArchive {
  const written = new Map<number, Written>();
  const read = async (key: string) => {
    const stored = await namespace.get(key, 'arrayBuffer');
    return stored ? toSource(await decode(stored)) : null;
  };
  const putShard = async (index: number, shard: Shard): Promise<string> => {
    const last = written.get(index);
    if (last && sameItems(last.services, shard.services) && sameItems(last.overrides, shard.overrides))
      if (now() - last.at < SHARD_REWRITE_MS) return last.key;
    const value = await encode(shard);
    const key = `${SHARD_KEY_PREFIX}${await sha256(value)}`;
    await namespace.put(key, value, { expirationTtl: SHARD_TTL_SECONDS });
    written.set(index, { ...shard, key, at: now() });
    return key;
  };
  return {
    async get(version) {
      if (version === undefined) return read(LATEST_KEY);
      const source = await read(snapshotKey(version));
      if (source) return source;
      // The revision key expired during a long quiet spell; `latest` is then usually that very revision.
      const latest = await read(LATEST_KEY);
      return latest?.version === version ? latest : null;
    },
    async shard(key) {
      const stored = await namespace.get(key, 'arrayBuffer');
      if (!stored) throw new Error(`snapshot shard ${key} is not in KV (yet)`);
      return (await decode(stored)) as Shard;
    },
    async put(source, regions = compileSnapshot(source, 0).regions) {
      const groups = shardsOf(source);
      if (groups.length !== written.size) written.clear();
      const shards = await Promise.all(groups.map((group, i) => putShard(i, group)));
      const hosts: Record<string, number> = {};
      groups.forEach((group, i) => {
        for (const service of group.services) for (const host of service.hosts) hosts[host] = i;
      });
      const catalog: Catalog = { format: 2, version: source.version, regions: [...regions], shards, hosts };
      const value = await encode(catalog);
      if (value.byteLength > KV_MAX_VALUE_BYTES)
        throw new Error(
          `snapshot catalog of revision ${source.version} is ${value.byteLength} bytes gzipped, over Workers KV's ${KV_MAX_VALUE_BYTES}-byte limit; not published`,
        );
      // The revision key first: when `latest` is refused (one write per second), cold starts still find it.
      await namespace.put(snapshotKey(source.version), value, { expirationTtl: REVISION_KEY_TTL_SECONDS });
      await namespace.put(LATEST_KEY, value);
    },
  };
}

/**
 * The services in shards of about SERVICES_PER_SHARD, a service's shard chosen by a hash of its name; the
 * number of shards a power of two, so it changes (and every shard with it) only when the configuration
 * doubles or halves.
 */
function shardsOf(source: SnapshotSource): Shard[] {
  let count = 1;
  while (count * SERVICES_PER_SHARD < source.services.length) count *= 2;
  const shards: Shard[] = Array.from({ length: count }, () => ({ services: [], overrides: [] }));
  const shardOf = (service: string) => shards[hash53(service) % count] as Shard;
  for (const service of source.services) shardOf(service.name).services.push(service);
  for (const override of source.overrides) shardOf(override.service).overrides.push(override);
  return shards;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** A value read from KV as a source: a catalog becomes a partial source; a whole source (older layouts) stays whole. */
function toSource(value: unknown): SnapshotSource {
  const catalog = value as Catalog;
  if (catalog.format !== 2) return value as SnapshotSource;
  // Looked up in the parsed catalog itself: building a Map of every host (20,000 at 10,000 services) took a
  // cold isolate's first request about 17 ms.
  const { hosts, shards } = catalog;
  const shardOf = { get: (host: string) => (Object.hasOwn(hosts, host) ? shards[hosts[host] as number] : undefined) };
  return {
    version: catalog.version,
    services: [],
    overrides: [],
    partial: { regions: catalog.regions, shardOf, loaded: new Set(), removed: new Set() },
  };
}

async function sha256(value: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', value));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** A value as kept in KV: gzipped JSON. */
async function encode(value: unknown): Promise<Uint8Array> {
  const gzipped = new Blob([JSON.stringify(value)]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(gzipped).arrayBuffer());
}

/** A value from KV: gzipped JSON, or plain JSON as published before values were gzipped. */
export async function decode(value: ArrayBuffer): Promise<unknown> {
  const bytes = new Uint8Array(value);
  const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const text = gzipped
    ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text()
    : new TextDecoder().decode(bytes);
  return JSON.parse(text);
}
