import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { send } from '../scripts/http-client.js';
import { childrenOf, killPids, treeCpuUs } from './proc-stat.js';
import { onAbort, track } from './procs.js';

/**
 * nginx as a reference proxy: one worker process, a keep-alive upstream pool, no access log; its config,
 * pid file, logs and temp folders live in a folder of the benchmark's own. Started in the foreground
 * (`daemon off`) as a child of the benchmark and stopped by its pid (its workers by theirs).
 */
export interface Nginx {
  url: string;
  pid: number;
  /** CPU of the master and its worker, in µs. */
  cpuUs(): number;
  stop(): Promise<void>;
}

const NGINX_BIN = ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx'];
const READY_TIMEOUT_MS = 5_000;

export function findNginx(): string | null {
  for (const bin of NGINX_BIN) if (existsSync(bin)) return bin;
  const r = spawnSync('nginx', ['-v'], { stdio: 'ignore' });
  return r.error ? null : 'nginx';
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function config(dir: string, port: number, upstream: string): string {
  const { port: upstreamPort } = new URL(upstream);
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'client_body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

/**
 * Starts nginx in front of `upstream`. nginx cannot listen on port 0 and tell us the port, so a free port
 * is picked first (and picked again if someone takes it meanwhile).
 */
export async function startNginx(bin: string, dir: string, upstream: string, readyPath: string): Promise<Nginx> {
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, config(dir, port, upstream));
    const child = track(
      spawn(bin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', file, '-g', 'daemon off;'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      }),
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const url = `http://127.0.0.1:${port}`;
    const workers = new Set<number>();
    // If the benchmark is stopped early: killAll SIGKILLs the master; its workers would be orphaned.
    const forget = onAbort(() => killPids(workers, 'nginx'));
    const ready = await waitReady(child, url + readyPath);
    if (ready) {
      for (const pid of childrenOf(child.pid as number)) workers.add(pid);
      return {
        url,
        pid: child.pid as number,
        cpuUs: () => treeCpuUs(child.pid as number),
        stop: () => stop(child, workers).finally(forget),
      };
    }
    await stop(child, workers);
    forget();
    lastError = `${stderr}${readLog(join(dir, 'error.log'))}`.trim();
    if (!/in use/i.test(lastError)) break;
  }
  throw new Error(`nginx did not start: ${lastError || 'no message'}`);
}

async function waitReady(child: ChildProcess, url: string): Promise<boolean> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const ok = await send(url).then(
      (res) => res.status === 200,
      () => false,
    );
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

/** SIGTERM (nginx's fast shutdown) to the master; SIGKILL to it and its workers after 3 s. */
function stop(child: ChildProcess, workers: Set<number>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    killPids(workers, 'nginx');
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      killPids(workers, 'nginx');
    }, 3_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
