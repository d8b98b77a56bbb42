import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';

/**
 * After an admin write that kept this thread busy for d ms, the next one starts WRITE_GAP x d ms later: back-to-back admin
 * writes then hold at most a quarter of the thread, and the proxy keeps the rest.
 */
const WRITE_GAP = 3;

/**
 * Admin writes one at a time, each after a pause in proportion to the thread time the last one took.
 *
 * On a `file:` store everything a write does (its statements, the reload that follows it, the JSON
 * around it) runs on the thread that proxies: libSQL's file calls are synchronous. Twenty concurrent
 * admin writers each writing as fast as answered took the whole thread, and proxied GETs waited behind
 * them (p99 from 15 ms to over a second). Paced, a burst of writes waits rather than the traffic; a
 * lone write waits for nothing. What a write costs is the event loop's busy time while it ran (so the
 * proxy's work meanwhile counts too: an overestimate, on the safe side), not its wall time: a write
 * that waits on the network (a health sync probing origins) holds no thread and earns no pause.
 */
export class WritePacer {
  #tail: Promise<unknown> = Promise.resolve();
  #readyAt = Number.NEGATIVE_INFINITY;

  constructor(
    /** The event loop's busy time so far, ms (Node: performance.eventLoopUtilization().active). */
    private readonly busy: () => number,
    /** Wall clock, ms. */
    private readonly clock: () => number = () => performance.now(),
    private readonly gap = WRITE_GAP,
  ) {}

  run<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(async () => {
      await this.#until(this.#readyAt);
      const busyBefore = this.busy();
      try {
        return await work();
      } finally {
        this.#readyAt = this.clock() + (this.busy() - busyBefore) * this.gap;
      }
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Resolves at `at`, or at the next turn of the event loop when that is now or past. */
  #until(at: number): Promise<void> {
    const wait = at - this.clock();
    return new Promise((resolve) => (wait >= 1 ? setTimeout(resolve, wait) : setImmediate(resolve)));
  }
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Paces the admin API's writes through `pacer` (reads go straight through). */
export function paceWrites(pacer: WritePacer): MiddlewareHandler<AppEnv> {
  return (c, next) => (READS.has(c.req.method) ? next() : pacer.run(next));
}
