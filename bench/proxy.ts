import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../scripts/http-client.js';
import type { ChildMessage, ChildRole } from './child.js';
import type { LoadGenerator, LoadSpec } from './load.js';
import { startNginx, type Nginx } from './nginx.js';
import { forkTs, nextMessage, onAbort, stopChild } from './procs.js';
import { ratios, runRounds, type LoadTarget, type Ratios, type Run, type TargetSummary } from './rounds.js';

export const BENCH_HOST = 'shop.example.com';
export const BENCH_PATH = '/bench/item?id=42';
export const ADMIN_TOKEN = 'bench-admin-token-0123456789';
const SERVICE = 'shop';
export const CLUSTER = 'bench-upstream';
export const SERVED_BY = 'bench-upstream';

export interface ProxyOptions {
  loadgen: LoadGenerator;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  /** Also load the upstream directly once, for context (not part of the ratios). */
  direct: boolean;
  /** Also load the bare Hono-on-Node fetch proxy (the original baseline). */
  hono: boolean;
  /** nginx's binary; null leaves nginx out (not installed). */
  nginx: string | null;
  /** When set, Waymark's, the undici proxy's and the Hono proxy's processes run with --cpu-prof and write their profiles here. */
  cpuProfDir?: string | undefined;
  log: (line: string) => void;
}

export interface ProxyResult {
  loadgen: string;
  connections: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  order: string;
  runs: Run[];
  /** By target: waymark, nginx, undici, bare (Hono fetch), direct. */
  targets: Record<string, TargetSummary>;
  /** Waymark / each baseline; null when that baseline did not run. */
  ratios: { nginx: Ratios | null; undici: Ratios; bare: Ratios | null };
  cpuProfiles: string[];
}

export interface Server {
  role: string;
  child: ChildProcess;
  url: string;
}

export async function startChild(role: ChildRole, args: string[], execArgv: string[] = []): Promise<Server> {
  const child = forkTs('child.ts', [role, ...args], execArgv);
  const ready = await nextMessage<Extract<ChildMessage, { type: 'ready' }>>(
    child,
    (m) => m?.type === 'ready',
    30_000,
    `the ${role} server`,
  );
  return { role, child, url: ready.url };
}

export async function stats(server: Server): Promise<Extract<ChildMessage, { type: 'stats' }>> {
  const reply = nextMessage<Extract<ChildMessage, { type: 'stats' }>>(
    server.child,
    (m) => m?.type === 'stats',
    5_000,
    `${server.role} stats`,
  );
  server.child.send({ type: 'stats' });
  return reply;
}

export function stopServers(servers: Server[]): Promise<void> {
  return Promise.all([...servers].reverse().map((s) => stopChild(s.child))).then(() => undefined);
}

/**
 * Registers the service and its one cluster through the admin API, then waits until Waymark routes to it
 * (a worker picks the change up at its next snapshot refresh: up to WAYMARK_SNAPSHOT_REFRESH_MS).
 */
