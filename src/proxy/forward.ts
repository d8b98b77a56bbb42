import type { Cluster } from '../routing/types.js';
import {
  countsAgainstCluster,
  type Exchange,
  type Transport,
  type TryFailure,
  type UpstreamRequest,
} from './transport.js';

/** RFC 9110 §9.2.2: repeating these has the same effect as sending them once. */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/** When and how often a request may move on to the next cluster: compiled with the route. */
export interface TryPolicy {
  perTryTimeoutMs: number;
  /** connect-failure, reset, timeout, 5xx, gateway-error, retriable-4xx, or status codes. */
  retryOn: ReadonlySet<string>;
  /** Retry non-idempotent methods after a response, reset or timeout too (never by default). */
  nonIdempotent: boolean;
}

/** What a request may spend on retries and slots, for this one request. */
export interface TryLimits {
  /**
   * Takes a retry from the budget; false: no more retries for now. A retry after a connect failure is
   * free: nothing reached the failed cluster, so the request still reaches one origin once.
   */
  allowRetry: (afterConnectFailure?: boolean) => boolean;
  /** A concurrency limit per cluster, when the route has one. */
  slots: ConcurrencySlots | null;
  /** Whether the route's deadline has passed. */
  expired: () => boolean;
}

interface ConcurrencySlots {
  /** Takes a slot before a try: null when taken, else the limit that is full (overflow), in words. */
  admit: (cluster: Cluster) => string | null;
  /** Gives the slot back once the try's response has been streamed, failed or been discarded. */
  done: (cluster: Cluster) => void;
}

/** How one try ended: the origin's answer (used or retried), a failure, or no room at the cluster. */
type Outcome = 'response' | 'retry-status' | TryFailure | 'overflow';

/** One try at one cluster. */
export interface Attempt {
  cluster: Cluster;
  outcome: Outcome;
  status?: number;
  /** When the try started (the runtime's clock, ms) and how long it took. */
  at: number;
  ms: number;
  /** The try's client span id (the parent id its origin received), when the request is traced. */
  spanId?: string;
}

/**
 * A traced request's spans per try: the first try's span id is already in the request's traceparent;
 * each later try gets a new span id and a traceparent of its own, so every origin sees its own try as
 * its parent.
 */
export interface TrySpans {
  first: string;
  /** The traceparent for a new span id under the same trace. */
  traceparent: (spanId: string) => string;
  newSpanId: () => string;
}

export type ForwardResult<Res> =
  | { ok: true; response: Res; status: number; cluster: Cluster; attempts: Attempt[] }
  | { ok: false; failure: TryFailure | 'overflow'; message: string; attempts: Attempt[] };

/** Whether an attempt says the cluster is sick: a 5xx, or a failure of the origin's making. */
export function attemptFailed(a: Attempt): boolean | null {
  if (a.outcome === 'response' || a.outcome === 'retry-status') return (a.status ?? 0) >= 500;
  if (a.outcome === 'overflow') return null;
  return countsAgainstCluster(a.outcome) ? true : null;
}

/**
 * Sends the request to the clusters in order until one answers well enough. Another cluster is tried
 * after an outcome the policy retries on, while the retry budget and the deadline allow; a method that
 * is not idempotent moves on only after a connect failure (nothing was sent) unless the policy says so.
 * A body that streamed (too large to buffer) is sent once. Failures of the client's or Waymark's own
 * making (client gone, unsendable request, deadline) end the request at once: another cluster would
 * fare no better.
 */
export async function forward<Body, Res>(
  transport: Transport<Body, Res>,
  request: Omit<UpstreamRequest<Body>, 'cluster' | 'path'>,
  pathAndQuery: string,
  clusters: readonly Cluster[],
  policy: TryPolicy,
  limits: TryLimits,
  exchange: Exchange,
  now: () => number,
  spans: TrySpans | null = null,
): Promise<ForwardResult<Res>> {
  const idempotent = IDEMPOTENT_METHODS.has(request.method) || policy.nonIdempotent;
  const replayable = !(request.body !== null && !(request.body instanceof Uint8Array));
  const attempts: Attempt[] = [];
  let failure: { kind: TryFailure; message: string } = {
    kind: 'deadline',
    message: "the route's deadline passed before a try",
  };

  for (let i = 0; i < clusters.length; i++) {
    const cluster = clusters[i] as Cluster;
    const last = i === clusters.length - 1 || !replayable;
    if (limits.expired()) break;
    const full = limits.slots ? limits.slots.admit(cluster) : null;
    if (full !== null) {
      attempts.push({ cluster, outcome: 'overflow', at: now(), ms: 0 });
      return {
        ok: false,
        failure: 'overflow',
        message: `cluster ${cluster.name} is at its concurrency limit (${full})`,
        attempts,
      };
    }
    const started = now();
    // Only traced requests pay for a copy of the headers, and only on a retry.
    const spanId = spans ? (attempts.length === 0 ? spans.first : spans.newSpanId()) : undefined;
    const headers =
      spans && spanId !== spans.first
        ? { ...request.headers, traceparent: spans.traceparent(spanId as string) }
        : request.headers;
    const upstream: UpstreamRequest<Body> = {
      cluster,
      method: request.method,
      path: cluster.basePath + pathAndQuery,
      headers,
      body: request.body,
      upgrade: request.upgrade,
    };
    const sent = await transport.send(upstream, policy.perTryTimeoutMs, exchange);
    if (sent.ok) {
      if (!last && idempotent && retriesOn(policy.retryOn, sent.status) && limits.allowRetry()) {
        attempts.push(tried(cluster, 'retry-status', sent.status, started, now(), spanId));
        transport.discard(sent.response);
        limits.slots?.done(cluster);
        continue;
      }
      attempts.push(tried(cluster, 'response', sent.status, started, now(), spanId));
      return { ok: true, response: sent.response, status: sent.status, cluster, attempts };
    }
    limits.slots?.done(cluster);
    attempts.push(tried(cluster, sent.failure, undefined, started, now(), spanId));
    failure = {
      kind: sent.failure,
      message: sent.failure === 'timeout' ? `no response headers within ${policy.perTryTimeoutMs} ms` : sent.message,
    };
    if (!countsAgainstCluster(sent.failure)) break;
    // A connect failure sent nothing, so any method may move on; otherwise only idempotent ones.
    const may = sent.failure === 'connect-failure' || idempotent;
    if (last || !may || !policy.retryOn.has(sent.failure) || !limits.allowRetry(sent.failure === 'connect-failure'))
      break;
  }
  return { ok: false, failure: failure.kind, message: failure.message, attempts };
}

function tried(
  cluster: Cluster,
  outcome: Outcome,
  status: number | undefined,
  at: number,
  end: number,
  spanId: string | undefined,
): Attempt {
  const attempt: Attempt = { cluster, outcome, at, ms: end - at };
  if (status !== undefined) attempt.status = status;
  if (spanId !== undefined) attempt.spanId = spanId;
  return attempt;
}

/** Whether a status is one the policy retries on. */
function retriesOn(retryOn: ReadonlySet<string>, status: number): boolean {
  if (retryOn.has(String(status))) return true;
  if (status >= 500 && retryOn.has('5xx')) return true;
  if ((status === 502 || status === 503 || status === 504) && retryOn.has('gateway-error')) return true;
  return status === 409 && retryOn.has('retriable-4xx');
}
