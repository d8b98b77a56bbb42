/**
 * Runs in Node before the workerd tests: a libSQL file migrated with the real migrations, served over
 * Hrana HTTP (what Turso speaks), three regional upstream servers, a WebSocket echo origin and one that
 * refuses handshakes (echo-upstream.ts), and a control server the tests inside workerd call to
 * stop/start an upstream, take the store down or read what an origin saw.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@libsql/client';
import { migrate } from 'drizzle-orm/libsql/migrator';
import type { TestProject } from 'vitest/node';
import { MIGRATIONS_FOLDER } from '../../src/node/server.js';
import { storeFromClient } from '../../src/store/client.js';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { startHranaServer, type HranaServer } from '../../scripts/hrana-server.js';
import { quietWorkerd } from '../support/quiet-workerd.js';
import {
  GZIP_BYTES,
  GZIP_TEXT,
  startEchoUpstream,
  startRefusingUpstream,
  type EchoState,
  type RefusingState,
  type TestOrigin,
} from './echo-upstream.js';

let hrana: HranaServer;
let control: Server;
let upstreams: Upstream[];
let echo: TestOrigin<EchoState> | undefined;
let refusing: TestOrigin<RefusingState> | undefined;
let dir: string;

export async function setup(project: TestProject): Promise<void> {
  // Before the pool starts workerd (it waits for what this setup provides); never undone, as the pool
  // writes its last record when it closes, after teardown.
  quietWorkerd();
  dir = mkdtempSync(join(tmpdir(), 'waymark-workerd-'));
  const dbPath = join(dir, 'waymark.db');
  const client = createClient({ url: `file:${dbPath}` });
  await migrate(storeFromClient(client).db, { migrationsFolder: MIGRATIONS_FOLDER });
  client.close();
  hrana = await startHranaServer({ dbPath });
  upstreams = await Promise.all([
    startUpstream('ue1', 'us-east1'),
    startUpstream('ew1', 'eu-west1'),
    startUpstream('as1', 'ap-southeast1'),
  ]);
  [echo, refusing] = await Promise.all([startEchoUpstream(), startRefusingUpstream()]);
  control = createServer((req, res) => {
    const [, what, arg] = (req.url ?? '').split('/');
    const upstream = upstreams.find((u) => u.name === arg);
    const done = (body: unknown) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (what === 'store-down') return void (hrana.setUnavailable(true), done({ ok: true }));
    if (what === 'store-up') return void (hrana.setUnavailable(false), done({ ok: true }));
    if (what === 'store-requests') return void done({ requests: hrana.pipelineRequests(), rows: hrana.rowsReturned() });
    if (what === 'stop' && upstream) return void upstream.stop().then(() => done({ ok: true }));
    if (what === 'start' && upstream) return void upstream.start().then(() => done({ ok: true }));
    if (what === 'unhealthy' && upstream) return void ((upstream.healthy = false), done({ ok: true }));
    if (what === 'healthy' && upstream) return void ((upstream.healthy = true), done({ ok: true }));
    if (what === 'fail' && upstream)
      return void ((upstream.mode = 'fail'), (upstream.failStatus = 500), done({ ok: true }));
    if (what === 'ok' && upstream) return void ((upstream.mode = 'ok'), done({ ok: true }));
    if (what === 'hang' && upstream) return void ((upstream.mode = 'hang'), done({ ok: true }));
    if (what === 'served' && upstream) return void done({ served: upstream.served, lastRequest: upstream.lastRequest });
    if (what === 'echo') return void done(echo?.state);
    if (what === 'refusing') return void done(refusing?.state);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  project.provide('storeUrl', hrana.url);
  project.provide('controlUrl', `http://127.0.0.1:${(control.address() as AddressInfo).port}`);
  project.provide('upstreams', Object.fromEntries(upstreams.map((u) => [u.name, u.url])));
  project.provide('origins', {
    echo: echo.url,
    refusing: refusing.url,
    gzipText: GZIP_TEXT,
    gzipBase64: GZIP_BYTES.toString('base64'),
  });
}

export async function teardown(): Promise<void> {
  control?.close();
  await Promise.all([...(upstreams ?? []).map((u) => u.stop()), echo?.close(), refusing?.close()]);
  await hrana?.close();
  rmSync(dir, { recursive: true, force: true });
}
