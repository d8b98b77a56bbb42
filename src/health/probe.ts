import type { HealthCheck } from '../store/schema.js';
import { statusExpected, type ProbeResult } from './evaluate.js';

/** GETs a cluster's health endpoint with a timeout. Failures are results, never exceptions. */
export async function probeCluster(origin: string, check: HealthCheck, now: () => number): Promise<ProbeResult> {
  const started = now();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), check.timeoutMs);
  try {
    const res = await fetch(origin.replace(/\/+$/, '') + check.path, {
      headers: { 'user-agent': 'waymark-health-check/1' },
      redirect: 'manual',
      signal: timeout.signal,
    });
    await res.body?.cancel();
    const ok = statusExpected(res.status, check.expectedStatuses);
    return { ok, status: res.status, latencyMs: now() - started, error: ok ? null : `unexpected status ${res.status}` };
  } catch (error) {
    const message = timeout.signal.aborted ? `timed out after ${check.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
    return { ok: false, status: null, latencyMs: now() - started, error: message };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `work` over `items` with at most `limit` at once (Workers allow 6 simultaneous connections). */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
