import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { type HranaServer, startHranaServer } from '../../scripts/hrana-server.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import { type Origin, startOrigin } from '../support/origin.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Issue 11: a Node process started while the store is unreachable used to exit 1 with a raw driver error.
// It now serves from its last good snapshot file, says `degraded`, retries the store with back-off and
// recovers (migrations, then the store's snapshot) once it answers.
describe('a Node process started while its remote store is unreachable', () => {
  let dir: string;
  let store: HranaServer;
  let origin: Origin;
  const servers: TestServer[] = [];
  let env: Record<string, string>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-outage-'));
    store = await startHranaServer({ dbPath: join(dir, 'remote.db') });
    origin = await startOrigin();
    env = {
      WAYMARK_DATABASE_URL: store.url,
      WAYMARK_SNAPSHOT_CACHE: join(dir, 'snapshot.json'),
      WAYMARK_SNAPSHOT_REFRESH_MS: '100',
    };
  });

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await origin.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves from the snapshot file, says degraded, and recovers when the store returns', async () => {
    const first = await startTestServer(env);
    servers.push(first);
    expect((await first.admin('PUT', '/services/shop', serviceBody(['shop.test']))).status).toBe(201);
    expect((await first.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url))).status).toBe(
      201,
    );
    expect((await first.request('shop.test', '/hello')).status).toBe(200);
    await first.close();
    servers.pop();

    store.setUnavailable(true);
    const second = await startTestServer(env);
    servers.push(second);
    const served = await second.request('shop.test', '/while-down');
    expect(served.status, served.body).toBe(200);
    expect(origin.last().url).toBe('/while-down');
    const degraded = await send(`${second.url}/_waymark/health/ready`);
    expect(degraded.status).toBe(200);
    expect(degraded.json).toMatchObject({ status: 'degraded', degraded: true, services: 1 });
    // Writes need the store: refused as such, not as an internal error.
    expect((await second.admin('PUT', '/services/blog', serviceBody(['blog.test']))).status).toBe(503);

    store.setUnavailable(false);
    await eventually(
      async () => (await send(`${second.url}/_waymark/health/ready`)).json?.status === 'ready',
      20_000,
      100,
    );
    expect((await second.admin('PUT', '/services/blog', serviceBody(['blog.test']))).status).toBe(201);
    expect((await second.request('shop.test', '/after')).status).toBe(200);
  }, 60_000);

  it('without a snapshot file: not ready (503) rather than exiting, and ready once the store answers', async () => {
    store.setUnavailable(true);
    const server = await startTestServer(env);
    servers.push(server);
    const ready = await send(`${server.url}/_waymark/health/ready`);
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ code: 'not-ready' });
    store.setUnavailable(false);
    await eventually(async () => (await send(`${server.url}/_waymark/health/ready`)).status === 200, 20_000, 100);
  }, 60_000);

  it('a cold start whose file holds the store revision reads no configuration from the store', async () => {
    const first = await startTestServer(env);
    servers.push(first);
    expect((await first.admin('PUT', '/services/shop', serviceBody(['shop.test']))).status).toBe(201);
    expect((await first.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url))).status).toBe(
      201,
    );
    await first.close();
    servers.pop();

    // The same start twice, with and without the file: the file spares the one batch that reads the configuration.
    const withoutFile = await startTestServer({ ...env, WAYMARK_SNAPSHOT_CACHE: 'off' });
    const callsWithout = withoutFile.storeQueries();
    await withoutFile.close();
    const withFile = await startTestServer(env);
    servers.push(withFile);
    expect(withFile.storeQueries()).toBe(callsWithout - 1);
    expect((await withFile.request('shop.test', '/from-file')).status).toBe(200);
    expect((await send(`${withFile.url}/_waymark/health/ready`)).json).toMatchObject({
      status: 'ready',
      degraded: false,
    });
  }, 60_000);
});
