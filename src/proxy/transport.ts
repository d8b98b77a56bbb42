import type { Cluster } from '../routing/types.js';

/**
 * How a runtime talks to origins: undici's dispatcher on Node (src/node/undici-transport.ts), fetch on
 * Workers (fetch-transport.ts). The proxy's decisions (which cluster, retry or not, what counts against
 * a cluster) are the same on both; only sending differs.
 *
 * `Body` is the runtime's streamed client body (a Node Readable, a web ReadableStream); `Res` is the
 * runtime's upstream response, handed back to the runtime's own writer untouched.
 */
export interface Transport<Body, Res> {
  /**
   * One try at one cluster. Resolves at the origin's response headers, or with why there is none. The
   * per-try timeout runs from the moment the request has been sent (its body included) to the response
   * headers, as Envoy's does: never while a slow client uploads.
   */
  send(request: UpstreamRequest<Body>, headersTimeoutMs: number, exchange: Exchange): Promise<TryResult<Res>>;
  /** Drops a response that will not be used (its status is retried on another cluster). */
  discard(response: Res): void;
}

/** Where a request goes: an origin (scheme://host:port) and the Host it expects, when not the origin's. */
export type OriginTarget = Pick<Cluster, 'origin' | 'originHost'>;

export interface UpstreamRequest<Body> {
  cluster: OriginTarget;
  method: string;
  /** The cluster's base path and the client's path and query. */
  path: string;
  headers: Record<string, string>;
  /** Bytes (buffered, so they can be replayed), the client's stream (sent once), or none. */
  body: Uint8Array | Body | null;
  /** A protocol upgrade (WebSocket handshake): a 101 answer hands over the connection. */
  upgrade: boolean;
}

export type TryResult<Res> =
  | { ok: true; status: number; response: Res }
  | { ok: false; failure: TryFailure; message: string };

/**
 * Why a try got no response. The first three are the origin's doing and count against the cluster
 * (outlier ejection, edge reports); the others are not: the route's deadline passed, the client went
 * away or sent a body that does not add up, or Waymark could not send what the client asked for.
 */
export type TryFailure = 'connect-failure' | 'reset' | 'timeout' | 'deadline' | 'client-gone' | 'unsendable';

/** Failures that say something about the cluster (Envoy's outlier detection counts the same). */
export function countsAgainstCluster(failure: TryFailure): boolean {
  return failure === 'connect-failure' || failure === 'reset' || failure === 'timeout';
}

/** Why the exchange was aborted from Waymark's side: the signal's reason. */
export class ExchangeAbort extends Error {
  override readonly name = 'ExchangeAbort';
  constructor(readonly kind: 'deadline' | 'client-gone' | 'timeout') {
    super(
      kind === 'deadline'
        ? "the route's deadline passed"
        : kind === 'timeout'
          ? 'no response headers in time'
          : 'the client went away',
    );
  }
}

/**
 * One client exchange's abort, from Waymark's side (deadline, client gone): a plain emitter with the
 * shape undici accepts as a `signal` (aborted, reason, on/once/removeListener), because an AbortController
 * per request costs more than the rest of the routing decision on Node.
 */
export class Exchange {
  aborted = false;
  reason: ExchangeAbort | undefined = undefined;
  #listeners: (() => void)[] = [];

  abort(reason: ExchangeAbort): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }

  once(_event: 'abort', listener: () => void): this {
    this.#listeners.push(listener);
    return this;
  }

  /** Abort happens once, so `on` is `once` (undici checks that a signal has `on`). */
  on(event: 'abort', listener: () => void): this {
    return this.once(event, listener);
  }

  removeListener(_event: 'abort', listener: () => void): this {
    const i = this.#listeners.indexOf(listener);
    if (i >= 0) this.#listeners.splice(i, 1);
    return this;
  }
}

/** The abort reason, when Waymark aborted (deadline, client gone, per-try timeout); null otherwise. */
export function abortKind(signal: { aborted: boolean; reason?: unknown }): ExchangeAbort['kind'] | null {
  return signal.aborted && signal.reason instanceof ExchangeAbort ? signal.reason.kind : null;
}

/**
 * One try's own abort signal: it follows the exchange's (deadline, client gone: the response body too)
 * and, once `startTimer` is called (the request has been sent), the per-try timeout until `stopTimer`.
 */
export function tryAbort(
  exchange: Exchange,
  headersTimeoutMs: number,
): { signal: AbortSignal; startTimer: () => void; stopTimer: () => void } {
  const attempt = new AbortController();
  if (exchange.aborted) attempt.abort(exchange.reason);
  else exchange.once('abort', () => attempt.abort(exchange.reason));
  let timer: ReturnType<typeof setTimeout> | undefined;
  return {
    signal: attempt.signal,
    startTimer: () => {
      timer = setTimeout(() => attempt.abort(new ExchangeAbort('timeout')), headersTimeoutMs);
    },
    stopTimer: () => clearTimeout(timer),
  };
}
