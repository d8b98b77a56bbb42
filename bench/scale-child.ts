/**
 * One measurement of the `scale` section, in a fresh process (started by bench/scale.ts with an IPC channel):
 *
 *   tsx bench/scale-child.ts heap <database-url>            (needs --expose-gc)
 *   tsx bench/scale-child.ts cold <database-url> <host>     (--expose-gc for the heap figure after the timing)
 *   tsx bench/scale-child.ts warm <database-url> <options-json>
 *
 * It answers { type: <mode>, result } once, or { type: 'error', message }, then waits to be stopped.
 * Only node: modules are imported statically: the cold run times the import of Waymark's server itself.
 */
import type { Client, InArgs, InStatement, ResultSet, TransactionMode } from '@libsql/client';
import type { Timing, DecisionOptions } from './decisions.js';

/** The process's own start, to the first line of this script: Node and the tsx loader. */
const mainAt = performance.now();

export interface HeapResult {
  /**
   * Source read from the store + the snapshot with every service compiled and its plans for one client
   * region (what an isolate or process whose clients are in one region holds once it served every
   * service), heap after a full GC (MB).
   */
  heapMb: number;
  sourceMb: number;
  /** compileSnapshot() alone: indexes only, services are compiled on first use. */
  compiledLazyMb: number;
  /** Every service compiled, no client region's plans made yet. */
  compiledAllMb: number;
  /** ... plus every service's (and route destination's) plans for one client region: heapMb - sourceMb. */
  oneRegionMb: number;
  /** ... plus the plans of every known client region (a process serving clients from everywhere). */
  allRegionsMb: number;
  /** How many client regions the snapshot knows. */
  regions: number;
  loadMs: number;
  compileMs: number;
  compileAllMs: number;
}

export interface ColdResult {
  /** performance.now() at the first line of the script (ms since this process's time origin). */
  mainMs: number;
  /** ... once src/node/server.ts and its imports are loaded. */
  importedMs: number;
  /** startNodeServer(): migrations checked, snapshot loaded and compiled, listening. */
  startServerMs: number;
  /** The first proxied request, sent to the server by this process (loopback; the upstream connects cold). */
  firstRequestMs: number;
  /** A second request, for what a warm proxied request costs here. */
  secondRequestMs: number;
  /** Wall clock (ms since the epoch, fractional) when the first response had been read. */
  firstResponseAt: number;
  /** From the parent's fork() to firstResponseAt (set by the parent; NaN from the child). */
  forkToFirstResponseMs: number;
  /** Heap used by the whole server after the first response and a full GC. */
  heapAfterMb: number;
}

export interface WarmResult {
  reloadMs: number[];
  rowsRead: number[];
  statements: number[];
  /** Revision before and after the timed reloads (each change moves it by one). */
  revisions: [number, number];
  decisions: Timing;
}

export type ScaleChildMessage =
  | { type: 'heap'; result: HeapResult }
  | { type: 'cold'; result: ColdResult }
  | { type: 'warm'; result: WarmResult }
  | { type: 'error'; message: string };

const send = (message: ScaleChildMessage): void => {
  process.send?.(message);
};

function fullGc(): () => void {
  const gc = globalThis.gc;
  if (!gc) throw new Error('run with --expose-gc');
  return () => {
    // Twice: the first pass may leave finalizable objects for the second.
    gc();
    gc();
  };
}

const heapMb = (): number => process.memoryUsage().heapUsed / 2 ** 20;

