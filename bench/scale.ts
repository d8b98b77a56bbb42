/**
 * The `scale` section (issue 11): what a large configuration costs a Waymark process, for N services x 20
 * clusters stored in a migrated libSQL file (the `decisions` fixture, seeded through the real schema).
 * Each measurement runs in a fresh child process (bench/scale-child.ts), one after another, so that no
 * run's heap, JIT or page cache state leaks into another's:
 *
 *  - heap: the snapshot as a runtime holds it (the source read from the store plus the compiled snapshot),
 *    heap after a full GC before and after loading it;
 *  - cold: a fresh process imports the Node server, startNodeServer() (store migrated already, snapshot
 *    cache off) and its first proxied response, to a real upstream on 127.0.0.1; three runs, the median;
 *  - workerd: the worker bundle in a fresh workerd with the archive in KV (bench/scale-workerd.ts);
 *  - warm: a started server; one cluster's weight changed with the control command putCluster, then
 *    `runtime.snapshots.refresh()` timed and the rows the libSQL client returned during it counted; then
 *    decide() on the loaded snapshot timed as the `decisions` section does.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BatchItem } from 'drizzle-orm/batch';
import { migrateStore } from '../src/store/migrate.js';
import { openStore, type Store } from '../src/store/client.js';
import { clusterHealth, clusters, overrides, revision, serviceHosts, services } from '../src/store/schema.js';
import type { HealthCheck } from '../src/spec/cluster.js';
import type { SnapshotSource } from '../src/routing/types.js';
import { buildSource, CLUSTERS_PER_SERVICE, type DecisionOptions } from './decisions.js';
import { startNoiseMonitor } from './noise.js';
import { forkTs, nextMessage, onAbort, stopChild } from './procs.js';
import { startChild, stopServers } from './proxy.js';
import { median, round } from './stats.js';
import type { ColdResult, HeapResult, ScaleChildMessage, WarmResult } from './scale-child.js';
import { measureWorkerd, type WorkerdScaleResult } from './scale-workerd.js';
import { buildBundle } from './workerd.js';

/** The service whose clusters all point at the real upstream: the cold start's first request goes to it. */
export const PROBE_SERVICE = 'svc-0';
export const PROBE_HOST = `${PROBE_SERVICE}.example.com`;
const HEALTH_CHECK: HealthCheck = {
  path: '/health/ready',
  expectedStatuses: ['2xx'],
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};
/** Rows per INSERT: 14 columns x 1,000 stays under SQLite's 32,766 bound variables. */
const INSERT_CHUNK_ROWS = 1_000;
const COLD_RUNS = 3;

export interface ScaleEntry {
  services: number;
  clusters: number;
  /** Heap held by one snapshot as a runtime holds it: source read from the store + every service compiled and planned for one client region. */
  heapMb: number;
  /** From fork() of a fresh Node process (tsx, as `npm start`) to its first proxied response; median of runs. */
  coldFirstResponseMs: number;
  /** One putCluster (a weight), then runtime.snapshots.refresh(): median over the timed changes. */
  reloadOneChangeMs: number;
  /** Rows the libSQL client returned during that refresh (median). */
  rowsReadPerReload: number;
  /** p99 of decide() on the loaded snapshot (batches of 100, as in the `decisions` section). */
  decisionP99Us: number;
  /** A fresh workerd isolate (Miniflare, KV holding the published archive): its first proxied request (median). */
  coldFirstResponseWorkerdMs: number;
  /** ... less a bare worker's first request doing the same I/O: Waymark's own cold work, network excluded. */
  coldFirstResponseWorkerdOwnMs: number;
  /** That isolate's heap (V8 with compressed pointers, as Cloudflare runs it) once it served every service. */
  heapWorkerdMb: number;
  /** Cores other processes used on average during this size's runs (null without /proc). */
  otherCores: number | null;
  detail: {
    storeRows: number;
    storeFileMb: number;
    seedMs: number;
    heap: HeapResult;
    cold: ColdResult[];
    warm: WarmResult;
    workerd: WorkerdScaleResult;
  };
}

export interface ScaleOptions {
  sizes: number[];
  /** Timed changes (after `reloadWarmups` untimed ones). */
  reloads: number;
  reloadWarmups: number;
  decisions: DecisionOptions;
  log: (line: string) => void;
}

type Insert = BatchItem<'sqlite'>;

/** Rows of `rows` in INSERT statements of at most INSERT_CHUNK_ROWS each. */
function chunks<T>(rows: T[], insert: (chunk: T[]) => Insert): Insert[] {
  const out: Insert[] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) out.push(insert(rows.slice(i, i + INSERT_CHUNK_ROWS)));
  return out;
}

/**
 * Writes `source` through the real schema in one batch (one transaction): services, hosts, clusters, the
 * health verdicts that are not `unknown`, the overrides (expiring a day from now) and revision 1. Every
 * cluster of PROBE_SERVICE points at `upstream`. Returns the rows written.
 */
