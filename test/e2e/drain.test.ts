import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { send } from '../../scripts/http-client.js';
import { clusterBody } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import { startOrigin, type Origin } from '../support/origin.js';

const ADMIN = 'drain-admin-token-0123456789';
const HOST = 'shop.example.com';

/** `npm start` as operators run it: src/node.ts in its own process, stopped by a signal. */
async function startProcess(
  dir: string,
  env: Record<string, string>,
): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/node.ts'], {
    env: {
      ...process.env,
      WAYMARK_DATABASE_URL: `file:${join(dir, 'waymark.db')}`,
      WAYMARK_ADMIN_TOKEN: ADMIN,
      WAYMARK_SYNC_INTERVAL_MS: '0',
      WAYMARK_REGION: 'eu-west1',
      PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`waymark exited (${code}) before listening: ${out}`)));
  });
  return { child, url, exited };
}

describe('graceful drain on SIGTERM (Node)', () => {
  let origin: Origin;
  let dir: string;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await origin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a 2 s request in flight completes, new connections are refused, an open WebSocket keeps working until closed, and the process exits 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-drain-'));
    origin = await startOrigin();
    const started = await startProcess(dir, { WAYMARK_DRAIN_MS: '5000' });
    child = started.child;
    const admin = (method: string, path: string, body: unknown) =>
      send(`${started.url}/_waymark/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await admin('PUT', '/services/shop', { hosts: [HOST] })).status).toBe(201);
    expect((await admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url))).status).toBe(201);
    await eventually(async () => (await send(`${started.url}/echo`, { host: HOST })).status === 200, 5_000);

    const ws = new WebSocket(`${started.url.replace('http', 'ws')}/ws`, { headers: { host: HOST } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const slow = send(`${started.url}/delay?ms=2000`, { host: HOST });
    await eventually(() => origin.seen.some((r) => r.url.startsWith('/delay')), 2_000);
    const signalledAt = Date.now();
    child.kill('SIGTERM');

    // Draining: the open WebSocket still carries messages, new connections are refused.
    const echoed = await new Promise<string>((resolve) => {
      ws.once('message', (d) => resolve(String(d)));
      ws.send('still here');
    });
    expect(echoed).toBe('still here');
    await expect(send(`${started.url}/_waymark/health/ready`, {})).rejects.toThrow();

    const res = await slow;
    expect(res.status).toBe(200);
    expect(res.body).toBe('late');
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1_500);
    ws.close();
    expect(await started.exited).toBe(0);
  }, 20_000);
});

// Issue 11: WAYMARK_PROCESSES runs that many server processes on one port (node:cluster).
describe('WAYMARK_PROCESSES (Node)', () => {
  let dir: string;
  let origin: Origin;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await origin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('2 processes listen on one port and both serve; SIGTERM drains both and the primary exits 0', async () => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-processes-'));
    origin = await startOrigin();
    child = spawn(process.execPath, ['--import', 'tsx', 'src/node.ts'], {
      env: {
        ...process.env,
        WAYMARK_DATABASE_URL: `file:${join(dir, 'waymark.db')}`,
        WAYMARK_ADMIN_TOKEN: ADMIN,
        WAYMARK_SYNC_INTERVAL_MS: '0',
        WAYMARK_SNAPSHOT_REFRESH_MS: '100',
        WAYMARK_PROCESSES: '2',
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const listening = () => [...out.matchAll(/listening on (http:\/\/\S+) .*process (\d+)\)/g)];
    await eventually(() => listening().length === 2, 30_000);
    const lines = listening();
    expect(lines).toHaveLength(2);
    const [url] = new Set(lines.map((m) => m[1] as string));
    expect(new Set(lines.map((m) => m[1])).size, 'one port for both').toBe(1);
    expect(new Set(lines.map((m) => m[2])).size, 'two processes').toBe(2);

    const admin = (method: string, path: string, body: unknown) =>
      send(`${url}/_waymark/api/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect((await admin('PUT', '/services/shop', { hosts: [HOST] })).status).toBe(201);
    expect((await admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url))).status).toBe(201);
    // Whichever process takes a connection routes, once it has reloaded (a request after 100 ms starts that).
    const all = async () =>
      (await Promise.all(Array.from({ length: 20 }, () => send(`${url}/echo`, { host: HOST })))).every(
        (a) => a.status === 200,
      );
    await eventually(all, 10_000, 150);
    expect(await all()).toBe(true);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('draining 2 processes');
  }, 60_000);
});
