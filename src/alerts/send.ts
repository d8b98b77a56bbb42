import type { Alert } from './alert.js';

/** How one attempt went: the receiver's status (2xx: delivered), or why there was none. */
export type AttemptResult = { ok: true; status: number } | { ok: false; status: number | null; error: string };

export interface SendRequest {
  url: string;
  secret: string;
  alert: Alert;
  /** The body, serialised once so that every attempt signs and sends the same bytes. */
  body: string;
  /** Epoch seconds, sent as X-Waymark-Timestamp and signed with the body. */
  timestamp: number;
  timeoutMs: number;
}

/**
 * `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under the secret (Web Crypto: the same in
 * Node and workerd). Signing the timestamp with the body lets a receiver refuse replays of old ones.
 */
async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
    'sign',
  ]);
  const mac = await crypto.subtle.sign('HMAC', key, encoder.encode(`${timestamp}.${body}`));
  return `sha256=${Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** One attempt: a signed POST with a timeout; any answer is read and dropped (the status is what counts). */
export async function sendAlert(request: SendRequest): Promise<AttemptResult> {
  const signal = AbortSignal.timeout(request.timeoutMs);
  try {
    const response = await fetch(request.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'waymark-alerts',
        'x-waymark-event': request.alert.kind,
        'x-waymark-delivery': request.alert.id,
        'x-waymark-timestamp': String(request.timestamp),
        'x-waymark-signature': await signature(request.secret, request.timestamp, request.body),
      },
      body: request.body,
      redirect: 'manual',
      signal,
    });
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return { ok: true, status: response.status };
    return { ok: false, status: response.status, error: `the receiver answered ${response.status}` };
  } catch (error) {
    const timedOut = signal.aborted;
    return {
      ok: false,
      status: null,
      error: timedOut
        ? `no answer within ${request.timeoutMs} ms`
        : error instanceof Error
          ? error.message
          : String(error),
    };
  }
}