export async function seedStore(store: Store, source: SnapshotSource, upstream: string): Promise<number> {
  const now = Date.now();
  const { db } = store;
  const serviceRows = source.services.map((s) => ({
    name: s.name,
    failover: s.failover,
    createdAt: now,
    updatedAt: now,
  }));
  const hostRows = source.services.flatMap((s) => s.hosts.map((host) => ({ host, service: s.name })));
  const clusterRows = source.services.flatMap((s) =>
    s.clusters.map((c) => ({
      service: s.name,
      name: c.name,
      region: c.region,
      zone: null,
      origin: s.name === PROBE_SERVICE ? upstream : c.origin,
      originHost: null,
      latitude: c.latitude,
      longitude: c.longitude,
      weight: c.weight,
      labels: c.labels,
      healthCheck: HEALTH_CHECK,
      createdAt: now,
      updatedAt: now,
    })),
  );
  const healthRows = source.services.flatMap((s) =>
    s.clusters
      .filter((c) => c.health !== undefined && c.health !== 'unknown')
      .map((c) => ({
        service: s.name,
        cluster: c.name,
        state: c.health ?? 'unknown',
        consecutiveSuccesses: 0,
        consecutiveFailures: 0,
        changedAt: now,
      })),
  );
  const overrideRows = source.overrides.map((o) => ({
    id: o.id,
    service: o.service,
    action: o.action,
    cluster: o.cluster,
    region: o.region,
    reason: 'bench',
    actor: 'bench',
    createdAt: now,
    expiresAt: now + 86_400_000,
  }));
  const statements: Insert[] = [
    db.insert(revision).values({ id: 1, version: 1, updatedAt: now }),
    ...chunks(serviceRows, (c) => db.insert(services).values(c)),
    ...chunks(hostRows, (c) => db.insert(serviceHosts).values(c)),
    ...chunks(clusterRows, (c) => db.insert(clusters).values(c)),
    ...chunks(healthRows, (c) => db.insert(clusterHealth).values(c)),
    ...chunks(overrideRows, (c) => db.insert(overrides).values(c)),
  ];
  const [first, ...rest] = statements as [Insert, ...Insert[]];
  await db.batch([first, ...rest]);
  return 1 + serviceRows.length + hostRows.length + clusterRows.length + healthRows.length + overrideRows.length;
}

async function runChild<T extends ScaleChildMessage['type']>(
  mode: T,
  args: string[],
  timeoutMs: number,
  execArgv: string[] = [],
): Promise<{ message: Extract<ScaleChildMessage, { type: T }>; forkedAt: number }> {
  const forkedAt = performance.timeOrigin + performance.now();
  const child = forkTs('scale-child.ts', [mode, ...args], execArgv);
  try {
    const message = await nextMessage<Extract<ScaleChildMessage, { type: T }>>(
      child,
      (m) => m?.type === mode,
      timeoutMs,
      `the scale ${mode} run`,
    );
    return { message, forkedAt };
  } finally {
    await stopChild(child);
  }
}

