import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { type HranaServer, startHranaServer } from '../../scripts/hrana-server.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { type Origin, startOrigin } from '../support/origin.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Issue 11: a process over a large configuration (more services than `partialAbove`, 1,000 by default)
// starts without reading it: the store says where each host's service is, and a service is read the first
// time a request needs it. Admin views read the whole configuration.
describe('a Node process that starts partial', () => {
  let dir: string;
  let store: HranaServer;
  let origin: Origin;
  const servers: TestServer[] = [];
  let env: Record<string, string>;
  const SERVICES = ['shop', 'pay', 'auth'];

  const ready = async (server: TestServer) => (await send(`${server.url}/_waymark/health/ready`)).json;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-partial-'));
    store = await startHranaServer({ dbPath: join(dir, 'remote.db') });
    origin = await startOrigin();
    env = {
      WAYMARK_DATABASE_URL: store.url,
      WAYMARK_SNAPSHOT_CACHE: join(dir, 'snapshot.json'),
      WAYMARK_SNAPSHOT_REFRESH_MS: '100',
    };
    const writer = await startTestServer(env);
    for (const name of SERVICES) {
      expect((await writer.admin('PUT', `/services/${name}`, serviceBody([`${name}.test`]))).status).toBe(201);
      const cluster = await writer.admin('PUT', `/services/${name}/clusters/ew1`, clusterBody('eu-west1', origin.url));
      expect(cluster.status).toBe(201);
    }
    await writer.close();
  });

  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await origin.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("holds no service at start, reads a host's service on its first request, and the whole for an admin view", async () => {
    const server = await startTestServer(env, { partialAbove: 1 });
    servers.push(server);
    expect(await ready(server)).toMatchObject({ status: 'ready', partial: true, services: 0 });
    const served = await server.request('shop.test', '/first');
    expect(served.status, served.body).toBe(200);
    expect(await ready(server)).toMatchObject({ partial: true, services: 1 });
    expect((await server.request('nowhere.test', '/')).status).toBe(404);

    const failover = await server.admin('GET', '/services/pay/failover');
    expect(failover.status).toBe(200);
    expect(await ready(server)).toMatchObject({ partial: false, services: SERVICES.length });
  });

  it('at or under the threshold it reads the whole configuration at start', async () => {
    const server = await startTestServer(env, { partialAbove: SERVICES.length });
    servers.push(server);
    expect(await ready(server)).toMatchObject({ partial: false, services: SERVICES.length });
  });

  it('with the store unreachable, a host it has not read yet is served from the snapshot file', async () => {
    const server = await startTestServer(env, { partialAbove: 1 });
    servers.push(server);
    expect((await server.request('shop.test', '/before')).status).toBe(200);
    store.setUnavailable(true);
    const served = await server.request('auth.test', '/while-down');
    expect(served.status, served.body).toBe(200);
    expect(origin.last().url).toBe('/while-down');
    expect(await ready(server)).toMatchObject({ status: 'degraded', partial: false, services: SERVICES.length });
  });
});
