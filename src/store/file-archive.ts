import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SnapshotSource } from '../routing/types.js';
import type { SnapshotArchive } from './snapshots.js';

/**
 * The last good snapshot source in a file (Node): written after every load from the store, atomically
 * (a temporary file renamed over it, so a crash never leaves half a file), and read when the process
 * starts while the store is unreachable.
 */
export function fileArchive(path: string): SnapshotArchive {
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
    async put(source) {
      await mkdir(dirname(path), { recursive: true });
      const temporary = `${path}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(source));
      await rename(temporary, path);
    },
  };
}
