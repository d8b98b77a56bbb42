import { Problem, renderProblem } from '../problem.js';
import { errorFields } from '../observe/log.js';
import { requestIdFrom } from '../observe/request-id.js';
import type { Runtime } from '../runtime.js';
import { fetchTransport } from './fetch-transport.js';
import { handleProxy, requestTarget, type Incoming, type ProxyReply } from './handle.js';
import { droppedResponseHeaders, isBodyless } from './headers.js';
import { Exchange } from './transport.js';

/** WebSocket close codes that may not be sent in a close frame (RFC 6455 §7.4.1). */
const RESERVED_CLOSE_CODES = new Set([1005, 1006, 1015]);

/**
 * The proxy on a fetch-style runtime (Workers): the client's Request in, the origin's Response out, with
 * Waymark's own answers as problem documents. `background` is waitUntil.
 */
export async function proxyFetch(
  request: Request,
  rt: Runtime,
  background: (work: Promise<unknown>) => void,
): Promise<Response> {
  const requestId = requestIdFrom(request.headers.get('x-request-id'));
  try {
    const reply = await handleProxy(
      incomingFrom(request),
      requestId,
      rt,
      { transport: fetchTransport, background },
      new Exchange(),
    );
    return toResponse(reply);
  } catch (error) {
    if (!(error instanceof Problem)) rt.log.log('error', 'unhandled error', { requestId, ...errorFields(error) });
    const problem =
      error instanceof Problem
        ? error
        : new Problem({
            code: 'internal',
            detail: 'an unexpected error occurred; the request id finds it in the logs',
          });
    const rendered = renderProblem(problem, requestId);
    return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
  }
}

function incomingFrom(request: Request): Incoming<ReadableStream<Uint8Array>> {
  const { headers, method, url } = request;
  const schemeEnd = url.indexOf('://');
  const pathStart = url.indexOf('/', schemeEnd + 3);
  const host = headers.get('host') ?? url.slice(schemeEnd + 3, pathStart < 0 ? undefined : pathStart);
  const declared = headers.get('content-length');
  // Decide from the headers first: touching request.body makes some runtimes build a stream for nothing.
  const hasBody =
    method !== 'GET' && method !== 'HEAD' && (declared === null ? request.body !== null : declared !== '0');
  return {
    method,
    hostValues: [host],
    proto: url.slice(0, schemeEnd),
    ...requestTarget(pathStart < 0 ? '/' : url.slice(pathStart)),
    header: (name) => headers.get(name),
    eachHeader: (visit) => headers.forEach((value, name) => visit(name, value)),
    peerIp: headers.get('cf-connecting-ip'),
    cf: (request as { cf?: Incoming<unknown>['cf'] }).cf,
    hasBody,
    contentLength: declared === null ? null : Number(declared),
    readBody: async () => new Uint8Array(await request.arrayBuffer()),
    body: request.body as ReadableStream<Uint8Array>,
    upgrade: headers.get('upgrade')?.toLowerCase() === 'websocket' ? 'websocket' : null,
  };
}

function toResponse(reply: ProxyReply<Response>): Response {
  const upstream = reply.response;
  const { status, finish } = reply;
  if (status === 101 && upstream.webSocket) {
    const webSocket = finish ? relay(upstream.webSocket, finish) : upstream.webSocket;
    return new Response(null, { status, webSocket, headers: withWaymarkHeaders(new Headers(upstream.headers), reply) });
  }
  let body = upstream.body;
  if (isBodyless(status)) {
    // No body to watch: the exchange is over now.
    fetchTransport.discard(upstream);
    finish?.();
    body = null;
  } else if (finish) body = finishAtEnd(body, finish);
  const response = new Response(body, {
    status,
    statusText: upstream.statusText,
    headers: upstream.headers,
    encodeBody: 'manual',
  });
  for (const name of droppedResponseHeaders(status, upstream.headers.get('connection'))) response.headers.delete(name);
  withWaymarkHeaders(response.headers, reply);
  return response;
}

function withWaymarkHeaders(headers: Headers, reply: ProxyReply<Response>): Headers {
  for (const [name, value] of Object.entries(reply.headers)) {
    if (name === 'server-timing') headers.append(name, value);
    else headers.set(name, value);
  }
  return headers;
}

/** Passes a body through and calls `done` once it ends, errors or is cancelled. */
function finishAtEnd(body: ReadableStream<Uint8Array> | null, done: () => void): ReadableStream<Uint8Array> | null {
  if (!body) {
    done();
    return null;
  }
  let finished = false;
  const finish = () => {
    if (!finished) {
      finished = true;
      done();
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: ended, value } = await reader.read();
        if (ended) {
          finish();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
}

/**
 * Relays messages between the client and the origin through a WebSocketPair, so the exchange's end
 * (either side closing) is seen: a route's concurrency limit counts open sockets.
 */
function relay(upstream: WebSocket, finish: () => void): WebSocket {
  const pair = new WebSocketPair();
  const client = pair[0];
  const server = pair[1];
  upstream.accept();
  server.accept();
  let open = true;
  const close = (to: WebSocket, code: number, reason: string) => {
    if (!open) return;
    open = false;
    finish();
    try {
      to.close(RESERVED_CLOSE_CODES.has(code) ? 1000 : code, reason);
    } catch {
      // Already closed.
    }
  };
  // A message may still arrive as the other side closes: it has nowhere to go.
  const pass = (to: WebSocket) => (event: MessageEvent) => {
    try {
      to.send(event.data);
    } catch {
      close(to, 1011, 'peer gone');
    }
  };
  server.addEventListener('message', pass(upstream));
  upstream.addEventListener('message', pass(server));
  server.addEventListener('close', (event) => close(upstream, event.code, event.reason));
  upstream.addEventListener('close', (event) => close(server, event.code, event.reason));
  server.addEventListener('error', () => close(upstream, 1011, 'client error'));
  upstream.addEventListener('error', () => close(server, 1011, 'origin error'));
  return client;
}
