import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, forkTs, nextMessage, track } from './procs.js';

export interface LoadSpec {
  /** Base URL, e.g. http://127.0.0.1:1234 */
  url: string;
  path: string;
  /** Host header to send (Waymark routes by Host). */
  host?: string;
  connections: number;
  durationS: number;
  /** A response counts as good only when it is 200 and carries this x-served-by header. */
  expectServedBy: string;
  /** ... and, when set, this x-waymark-cluster header. */
  expectCluster?: string;
}

export interface LoadResult {
  tool: 'wrk' | 'node';
  requests: number;
  durationS: number;
  rps: number;
  latencyUs: { mean: number; p50: number; p90: number; p99: number; max: number };
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Responses that were 200 with the expected headers. */
  ok: number;
  bad: number;
  badSample: string;
}

export interface LoadGenerator {
  name: string;
  describe: string;
  run(spec: LoadSpec): Promise<LoadResult>;
  close(): Promise<void>;
}

export function wrkAvailable(): boolean {
  const r = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  return !r.error;
}

/** wrk with a Lua script that checks every response and reports wrk's latency percentiles as JSON. */
export function wrkGenerator(threads: number): LoadGenerator {
  return {
    name: 'wrk',
    describe: `wrk ${threads} thread(s), keep-alive, every response checked by bench/wrk-check.lua`,
    run: (spec) =>
      new Promise((resolve, reject) => {
        const args = [
          `-t${threads}`,
          `-c${spec.connections}`,
          `-d${spec.durationS}s`,
          '--timeout',
          '5s',
          '-s',
          join(BENCH_DIR, 'wrk-check.lua'),
          ...(spec.host ? ['-H', `Host: ${spec.host}`] : []),
          new URL(spec.path, spec.url).toString(),
          '--',
          spec.expectServedBy,
          spec.expectCluster ?? '',
        ];
        const child = track(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
        let out = '';
        let err = '';
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), (spec.durationS + 15) * 1000);
        child.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          const line = out.split('\n').find((l) => l.startsWith('WRK_RESULT '));
          if (code !== 0 || !line) {
            reject(new Error(`wrk failed (exit ${code}):\n${out}\n${err}`));
            return;
          }
          const raw = JSON.parse(line.slice('WRK_RESULT '.length)) as Omit<LoadResult, 'tool' | 'durationS' | 'rps'> & {
            durationUs: number;
          };
          const durationS = raw.durationUs / 1e6;
          resolve({
            tool: 'wrk',
            requests: raw.requests,
            durationS,
            rps: raw.requests / durationS,
            latencyUs: raw.latencyUs,
            errors: raw.errors,
            ok: raw.ok,
            bad: raw.bad,
            badSample: raw.badSample,
          });
        });
      }),
    close: async () => {},
  };
}

/** The fallback: bench/loadgen.ts in its own process (node:http keep-alive Agent). */
export function nodeGenerator(): LoadGenerator {
  let child: ChildProcess | null = null;
  return {
    name: 'node',
    describe:
      'Node load generator (bench/loadgen.ts: node:http keep-alive Agent) in its own process, every response checked',
    async run(spec) {
      child ??= forkTs('loadgen.ts', []);
      const reply = nextMessage<LoadResult>(
        child,
        (m) => m && typeof m.requests === 'number',
        (spec.durationS + 30) * 1000,
        'the Node load generator',
      );
      child.send(spec);
      return reply;
    },
    async close() {
      if (child && child.exitCode === null) {
        const c = child;
        await new Promise<void>((resolve) => {
          c.once('exit', () => resolve());
          c.disconnect();
          setTimeout(() => c.kill('SIGKILL'), 2_000).unref();
        });
      }
      child = null;
    },
  };
}
