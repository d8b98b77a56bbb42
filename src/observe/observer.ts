import type { Attempt } from '../proxy/forward.js';
import type { Cluster } from '../routing/types.js';

/**
 * A request's trace as Waymark continues it (W3C Trace Context): the server span is this hop; the
 * first try's client span id is the parent id the origin receives in `traceparent`.
 */
interface TraceContext {
  traceId: string;
  /** The server span (this request in Waymark). */
  spanId: string;
  /** The caller's span from the incoming traceparent; null: a new trace. */
  parentSpanId: string | null;
  /** Export this request's spans (the incoming sampled flag, or WAYMARK_TRACE_SAMPLE for a new trace). */
  sampled: boolean;
}

/** One proxied request, as the proxy saw it once its answer (or Waymark's own) was decided. */
export interface RequestRecord {
  requestId: string;
  method: string;
  /** The Host as the client sent it; null when it was missing or invalid. */
  host: string | null;
  /** The path without its query. */
  path: string;
  /** The service, route and final cluster; null: none (unknown host, no route matched, no answer). */
  service: string | null;
  route: string | null;
  cluster: string | null;
  clientRegion: string | null;
  status: number;
  /** When the request arrived (ms since the epoch) and how long until its answer's headers. */
  startedAt: number;
  durationMs: number;
  attempts: readonly Attempt[];
  /** Retries taken from the retry budget, and whether it refused one. */
  retries: number;
  budgetExhausted: boolean;
  /** Clusters this request's outcomes ejected. */
  ejected: readonly Cluster[];
  trace: TraceContext | null;
}

/** A mirrored copy, once its answer came (or did not). */
export interface MirrorRecord {
  requestId: string;
  method: string;
  path: string;
  service: string;
  route: string;
  cluster: string;
  status: number | null;
  ok: boolean;
  startedAt: number;
  durationMs: number;
  /** The mirror's own span (a child of the request's server span); null when not traced. */
  trace: { traceId: string; spanId: string; parentSpanId: string } | null;
}

/**
 * The one hook the proxy calls: once per request when its answer is decided, once per mirror when it
 * ends. Observers count in memory and hand any I/O to `background` (waitUntil on Workers); none may
 * block or throw.
 */
export interface RequestObserver {
  requestFinished(record: RequestRecord, background: (work: Promise<unknown>) => void): void;
  mirrorFinished?(record: MirrorRecord, background: (work: Promise<unknown>) => void): void;
}

/** Several observers as one, called in order; one that throws (a bug) does not stop the others. */
export function fanOut(observers: readonly RequestObserver[]): RequestObserver {
  return {
    requestFinished(record, background) {
      for (const o of observers) {
        try {
          o.requestFinished(record, background);
        } catch {
          // An observer's bug must never fail a request that has been answered.
        }
      }
    },
    mirrorFinished(record, background) {
      for (const o of observers) {
        try {
          o.mirrorFinished?.(record, background);
        } catch {
          // As above.
        }
      }
    },
  };
}

/** Resolves after the current task: work queued behind it runs once the runtime has the response. */
export function afterResponse(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
