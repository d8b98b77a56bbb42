import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { send } from '../../scripts/http-client.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startOrigin, type Origin } from '../support/origin.js';
import { startTestServer } from '../support/server.js';

/** A loopback port nothing listens on: the store refuses every connection. */
const REFUSING_STORE = 'http://127.0.0.1:59998';

// Found by `npm run chaos` (scenario 2): `npm start` while the remote store refused connections exited
// with code 13 (an unsettled top-level await) before listening: while it waited for its first try of the
// store, only unref'd timers were pending. In-process tests (test/e2e/store-outage.test.ts) could not see
// it: the test runner keeps the event loop alive.
describe('src/node.ts started while its remote store refuses connections', () => {
  let dir: string;
  let origin: Origin;
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await origin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens and routes from its snapshot file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'waymark-outage-process-'));
    origin = await startOrigin();
    const cache = join(dir, 'snapshot.json');
    // A first life, on a store that answers, leaves the snapshot file.
    const first = await startTestServer({ WAYMARK_SNAPSHOT_CACHE: cache });
    await first.admin('PUT', '/services/shop', serviceBody(['shop.test']));
    await first.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url));
    await first.close();

    const started = spawn(process.execPath, ['--import', 'tsx', 'src/node.ts'], {
      env: {
        ...process.env,
        WAYMARK_DATABASE_URL: REFUSING_STORE,
        WAYMARK_SNAPSHOT_CACHE: cache,
        WAYMARK_SYNC_INTERVAL_MS: '0',
        WAYMARK_LOG_LEVEL: 'silent',
        PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      started.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1] as string);
      });
      started.once('exit', (code) => reject(new Error(`waymark exited (${code}) before listening: ${out}`)));
    });
    const res = await send(`${url}/from-file`, { host: 'shop.test' });
    expect(res.status, res.body).toBe(200);
    const ready = await send(`${url}/_waymark/health/ready`);
    expect(ready.json).toMatchObject({ status: 'degraded', degraded: true });
  }, 20_000);
});
