import type { SnapshotSource } from '../routing/types.js';
import type { SnapshotArchive } from './snapshots.js';

/** Where each revision's source is kept: immutable, so any KV location may cache it as long as it likes. */
const SNAPSHOT_KEY_PREFIX = 'snapshot/';
/**
 * The latest published source itself (not a pointer to a revision key): it never expires, so an isolate
 * starting while the store is unreachable still finds it after a week without writes, when every
 * revision key has expired.
 */
export const LATEST_KEY = 'latest';
/**
 * How long a revision key is kept: long enough for every isolate to start at that revision, short
 * enough that KV does not grow with every write forever (KV's minimum is 60 s).
 */
export const REVISION_KEY_TTL_SECONDS = 24 * 60 * 60;
/** Workers KV refuses values over 25 MiB. */
const KV_MAX_VALUE_BYTES = 25 * 1024 * 1024;

/** The key of the source at `version`. */
export function snapshotKey(version: number): string {
  return `${SNAPSHOT_KEY_PREFIX}${version}`;
}

/**
 * Snapshot sources in Workers KV, published by writers (the admin API after a write, the health sync when
 * it moved the revision) and read by isolates at a cold start.
 *
 * KV's limits, and what happens beyond them:
 * - A value is at most 25 MiB: sources are kept gzipped (see `encodeSource`); one still larger is not
 *   published (put rejects, the pipeline logs it), so cold starts read the store as without an archive.
 * - One write per second per key: revision keys are written once each and never contend; `latest` may
 *   be refused (429) when writes come faster than that. Cold starts at that revision still find its
 *   revision key; only a start while the store is unreachable serves the older `latest` until the next
 *   publish. Two writers racing may also leave the older of their sources in `latest` (the last write
 *   wins): the next publish corrects it, and a cold start with the store up checks the revision anyway.
 * - Reads are eventually consistent (other locations may see a write up to a minute late): a cold start
 *   that does not find the store's current revision falls back to the store.
 */
export function kvArchive(namespace: KVNamespace): SnapshotArchive {
  const read = async (key: string) => {
    const stored = await namespace.get(key, 'arrayBuffer');
    return stored ? decodeSource(stored) : null;
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
    async put(source) {
      const value = await encodeSource(source);
      if (value.byteLength > KV_MAX_VALUE_BYTES)
        throw new Error(
          `snapshot source of revision ${source.version} is ${value.byteLength} bytes gzipped, over Workers KV's ${KV_MAX_VALUE_BYTES}-byte limit; not published`,
        );
      // The revision key first: when `latest` is refused (one write per second), cold starts still find it.
      await namespace.put(snapshotKey(source.version), value, { expirationTtl: REVISION_KEY_TTL_SECONDS });
      await namespace.put(LATEST_KEY, value);
    },
  };
}

/**
 * A source as kept in KV: gzipped JSON. A configuration repeats itself (regions, labels, policies), so
 * 10,000 services x 20 clusters, about 44 MB of JSON and over KV's 25 MiB limit, gzip to a few MB.
 */
export async function encodeSource(source: SnapshotSource): Promise<Uint8Array> {
  const gzipped = new Blob([JSON.stringify(source)]).stream().pipeThrough(new CompressionStream('gzip'));
  return new Uint8Array(await new Response(gzipped).arrayBuffer());
}

/** The source from a KV value: gzipped JSON, or plain JSON as published before sources were gzipped. */
export async function decodeSource(value: ArrayBuffer): Promise<SnapshotSource> {
  const bytes = new Uint8Array(value);
  const gzipped = bytes[0] === 0x1f && bytes[1] === 0x8b;
  const text = gzipped
    ? await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text()
    : new TextDecoder().decode(bytes);
  return JSON.parse(text) as SnapshotSource;
}
