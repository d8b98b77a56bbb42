import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@libsql/client';
import { expect } from 'vitest';
import { send, type SimpleResponse } from '../../scripts/http-client.js';
import { startHranaServer, type HranaServer } from '../support/hrana-server.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';

/** Where the store lives: a libSQL file every server opens, or one file behind the Hrana (libSQL over HTTP) server. */
type StoreKind = 'file' | 'hrana';

export interface Topology {
  name: string;
  store: StoreKind;
  /** Servers in this process (sharing nothing but the store). */
  servers: number;
  /** Servers in processes of their own (`node --import tsx src/node.ts`, the production entry). */
  processes: number;
}

/**
 * The deployments every concurrency test runs against. Two servers on one file run in two processes: in
 * one process, libSQL's file calls are synchronous, so a transaction never yields to the other server's
 * requests and nothing contends (measured: the pre-transaction code passed every race here that way).
 */
export const TOPOLOGIES: Topology[] = [
  { name: 'one server on a file store', store: 'file', servers: 1, processes: 0 },
  { name: 'two server processes sharing one store file', store: 'file', servers: 1, processes: 1 },
  { name: 'one server on a remote (Hrana) store', store: 'hrana', servers: 1, processes: 0 },
  { name: 'two servers on one remote (Hrana) store', store: 'hrana', servers: 2, processes: 0 },
];

/** A Waymark server the tests reach over HTTP, in this process or in one of its own. */
export interface Peer {
  url: string;
  /** The id it takes the sync lease under; null for a server in another process (it does not say). */
  instanceId: string | null;
  admin: TestServer['admin'];
  request: TestServer['request'];
  close: () => Promise<void>;
}

export interface Deployment {
  peers: Peer[];
  /** A raw client on the shared store, for assertions. */
  db: Client;
  /** The server that takes the i-th of a burst of requests: round robin, so every server writes. */
  pick: (i: number) => Peer;
  close: () => Promise<void>;
}

/**
 * Real Node servers over one store: a libSQL file in a temp folder, or that file behind the Hrana test
 * server (WAYMARK_DATABASE_URL=http://127.0.0.1:port). Each server applies the migrations itself through
 * `migrateStore`, under the migrate lease, as in production.
 */
export async function deploy(topology: Topology, env: Record<string, string> = {}): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'waymark-concurrency-'));
  const dbPath = join(dir, 'waymark.db');
  let hrana: HranaServer | null = null;
  const peers: Peer[] = [];
  let db: Client | null = null;
  const close = async () => {
    // Later servers first: the first one's raw client is the one assertions use.
    for (const p of [...peers].reverse()) await p.close();
    await hrana?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (topology.store === 'hrana') hrana = await startHranaServer({ dbPath });
    const url = hrana ? hrana.url : `file:${dbPath}`;
    for (let i = 0; i < topology.servers; i++) {
      const server = await startTestServer({ ...env, WAYMARK_DATABASE_URL: url });
      db ??= server.db;
      peers.push({
        url: server.url,
        instanceId: server.runtime.instanceId,
        admin: server.admin,
        request: server.request,
        close: server.close,
      });
    }
    for (let i = 0; i < topology.processes; i++)
      peers.push(await startServerProcess({ ...env, WAYMARK_DATABASE_URL: url }));
  } catch (error) {
    await close();
    throw error;
  }
  if (!db) throw new Error('a deployment needs a server in this process');
  return { peers, db, pick: (i) => peers[i % peers.length] as Peer, close };
}

/**
 * For the races over many transactions: on a remote store every transaction is several HTTP round trips,
 * one after another (measured 3-12 s for 20 cluster PUTs and 20 drains on a loaded machine); a write that
 * finds the file locked by another process may wait 5 s (src/store/transaction.ts), one after another.
 */
export const RACE_TIMEOUT_MS = 90_000;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PROCESS_START_MS = 15_000;
const PROCESS_STOP_MS = 10_000;
/** src/node.ts, in a process that ends when this one goes away without stopping it (its stdin closes). */
const ORPHAN_GUARD_AND_ENTRY =
  "process.stdin.once('end', () => process.exit(1)).resume(); await import('./src/node.ts');";

