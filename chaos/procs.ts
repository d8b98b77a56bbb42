import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, nextMessage, ROOT_DIR, stopChild, track } from '../bench/procs.js';
import type { UpstreamMode } from '../scripts/upstream.js';

/** The admin token every Waymark process of the chaos suite is started with. */
export const CHAOS_ADMIN_TOKEN = 'chaos-admin-token-4f1c9a7e2b5d';

const ADMIN_BASE = '/_waymark/api/v1';
const START_TIMEOUT_MS = 30_000;
const ADMIN_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;
const OUTPUT_LINES = 200;

export interface AdminAnswer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface WaymarkProcess {
  url: string;
  pid: number;
  adminToken: string;
  /** An admin API call (`path` relative to /_waymark/api/v1); rejects only on network errors and timeouts. */
  admin(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<AdminAnswer>;
  /** Sends `signal` (default SIGKILL) and resolves once the process has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGTERM (a graceful drain), then SIGKILL after 5 s. */
  stop(): Promise<void>;
  /** Resolves when the process exits, however it does. */
  exited: Promise<void>;
  /** Its last lines of stdout and stderr. */
  output(): string[];
}

export interface UpstreamProcess {
  name: string;
  region: string;
  url: string;
  port: number;
  /** The current child's PID (a restart changes it). */
  pid: number;
  setMode(mode: UpstreamMode, options?: { delayMs?: number; failStatus?: number }): Promise<void>;
  /** What its health endpoint answers (200 or 503); ordinary requests follow `setMode`. */
  setHealthy(healthy: boolean): Promise<void>;
  kill9(): Promise<void>;
  /** Starts it again on the same port (after kill9). */
  restart(): Promise<void>;
  /** `x-chaos-id` -> times received, over every life of this upstream (kills included). */
  received(): Promise<Record<string, number>>;
  /** Stops it for good (SIGTERM, then SIGKILL). */
  stop(): Promise<void>;
}

/** Last lines of output of every process this module started, by label, for a failing scenario's report. */
const outputs = new Map<string, string[]>();
const tempDirs = new Set<string>();
let processCount = 0;

/** The output of the processes started since the last `clearOutput()`, labelled, oldest first. */
export function processOutput(): string {
  const parts: string[] = [];
  for (const [label, lines] of outputs) if (lines.length > 0) parts.push(`--- ${label}\n${lines.join('\n')}`);
  return parts.join('\n');
}

export function clearOutput(): void {
  outputs.clear();
}

function collect(child: ChildProcess, label: string, onLine?: (line: string) => void): string[] {
  const lines: string[] = [];
  outputs.set(label, lines);
  const verbose = process.env.CHAOS_VERBOSE === '1';
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        if (lines.length > OUTPUT_LINES) lines.shift();
        if (verbose) process.stderr.write(`[${label}] ${line}\n`);
        onLine?.(line);
      }
    });
  }
  return lines;
}

function exitPromise(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('WAYMARK_')) env[key] = value;
  return env;
}

/**
 * Starts the real server (`node --import tsx src/node.ts`) on a port of its own and resolves once it
 * says it listens. `env` overrides the chaos defaults (a fixed admin token, trusted locality headers,
 * no access log, the snapshot cache in `dir`).
 */
