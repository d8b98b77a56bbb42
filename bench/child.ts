/**
 * One server of the proxy benchmark, in its own process so that no two servers (nor the load generator)
 * share an event loop. Started by bench/proxy.ts with an IPC channel:
 *
 *   tsx bench/child.ts upstream
 *   tsx bench/child.ts bare <upstream-url>
 *   tsx bench/child.ts waymark <database-url> <admin-token>
 *
 * It answers { type: 'ready', url } once listening, { type: 'stats', ... } to { type: 'stats' }, and
 * closes its server and exits on { type: 'stop' } (a normal exit, so --cpu-prof profiles get written).
 */
import type { AddressInfo } from 'node:net';

// Each role imports only what it runs, so the bare proxy's process holds no Waymark code.

export type ChildRole = 'upstream' | 'bare' | 'waymark';

export type ChildMessage =
  | { type: 'ready'; url: string; pid: number }
  | { type: 'stats'; served: number; cpuUserUs: number; cpuSystemUs: number; rssMb: number }
  | { type: 'error'; message: string };

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

async function start(role: ChildRole, args: string[]): Promise<{ url: string; served: () => number; close: () => Promise<void> }> {
  if (role === 'upstream') {
    const { startUpstream } = await import('../scripts/upstream.js');
    const upstream = await startUpstream('bench-upstream', 'us-east1');
    return { url: upstream.url, served: () => upstream.served, close: () => upstream.stop() };
  }
  if (role === 'bare') {
    const upstream = args[0] as string;
    const { serve } = await import('@hono/node-server');
    const { Hono } = await import('hono');
    // The baseline: the thinnest Hono-on-Node fetch proxy.
    const app = new Hono();
    app.all('*', (c) => {
      const url = c.req.url;
      const q = url.indexOf('?');
      return fetch(upstream + c.req.path + (q < 0 ? '' : url.slice(q)));
    });
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    const port = (server.address() as AddressInfo).port;
    return {
      url: `http://127.0.0.1:${port}`,
      served: () => 0,
      close: () =>
        new Promise<void>((resolve) => {
          if ('closeAllConnections' in server) server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }
  const [databaseUrl, adminToken] = args as [string, string];
  const { silentLogger } = await import('../src/observe/log.js');
  const { startNodeServer } = await import('../src/node/server.js');
  const server = await startNodeServer({
    env: { WAYMARK_DATABASE_URL: databaseUrl, WAYMARK_ADMIN_TOKEN: adminToken, PORT: '0', HOST: '127.0.0.1' },
    log: silentLogger,
  });
  return { url: server.url, served: () => 0, close: () => server.close() };
}

const role = process.argv[2] as ChildRole;
try {
  const server = await start(role, process.argv.slice(3));
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stats') {
      const cpu = process.cpuUsage();
      send({ type: 'stats', served: server.served(), cpuUserUs: cpu.user, cpuSystemUs: cpu.system, rssMb: process.memoryUsage().rss / 2 ** 20 });
    } else if (message?.type === 'stop') {
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
