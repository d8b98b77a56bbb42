import { abortKind, tryAbort, type Transport, type TryResult } from './transport.js';

/**
 * The Workers transport: fetch. Bodies pass as bytes (`encodeResponseBody: 'manual'`), so a gzip answer
 * reaches the client as the origin compressed it. A WebSocket handshake is a fetch with `Upgrade`; its
 * 101 carries the socket. workerd's errors do not say whether a connection was ever made, so every
 * failure that is not a timeout counts as a reset (a POST is then never retried).
 */
export const fetchTransport: Transport<ReadableStream<Uint8Array>, Response> = {
  async send(request, headersTimeoutMs, exchange): Promise<TryResult<Response>> {
    const { cluster } = request;
    const headers = cluster.originHost ? { ...request.headers, host: cluster.originHost } : request.headers;
    const attempt = tryAbort(exchange, headersTimeoutMs);
    // The per-try timeout starts once the request is sent: at once for bytes, at the end of a stream.
    let body: BodyInit | null = request.body;
    if (request.body instanceof ReadableStream)
      body = request.body.pipeThrough(new TransformStream({ flush: attempt.startTimer }));
    else attempt.startTimer();
    try {
      const response = await fetch(cluster.origin + request.path, {
        method: request.method,
        headers,
        body,
        redirect: 'manual',
        signal: attempt.signal,
        encodeResponseBody: 'manual',
      });
      return { ok: true, status: response.status, response };
    } catch (error) {
      const kind = abortKind(attempt.signal);
      if (kind) return { ok: false, failure: kind, message: (attempt.signal.reason as Error).message };
      return { ok: false, failure: 'reset', message: error instanceof Error ? error.message : String(error) };
    } finally {
      attempt.stopTimer();
    }
  },
  discard(response) {
    void response.body?.cancel().catch(() => undefined);
  },
};
