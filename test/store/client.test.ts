import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, LibsqlError } from '@libsql/client';
import { afterEach, describe, expect, it } from 'vitest';
import { startHranaServer } from '../../scripts/hrana-server.js';
import { STORE_REQUEST_TIMEOUT_MS, storeConfig } from '../../src/store/client.js';
import { serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Found by `npm run chaos` (scenario 2, store faults): a remote store that refused connections made the
// client throw a bare TypeError ("fetch failed"), which the admin API answered as a 500 `internal`; one
// that accepted connections and never answered held every store call (and a cold start) forever.
describe('a remote store that cannot be reached', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('refusing connections: the client fails with a LibsqlError, and an admin write answers 503 store-unavailable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'waymark-client-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = await startHranaServer({ dbPath: join(dir, 'remote.db') });
    const server: TestServer = await startTestServer({ WAYMARK_DATABASE_URL: store.url });
    cleanups.push(() => server.close());
    expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.test']))).status).toBe(201);

    await store.close();
    const direct = createClient(storeConfig(store.url));
    const error = await direct.execute('select 1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LibsqlError);
    expect((error as LibsqlError).code).toBe('STORE_UNREACHABLE');
    direct.close();

    const write = await server.admin('PUT', '/services/blog', serviceBody(['blog.test']));
    expect(write.status, write.body).toBe(503);
    expect(write.headers['content-type']).toBe('application/problem+json');
    expect(write.json).toMatchObject({ code: 'store-unavailable' });
  });

  it('accepting connections and never answering: a call fails after STORE_REQUEST_TIMEOUT_MS', async () => {
    const held = new Set<Socket>();
    const silent: Server = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of held) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const client = createClient(storeConfig(`http://127.0.0.1:${(silent.address() as { port: number }).port}`));
    cleanups.push(() => client.close());
    const started = performance.now();
    const error = await client.execute('select 1').catch((e: unknown) => e);
    const tookMs = performance.now() - started;
    expect((error as LibsqlError).code).toBe('STORE_UNREACHABLE');
    expect(tookMs).toBeGreaterThanOrEqual(STORE_REQUEST_TIMEOUT_MS - 50);
    expect(tookMs).toBeLessThan(STORE_REQUEST_TIMEOUT_MS + 3_000);
  }, 20_000);
});
