import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { SnapshotSource } from '../routing/types.js';
import type { SnapshotArchive } from './snapshots.js';

/** A file archive, and a promise of its pending writes (a server awaits it before exiting). */
export interface FileArchive extends SnapshotArchive {
  flush(): Promise<void>;
}

/** Services serialized per turn of the event loop: a large source never holds the proxy for long. */
const SERVICES_PER_TURN = 200;

/**
 * The last good snapshot source in a file (Node): written after every load from the store, atomically
 * (a temporary file renamed over it, so a crash never leaves half a file), and read when the process
 * starts while the store is unreachable.
 *
 * Writes happen behind the proxy: one at a time, the latest source wins (a burst of loads writes the
 * file once or twice, not once each), and the JSON is made a few hundred services per turn of the event
 * loop (10,000 services in one JSON.stringify take a tenth of a second on this thread).
 */
export function fileArchive(path: string): FileArchive {
  let next: SnapshotSource | null = null;
  let writing: Promise<void> | null = null;
  const write = async (): Promise<void> => {
    try {
      for (let source = next; source; source = next) {
        next = null;
        const text = await serialize(source);
        await mkdir(dirname(path), { recursive: true });
        const temporary = `${path}.${process.pid}.tmp`;
        await writeFile(temporary, text);
        await rename(temporary, path);
      }
    } finally {
      writing = null;
    }
  };
  return {
    async get(version) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch {
        return null;
      }
      const source = JSON.parse(text) as SnapshotSource;
      return version === undefined || source.version === version ? source : null;
    },
    put(source) {
      next = source;
      writing ??= write();
      return writing;
    },
    async flush() {
      await writing?.catch(() => undefined);
    },
  };
}

/** The source as JSON (what JSON.stringify makes), its services a few hundred per turn of the event loop. */
async function serialize(source: SnapshotSource): Promise<string> {
  const services: string[] = [];
  for (let i = 0; i < source.services.length; i += SERVICES_PER_TURN) {
    if (i > 0) await nextTurn();
    for (const service of source.services.slice(i, i + SERVICES_PER_TURN)) services.push(JSON.stringify(service));
  }
  const { services: _, ...rest } = source;
  return `${JSON.stringify(rest).slice(0, -1)},"services":[${services.join(',')}]}`;
}