export async function startWaymark(opts: {
  databaseUrl: string;
  dir: string;
  env?: Record<string, string>;
}): Promise<WaymarkProcess> {
  const label = `waymark#${++processCount}`;
  const child = track(
    spawn(process.execPath, ['--import', 'tsx', 'src/node.ts'], {
      cwd: ROOT_DIR,
      env: {
        ...cleanEnv(),
        PORT: '0',
        HOST: '127.0.0.1',
        WAYMARK_DATABASE_URL: opts.databaseUrl,
        WAYMARK_ADMIN_TOKEN: CHAOS_ADMIN_TOKEN,
        WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
        WAYMARK_ACCESS_LOG_SAMPLE: '0',
        WAYMARK_SNAPSHOT_CACHE: join(opts.dir, 'waymark-snapshot.json'),
        ...opts.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  const exited = exitPromise(child);
  let onListening: (url: string) => void = () => {};
  const listening = new Promise<string>((resolve) => (onListening = resolve));
  const lines = collect(child, `${label} pid ${child.pid}`, (line) => {
    const m = /waymark listening on (\S+)/.exec(line);
    if (m?.[1]) onListening(m[1]);
  });
  let timer: NodeJS.Timeout | undefined;
  const url = await Promise.race([
    listening,
    exited.then(() => {
      throw new Error(`${label} exited before listening (${child.exitCode ?? child.signalCode}):\n${lines.join('\n')}`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${label} did not listen within ${START_TIMEOUT_MS} ms:\n${lines.join('\n')}`));
      }, START_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));

  return {
    url,
    pid: child.pid ?? -1,
    adminToken: CHAOS_ADMIN_TOKEN,
    admin: (method, path, body, headers) => adminCall(url, method, path, body, headers),
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    stop: () => stopChild(child, STOP_GRACE_MS),
    exited,
    output: () => [...lines],
  };
}

async function adminCall(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  extraHeaders: Record<string, string> = {},
): Promise<AdminAnswer> {
  const headers: Record<string, string> = { ...extraHeaders, authorization: `Bearer ${CHAOS_ADMIN_TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${ADMIN_BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/**
 * A fake regional cluster (scripts/upstream.ts) in a child process: it can be killed with SIGKILL and
 * restarted on the same port, and it counts every request's `x-chaos-id` in a file, so that no count
 * is lost to a kill.
 */
export async function startUpstreamProcess(name: string, region: string): Promise<UpstreamProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'waymark-chaos-upstream-'));
  tempDirs.add(dir);
  const countsFile = join(dir, 'received.txt');
  let child: ChildProcess | null = null;
  let lives = 0;

  async function launch(port: number): Promise<number> {
    const c = track(
      fork(join(ROOT_DIR, 'chaos', 'upstream-child.ts'), [name, region, String(port), countsFile], {
        cwd: ROOT_DIR,
        execArgv: ['--import', 'tsx'],
        env: cleanEnv(),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      }),
    );
    collect(c, `upstream ${name}#${++lives} pid ${c.pid}`);
    child = c;
    const ready = await nextMessage<{ port: number }>(
      c,
      (m) => m?.type === 'ready',
      START_TIMEOUT_MS,
      `upstream ${name}`,
    );
    return ready.port;
  }

  function current(): ChildProcess {
    if (!child || child.exitCode !== null || child.signalCode !== null)
      throw new Error(`upstream ${name} is not running`);
    return child;
  }

  async function ask(message: object, reply: string): Promise<void> {
    const c = current();
    const answer = nextMessage(c, (m) => m?.type === reply, 5_000, `upstream ${name} ${reply}`);
    c.send(message);
    await answer;
  }

  const port = await launch(0);
  const upstream: UpstreamProcess = {
    name,
    region,
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child!.pid ?? -1,
    setMode: (mode, options = {}) => ask({ type: 'mode', mode, ...options }, 'mode-set'),
    setHealthy: (healthy) => ask({ type: 'healthy', healthy }, 'healthy-set'),
    async kill9() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const gone = exitPromise(c);
      c.kill('SIGKILL');
      await gone;
    },
    async restart() {
      if (child && child.exitCode === null && child.signalCode === null) await upstream.kill9();
      // The port was just freed by the kill; another process could take it meanwhile, so retry a little.
      for (let attempt = 1; ; attempt++) {
        try {
          await launch(port);
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      upstream.pid = child!.pid ?? -1;
    },
    async received() {
      const counts: Record<string, number> = {};
      let text = '';
      try {
        text = readFileSync(countsFile, 'utf8');
      } catch {
        return counts;
      }
      for (const id of text.split('\n')) if (id !== '') counts[id] = (counts[id] ?? 0) + 1;
      return counts;
    },
    async stop() {
      if (child) await stopChild(child, STOP_GRACE_MS);
    },
  };
  return upstream;
}

/** Samples the resident set size of some processes every 200 ms and keeps the peak. */
export class RssWatch {
  peakMb = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: () => number[]) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
    this.timer.unref();
  }

  private sample(): void {
    for (const pid of this.pids()) {
      const mb = rssMb(pid);
      if (mb !== null && mb > this.peakMb) this.peakMb = mb;
    }
  }

  /** Stops sampling (after one last sample) and answers the peak in MB. */
  stop(): number {
    this.sample();
    clearInterval(this.timer);
    return this.peakMb;
  }
}

/** VmRSS of a process in MB, or null when it is gone. */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/** Kills every process this module started (by its PID, SIGKILL) and removes the upstreams' folders. */
export function stopAll(): void {
  killAll();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.once('exit', stopAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}
