import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { gzipSync } from 'node:zlib';
import { WebSocketServer } from 'ws';

/** The text behind /gzip, and its gzip bytes as the origin sends them. */
const GZIP_TEXT = 'waymark passes compressed bytes through untouched. '.repeat(200);
export const GZIP_BYTES = gzipSync(GZIP_TEXT);

interface SeenRequest {
  method: string;
  url: string;
  /** Header names and values exactly as received, in order (names lowercased). */
  headers: [string, string][];
  bodyBytes: number;
}

/**
 * An origin for data-plane tests on 127.0.0.1: it records what it received and answers by path.
 *   /echo            200 JSON with what it received (after reading the whole body)
 *   /gzip            GZIP_BYTES with content-encoding: gzip
 *   /sse             an event stream: one event, then holds until release() is called, then another and ends
 *   /nocontent       204 that also claims content-length: 5
 *   /stall           headers and one chunk, then nothing more
 *   /drip            a chunk every 100 ms, forever
 *   /delay?ms=N      200 after N ms
 *   /ws              a WebSocket echo (or 503 to the handshake when refuseUpgrade is set)
 */
export interface Origin {
  url: string;
  seen: SeenRequest[];
  last(): SeenRequest;
  refuseUpgrade: boolean;
  /** Lets /sse finish its stream. */
  release(): void;
  stop(): Promise<void>;
}

export async function startOrigin(): Promise<Origin> {
  const sockets = new Set<Socket>();
  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  let releaseSse: (() => void) | null = null;
  const origin: Origin = {
    url: '',
    seen: [],
    last: () => origin.seen.at(-1) as SeenRequest,
    refuseUpgrade: false,
    release: () => releaseSse?.(),
    stop: async () => {
      for (const client of wss.clients) client.terminate();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const record = (req: IncomingMessage, bodyBytes: number) => {
    const headers: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      headers.push([(req.rawHeaders[i] as string).toLowerCase(), req.rawHeaders[i + 1] as string]);
    origin.seen.push({ method: req.method ?? '', url: req.url ?? '', headers, bodyBytes });
  };
  const server: Server = createServer((req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      record(req, bytes);
      answer(req, res, bytes, (release) => (releaseSse = release));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req, socket, head) => {
    record(req, 0);
    if (origin.refuseUpgrade) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return origin;
}

function answer(req: IncomingMessage, res: ServerResponse, bytes: number, onSse: (release: () => void) => void): void {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/gzip') {
    res
      .writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': GZIP_BYTES.length })
      .end(GZIP_BYTES);
  } else if (path === '/sse') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: first\n\n');
    onSse(() => res.end('data: last\n\n'));
  } else if (path === '/nocontent') {
    res.writeHead(204, { 'content-length': '5' }).end();
  } else if (path === '/stall') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first');
  } else if (path === '/drip') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const timer = setInterval(() => res.write('.'), 100);
    res.once('close', () => clearInterval(timer));
  } else if (path === '/delay') {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    const timer = setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('late'), ms);
    res.once('close', () => clearTimeout(timer));
  } else {
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ method: req.method, url: req.url, bodyBytes: bytes }));
  }
}
