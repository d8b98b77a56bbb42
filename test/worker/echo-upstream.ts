/**
 * Runs in Node (global setup): two origins for the workerd tests of the protocol edges.
 * - echo: a WebSocket echo server (`ws` in noServer mode on an http.Server; the message `bye` makes it
 *   close with 4000) that also answers ordinary requests with what it received, `/gzip` with a
 *   gzip-encoded text and `/no-content` with 204.
 * - refusing: answers every WebSocket handshake with 503 (ordinary requests, health checks included,
 *   get 200, so only the handshake fails).
 * Each records what it saw, for the tests to read through the control server.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { WebSocketServer, type WebSocket } from 'ws';

/** The text `/gzip` answers with, and its gzip bytes (provided to the tests as `origins.gzipText` and `gzipBase64`). */
export const GZIP_TEXT = 'waymark passes gzip through as the origin compressed it. '.repeat(40);
export const GZIP_BYTES = gzipSync(Buffer.from(GZIP_TEXT, 'utf8'));

export interface EchoState {
  /** Handshakes completed (101 sent). */
  upgrades: number;
  /** WebSockets currently open at the origin. */
  open: number;
  /** The headers of the last handshake. */
  lastUpgrade: IncomingHttpHeaders | null;
  /** The last ordinary request (not a handshake). */
  lastRequest: { method: string; path: string; headers: IncomingHttpHeaders } | null;
}

export interface RefusingState {
  /** Handshakes refused with 503. */
  refused: number;
}

export interface TestOrigin<State> {
  url: string;
  state: State;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
      server.closeAllConnections();
    });
}

export async function startEchoUpstream(): Promise<TestOrigin<EchoState>> {
  const state: EchoState = { upgrades: 0, open: 0, lastUpgrade: null, lastRequest: null };
  const sockets = new Set<Socket>();
  const clients = new Set<WebSocket>();
  const wss = new WebSocketServer({ noServer: true });
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      state.lastRequest = { method: req.method ?? '', path: req.url ?? '', headers: req.headers };
      if (req.url === '/no-content') return void res.writeHead(204).end();
      if (req.url === '/gzip') {
        res
          .writeHead(200, {
            'content-type': 'text/plain; charset=utf-8',
            'content-encoding': 'gzip',
            'content-length': String(GZIP_BYTES.length),
          })
          .end(GZIP_BYTES);
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ origin: 'echo', method: req.method, path: req.url, headers: req.headers }));
    });
  });
  server.on('upgrade', (req, socket: Socket, head) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    wss.handleUpgrade(req, socket, head, (ws) => {
      state.upgrades += 1;
      state.open += 1;
      state.lastUpgrade = req.headers;
      clients.add(ws);
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'bye') ws.close(4000, 'origin says bye');
        else ws.send(isBinary ? data : `echo:${data.toString()}`, { binary: isBinary });
      });
      ws.on('close', () => {
        state.open -= 1;
        clients.delete(ws);
      });
    });
  });
  const url = await listen(server);
  const closeServer = closer(server, sockets);
  return {
    url,
    state,
    async close() {
      for (const ws of clients) ws.terminate();
      wss.close();
      await closeServer();
    },
  };
}

export async function startRefusingUpstream(): Promise<TestOrigin<RefusingState>> {
  const state: RefusingState = { refused: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ready');
  });
  server.on('upgrade', (_req, socket: Socket) => {
    state.refused += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.end(
      'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused',
    );
  });
  const url = await listen(server);
  return { url, state, close: closer(server, sockets) };
}