export async function benchScale(options: ScaleOptions): Promise<ScaleEntry[]> {
  const { log } = options;
  const upstream = await startChild('upstream', []);
  const entries: ScaleEntry[] = [];
  const bundleRoot = mkdtempSync(join(tmpdir(), 'waymark-bench-scale-bundle-'));
  const forgetBundle = onAbort(() => rmSync(bundleRoot, { recursive: true, force: true }));
  try {
    const bundleDir = join(bundleRoot, 'bundle');
    await buildBundle(bundleRoot, bundleDir);
    for (const n of options.sizes) {
      const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-scale-'));
      const forget = onAbort(() => rmSync(dir, { recursive: true, force: true }));
      const noise = startNoiseMonitor();
      try {
        const file = join(dir, 'waymark.db');
        const url = `file:${file}`;
        const t = performance.now();
        const store = openStore(url);
        const migrated = await migrateStore(store, { holder: 'bench-scale' });
        if (!migrated.ok) throw new Error(migrated.message);
        const storeRows = await seedStore(store, buildSource(n), upstream.url);
        store.client.close();
        const seedMs = performance.now() - t;
        const storeFileMb = (statSync(file).size + walSize(file)) / 2 ** 20;
        log(
          `   N=${n.toLocaleString('en-US')}: store seeded (${storeRows.toLocaleString('en-US')} rows, ${storeFileMb.toFixed(1)} MB, ${(seedMs / 1e3).toFixed(1)} s)`,
        );

        const heap = (await runChild('heap', [url], 120_000, ['--expose-gc'])).message.result;
        log(
          `     heap: ${heap.heapMb.toFixed(1)} MB held with every service compiled and planned for one client region (source from the store ${heap.sourceMb.toFixed(1)} MB + ` +
            `compiled ${heap.compiledAllMb.toFixed(1)} MB before any plan, ${heap.oneRegionMb.toFixed(1)} MB with one region's plans, ${heap.allRegionsMb.toFixed(1)} MB with all ${heap.regions} regions'; ` +
            `${heap.compiledLazyMb.toFixed(1)} MB right after compileSnapshot(), which compiles services on first use); ` +
            `load ${heap.loadMs.toFixed(0)} ms, compileSnapshot ${heap.compileMs.toFixed(0)} ms, compiling every service ${heap.compileAllMs.toFixed(0)} ms`,
        );

        const cold: ColdResult[] = [];
        for (let i = 0; i < COLD_RUNS; i++) {
          const { message, forkedAt } = await runChild('cold', [url, PROBE_HOST], 120_000, ['--expose-gc']);
          const r = { ...message.result, forkToFirstResponseMs: message.result.firstResponseAt - forkedAt };
          cold.push(r);
          log(
            `     cold start ${i + 1}: ${r.forkToFirstResponseMs.toFixed(0)} ms from fork to the first proxied response ` +
              `(process start to server imported ${r.importedMs.toFixed(0)} ms, startNodeServer ${r.startServerMs.toFixed(0)} ms, ` +
              `first request ${r.firstRequestMs.toFixed(1)} ms, second ${r.secondRequestMs.toFixed(1)} ms; heap after ${r.heapAfterMb.toFixed(0)} MB)`,
          );
        }

        const warm = (
          await runChild(
            'warm',
            [
              url,
              JSON.stringify({
                reloads: options.reloads,
                warmups: options.reloadWarmups,
                decisions: options.decisions,
              }),
            ],
            300_000,
          )
        ).message.result;
        log(
          `     reload after one change: ${warm.reloadMs.map((v) => v.toFixed(0)).join(' ')} ms; rows read ${warm.rowsRead.join(' ')}; ` +
            `statements ${warm.statements.join(' ')}`,
        );
        log(
          `     decide(): p50 ${warm.decisions.p50Us.toFixed(3)} µs, p99 ${warm.decisions.p99Us.toFixed(3)} µs, ${Math.round(warm.decisions.decisionsPerSec).toLocaleString('en-US')} decisions/s`,
        );
        const workerd = await measureWorkerd({
          dbPath: file,
          bundleDir,
          kvDir: join(dir, 'kv'),
          services: n,
          hostOf: (i) => `svc-${i}.example.com`,
          upstream: upstream.url,
        });
        const ms = (values: number[]) => values.map((v) => v.toFixed(0)).join(' ');
        log(
          `     workerd: published to KV in ${(workerd.publishMs / 1e3).toFixed(1)} s; fresh workerd ready in ${ms(workerd.workerdStartMs)} ms; ` +
            `its first proxied request ${ms(workerd.firstRequestMs)} ms (a bare worker doing the same I/O: ${ms(workerd.baselineFirstRequestMs)} ms; ` +
            `Waymark's own ${workerd.ownFirstRequestMs.toFixed(1)} ms), second (another shard) ${ms(workerd.secondRequestMs)} ms; ` +
            `isolate heap ${workerd.heapAfterFirstMb.toFixed(1)} MB after the first, ${workerd.heapAfterAllMb.toFixed(1)} MB after one request to each of the ${n.toLocaleString('en-US')} services ` +
            `(${(workerd.servedAllMs / 1e3).toFixed(1)} s, ${workerd.servedAllFailures} not 200)`,
        );
        if (workerd.servedAllFailures > 0)
          throw new Error(`workerd: ${workerd.servedAllFailures} requests did not answer 200`);
        entries.push({
          services: n,
          clusters: n * CLUSTERS_PER_SERVICE,
          heapMb: round(heap.heapMb, 1),
          coldFirstResponseMs: round(median(cold.map((c) => c.forkToFirstResponseMs)), 1),
          reloadOneChangeMs: round(median(warm.reloadMs), 1),
          rowsReadPerReload: median(warm.rowsRead),
          decisionP99Us: round(warm.decisions.p99Us, 3),
          coldFirstResponseWorkerdMs: round(median(workerd.firstRequestMs), 1),
          coldFirstResponseWorkerdOwnMs: round(workerd.ownFirstRequestMs, 1),
          heapWorkerdMb: round(workerd.heapAfterAllMb, 1),
          otherCores: noise.stop(),
          detail: {
            storeRows,
            storeFileMb: round(storeFileMb, 1),
            seedMs: round(seedMs, 0),
            heap,
            cold,
            warm,
            workerd,
          },
        });
      } finally {
        rmSync(dir, { recursive: true, force: true });
        forget();
      }
    }
  } finally {
    await stopServers([upstream]);
    rmSync(bundleRoot, { recursive: true, force: true });
    forgetBundle();
  }
  return entries;
}

function walSize(file: string): number {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
}
