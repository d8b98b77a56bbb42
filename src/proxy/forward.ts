import type { Cluster } from '../routing/types.js';
import { downstreamHeaders } from './headers.js';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Answers that say "this cluster could not serve it", so another cluster may. */
const RETRY_STATUSES = new Set([502, 503, 504]);

export interface ForwardOptions {
  tryTimeoutMs: number;
  /** Bodies up to this size are buffered so an idempotent request can be retried; larger ones stream once. */
  retryBufferBytes: number;
}

/** One try at one cluster. */
export interface Attempt {
  cluster: Cluster;
  outcome: 'response' | 'retry-status' | 'connect-failure' | 'timeout';
  status?: number;
  ms: number;
}

export type ForwardResult =
  | { ok: true; response: Response; cluster: Cluster; attempts: Attempt[] }
  | { ok: false; failure: 'connect-failure' | 'timeout'; message: string; attempts: Attempt[] };

/**
 * Sends the request to the clusters in order until one answers. Idempotent requests whose body is
 * absent or small enough to buffer move on to the next cluster after a connect failure, a per-try
 * timeout or a 502/503/504; other requests get exactly one try. The body streams both ways.
 */
export async function forward(
  request: Request,
  pathAndQuery: string,
  headers: Headers,
  clusters: readonly Cluster[],
  options: ForwardOptions,
  now: () => number,
): Promise<ForwardResult> {
  const { body, replayable } = await prepareBody(request, options.retryBufferBytes);
  const tries = IDEMPOTENT_METHODS.has(request.method) && replayable ? clusters : clusters.slice(0, 1);
  const attempts: Attempt[] = [];
  let failure: { kind: 'connect-failure' | 'timeout'; message: string } = { kind: 'connect-failure', message: 'no cluster tried' };

  for (let i = 0; i < tries.length; i++) {
    const cluster = tries[i] as Cluster;
    const last = i === tries.length - 1;
    const started = now();
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), options.tryTimeoutMs);
    try {
      const upstream = await fetch(cluster.origin + pathAndQuery, {
        method: request.method,
        headers,
        body,
        duplex: body ? 'half' : undefined,
        signal: timeout.signal,
        redirect: 'manual',
      } as RequestInit);
      clearTimeout(timer);
      if (!last && RETRY_STATUSES.has(upstream.status)) {
        attempts.push({ cluster, outcome: 'retry-status', status: upstream.status, ms: now() - started });
        await upstream.body?.cancel();
        continue;
      }
      attempts.push({ cluster, outcome: 'response', status: upstream.status, ms: now() - started });
      const response = new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: downstreamHeaders(upstream.headers) });
      return { ok: true, response, cluster, attempts };
    } catch (error) {
      clearTimeout(timer);
      const kind = timeout.signal.aborted ? 'timeout' : 'connect-failure';
      attempts.push({ cluster, outcome: kind, ms: now() - started });
      failure = { kind, message: error instanceof Error ? error.message : String(error) };
    }
  }
  return { ok: false, failure: failure.kind, message: failure.message, attempts };
}

async function prepareBody(request: Request, limit: number): Promise<{ body: BodyInit | null; replayable: boolean }> {
  // Decide from the headers first: touching request.body makes some runtimes build a stream for nothing.
  const declared = request.headers.get('content-length');
  if (request.method === 'GET' || request.method === 'HEAD' || ((declared === null || declared === '0') && !request.headers.has('transfer-encoding'))) {
    return { body: null, replayable: true };
  }
  if (!request.body) return { body: null, replayable: true };
  const length = Number(declared ?? Number.NaN);
  if (IDEMPOTENT_METHODS.has(request.method) && length <= limit) return { body: await request.arrayBuffer(), replayable: true };
  return { body: request.body, replayable: false };
}
