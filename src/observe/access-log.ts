import { afterResponse, type RequestObserver, type RequestRecord } from './observer.js';

/** WAYMARK_ACCESS_LOG_SAMPLE when unset: every request in Node, one in a hundred on Workers (Workers Logs bills per line). */
export const DEFAULT_ACCESS_LOG_SAMPLE = { node: 1, workers: 0.01 } as const;
/** Lines held before a write whatever the timer says (Node). */
const MAX_BUFFERED_LINES = 512;

export interface AccessLogOptions {
  /** The share of requests logged, 0-1. */
  sample: number;
  /** Writes lines (one JSON object each): stdout in one write on Node, console.log per line on Workers. */
  write: (lines: string[]) => void;
  /**
   * False: each request's line goes out through `background` after the response (Workers). True: lines
   * are held until `flush` (a timer in Node) or until MAX_BUFFERED_LINES are held.
   */
  buffered: boolean;
  /** For the sample draw; Math.random by default (not the routing's random source, whose sequence tests fix). */
  random?: () => number;
}

/** The access log: one JSON line per sampled request, written after the response, never on its path. */
export class AccessLog implements RequestObserver {
  #lines: string[] = [];
  readonly sample: number;
  readonly #random: () => number;

  constructor(private readonly options: AccessLogOptions) {
    this.sample = options.sample;
    this.#random = options.random ?? Math.random;
  }

  requestFinished(r: RequestRecord, background: (work: Promise<unknown>) => void): void {
    if (this.sample <= 0 || (this.sample < 1 && this.#random() >= this.sample)) return;
    this.#lines.push(accessLine(r));
    if (!this.options.buffered) background(afterResponse().then(() => this.flush()));
    else if (this.#lines.length >= MAX_BUFFERED_LINES) this.flush();
  }

  /** Writes what is held. */
  flush(): void {
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    this.#lines = [];
    this.options.write(lines);
  }
}

/** A request's line: what it was, where it went, how it ended; the path without its query (which may hold secrets). */
function accessLine(r: RequestRecord): string {
  return JSON.stringify({
    type: 'access',
    at: new Date(r.startedAt).toISOString(),
    requestId: r.requestId,
    traceId: r.trace?.traceId ?? null,
    method: r.method,
    host: r.host,
    path: r.path,
    service: r.service,
    route: r.route,
    cluster: r.cluster,
    clientRegion: r.clientRegion,
    status: r.status,
    attempts: r.attempts.length,
    durationMs: r.durationMs,
  });
}
