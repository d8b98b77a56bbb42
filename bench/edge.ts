import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createClient } from '@libsql/client';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { Miniflare } from 'miniflare';
import { MIGRATIONS_FOLDER } from '../src/node/server.js';
import { storeFromClient } from '../src/store/client.js';
import { startHranaServer, type HranaServer } from '../scripts/hrana-server.js';
import type { LoadGenerator } from './load.js';
import { descendantsNamed, killPids, treeCpuUs } from './proc-stat.js';
import type { CpuProfile } from './profile.js';
import { onAbort } from './procs.js';
import {
  ADMIN_TOKEN,
  checkBaseline,
  CLUSTER,
  configureWaymark,
  spec,
  startChild,
  stats,
  stopServers,
  type Server,
} from './proxy.js';
import { ratios, runRounds, type LoadTarget, type Ratios, type Run, type TargetSummary } from './rounds.js';
import { mapBundleProfile, startWorkerdProfiler } from './workerd-profile.js';
import { buildBundle, wranglerSettings } from './workerd.js';

/**
 * Edge: Waymark's worker bundle (what `wrangler deploy` uploads) and a bare passthrough worker, each in a
 * workerd of its own started by Miniflare 4, loaded in turn by the same load generator in front of the
 * same upstream. Waymark's store is a libSQL file migrated with the real migrations and served over
 * Hrana HTTP by the test fixture (what Turso speaks).
 */
export interface EdgeOptions {
  loadgen: LoadGenerator;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  /** When set, both workers are profiled through workerd's inspector and their .cpuprofile files go here. */
  cpuProfDir?: string | undefined;
  log: (line: string) => void;
}

export interface EdgeResult {
  loadgen: string;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  order: string;
  runs: Run[];
  /** waymark-edge, bare-edge. */
  targets: Record<string, TargetSummary>;
  /** Waymark / the bare passthrough worker. */
  ratios: Ratios;
  buildS: number;
  bundleKb: number;
  /** edge-waymark.cpuprofile (mapped to source files) and edge-bare.cpuprofile, when profiled. */
  cpuProfiles: string[];
}

const ROUTE_TIMEOUT_MS = 20_000;

/** The baseline: the thinnest worker that forwards to the upstream. */
const PASSTHROUGH_WORKER = `export default {
  fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.UPSTREAM + url.pathname + url.search, request);
  },
};`;

interface Workerd {
  mf: Miniflare;
  name: string;
  url: string;
  /** workerd's pid (the process Miniflare spawned), for its CPU time; null when it could not be told apart. */
  pid: number | null;
}

/** Starts one Miniflare (one workerd process) and finds the workerd it spawned. */
async function startWorkerd(
  name: string,
  options: ConstructorParameters<typeof Miniflare>[0],
  inspect: boolean,
  pids: Set<number>,
  logTail: string[],
): Promise<Workerd> {
  const before = new Set(descendantsNamed('workerd'));
  const mf = new Miniflare({
    ...options,
    name,
    host: '127.0.0.1',
    port: 0,
    // Only when profiling: an inspector socket (port 0) for the DevTools protocol.
    ...(inspect ? { inspectorPort: 0 } : {}),
    // No network: the placeholder request.cf instead of fetching Cloudflare's.
    cf: false,
    // Waymark's logs would cost terminal time per request; keep the last lines for errors.
    handleRuntimeStdio(stdout: Readable, stderr: Readable) {
      const keep = (d: Buffer) => {
        logTail.push(d.toString());
        if (logTail.length > 20) logTail.shift();
      };
      stdout.on('data', keep);
      stderr.on('data', keep);
    },
  } as ConstructorParameters<typeof Miniflare>[0]);
  const url = (await mf.ready).origin;
  const spawned = descendantsNamed('workerd').filter((pid) => !before.has(pid));
  for (const pid of spawned) pids.add(pid);
  return { mf, name, url, pid: spawned.length === 1 ? (spawned[0] as number) : null };
}

