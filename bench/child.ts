/**
 * One server of the proxy and WebSocket benchmarks, in its own process so that no two servers (nor the load generator)
 * share an event loop. Started by bench/proxy.ts with an IPC channel:
 *
 *   tsx bench/child.ts upstream
 *   tsx bench/child.ts bare <upstream-url>        (Hono on @hono/node-server, fetch())
 *   tsx bench/child.ts undici <upstream-url>      (node:http + undici Pool: the bare undici baseline)
 *   tsx bench/child.ts ws-echo                    (an HTTP upstream that also echoes WebSocket messages)
 *   tsx bench/child.ts waymark <database-url> <admin-token>
 *
 * It answers { type: 'ready', url } once listening, { type: 'stats', ... } to { type: 'stats' }, and
 * closes its server and exits on { type: 'stop' } (a normal exit, so --cpu-prof profiles get written).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';

// Each role imports only what it runs, so the bare proxy's process holds no Waymark code.

export type ChildRole = 'upstream' | 'bare' | 'undici' | 'ws-echo' | 'waymark';

export type ChildMessage =
  | { type: 'ready'; url: string; pid: number }
  | { type: 'stats'; served: number; cpuUserUs: number; cpuSystemUs: number; rssMb: number }
  | { type: 'error'; message: string };

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

interface Started {
  url: string;
  /** Requests (or, for ws-echo, WebSocket messages) served so far. */
  served: () => number;
  close: () => Promise<void>;
}

/** RFC 9110 section 7.6.1 connection-specific fields, plus Host (the pool's origin sets it). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

async function start(role: ChildRole, args: string[]): Promise<Started> {
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
  if (role === 'undici') {
    const upstream = args[0] as string;
    const { Pool } = await import('undici');
    // The baseline the Node forwarder is held to: undici's request() on a keep-alive pool, piped as is.
    const pool = new Pool(upstream, { connections: 64 });
    const server = createServer((req, res) => {
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined && name !== 'host' && !HOP_BY_HOP.has(name)) headers[name] = value;
      }
      const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
      pool
        .request({
          method: req.method as Dispatcher.HttpMethod,
          path: req.url ?? '/',
          headers,
          body: hasBody ? req : null,
        })
        .then(
          ({ statusCode, headers: answer, body }) => {
            const out: Record<string, string | string[]> = {};
            for (const [name, value] of Object.entries(answer))
              if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
            res.writeHead(statusCode, out);
            body.pipe(res);
          },
          () => {
            if (!res.headersSent) res.writeHead(502);
            res.end();
          },
        );
    });
    const url = await listen(server);
    return { url, served: () => 0, close: () => closeServer(server).then(() => pool.close()) };
  }
  if (role === 'ws-echo') {
    const { WebSocketServer } = await import('ws');
    let served = 0;
    // Answers plain HTTP like scripts/upstream.ts (so Waymark's routing check and health probe pass) and
    // echoes every WebSocket message on any path.
    const server = createServer((req, res) => {
      if (req.url === '/health/ready') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'bench-upstream' });
        res.end(
          JSON.stringify({
            cluster: 'bench-upstream',
            region: 'us-east1',
            method: req.method,
            path: req.url,
            body: '',
          }),
        );
      });
    });
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    wss.on('connection', (socket) => {
      socket.on('message', (data, isBinary) => {
        served += 1;
        socket.send(data, { binary: isBinary });
      });
    });
    const url = await listen(server);
    return {
      url,
      served: () => served,
      close: async () => {
        for (const client of wss.clients) client.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await closeServer(server);
      },
    };
  }
  const [databaseUrl, adminToken] = args as [string, string];
  const { silentLogger } = await import('../src/observe/log.js');
  const { startNodeServer } = await import('../src/node/server.js');
  const server = await startNodeServer({
    // No access log: nginx runs with access_log off beside it (bench/nginx.ts).
    env: {
      WAYMARK_DATABASE_URL: databaseUrl,
      WAYMARK_ADMIN_TOKEN: adminToken,
      WAYMARK_ACCESS_LOG_SAMPLE: '0',
      PORT: '0',
      HOST: '127.0.0.1',
    },
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
      send({
        type: 'stats',
        served: server.served(),
        cpuUserUs: cpu.user,
        cpuSystemUs: cpu.system,
        rssMb: process.memoryUsage().rss / 2 ** 20,
      });
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
