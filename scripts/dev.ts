/**
 * `npm run dev`: the worker under `wrangler dev`, against a local libSQL database served over HTTP
 * (workerd can only reach libSQL over HTTP). The database is `.waymark/dev.db`, migrated first. Once the
 * worker is ready, the demo's services and local upstreams are there too (scripts/demo-fleet.ts).
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createClient } from '@libsql/client';
import { storeFromClient } from '../src/store/client.js';
import { migrateStore } from '../src/store/migrate.js';
import { demoInstructions, seedDemo, startDemoFleet } from './demo-fleet.js';
import { startHranaServer } from './hrana-server.js';
import { send } from './http-client.js';

const DB_PATH = '.waymark/dev.db';
mkdirSync('.waymark', { recursive: true });
const client = createClient({ url: `file:${DB_PATH}` });
const migrated = await migrateStore(storeFromClient(client), { holder: 'npm-run-dev' });
if (!migrated.ok) throw new Error(migrated.message);
client.close();
const store = await startHranaServer({ dbPath: DB_PATH });

const token = process.env.WAYMARK_ADMIN_TOKEN ?? 'dev-admin-token-change-me';
console.log(`libSQL over HTTP at ${store.url} (${DB_PATH}); admin token: ${token}`);
const wrangler = spawn(
  'node_modules/.bin/wrangler',
  [
    'dev',
    '--ip',
    '127.0.0.1',
    '--port',
    process.env.PORT ?? '8787',
    '--var',
    `WAYMARK_DATABASE_URL:${store.url}`,
    '--var',
    `WAYMARK_ADMIN_TOKEN:${token}`,
    '--var',
    'WAYMARK_TRUST_LOCALITY_HEADERS:true',
    ...process.argv.slice(2),
  ],
  {
    stdio: 'inherit',
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: 'false',
      WRANGLER_SEND_ERROR_REPORTS: 'false',
      CLOUDFLARE_CF_FETCH_ENABLED: 'false',
      XDG_CONFIG_HOME: process.env.XDG_CONFIG_HOME ?? '.wrangler/config',
    },
  },
);
const fleet = await startDemoFleet();
const baseUrl = `http://127.0.0.1:${process.env.PORT ?? '8787'}`;
void (async () => {
  // Wait for the worker, then register the demo's service (an existing one is updated in place).
  for (let i = 0; i < 120; i++) {
    const ready = await send(`${baseUrl}/_waymark/health/ready`).catch(() => null);
    if (ready && ready.status < 500) {
      await seedDemo(baseUrl, token, fleet);
      console.log(demoInstructions(baseUrl, token, fleet));
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  console.error(`the worker did not answer at ${baseUrl} within a minute; the demo services were not registered`);
})().catch((error: unknown) => console.error('registering the demo services failed:', error));
const stop = () => wrangler.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
wrangler.on('exit', (code) => void Promise.all([store.close(), fleet.stop()]).then(() => process.exit(code ?? 0)));
