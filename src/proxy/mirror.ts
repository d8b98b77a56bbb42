import type { Cluster } from '../routing/types.js';

export interface MirrorOutcome {
  ok: boolean;
  status: number | null;
  ms: number;
}

/**
 * Sends a copy of a request to the mirror cluster and reads its answer to the end, then discards it.
 * Runs in the background (waitUntil on Workers): it never delays, fails or changes the primary.
 */
export async function sendMirror(
  cluster: Cluster,
  method: string,
  pathAndQuery: string,
  headers: Headers,
  body: ArrayBuffer | null,
  timeoutMs: number,
  now: () => number,
): Promise<MirrorOutcome> {
  const started = now();
  const copy = new Headers(headers);
  copy.set('x-waymark-mirror', '1');
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  try {
    const res = await fetch(cluster.origin + pathAndQuery, { method, headers: copy, body, signal: timeout.signal, redirect: 'manual' });
    await res.arrayBuffer();
    return { ok: res.status < 500, status: res.status, ms: now() - started };
  } catch {
    return { ok: false, status: null, ms: now() - started };
  } finally {
    clearTimeout(timer);
  }
}
