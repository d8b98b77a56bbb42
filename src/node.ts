import { startNodeServer } from './node/server.js';
import { SettingsError } from './settings.js';

try {
  const server = await startNodeServer({ env: process.env });
  console.log(`waymark listening on ${server.url} (admin API at ${server.url}/_waymark/api/v1)`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  console.error(error instanceof SettingsError ? error.message : error);
  process.exit(1);
}
