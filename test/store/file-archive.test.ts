import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SnapshotSource } from '../../src/routing/types.js';
import { fileArchive } from '../../src/store/file-archive.js';
import { cluster, service } from '../routing/fixtures.js';

const source = (version: number, count: number): SnapshotSource => ({
  version,
  services: Array.from({ length: count }, (_, i) => service(`s${i}`, [cluster(`c${i}`, 'eu-west1')])),
  overrides: [],
});

describe('fileArchive', () => {
  const dirs: string[] = [];
  const path = () => {
    const dir = mkdtempSync(join(tmpdir(), 'waymark-archive-'));
    dirs.push(dir);
    return join(dir, 'nested', 'snapshot.json');
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('writes what JSON.stringify would, a large source included (serialized over several turns)', async () => {
    const file = path();
    const archive = fileArchive(file);
    const big = source(7, 1_234);
    await archive.put(big);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(big);
    expect(await archive.get(7)).toEqual(big);
    expect(await archive.get(8)).toBeNull();
    expect(await archive.get()).toEqual(big);
  });

  it('a burst of puts writes the latest, not each; flush waits for it', async () => {
    const file = path();
    const archive = fileArchive(file);
    const puts = [1, 2, 3, 4, 5].map((v) => archive.put(source(v, 300)));
    // The first write is under way; the four after it collapse into one write of the last.
    expect(new Set(puts).size).toBe(1);
    await archive.flush();
    expect((await archive.get())?.version).toBe(5);
    await Promise.all(puts);
  });

  it('nothing kept: null, and flush with nothing pending settles', async () => {
    const archive = fileArchive(path());
    await archive.flush();
    expect(await archive.get()).toBeNull();
  });
});
