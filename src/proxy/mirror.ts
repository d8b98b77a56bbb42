import type { Cluster } from '../routing/types.js';
import { Exchange, type Transport } from './transport.js';

export interface MirrorOutcome {
  ok: boolean;
  status: number | null;
  ms: number;
}

/**
 * Sends a copy of a request to the mirror cluster and discards its answer. Runs in the background
 * (waitUntil on Workers): it never delays, fails or changes the primary.
 */
export async function sendMirror<Body, Res>(
  transport: Transport<Body, Res>,
  cluster: Cluster,
  method: string,
  pathAndQuery: string,
  headers: Record<string, string>,
  body: Uint8Array | null,
  timeoutMs: number,
  now: () => number,
): Promise<MirrorOutcome> {
  const started = now();
  const sent = await transport.send(
    {
      cluster,
      method,
      path: cluster.basePath + pathAndQuery,
      headers: { ...headers, 'x-waymark-mirror': '1' },
      body,
      upgrade: false,
    },
    timeoutMs,
    new Exchange(),
  );
  if (!sent.ok) return { ok: false, status: null, ms: now() - started };
  transport.discard(sent.response);
  return { ok: sent.status < 500, status: sent.status, ms: now() - started };
}
