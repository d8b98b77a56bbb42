import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a fake cluster behaves for ordinary requests (its health endpoint has its own switch). */
export type UpstreamMode = 'ok' | 'fail' | 'hang';

/**
 * A small regional cluster on 127.0.0.1 for the demo, tests and benchmarks: answers every request
 * with its name and what it received, and serves `/health/ready`. It can be stopped and started again
 * on the same port, made to fail (503 or `failStatus`) or to hang, and counts what it served.
 */
export interface Upstream {
  name: string;
  region: string;
  url: string;
  port: number;
  mode: UpstreamMode;
  /** The status answered in 'fail' mode. */
  failStatus: number;
  healthy: boolean;
  /** When set, ordinary requests are answered this many ms after they arrive (a slow cluster). */
  delayMs?: number;
  /** Requests received (health checks excluded). */
  served: number;
  lastRequest: { method: string; path: string; headers: IncomingMessage['headers']; body: string } | null;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/** Options of `startUpstream`. */
export interface UpstreamOptions {
  /** Called for every ordinary request (health checks excluded) as it arrives, before it is answered. */
  onRequest?: (req: IncomingMessage) => void;
}

export async function startUpstream(
  name: string,
  region: string,
  port = 0,
  options: UpstreamOptions = {},
): Promise<Upstream> {
  let server: Server | null = null;
  const hanging = new Set<ServerResponse>();
  const upstream: Upstream = {
    name,
    region,
    url: '',
    port,
    mode: 'ok',
    failStatus: 503,
    healthy: true,
    served: 0,
    lastRequest: null,
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      for (const res of hanging) res.destroy();
      hanging.clear();
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    async start() {
      if (server) return;
      const s = createServer((req, res) => handle(upstream, hanging, req, res, options));
      s.keepAliveTimeout = 5_000;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(upstream.port, '127.0.0.1', () => resolve());
      });
      server = s;
      upstream.port = (s.address() as AddressInfo).port;
      upstream.url = `http://127.0.0.1:${upstream.port}`;
    },
  };
  await upstream.start();
  return upstream;
}

function handle(
  upstream: Upstream,
  hanging: Set<ServerResponse>,
  req: IncomingMessage,
  res: ServerResponse,
  options: UpstreamOptions,
): void {
  if (req.url === '/health/ready') {
    res
      .writeHead(upstream.healthy ? 200 : 503, { 'content-type': 'text/plain' })
      .end(upstream.healthy ? 'ready' : 'not ready');
    return;
  }
  options.onRequest?.(req);
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    upstream.served += 1;
    const body = Buffer.concat(chunks).toString('utf8');
    upstream.lastRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
    if (upstream.mode === 'hang') {
      hanging.add(res);
      res.on('close', () => hanging.delete(res));
      return;
    }
    const status = upstream.mode === 'fail' ? upstream.failStatus : 200;
    const payload = JSON.stringify({
      cluster: upstream.name,
      region: upstream.region,
      method: req.method,
      path: req.url,
      body,
    });
    const answer = () =>
      res.writeHead(status, { 'content-type': 'application/json', 'x-served-by': upstream.name }).end(payload);
    const delayMs = upstream.delayMs ?? 0;
    if (delayMs <= 0) {
      answer();
      return;
    }
    // A slow answer is held like a hanging one, so stop() still closes it.
    hanging.add(res);
    const timer = setTimeout(() => {
      hanging.delete(res);
      if (!res.destroyed) answer();
    }, delayMs);
    res.on('close', () => {
      clearTimeout(timer);
      hanging.delete(res);
    });
  });
}
