/**
 * `npm run demo`: three regional clusters on 127.0.0.1, Waymark's Node server in front of them, the
 * clusters registered through the admin API, and commands to paste to watch locality and failover.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { startNodeServer } from '../src/node/server.js';
import { demoInstructions, seedDemo, startDemoFleet } from './demo-fleet.js';

const DB_FILE = '.waymark/demo.db';

const token = process.env.WAYMARK_ADMIN_TOKEN ?? `demo-${randomBytes(12).toString('hex')}`;
for (const suffix of ['', '-wal', '-shm']) rmSync(DB_FILE + suffix, { force: true });

const fleet = await startDemoFleet();
const server = await startNodeServer({
  env: {
    ...process.env,
    WAYMARK_DATABASE_URL: `file:${DB_FILE}`,
    WAYMARK_ADMIN_TOKEN: token,
    WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
    WAYMARK_SNAPSHOT_REFRESH_MS: process.env.WAYMARK_SNAPSHOT_REFRESH_MS ?? '1000',
  },
});
await seedDemo(server.url, token, fleet);
console.log(demoInstructions(server.url, token, fleet));

const stop = async () => {
  await server.close();
  await fleet.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