/** A libSQL client that counts the statements it runs and the rows their results hold. */
function rowCountingClient(client: Client): { client: Client; rows: () => number; statements: () => number } {
  let rows = 0;
  let statements = 0;
  const proxy = new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'execute') {
        return async (stmt: InStatement | string, args?: InArgs) => {
          statements += 1;
          const result = await (args === undefined ? target.execute(stmt) : target.execute(stmt as string, args));
          rows += result.rows.length;
          return result;
        };
      }
      if (prop === 'batch') {
        return async (stmts: InStatement[], mode?: TransactionMode) => {
          statements += stmts.length;
          const results: ResultSet[] = await target.batch(stmts, mode);
          for (const r of results) rows += r.rows.length;
          return results;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { client: proxy, rows: () => rows, statements: () => statements };
}

const ENV = (databaseUrl: string): Record<string, string> => ({
  WAYMARK_DATABASE_URL: databaseUrl,
  WAYMARK_ADMIN_TOKEN: 'bench-admin-token-0123456789',
  WAYMARK_SNAPSHOT_CACHE: 'off',
  // No health probes of 200,000 clusters at made-up origins while measuring.
  WAYMARK_SYNC_INTERVAL_MS: '0',
  WAYMARK_DRAIN_MS: '0',
  WAYMARK_ACCESS_LOG_SAMPLE: '0',
  PORT: '0',
  HOST: '127.0.0.1',
});

async function heap(databaseUrl: string): Promise<HeapResult> {
  const gc = fullGc();
  const { openStore } = await import('../src/store/client.js');
  const { loadSnapshotSource, readRevision } = await import('../src/store/snapshots.js');
  const { compileSnapshot } = await import('../src/routing/compile.js');
  const store = openStore(databaseUrl);
  // The client, drizzle and the modules are warm and held before the first figure.
  await readRevision(store.db);
  gc();
  const before = heapMb();
  let t = performance.now();
  const source = await loadSnapshotSource(store.db);
  const loadMs = performance.now() - t;
  gc();
  const withSource = heapMb();
  t = performance.now();
  const snapshot = compileSnapshot(source, Date.now());
  const compileMs = performance.now() - t;
  gc();
  const lazy = heapMb();
  t = performance.now();
  for (const name of snapshot.byName.keys()) snapshot.byName.get(name);
  const compileAllMs = performance.now() - t;
  gc();
  const compiledAll = heapMb();
  const regions = [...snapshot.regions.keys()];
  const plansFor = (region: string) => {
    for (const service of snapshot.byName.values()) {
      service.byRegion.get(region);
      for (const route of service.routes) {
        for (const d of route.destinations) d.plans.byRegion.get(region);
        route.mirror?.plans.byRegion.get(region);
      }
    }
  };
  plansFor(regions[0] ?? '');
  gc();
  const oneRegion = heapMb();
  for (const region of regions.slice(1)) plansFor(region);
  gc();
  const allRegions = heapMb();
  if (snapshot.byHost.size === 0) throw new Error('the snapshot holds no hosts');
  store.client.close();
  return {
    heapMb: oneRegion - before,
    sourceMb: withSource - before,
    compiledLazyMb: lazy - withSource,
    compiledAllMb: compiledAll - withSource,
    oneRegionMb: oneRegion - withSource,
    allRegionsMb: allRegions - withSource,
    regions: regions.length,
    loadMs,
    compileMs,
    compileAllMs,
  };
}

async function cold(databaseUrl: string, host: string): Promise<ColdResult> {
  const { startNodeServer } = await import('../src/node/server.js');
  const { silentLogger } = await import('../src/observe/log.js');
  const { send: request } = await import('../scripts/http-client.js');
  const importedMs = performance.now();
  const server = await startNodeServer({ env: ENV(databaseUrl), log: silentLogger });
  const listeningMs = performance.now();
  const first = await request(`${server.url}/bench/cold`, { host });
  const firstMs = performance.now();
  const second = await request(`${server.url}/bench/cold`, { host });
  const secondMs = performance.now();
  for (const res of [first, second]) {
    if (res.status !== 200 || res.headers['x-served-by'] !== 'bench-upstream')
      throw new Error(`the proxied request did not reach the upstream: ${res.status} ${res.body.slice(0, 300)}`);
  }
  const gc = globalThis.gc;
  gc?.();
  const heapAfterMb = gc ? heapMb() : Number.NaN;
  await server.close();
  return {
    mainMs: mainAt,
    importedMs,
    startServerMs: listeningMs - importedMs,
    firstRequestMs: firstMs - listeningMs,
    secondRequestMs: secondMs - firstMs,
    firstResponseAt: performance.timeOrigin + firstMs,
    forkToFirstResponseMs: Number.NaN,
    heapAfterMb,
  };
}

async function warm(
  databaseUrl: string,
  options: { reloads: number; warmups: number; decisions: DecisionOptions },
): Promise<WarmResult> {
  const { createClient } = await import('@libsql/client');
  const { startNodeServer } = await import('../src/node/server.js');
  const { silentLogger } = await import('../src/observe/log.js');
  const { storeConfig, storeFromClient } = await import('../src/store/client.js');
  const { getCluster } = await import('../src/store/services.js');
  const { putCluster } = await import('../src/control/clusters.js');
  const { seededRandom } = await import('../src/routing/random.js');
  const { buildFacts, measure } = await import('./decisions.js');

  const counting = rowCountingClient(createClient(storeConfig(databaseUrl)));
  const store = storeFromClient(counting.client);
  // A warm instance holds every service: the reload figure is a whole snapshot's (at 10,000 services a cold
  // start would otherwise be partial and hold none of them yet).
  const server = await startNodeServer({
    env: ENV(databaseUrl),
    store,
    log: silentLogger,
    partialAbove: Number.POSITIVE_INFINITY,
  });
  const { snapshots } = server.runtime;
  const first = snapshots.current;
  if (!first) throw new Error('no snapshot loaded at start');
  const services = first.source.services;
  const reloadMs: number[] = [];
  const rowsRead: number[] = [];
  const statements: number[] = [];
  let revisionBefore = first.version;
  for (let i = 0; i < options.warmups + options.reloads; i++) {
    // A different service each time, one cluster's weight (as `PUT .../clusters/<name>` writes it).
    const service = services[(i * 37) % services.length];
    const name = service?.clusters[i % Math.max(1, service.clusters.length)]?.name;
    const before = service && name ? await getCluster(store.db, service.name, name) : null;
    if (!before) throw new Error('no cluster to change');
    const written = await putCluster(
      store.db,
      { name: 'bench', requestId: `bench-scale-${i}`, now: Date.now() },
      { ...before, weight: before.weight + 1 },
    );
    if (!written.ok) throw new Error(`putCluster refused: ${written.problem.detail}`);
    if (i === options.warmups) revisionBefore = snapshots.current?.version ?? 0;
    const rows0 = counting.rows();
    const statements0 = counting.statements();
    const t = performance.now();
    await snapshots.refresh();
    const ms = performance.now() - t;
    if (snapshots.current?.version !== written.revision)
      throw new Error(`the refresh did not load revision ${written.revision} (has ${snapshots.current?.version})`);
    if (i < options.warmups) continue;
    reloadMs.push(ms);
    rowsRead.push(counting.rows() - rows0);
    statements.push(counting.statements() - statements0);
  }
  const snapshot = snapshots.current;
  if (!snapshot) throw new Error('no snapshot after the reloads');
  const facts = buildFacts(snapshot.source, options.decisions.factsCount);
  const decisions = measure(snapshot, facts, seededRandom(1234), options.decisions);
  await server.close();
  return { reloadMs, rowsRead, statements, revisions: [revisionBefore, snapshot.version], decisions };
}

const [mode, databaseUrl = '', arg = ''] = process.argv.slice(2);
try {
  if (mode === 'heap') send({ type: 'heap', result: await heap(databaseUrl) });
  else if (mode === 'cold') send({ type: 'cold', result: await cold(databaseUrl, arg) });
  else if (mode === 'warm') send({ type: 'warm', result: await warm(databaseUrl, JSON.parse(arg)) });
  else throw new Error(`unknown mode ${mode}`);
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'stop') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
} catch (error) {
  send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