export async function benchEdge(options: EdgeOptions): Promise<EdgeResult> {
  const { log } = options;
  const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-edge-'));
  const workerdPids = new Set<number>();
  // If the benchmark is stopped early (watchdog, Ctrl-C): workerd is Miniflare's child, not one we track.
  const forget = onAbort(() => {
    killPids(workerdPids, 'workerd');
    rmSync(dir, { recursive: true, force: true });
  });
  const servers: Server[] = [];
  const workerds: Workerd[] = [];
  let hrana: HranaServer | null = null;
  const logTail: string[] = [];
  try {
    const outDir = join(dir, 'bundle');
    mkdirSync(outDir);
    const t0 = performance.now();
    await buildBundle(dir, outDir);
    const buildS = (performance.now() - t0) / 1e3;
    const bundleKb = readFileSync(join(outDir, 'worker.js')).byteLength / 1024;

    const dbPath = join(dir, 'waymark.db');
    const client = createClient({ url: `file:${dbPath}` });
    await migrate(storeFromClient(client).db, { migrationsFolder: MIGRATIONS_FOLDER });
    client.close();
    hrana = await startHranaServer({ dbPath });
    const upstream = await startChild('upstream', []);
    servers.push(upstream);

    const settings = wranglerSettings();
    const common = {
      modules: true,
      compatibilityDate: settings.compatibilityDate,
      compatibilityFlags: settings.compatibilityFlags,
    };
    const inspect = options.cpuProfDir !== undefined;
    const waymark = await startWorkerd(
      'waymark',
      {
        ...common,
        scriptPath: join(outDir, 'worker.js'),
        // The bundle lives outside the project: workerd refuses module paths with `..` otherwise.
        modulesRoot: outDir,
        bindings: { ...settings.vars, WAYMARK_DATABASE_URL: hrana.url, WAYMARK_ADMIN_TOKEN: ADMIN_TOKEN },
      },
      inspect,
      workerdPids,
      logTail,
    );
    workerds.push(waymark);
    const bare = await startWorkerd(
      'passthrough',
      { ...common, script: PASSTHROUGH_WORKER, bindings: { UPSTREAM: upstream.url } },
      inspect,
      workerdPids,
      logTail,
    );
    workerds.push(bare);
    // Miniflare's entry may hand the worker the listener's address as Host: route that too.
    await configureWaymark(waymark.url, upstream.url, ['127.0.0.1', 'localhost'], ROUTE_TIMEOUT_MS);
    await checkBaseline('the passthrough worker', bare.url);
    log(
      `  bundle ${bundleKb.toFixed(0)} KiB built in ${buildS.toFixed(1)} s | upstream ${upstream.url} | store (Hrana over HTTP) ${hrana.url} | ` +
        `waymark ${waymark.url} (workerd pid ${waymark.pid ?? '?'}) | passthrough ${bare.url} (workerd pid ${bare.pid ?? '?'})`,
    );

    const workerdCpu = (w: Workerd) => async () => (w.pid === null ? Number.NaN : treeCpuUs(w.pid));
    const targets: LoadTarget[] = [
      {
        name: 'waymark-edge',
        label: "Waymark's worker (workerd)",
        spec: { ...spec(options, waymark.url), expectCluster: CLUSTER },
        cpuUs: workerdCpu(waymark),
      },
      {
        name: 'bare-edge',
        label: 'bare passthrough worker (workerd)',
        spec: spec(options, bare.url),
        cpuUs: workerdCpu(bare),
      },
    ];
    const profilers = options.cpuProfDir
      ? await Promise.all([waymark, bare].map(async (w) => startWorkerdProfiler(await w.mf.getInspectorURL(), w.name)))
      : null;
    const { runs, order, summaries } = await runRounds({
      loadgen: options.loadgen,
      targets,
      upstreamServed: async () => (await stats(upstream)).served,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      log,
    });
    const cpuProfiles: string[] = [];
    if (profilers && options.cpuProfDir) {
      const [wp, bp] = await Promise.all(profilers.map((p) => p.stop()));
      const files = [
        join(options.cpuProfDir, 'edge-waymark.cpuprofile'),
        join(options.cpuProfDir, 'edge-bare.cpuprofile'),
      ] as const;
      writeFileSync(files[0], JSON.stringify(mapBundleProfile(wp as CpuProfile, join(outDir, 'worker.js'))));
      writeFileSync(files[1], JSON.stringify(bp));
      cpuProfiles.push(...files);
    }
    return {
      loadgen: options.loadgen.describe,
      connections: options.connections,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      order,
      runs,
      targets: summaries,
      ratios: ratios(summaries['waymark-edge'] as TargetSummary, summaries['bare-edge'] as TargetSummary, runs),
      buildS,
      bundleKb,
      cpuProfiles,
    };
  } catch (error) {
    if (logTail.length) log(`  workerd's last output:\n${logTail.join('').trimEnd()}`);
    throw error;
  } finally {
    await Promise.all(workerds.map((w) => w.mf.dispose().catch(() => undefined)));
    killPids(workerdPids, 'workerd');
    await stopServers(servers);
    await hrana?.close();
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}
