import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import {
  abortKind,
  Exchange,
  ExchangeAbort,
  tryAbort,
  type Transport,
  type TryFailure,
  type TryResult,
  type UpstreamRequest,
} from '../proxy/transport.js';

/** Errors that mean the connection was never made, so nothing was sent. */
const CONNECT_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);
/** undici refusing what it was asked to send: the request's doing, not the origin's. */
const UNSENDABLE_CODES = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
]);
/** A body that does not add up to its content-length: the client's doing. */
const CLIENT_BODY_CODES = new Set(['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH']);

/** The origin's answer on Node: undici's (or, for an upgrade, node:http's) response, untouched. */
export interface NodeUpstream {
  headers: IncomingHttpHeaders;
  /** The body; null for a 101. */
  body: Readable | null;
  /** After a 101: the origin's connection and what it sent past its headers. */
  socket: Duplex | null;
  head: Buffer | null;
}

export interface UndiciTransport extends Transport<Readable, NodeUpstream> {
  /** Closes the keep-alive pools. */
  close(): Promise<void>;
}

/**
 * The Node transport: undici's dispatcher (a keep-alive Pool per origin), not fetch, so nothing is
 * added to the request (no accept-language, sec-fetch-mode or user-agent), nothing is decoded in the
 * response (a gzip body reaches the client as the origin sent it), and any port or method the origin
 * speaks works. WebSocket handshakes go through node:http, which hands over the socket on a 101 and
 * gives any other answer as a response.
 */
export function undiciTransport(options: { streamIdleMs: number }): UndiciTransport {
  const pools = new Map<string, Pool>();
  const poolFor = (origin: string) => {
    let pool = pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, { keepAliveTimeout: 4_000 });
      pools.set(origin, pool);
    }
    return pool;
  };
  return {
    send(request, headersTimeoutMs, exchange) {
      if (request.upgrade) return upgrade(request, headersTimeoutMs, exchange);
      if (request.body instanceof Readable)
        return sendStreamed(
          poolFor(request.cluster.origin),
          request,
          request.body,
          headersTimeoutMs,
          exchange,
          options.streamIdleMs,
        );
      // Bytes or nothing: the request is sent at once, so the per-try timeout starts now. Not undici's
      // headersTimeout: it runs on undici's coarse timers (a 499 ms tick), so a 300 ms timeout fired
      // after 500 to 1000 ms. One native timer aborts the try's own signal, which follows the exchange.
      const { cluster } = request;
      const attempt = new Exchange();
      if (exchange.aborted) attempt.abort(exchange.reason as ExchangeAbort);
      else exchange.once('abort', () => attempt.abort(exchange.reason as ExchangeAbort));
      const timer = setTimeout(() => attempt.abort(new ExchangeAbort('timeout')), headersTimeoutMs);
      return new Promise((resolve) => {
        poolFor(cluster.origin).request(
          {
            path: request.path,
            method: request.method as 'GET',
            headers: cluster.originHost ? { ...request.headers, host: cluster.originHost } : request.headers,
            body: request.body as Uint8Array | null,
            signal: attempt,
            headersTimeout: 0,
            bodyTimeout: options.streamIdleMs,
          },
          (error, res) => {
            clearTimeout(timer);
            resolve(error ? failed(error, attempt, null) : answered(res));
          },
        );
      });
    },
    discard(response) {
      // undici errors a body destroyed before its end; nobody is reading it any more.
      response.body?.on('error', () => undefined).destroy();
      response.socket?.on('error', () => undefined).destroy();
    },
    close: async () => {
      await Promise.all([...pools.values()].map((pool) => pool.close()));
    },
  };
}

function answered(res: Dispatcher.ResponseData): TryResult<NodeUpstream> {
  return {
    ok: true,
    status: res.statusCode,
    response: { headers: res.headers, body: res.body, socket: null, head: null },
  };
}

/**
 * A streamed body: the per-try timeout starts when the client has sent its last byte (undici's own
 * headers timeout would run during the upload, and charge the cluster for a slow client).
 */
async function sendStreamed(
  pool: Pool,
  request: UpstreamRequest<Readable>,
  body: Readable,
  headersTimeoutMs: number,
  exchange: Exchange,
  streamIdleMs: number,
): Promise<TryResult<NodeUpstream>> {
  const { cluster } = request;
  const attempt = tryAbort(exchange, headersTimeoutMs);
  if (body.readableEnded) attempt.startTimer();
  else body.once('end', attempt.startTimer);
  try {
    const res = await pool.request({
      path: request.path,
      method: request.method as 'GET',
      headers: cluster.originHost ? { ...request.headers, host: cluster.originHost } : request.headers,
      body,
      signal: attempt.signal,
      headersTimeout: 0,
      bodyTimeout: streamIdleMs,
    });
    return answered(res);
  } catch (error) {
    return failed(error, attempt.signal, body);
  } finally {
    attempt.stopTimer();
    body.off('end', attempt.startTimer);
  }
}

/** A WebSocket (or other upgrade) handshake with one cluster. */
function upgrade(
  request: UpstreamRequest<Readable>,
  headersTimeoutMs: number,
  exchange: Exchange,
): Promise<TryResult<NodeUpstream>> {
  const { cluster } = request;
  const url = new URL(cluster.origin);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send({
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (url.protocol === 'https:' ? 443 : 80),
      path: request.path,
      method: request.method,
      headers: { ...request.headers, host: cluster.originHost ?? url.host, connection: 'upgrade' },
    });
    if (exchange.aborted) req.destroy(exchange.reason);
    else exchange.once('abort', () => req.destroy(exchange.reason));
    const timer = setTimeout(() => req.destroy(new ExchangeAbort('timeout')), headersTimeoutMs);
    req.once('upgrade', (res, socket, head) => {
      clearTimeout(timer);
      resolve({ ok: true, status: 101, response: { headers: res.headers, body: null, socket, head } });
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      resolve({
        ok: true,
        status: res.statusCode ?? 502,
        response: { headers: res.headers, body: res, socket: null, head: null },
      });
    });
    req.once('error', (error) => {
      clearTimeout(timer);
      resolve(failed(error, exchange, null));
    });
    req.end();
  });
}

/** What a failed try says: Waymark's own abort, the client's doing, or the origin's. */
function failed(
  error: unknown,
  signal: Exchange | AbortSignal,
  body: Readable | null,
): { ok: false; failure: TryFailure; message: string } {
  const aborted = error instanceof ExchangeAbort ? error.kind : abortKind(signal);
  if (aborted)
    return {
      ok: false,
      failure: aborted,
      message: error instanceof ExchangeAbort ? error.message : (signal.reason as Error).message,
    };
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (body && (body.errored || body.readableAborted || (body.destroyed && !body.readableEnded)))
    return { ok: false, failure: 'client-gone', message: 'the client stopped sending its body' };
  if (CLIENT_BODY_CODES.has(code)) return { ok: false, failure: 'client-gone', message };
  if (UNSENDABLE_CODES.has(code)) return { ok: false, failure: 'unsendable', message };
  if (CONNECT_ERROR_CODES.has(code)) return { ok: false, failure: 'connect-failure', message };
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return { ok: false, failure: 'timeout', message };
  return { ok: false, failure: 'reset', message };
}

function errorCode(error: unknown): string {
  const e = error as { code?: unknown; cause?: { code?: unknown } } | null;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : '';
}