/**
 * `src/node.ts` in a process of its own, with the settings `startTestServer` gives (admin token, trusted
 * locality headers, no sync timer unless `env` says so) on port 0; its address comes from its first line.
 */
async function startServerProcess(env: Record<string, string>): Promise<Peer> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', ORPHAN_GUARD_AND_ENTRY], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      WAYMARK_ADMIN_TOKEN: ADMIN_TOKEN,
      WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
      WAYMARK_SYNC_INTERVAL_MS: '0',
      WAYMARK_SNAPSHOT_REFRESH_MS: '100',
      WAYMARK_DRAIN_MS: '1000',
      WAYMARK_LOG_LEVEL: 'silent',
      PORT: '0',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the server process did not start within ${PROCESS_START_MS} ms:\n${output}`)),
      PROCESS_START_MS,
    );
    const read = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const listening = /waymark listening on (http:\/\/\S+)/.exec(output);
      if (listening) {
        clearTimeout(timer);
        resolve(listening[1] as string);
      }
    };
    // Both pipes are read to the end, so the process never blocks on a full one.
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the server process exited (${child.exitCode}):\n${output}`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    throw error;
  });
  const admin: Peer['admin'] = (method, path, body, token = ADMIN_TOKEN) =>
    send(`${url}/_waymark/api/v1${path}`, {
      method,
      headers: {
        ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return {
    url,
    instanceId: null,
    admin,
    request: (host, path = '/', init = {}) => send(`${url}${path}`, { host, ...init }),
    close: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM drains it (src/node.ts); a process that does not stop in time is killed.
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), PROCESS_STOP_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The responses grouped by status, with a summary of all of them for assertion messages. */
export function byStatus(responses: SimpleResponse[]): { status: (code: number) => SimpleResponse[]; summary: string } {
  return {
    status: (code) => responses.filter((r) => r.status === code),
    summary: responses.map((r) => `${r.status} ${r.json?.code ?? ''}`).join(', '),
  };
}

export async function count(db: Client, sql: string, args: (string | number)[] = []): Promise<number> {
  return Number((await db.execute({ sql, args })).rows[0]?.n);
}

/** Asserts the response is 2xx, naming what it got otherwise. */
export function expectOk(res: SimpleResponse): void {
  expect(res.status, `${res.status} ${res.body}`).toBeGreaterThanOrEqual(200);
  expect(res.status, `${res.status} ${res.body}`).toBeLessThan(300);
}

/**
 * A cluster's health endpoint on 127.0.0.1 that always fails (503), counting the probes it received and
 * answered. Held, it keeps probes waiting until released: a sync that probes it cannot finish meanwhile.
 */
export interface FailingHealth {
  url: string;
  /** Probes received so far. */
  received: () => number;
  /** Probes answered so far. */
  answered: () => number;
  /** From now on no probe is answered until `release`, which answers the waiting ones and stops holding. */
  hold: () => void;
  release: () => void;
  stop: () => Promise<void>;
}

export async function startFailingHealth(answerAfterMs = 0): Promise<FailingHealth> {
  let received = 0;
  let answered = 0;
  let holding = false;
  const waiting: ServerResponse[] = [];
  const answer = (res: ServerResponse) => {
    if (res.destroyed) return;
    answered += 1;
    res.writeHead(503, { 'content-type': 'text/plain' }).end('not ready');
  };
  const server = createServer((req, res) => {
    req.resume();
    received += 1;
    // Whether to hold is decided when the answer is due: after `hold`, no probe is answered.
    setTimeout(() => (holding ? waiting.push(res) : answer(res)), answerAfterMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const release = () => {
    holding = false;
    for (const res of waiting.splice(0)) answer(res);
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received: () => received,
    answered: () => answered,
    hold: () => {
      holding = true;
    },
    release,
    stop: async () => {
      release();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