export async function configureWaymark(
  waymark: string,
  upstream: string,
  extraHosts: string[] = [],
  timeoutMs = 10_000,
): Promise<void> {
  const admin = (method: string, path: string, body: unknown) =>
    send(`${waymark}/_waymark/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const service = await admin('PUT', `/services/${SERVICE}`, { hosts: [BENCH_HOST, ...extraHosts], failover: [] });
  if (service.status !== 201 && service.status !== 200)
    throw new Error(`PUT service: ${service.status} ${service.body}`);
  const cluster = await admin('PUT', `/services/${SERVICE}/clusters/${CLUSTER}`, {
    region: 'us-east1',
    origin: upstream,
    latitude: 33.2,
    longitude: -80.0,
    weight: 100,
    labels: { version: 'v1' },
    healthCheck: { path: '/health/ready' },
  });
  if (cluster.status !== 201 && cluster.status !== 200)
    throw new Error(`PUT cluster: ${cluster.status} ${cluster.body}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await send(`${waymark}${BENCH_PATH}`, { host: BENCH_HOST });
    if (
      res.status === 200 &&
      res.headers['x-waymark-cluster'] === CLUSTER &&
      res.json?.cluster === SERVED_BY &&
      res.json?.path === BENCH_PATH
    )
      return;
    if (Date.now() > deadline) throw new Error(`Waymark does not route to the upstream: ${res.status} ${res.body}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function checkBaseline(name: string, url: string): Promise<void> {
  const res = await send(`${url}${BENCH_PATH}`, { host: BENCH_HOST });
  if (res.status !== 200 || res.headers['x-served-by'] !== SERVED_BY || res.json?.path !== BENCH_PATH) {
    throw new Error(`${name} does not reach the upstream: ${res.status} ${res.body}`);
  }
}

export async function benchProxy(options: ProxyOptions): Promise<ProxyResult> {
  const { log } = options;
  const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-'));
  const forget = onAbort(() => rmSync(dir, { recursive: true, force: true }));
  const servers: Server[] = [];
  let nginx: Nginx | null = null;
  try {
    const upstream = await startChild('upstream', []);
    servers.push(upstream);
    // One folder per server: with tsx's loader thread a process writes one profile per thread.
    const prof = (name: string) =>
      options.cpuProfDir
        ? ['--cpu-prof', '--cpu-prof-interval', '250', '--cpu-prof-dir', join(options.cpuProfDir, name)]
        : [];
    const [waymark, undici, bare] = await Promise.all([
      startChild('waymark', [`file:${join(dir, 'waymark.db')}`, ADMIN_TOKEN], prof('waymark')),
      startChild('undici', [upstream.url], prof('undici')),
      options.hono ? startChild('bare', [upstream.url], prof('bare')) : null,
    ]);
    servers.push(waymark, undici, ...(bare ? [bare] : []));
    if (options.nginx) {
      const nginxDir = join(dir, 'nginx');
      mkdirSync(nginxDir);
      // Without nginx the other ratios still stand: say so and go on.
      nginx = await startNginx(options.nginx, nginxDir, upstream.url, BENCH_PATH).catch((error: unknown) => {
        log(`  nginx left out: ${error instanceof Error ? error.message : String(error)}`);
        return null;
      });
    }
    await configureWaymark(waymark.url, upstream.url);
    await checkBaseline('the undici proxy', undici.url);
    if (bare) await checkBaseline('the Hono fetch proxy', bare.url);
    if (nginx) await checkBaseline('nginx', nginx.url);
    log(
      `  upstream ${upstream.url} | waymark ${waymark.url} | undici proxy ${undici.url}${nginx ? ` | nginx ${nginx.url} (pid ${nginx.pid})` : ''}` +
        `${bare ? ` | Hono fetch proxy ${bare.url}` : ''} (each in its own process)`,
    );

    const childCpu = (server: Server) => async () => {
      const s = await stats(server);
      return s.cpuUserUs + s.cpuSystemUs;
    };
    const target = (
      name: string,
      label: string,
      url: string,
      cpuUs: () => Promise<number>,
      cluster?: string,
    ): LoadTarget => ({
      name,
      label,
      spec: { ...spec(options, url), ...(cluster ? { expectCluster: cluster } : {}) },
      cpuUs,
    });
    const nginxNow = nginx;
    const targets: LoadTarget[] = [
      target('waymark', 'Waymark (Node)', waymark.url, childCpu(waymark), CLUSTER),
      ...(nginxNow
        ? [target('nginx', 'nginx (1 worker, keepalive 64)', nginxNow.url, async () => nginxNow.cpuUs())]
        : []),
      target('undici', 'bare undici Pool proxy', undici.url, childCpu(undici)),
      ...(bare ? [target('bare', 'bare Hono fetch proxy', bare.url, childCpu(bare))] : []),
    ];
    const upstreamServed = async () => (await stats(upstream)).served;
    const { runs, order, summaries } = await runRounds({
      loadgen: options.loadgen,
      targets,
      upstreamServed,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      extra: options.direct
        ? [
            {
              target: target('direct', 'upstream direct (ref.)', upstream.url, childCpu(upstream)),
              durationS: Math.max(2, Math.round(options.roundS / 2)),
            },
          ]
        : [],
      log,
    });
    const w = summaries.waymark as TargetSummary;
    return {
      loadgen: options.loadgen.describe,
      connections: options.connections,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      order,
      runs,
      targets: summaries,
      ratios: {
        nginx: summaries.nginx ? ratios(w, summaries.nginx, runs) : null,
        undici: ratios(w, summaries.undici as TargetSummary, runs),
        bare: summaries.bare ? ratios(w, summaries.bare, runs) : null,
      },
      cpuProfiles: options.cpuProfDir
        ? ['waymark', 'undici', ...(bare ? ['bare'] : [])].map((n) => join(options.cpuProfDir as string, n))
        : [],
    };
  } finally {
    await nginx?.stop();
    await stopServers(servers);
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}

export function spec(options: { connections: number; roundS: number }, url: string): LoadSpec {
  return {
    url,
    path: BENCH_PATH,
    host: BENCH_HOST,
    connections: options.connections,
    durationS: options.roundS,
    expectServedBy: SERVED_BY,
  };
}
