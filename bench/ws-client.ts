/**
 * WebSocket load generator for bench/websocket.ts, in its own process (IPC): opens `sockets` WebSockets
 * and on each keeps `inflight` small text messages going back and forth (send, wait for the echo, send
 * the next) for `durationS`, checking that every echo is the message sent. Answers a WsLoadResult, or
 * the handshake's failure (status 0: no HTTP answer at all).
 */
import WebSocket from 'ws';
import { percentile } from './stats.js';

export interface WsLoadSpec {
  /** ws://127.0.0.1:PORT/path */
  url: string;
  /** Host header to send (Waymark routes by Host). */
  host?: string;
  sockets: number;
  inflight: number;
  durationS: number;
  payloadBytes: number;
}

export type WsLoadResult =
  | {
      ok: true;
      /** Echoes received within the duration. */
      messages: number;
      durationS: number;
      messagesPerSec: number;
      /** Round trip of one message, in µs. */
      rttUs: { mean: number; p50: number; p99: number; max: number };
      /** Echoes that were not the message sent (should be 0). */
      mismatched: number;
      /** Sockets closed or failed before the end. */
      dropped: number;
    }
  | { ok: false; status: number; detail: string };

const HANDSHAKE_TIMEOUT_MS = 5_000;
const DRAIN_MS = 2_000;

function open(spec: WsLoadSpec): Promise<WebSocket | { status: number; detail: string }> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (value: WebSocket | { status: number; detail: string }) => {
      if (done) return;
      done = true;
      resolve(value);
    };
    const ws = new WebSocket(spec.url, {
      headers: spec.host ? { host: spec.host } : {},
      perMessageDeflate: false,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    ws.once('open', () => finish(ws));
    ws.once('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        if (body.length < 300) body += d;
      });
      res.on('end', () => finish({ status: res.statusCode ?? 0, detail: body.slice(0, 300) }));
      res.on('error', () => finish({ status: res.statusCode ?? 0, detail: body.slice(0, 300) }));
      setTimeout(() => {
        finish({ status: res.statusCode ?? 0, detail: body.slice(0, 300) });
        req.destroy();
      }, 1_000).unref();
    });
    ws.on('error', (error) => finish({ status: 0, detail: error.message }));
  });
}

async function run(spec: WsLoadSpec): Promise<WsLoadResult> {
  const sockets: WebSocket[] = [];
  for (let i = 0; i < spec.sockets; i++) {
    const socket = await open(spec);
    if (!(socket instanceof WebSocket)) {
      for (const s of sockets) s.terminate();
      return { ok: false, ...socket };
    }
    sockets.push(socket);
  }
  const rtts: number[] = [];
  let mismatched = 0;
  let dropped = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(spec.durationS * 1e9));
  const pad = 'x'.repeat(spec.payloadBytes);
  await Promise.all(
    sockets.map(
      (socket, index) =>
        new Promise<void>((resolve) => {
          let seq = 0;
          const outstanding: { text: string; at: bigint }[] = [];
          const next = () => {
            const text = `${index}:${seq++}:${pad}`.slice(0, Math.max(spec.payloadBytes, 8));
            outstanding.push({ text, at: process.hrtime.bigint() });
            socket.send(text);
          };
          const drain = setTimeout(() => finish(), spec.durationS * 1e3 + DRAIN_MS);
          let finished = false;
          function finish() {
            if (finished) return;
            finished = true;
            clearTimeout(drain);
            resolve();
          }
          socket.on('message', (data) => {
            const now = process.hrtime.bigint();
            const sent = outstanding.shift();
            if (!sent) return;
            if (data.toString() !== sent.text) mismatched += 1;
            if (now <= deadline) {
              rtts.push(Number(now - sent.at) / 1e3);
              next();
            } else if (outstanding.length === 0) finish();
          });
          socket.on('close', () => {
            if (process.hrtime.bigint() < deadline) dropped += 1;
            finish();
          });
          socket.on('error', () => finish());
          for (let i = 0; i < spec.inflight; i++) next();
        }),
    ),
  );
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.readyState === WebSocket.CLOSED) return resolve();
          s.once('close', () => resolve());
          s.close();
          setTimeout(() => {
            s.terminate();
            resolve();
          }, 1_000).unref();
        }),
    ),
  );
  // Echoes count only up to the deadline, so the measured time is the duration asked for.
  const durationS = spec.durationS;
  rtts.sort((a, b) => a - b);
  return {
    ok: true,
    messages: rtts.length,
    durationS,
    messagesPerSec: rtts.length / durationS,
    rttUs: {
      mean: rtts.reduce((s, v) => s + v, 0) / Math.max(1, rtts.length),
      p50: percentile(rtts, 50),
      p99: percentile(rtts, 99),
      max: rtts[rtts.length - 1] ?? Number.NaN,
    },
    mismatched,
    dropped,
  };
}

process.on('message', (spec: WsLoadSpec) => {
  void run(spec).then(
    (result) => process.send?.(result),
    (error: unknown) =>
      process.send?.({
        ok: false,
        status: 0,
        detail: error instanceof Error ? error.message : String(error),
      } satisfies WsLoadResult),
  );
});
process.on('disconnect', () => process.exit(0));
