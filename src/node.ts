import { startNodeServer } from './node/server.js';
import { SettingsError } from './settings.js';

try {
  const server = await startNodeServer({ env: process.env });
  console.log(`waymark listening on ${server.url} (admin API at ${server.url}/_waymark/api/v1)`);
  // A graceful stop: in-flight requests and streams finish (up to WAYMARK_DRAIN_MS) before the exit.
  const stop = (signal: string) => {
    console.log(`waymark: ${signal}, draining`);
    void server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
} catch (error) {
  console.error(error instanceof SettingsError ? error.message : error);
  process.exit(1);
}
