import { ServerResponse, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { Problem, renderProblem } from '../problem.js';
import { errorFields } from '../observe/log.js';
import { requestIdFrom } from '../observe/request-id.js';
import {
  connectRefused,
  handleProxy,
  requestTarget,
  type Incoming,
  type ProxyReply,
  type ProxyTools,
} from '../proxy/handle.js';
import { droppedResponseHeaders, isBodyless } from '../proxy/headers.js';
import { Exchange, ExchangeAbort } from '../proxy/transport.js';
import type { Runtime } from '../runtime.js';
import type { NodeUpstream, UndiciTransport } from './undici-transport.js';

/** The proxy on node:http: requests, upgrades (WebSocket) and CONNECT, with the exchanges in flight counted for a drain. */
export interface NodeProxy {
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** CONNECT is answered 405: Waymark is not a forward proxy. */
  onConnect(req: IncomingMessage, socket: Duplex): void;
  /** Resolves once nothing is in flight. */
  idle(): Promise<void>;
  /** From now on answers carry `connection: close` so keep-alive clients move to another instance. */
  drain(): void;
  /** Closes the upgraded connections still open (the server closes the rest). */
  cut(): void;
}

export function createNodeProxy(rt: Runtime, transport: UndiciTransport): NodeProxy {
  const tools: ProxyTools<Readable, NodeUpstream> = {
    transport,
    // The event loop keeps background work alive in Node; failures are logged where they happen.
    background: (work) => void work.catch(() => undefined),
  };
  let inFlight = 0;
  let draining = false;
  let waiters: (() => void)[] = [];
  const spliced = new Set<Duplex>();
  const begin = () => void (inFlight += 1);
  const end = () => {
    inFlight -= 1;
    if (inFlight === 0 && waiters.length) {
      for (const w of waiters) w();
      waiters = [];
    }
  };

  const proxy = (req: IncomingMessage, res: ServerResponse, upgrade: string | null) => {
    const requestId = requestIdFrom(single(req.headers['x-request-id']));
    const exchange = new Exchange();
    let finish: (() => void) | null = null;
    // The one listener per exchange: a client gone before the end aborts what is in flight upstream
    // (and the body streaming from it), and the exchange's slot and deadline are released.
    res.once('close', () => {
      if (!res.writableFinished) exchange.abort(new ExchangeAbort('client-gone'));
      finish?.();
      end();
    });
    handleProxy(incomingFrom(req, rt, upgrade), requestId, rt, tools, exchange).then(
      (reply) => {
        finish = reply.finish;
        if (!res.destroyed) return write(req, res, reply, draining, spliced, transport);
        transport.discard(reply.response);
        finish?.();
      },
      (error: unknown) => {
        if (!(error instanceof Problem)) rt.log.log('error', 'unhandled error', { requestId, ...errorFields(error) });
        const problem =
          error instanceof Problem
            ? error
            : new Problem({
                code: 'internal',
                detail: 'an unexpected error occurred; the request id finds it in the logs',
              });
        writeProblem(res, problem, requestId, draining);
      },
    );
  };

  return {
    onRequest(req, res) {
      begin();
      proxy(req, res, null);
    },
    onUpgrade(req, socket, head) {
      begin();
      const protocol = single(req.headers.upgrade)?.toLowerCase() ?? '';
      // A response object on the socket writes Waymark's own answers (and refusals) like any other.
      const res = onSocket(req, socket);
      if (protocol !== 'websocket') {
        res.once('close', end);
        writeProblem(
          res,
          new Problem({
            code: 'unsupported-upgrade',
            detail: `only WebSocket upgrades are proxied, not "${protocol}"`,
          }),
          requestIdFrom(undefined),
          true,
        );
        return;
      }
      if (head.length) socket.unshift(head);
      proxy(req, res, 'websocket');
    },
    onConnect(req, socket) {
      begin();
      const res = onSocket(req, socket);
      res.once('close', end);
      writeProblem(res, connectRefused(), requestIdFrom(undefined), true);
    },
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    drain: () => void (draining = true),
    cut: () => {
      for (const socket of spliced) socket.destroy();
    },
  };
}

/**
 * A response object on a connection taken out of the HTTP server (an upgrade, a CONNECT), so Waymark's
 * own answers and an origin's refusal are written like any other; the connection ends after it.
 */
function onSocket(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.assignSocket(socket as never);
  res.shouldKeepAlive = false;
  res.once('finish', () => socket.end());
  return res;
}

/** The client's request as the proxy reads it. */
function incomingFrom(req: IncomingMessage, rt: Runtime, upgrade: string | null): Incoming<Readable> {
  const h = req.headers;
  const raw = req.rawHeaders;
  const hostValues: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') hostValues.push(raw[i + 1] as string);
  }
  const declared = h['content-length'];
  const peer = req.socket.remoteAddress ?? null;
  // Behind trusted proxies (TLS terminated in front), the scheme the client used is theirs to say.
  const forwardedProto = rt.settings.WAYMARK_TRUSTED_HOPS > 0 ? single(h['x-forwarded-proto']) : undefined;
  return {
    method: req.method ?? 'GET',
    hostValues,
    proto: forwardedProto === 'https' || forwardedProto === 'http' ? forwardedProto : 'http',
    ...requestTarget(req.url?.startsWith('/') ? req.url : originForm(req.url)),
    header: (name) => single(h[name]) ?? null,
    eachHeader: (visit) => {
      for (const name in h) {
        const value = h[name];
        if (value !== undefined) visit(name, Array.isArray(value) ? value.join(', ') : value);
      }
    },
    peerIp: peer?.startsWith('::ffff:') ? peer.slice(7) : peer,
    hasBody: upgrade === null && (declared !== undefined ? declared !== '0' : h['transfer-encoding'] !== undefined),
    contentLength: declared === undefined ? null : Number(declared),
    readBody: () => readAll(req),
    body: req,
    upgrade,
  };
}

