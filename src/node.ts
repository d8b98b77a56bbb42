import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { startNodeServer } from './node/server.js';
import { parseSettings, SettingsError } from './settings.js';

try {
  const settings = parseSettings(process.env);
  const processes = settings.WAYMARK_PROCESSES === 'auto' ? availableParallelism() : settings.WAYMARK_PROCESSES;
  if (cluster.isPrimary && processes > 1) runPrimary(processes);
  else await runServer();
} catch (error) {
  console.error(error instanceof SettingsError ? error.message : error);
  process.exit(1);
}

/** One server process: listen, and drain gracefully on a signal. */
async function runServer(): Promise<void> {
  const server = await startNodeServer({ env: process.env });
  const which = cluster.isWorker ? `, process ${process.pid}` : '';
  console.log(`waymark listening on ${server.url} (admin API at ${server.url}/_waymark/api/v1${which})`);
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
}

/**
 * WAYMARK_PROCESSES > 1: that many server processes share one port (node:cluster hands connections out);
 * each loads its own snapshot; the store's leases let one at a time migrate and run the health sync. A
 * process that dies is replaced; a signal drains them all, and the primary exits when they have.
 */
function runPrimary(processes: number): void {
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < processes; i++) fork();
  cluster.on('exit', (worker, code) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    console.error(`waymark: process ${worker.process.pid} exited (${code}); starting another`);
    fork();
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    console.log(`waymark: ${signal}, draining ${processes} processes`);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}
