import { Agent, request } from 'undici';

interface LoadFailure {
  method: string;
  /** The status Waymark answered (>= 500), or null for a network error or a timeout. */
  status: number | null;
  error: string | null;
  /** Milliseconds since the load started, when the request was sent. */
  at: number;
  /** The request's `x-chaos-id`. */
  id?: string;
  /** For a status: the start of Waymark's answer and its `x-waymark-attempts`. */
  detail?: string;
}

export interface LoadReport {
  requests: number;
  gets: number;
  posts: number;
  failures: LoadFailure[];
  latenciesMs: { get: number[]; post: number[] };
  /** The `x-chaos-id` of every POST sent. */
  postIds: string[];
  /** Answers by status (`'error'` for network errors and timeouts). */
  statuses?: Record<string, number>;
}

export interface OpenLoopOptions {
  /** Waymark's address (`http://127.0.0.1:1234`). */
  url: string;
  /** The `Host` the requests carry (the service's host). */
  host: string;
  ratePerSec: number;
  durationMs: number;
  /** Share of requests that are POSTs (0-1), spread evenly. */
  postShare: number;
  /** Default `/chaos`. */
  path?: string;
  /** A request's whole exchange, default 10 s. */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

const TICK_MS = 5;
let loads = 0;

/**
 * An open-loop load: requests start at a fixed arrival rate whatever the answers do (a slow or failing
 * Waymark does not slow the generator down, as a closed loop would, hiding the outage). Each request
 * carries a unique `x-chaos-id`; POSTs carry a small JSON body. A failure is a status >= 500, a
 * network error or a timeout.
 */
export async function openLoop(opts: OpenLoopOptions): Promise<LoadReport> {
  const prefix = `L${process.pid}-${++loads}`;
  const path = opts.path ?? '/chaos';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const total = Math.max(0, Math.round((opts.ratePerSec * opts.durationMs) / 1000));
  const agent = new Agent({ connections: 512, keepAliveTimeout: 4_000, pipelining: 1 });
  const report: LoadReport = {
    requests: 0,
    gets: 0,
    posts: 0,
    failures: [],
    latenciesMs: { get: [], post: [] },
    postIds: [],
    statuses: {},
  };
  const statuses = report.statuses as Record<string, number>;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();

  const send = async (i: number): Promise<void> => {
    const isPost = Math.floor((i + 1) * opts.postShare) > Math.floor(i * opts.postShare);
    const method = isPost ? 'POST' : 'GET';
    const id = `${prefix}-${i}`;
    const at = Math.round(performance.now() - start);
    report.requests += 1;
    if (isPost) {
      report.posts += 1;
      report.postIds.push(id);
    } else report.gets += 1;
    const headers: Record<string, string> = { ...opts.headers, host: opts.host, 'x-chaos-id': id };
    if (isPost) headers['content-type'] = 'application/json';
    const sent = performance.now();
    try {
      const res = await request(`${opts.url}${path}`, {
        method,
        headers,
        body: isPost ? JSON.stringify({ id, n: i }) : undefined,
        dispatcher: agent,
        signal: AbortSignal.timeout(timeoutMs),
      });
      const failed = res.statusCode >= 500;
      const text = failed ? await res.body.text() : '';
      if (!failed) await res.body.dump({ limit: 1 << 20 });
      const latency = performance.now() - sent;
      (isPost ? report.latenciesMs.post : report.latenciesMs.get).push(latency);
      statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      if (failed) {
        const detail = `attempts ${res.headers['x-waymark-attempts'] ?? '?'}: ${text.slice(0, 300)}`;
        report.failures.push({ method, status: res.statusCode, error: null, at, id, detail });
      }
    } catch (error) {
      statuses.error = (statuses.error ?? 0) + 1;
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      report.failures.push({ method, status: null, error: message, at, id });
    }
  };

  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      const due = Math.min(total, Math.floor((elapsed * opts.ratePerSec) / 1000) + 1);
      while (next < due) {
        const p = send(next++).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      if (next >= total) resolve();
      else setTimeout(tick, TICK_MS);
    };
    tick();
  });
  while (inFlight.size > 0) await Promise.all([...inFlight]);
  await agent.close().catch(() => {});
  return report;
}

/** How many of `ids` the upstreams received more than once in total (a duplicated non-idempotent request). */
export function duplicates(received: Record<string, number>[], ids: string[]): number {
  let count = 0;
  for (const id of ids) {
    let seen = 0;
    for (const r of received) seen += r[id] ?? 0;
    if (seen > 1) count += 1;
  }
  return count;
}