/** Writes the origin's answer: its status, headers (less hop-by-hop) and body, streamed as it comes. */
function write(
  req: IncomingMessage,
  res: ServerResponse,
  reply: ProxyReply<NodeUpstream>,
  draining: boolean,
  spliced: Set<Duplex>,
  transport: UndiciTransport,
): void {
  const { status, response } = reply;
  const headers: OutgoingHttpHeaders = response.headers;
  for (const name of droppedResponseHeaders(status, single(response.headers.connection)))
    if (headers[name] !== undefined) delete headers[name];
  const ours = reply.headers;
  for (const name in ours) {
    const prior = headers[name];
    headers[name] = name === 'server-timing' && prior !== undefined ? `${String(prior)}, ${ours[name]}` : ours[name];
  }
  if (response.socket) {
    const upstream = response.socket;
    spliced.add(upstream);
    upstream.once('close', () => spliced.delete(upstream));
    splice(res, headers, upstream, response.head);
    return;
  }
  if (draining) headers.connection = 'close';
  res.writeHead(status, headers);
  const body = response.body;
  if (!body || isBodyless(status) || req.method === 'HEAD') {
    transport.discard(response);
    res.end();
    return;
  }
  // A body that fails half way (origin reset, deadline, idle timeout) cuts the client's response too:
  // the status has been sent, so the client must not take a truncated body for a whole one. A client
  // gone half way aborts the exchange, which ends this body (see the close listener above).
  body.on('error', () => res.destroy());
  body.pipe(res);
}

/** A 101: the client's connection and the origin's are joined, byte for byte, until either side closes. */
function splice(res: ServerResponse, headers: OutgoingHttpHeaders, upstream: Duplex, head: Buffer | null): void {
  const client = res.socket as Duplex;
  let text = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) text += `${name}: ${v}\r\n`;
  }
  res.detachSocket(client as never);
  client.write(`${text}\r\n`);
  if (head?.length) client.write(head);
  const close = () => {
    client.destroy();
    upstream.destroy();
    res.emit('close');
  };
  client.once('close', close);
  upstream.once('close', close);
  client.on('error', close);
  upstream.on('error', close);
  upstream.pipe(client);
  client.pipe(upstream);
}

function writeProblem(res: ServerResponse, problem: Problem, requestId: string, close: boolean): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const rendered = renderProblem(problem, requestId);
  const headers: OutgoingHttpHeaders =
    rendered.body === null
      ? { ...rendered.headers }
      : { ...rendered.headers, 'content-length': Buffer.byteLength(rendered.body) };
  if (close) headers.connection = 'close';
  res.writeHead(rendered.status, headers);
  res.end(rendered.body ?? undefined);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** An absolute-form request target (`GET http://host/path`) as origin-form. */
function originForm(url: string | undefined): string {
  if (!url) return '/';
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return '/';
  }
}

function readAll(stream: Readable): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}
