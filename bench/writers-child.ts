/**
 * The Waymark Node server of the `writers` section, in its own process (started by bench/writers.ts with an
 * IPC channel), configured as bench/scale-child.ts configures it (snapshot cache and health sync off):
 *
 *   tsx bench/writers-child.ts <database-url> <admin-token>
 *
 * It answers { type: 'ready', url, pid } once listening; to { type: 'stats' } it answers with its CPU time,
 * its revision, its event-loop delay and its snapshot reloads since the previous stats (those two are reset
 * at each stats, so one stats before and one after a phase give the phase's figures); { type: 'stop' } closes
 * the server and exits. Nothing here runs on the request path: the proxy and the admin API are Waymark's own.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

export type WritersChildMessage =
  | { type: 'ready'; url: string; pid: number }
  | {
      type: 'stats';
      cpuUserUs: number;
      cpuSystemUs: number;
      /** The snapshot's revision now. */
      revision: number;
      /** Event-loop delay since the previous stats (ms; 1 ms resolution). */
      loopDelayP99Ms: number;
      loopDelayMaxMs: number;
      /** Snapshot reloads started since the previous stats, and how long each took (wall clock, ms). */
      reloadsMs: number[];
    }
  | { type: 'error'; message: string };

const send = (message: WritersChildMessage): void => {
  process.send?.(message);
};

const [databaseUrl = '', adminToken = ''] = process.argv.slice(2);
try {
  const { startNodeServer } = await import('../src/node/server.js');
  const { silentLogger } = await import('../src/observe/log.js');
  const server = await startNodeServer({
    env: {
      WAYMARK_DATABASE_URL: databaseUrl,
      WAYMARK_ADMIN_TOKEN: adminToken,
      WAYMARK_SNAPSHOT_CACHE: 'off',
      // No health probes of thousands of clusters at made-up origins while measuring.
      WAYMARK_SYNC_INTERVAL_MS: '0',
      WAYMARK_DRAIN_MS: '0',
      WAYMARK_ACCESS_LOG_SAMPLE: '0',
      PORT: '0',
      HOST: '127.0.0.1',
    },
    log: silentLogger,
  });
  const { snapshots } = server.runtime;

  // Times each reload: refresh() hands concurrent callers the same promise, so a new promise is a new reload.
  let reloadsMs: number[] = [];
  let last: Promise<void> | null = null;
  const refresh = snapshots.refresh.bind(snapshots);
  snapshots.refresh = () => {
    const t = performance.now();
    const p = refresh();
    if (p !== last) {
      last = p;
      void p.finally(() => reloadsMs.push(performance.now() - t)).catch(() => undefined);
    }
    return p;
  };

  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stats') {
      const cpu = process.cpuUsage();
      send({
        type: 'stats',
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        revision: snapshots.current?.version ?? 0,
        loopDelayP99Ms: loop.percentile(99) / 1e6,
        loopDelayMaxMs: loop.max / 1e6,
        reloadsMs,
      });
      loop.reset();
      reloadsMs = [];
    } else if (message?.type === 'stop') {
      loop.disable();
      const exit = setTimeout(() => process.exit(0), 3_000);
      exit.unref();
      void server.close().finally(() => process.exit(0));
    }
  });
  // Never outlive the benchmark.
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', url: server.url, pid: process.pid });
} catch (error) {
  send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  process.exit(1);
}
