import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request a receiver got: its headers, raw body and the body parsed. */
export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
}

/** A webhook receiver on 127.0.0.1: records every request, answers from a script of statuses (then 200). */
export interface Receiver {
  url: string;
  received: Received[];
  /** Statuses to answer next, in order; 'hold' keeps the request open until `release()`. */
  script: (number | 'hold')[];
  release(): void;
  stop(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const held: (() => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      receiver.received.push({ headers: req.headers, body, json: JSON.parse(body) as Record<string, unknown> });
      const next = receiver.script.shift() ?? 200;
      const answer = (status: number) => res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      if (next === 'hold') held.push(() => answer(200));
      else answer(next);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: [],
    script: [],
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
    stop: async () => {
      receiver.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return receiver;
}
