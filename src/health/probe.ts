import type { Cluster } from '../routing/types.js';
import type { HealthCheck } from '../store/schema.js';
import { statusExpected, type ProbeResult } from './evaluate.js';

/** Where a probe goes: the cluster's origin, under its base path. */
export type ProbeTarget = Pick<Cluster, 'origin' | 'basePath'>;

/**
 * GETs a cluster's health endpoint (`origin + basePath + check.path`) with a timeout. Failures are
 * results, never exceptions. It does not send the cluster's `originHost`: fetch cannot set Host (Node's
 * fetch drops it, workerd ignores it, Workers allow it only within the account's own zone), so a probe
 * reaches the origin under the host of its URL.
 */
export async function probeCluster(target: ProbeTarget, check: HealthCheck, now: () => number): Promise<ProbeResult> {
  const started = now();
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), check.timeoutMs);
  try {
    const res = await fetch(target.origin + target.basePath + check.path, {
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
