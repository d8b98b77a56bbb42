/**
 * `npm run dev`: the worker under `wrangler dev`, against a local libSQL database served over HTTP
 * (workerd can only reach libSQL over HTTP). The database is `.waymark/dev.db`, migrated first.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createClient } from '@libsql/client';
import { storeFromClient } from '../src/store/client.js';
import { migrateStore } from '../src/store/migrate.js';
import { startHranaServer } from './hrana-server.js';

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
const stop = () => wrangler.kill('SIGTERM');
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
wrangler.on('exit', (code) => void store.close().then(() => process.exit(code ?? 0)));
