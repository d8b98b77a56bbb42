import { Exchange, type OriginTarget, type Transport } from '../proxy/transport.js';
import type { Cluster } from '../routing/types.js';
import type { HealthCheck } from '../spec/cluster.js';
import { statusExpected, type ProbeResult } from './evaluate.js';

/** Where a probe goes: the cluster's origin, under its base path, with its Host. */
export type ProbeTarget = OriginTarget & Pick<Cluster, 'basePath'>;

/** A transport that only ever sends bodiless requests (Node's undici or Workers' fetch). */
export type ProbeTransport = Transport<never, unknown>;

/**
 * GETs a cluster's health endpoint (`origin + basePath + check.path`, Host `originHost` when set) through
 * the runtime's transport, with a timeout. Failures are results, never exceptions. Workers' fetch cannot
 * set Host outside the account's zone, so there a probe reaches the origin under its URL's host.
 */
export async function probeCluster(
  transport: ProbeTransport,
  target: ProbeTarget,
  check: HealthCheck,
  now: () => number,
): Promise<ProbeResult> {
  const started = now();
  const sent = await transport.send(
    {
      cluster: target,
      method: 'GET',
      path: target.basePath + check.path,
      headers: { 'user-agent': 'waymark-health-check/1' },
      body: null,
      upgrade: false,
    },
    check.timeoutMs,
    new Exchange(),
  );
  if (!sent.ok) {
    return {
      ok: false,
      status: null,
      latencyMs: now() - started,
      error: sent.failure === 'timeout' ? `timed out after ${check.timeoutMs} ms` : sent.message,
    };
  }
  transport.discard(sent.response);
  const ok = statusExpected(sent.status, check.expectedStatuses);
  return { ok, status: sent.status, latencyMs: now() - started, error: ok ? null : `unexpected status ${sent.status}` };
}

/** Runs `work` over `items` with at most `limit` at once (Workers allow 6 simultaneous connections). */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
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
