import type { Cluster } from '../routing/types.js';
import { downstreamHeaders } from './headers.js';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Errors that mean the connection was never made, so nothing was sent (Node's codes). */
const CONNECT_ERROR_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

/** When and how often a request may move on to the next cluster. */
export interface TryPolicy {
  perTryTimeoutMs: number;
  /** The whole request's deadline (ms from its start); null: none beyond the per-try timeouts. */
  timeoutMs: number | null;
  /** connect-failure, reset, timeout, 5xx, gateway-error, retriable-4xx, or status codes. */
  retryOn: ReadonlySet<string>;
  /** Retry non-idempotent methods after a response, reset or timeout too (never by default). */
  nonIdempotent: boolean;
  /** Bodies up to this size are buffered so they can be replayed; larger ones stream, once. */
  bufferBytes: number;
  /** Takes a retry from the budget; false: no more retries for now. */
  allowRetry: () => boolean;
  /** A concurrency limit per cluster, when the route has one. */
  limit: ConcurrencySlots | null;
}

export interface ConcurrencySlots {
  /** Takes a slot before a try; false: the cluster is full (overflow). */
  admit: (cluster: Cluster) => boolean;
  /** Gives the slot back once the try's response has been streamed, failed or been discarded. */
  done: (cluster: Cluster) => void;
}

export type Outcome = 'response' | 'retry-status' | 'connect-failure' | 'reset' | 'timeout' | 'overflow';

/** One try at one cluster. */
export interface Attempt {
  cluster: Cluster;
  outcome: Outcome;
  status?: number;
  ms: number;
}

export type ForwardResult =
  | { ok: true; response: Response; cluster: Cluster; attempts: Attempt[] }
  | { ok: false; failure: 'connect-failure' | 'reset' | 'timeout' | 'overflow' | 'deadline'; message: string; attempts: Attempt[] };

/** A request body read once, for the tries (and a mirror) to share. */
export interface PreparedBody {
  body: BodyInit | null;
  /** The bytes, when the body was small enough to buffer (or empty). */
  buffered: ArrayBuffer | null;
  replayable: boolean;
}

/**
 * Sends the request to the clusters in order until one answers well enough. Another cluster is tried
 * after an outcome the policy retries on, while the retry budget and the deadline allow; a method that
 * is not idempotent moves on only after a connect failure (nothing was sent) unless the policy says so.
 * Bodies stream both ways; small request bodies are buffered so they can be replayed.
 */
export async function forward(
  request: Request,
  pathAndQuery: string,
  headers: Headers,
  clusters: readonly Cluster[],
  prepared: PreparedBody,
  policy: TryPolicy,
  now: () => number,
): Promise<ForwardResult> {
  const started = now();
  const idempotent = IDEMPOTENT_METHODS.has(request.method) || policy.nonIdempotent;
  const attempts: Attempt[] = [];
  let failure: { kind: 'connect-failure' | 'reset' | 'timeout' | 'deadline'; message: string } = { kind: 'deadline', message: 'no try was made' };

  for (let i = 0; i < clusters.length; i++) {
    const cluster = clusters[i] as Cluster;
    const last = i === clusters.length - 1 || !prepared.replayable;
    const left = policy.timeoutMs === null ? Number.POSITIVE_INFINITY : policy.timeoutMs - (now() - started);
    if (left <= 0) {
      failure = { kind: 'deadline', message: `the route's ${policy.timeoutMs} ms deadline passed` };
      break;
    }
    if (policy.limit && !policy.limit.admit(cluster)) {
      attempts.push({ cluster, outcome: 'overflow', ms: 0 });
      return { ok: false, failure: 'overflow', message: `cluster ${cluster.name} is at its concurrency limit`, attempts };
    }
    const tryStarted = now();
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), Math.min(policy.perTryTimeoutMs, left));
    let outcome: Outcome;
    let status: number | undefined;
    try {
      const upstream = await fetch(cluster.origin + pathAndQuery, {
        method: request.method,
        headers,
        body: prepared.body,
        duplex: prepared.body ? 'half' : undefined,
        signal: timeout.signal,
        redirect: 'manual',
      } as RequestInit);
      clearTimeout(timer);
      status = upstream.status;
      if (!last && idempotent && retriesOn(policy.retryOn, upstream.status) && policy.allowRetry()) {
        attempts.push({ cluster, outcome: 'retry-status', status, ms: now() - tryStarted });
        await upstream.body?.cancel();
        policy.limit?.done(cluster);
        continue;
      }
      attempts.push({ cluster, outcome: 'response', status, ms: now() - tryStarted });
      const limit = policy.limit;
      // Only a limited route pays for watching the body stream to its end.
      const body = limit ? releaseAtEnd(upstream.body, () => limit.done(cluster)) : upstream.body;
      const response = new Response(body, {
        status: upstream.status,
        statusText: upstream.statusText,
        headers: downstreamHeaders(upstream.headers),
      });
      return { ok: true, response, cluster, attempts };
    } catch (error) {
      clearTimeout(timer);
      policy.limit?.done(cluster);
      outcome = timeout.signal.aborted ? 'timeout' : isConnectError(error) ? 'connect-failure' : 'reset';
      attempts.push({ cluster, outcome, ms: now() - tryStarted });
      failure = { kind: outcome, message: describe(error, outcome, policy) };
      // A connect failure sent nothing, so any method may move on; otherwise only idempotent ones.
      const may = outcome === 'connect-failure' || idempotent;
      if (last || !may || !policy.retryOn.has(outcome) || !policy.allowRetry()) break;
    }
  }
  return { ok: false, failure: failure.kind, message: failure.message, attempts };
}

/** Reads the request body once: buffered when small enough (so it can be replayed), else streamed. */
export async function prepareBody(request: Request, bufferBytes: number): Promise<PreparedBody> {
  // Decide from the headers first: touching request.body makes some runtimes build a stream for nothing.
  const declared = request.headers.get('content-length');
  if (request.method === 'GET' || request.method === 'HEAD' || ((declared === null || declared === '0') && !request.headers.has('transfer-encoding'))) {
    return { body: null, buffered: null, replayable: true };
  }
  if (!request.body) return { body: null, buffered: null, replayable: true };
  const length = Number(declared ?? Number.NaN);
  if (length <= bufferBytes) {
    const buffered = await request.arrayBuffer();
    return { body: buffered, buffered, replayable: true };
  }
  return { body: request.body, buffered: null, replayable: false };
}

/** Whether a status is one the policy retries on. */
export function retriesOn(retryOn: ReadonlySet<string>, status: number): boolean {
  if (retryOn.has(String(status))) return true;
  if (status >= 500 && retryOn.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && retryOn.has('gateway-error')) return true;
  return status === 409 && retryOn.has('retriable-4xx');
}

function isConnectError(error: unknown): boolean {
  const code = (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof code === 'string' && CONNECT_ERROR_CODES.has(code);
}

function describe(error: unknown, outcome: Outcome, policy: TryPolicy): string {
  if (outcome === 'timeout') return `no response within ${policy.perTryTimeoutMs} ms`;
  const cause = (error as { cause?: { message?: unknown } })?.cause?.message;
  const message = error instanceof Error ? error.message : String(error);
  return typeof cause === 'string' ? `${message}: ${cause}` : message;
}

/** Passes a body through and calls `done` once it ends, errors or is cancelled. */
function releaseAtEnd(body: ReadableStream<Uint8Array> | null, done: () => void): ReadableStream<Uint8Array> | null {
  if (!body) {
    done();
    return null;
  }
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      done();
    }
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: finished, value } = await reader.read();
        if (finished) {
          release();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
}
