import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startNoiseMonitor } from './noise.js';
import { forkTs, nextMessage, onAbort } from './procs.js';
import { ADMIN_TOKEN, BENCH_HOST, configureWaymark, startChild, stats, stopServers, type Server } from './proxy.js';
import { median } from './stats.js';
import type { WsLoadResult, WsLoadSpec } from './ws-client.js';

/**
 * WebSocket: messages per second, ping-pong over `sockets` sockets, through Waymark's Node server against
 * straight to the upstream echo server, alternating in the same run. When Waymark does not upgrade the
 * connection, the section says so (with the handshake's status) and measures the direct path only.
 */
export interface WebSocketOptions {
  sockets: number;
  inflight: number;
  payloadBytes: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  log: (line: string) => void;
}

export type WsTarget = 'waymark' | 'direct';

export interface WsRun {
  target: WsTarget;
  phase: 'warmup' | 'measure';
  round: number;
  result: Extract<WsLoadResult, { ok: true }>;
  /** Messages the echo server received during the run. */
  upstreamMessages: number;
  /** CPU of Waymark's process per echoed message, in µs (null for direct). */
  serverCpuUsPerMessage: number | null;
  otherCores: number | null;
  verified: boolean;
  problems: string[];
}

export interface WsSummary {
  target: WsTarget;
  messages: number;
  messagesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerMessage: number | null;
  verified: boolean;
}

export interface WebSocketResult {
  sockets: number;
  inflight: number;
  payloadBytes: number;
  warmupS: number;
  roundS: number;
  rounds: number;
  /** The handshake through Waymark: ok, or the status it answered (0: no HTTP answer). */
  handshake: { ok: true } | { ok: false; status: number; detail: string };
  runs: WsRun[];
  direct: WsSummary | null;
  waymark: WsSummary | null;
  /** Waymark / direct; null when the handshake failed. */
  ratios: { throughput: number; p50: number; p99: number } | null;
}

const WS_PATH = '/bench/ws';

export function describeHandshake(handshake: WebSocketResult['handshake']): string {
  if (handshake.ok) return 'WebSocket through Waymark: handshake ok';
  const detail = handshake.detail ? `: ${handshake.detail.replace(/\s+/g, ' ').slice(0, 200)}` : '';
  if (handshake.status === 101) return `WebSocket through Waymark: handshake ok but no echo (${handshake.detail})`;
  return `WebSocket through Waymark: handshake failed (status ${handshake.status})${detail}`;
}

function runClient(client: ChildProcess, spec: WsLoadSpec): Promise<WsLoadResult> {
  const reply = nextMessage<WsLoadResult>(
    client,
    (m) => typeof m?.ok === 'boolean',
    (spec.durationS + 20) * 1000,
    'the WebSocket client',
  );
  client.send(spec);
  return reply;
}

export async function benchWebSocket(options: WebSocketOptions): Promise<WebSocketResult> {
  const { log } = options;
  const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-ws-'));
  const forget = onAbort(() => rmSync(dir, { recursive: true, force: true }));
  const servers: Server[] = [];
  let client: ChildProcess | null = null;
  try {
    const [echo, waymark] = await Promise.all([
      startChild('ws-echo', []),
      startChild('waymark', [`file:${join(dir, 'waymark.db')}`, ADMIN_TOKEN]),
    ]);
    servers.push(echo, waymark);
    await configureWaymark(waymark.url, echo.url);
    client = forkTs('ws-client.ts', []);
    const ws = (url: string) => `${url.replace(/^http/, 'ws')}${WS_PATH}`;
    const specs: Record<WsTarget, WsLoadSpec> = {
      direct: {
        url: ws(echo.url),
        sockets: options.sockets,
        inflight: options.inflight,
        durationS: options.roundS,
        payloadBytes: options.payloadBytes,
      },
      waymark: {
        url: ws(waymark.url),
        host: BENCH_HOST,
        sockets: options.sockets,
        inflight: options.inflight,
        durationS: options.roundS,
        payloadBytes: options.payloadBytes,
      },
    };
    log(
      `  echo server ${echo.url} | waymark ${waymark.url} (each in its own process) | client: bench/ws-client.ts in its own process`,
    );

    const probe = await runClient(client, { ...specs.waymark, sockets: 1, durationS: 0.2 });
    const handshake: WebSocketResult['handshake'] = !probe.ok
      ? { ok: false, status: probe.status, detail: probe.detail }
      : probe.messages === 0
        ? { ok: false, status: 101, detail: 'upgraded, but no message came back' }
        : { ok: true };
    if (!handshake.ok) {
      log(`  ${describeHandshake(handshake)}`);
      log('  measuring the direct path only');
    }

    const runs: WsRun[] = [];
    const runOne = async (target: WsTarget, phase: WsRun['phase'], round: number, durationS: number): Promise<void> => {
      const cpuBefore = target === 'waymark' ? await stats(waymark) : null;
      const servedBefore = (await stats(echo)).served;
      const noise = startNoiseMonitor();
      const result = await runClient(client as ChildProcess, { ...specs[target], durationS });
      const otherCores = noise.stop();
      const cpuAfter = target === 'waymark' ? await stats(waymark) : null;
      const served = (await stats(echo)).served - servedBefore;
      if (!result.ok)
        throw new Error(`WebSocket ${target}: handshake failed (status ${result.status}) ${result.detail}`);
      const problems: string[] = [];
      if (result.mismatched > 0) problems.push(`${result.mismatched} echoes differ from what was sent`);
      if (result.dropped > 0) problems.push(`${result.dropped} sockets closed early`);
      if (served < result.messages) problems.push(`echo server saw ${served} < ${result.messages} messages`);
      if (result.messages === 0) problems.push('no messages echoed');
      const cpuUs =
        cpuBefore && cpuAfter
          ? cpuAfter.cpuUserUs + cpuAfter.cpuSystemUs - cpuBefore.cpuUserUs - cpuBefore.cpuSystemUs
          : null;
      const run: WsRun = {
        target,
        phase,
        round,
        result,
        upstreamMessages: served,
        serverCpuUsPerMessage: cpuUs === null ? null : cpuUs / Math.max(1, result.messages),
        otherCores,
        verified: problems.length === 0,
        problems,
      };
      runs.push(run);
      log(
        `  ${phase === 'warmup' ? 'warm-up ' : `round ${round}  `} ${target.padEnd(7)} ${Math.round(result.messagesPerSec).toString().padStart(6)} msg/s  ` +
          `rtt p50 ${(result.rttUs.p50 / 1e3).toFixed(2)} ms  p99 ${(result.rttUs.p99 / 1e3).toFixed(2)} ms  ` +
          `${run.serverCpuUsPerMessage === null ? '' : `Waymark CPU ${run.serverCpuUsPerMessage.toFixed(0)} µs/msg  `}` +
          `${otherCores === null ? '' : `other processes ${otherCores.toFixed(2)} cores  `}` +
          `${run.verified ? `all ${result.messages} echoes intact` : `PROBLEMS: ${problems.join('; ')}`}`,
      );
    };

    const targets: WsTarget[] = handshake.ok ? ['direct', 'waymark'] : ['direct'];
    for (const target of targets) await runOne(target, 'warmup', 0, options.warmupS);
    for (let round = 1; round <= options.rounds; round++) {
      for (const target of round % 2 === 1 ? targets : [...targets].reverse())
        await runOne(target, 'measure', round, options.roundS);
    }

    const summary = (target: WsTarget): WsSummary | null => {
      const mine = runs.filter((r) => r.target === target && r.phase === 'measure');
      if (mine.length === 0) return null;
      const messages = mine.reduce((s, r) => s + r.result.messages, 0);
      const seconds = mine.reduce((s, r) => s + r.result.durationS, 0);
      const cpu = mine.every((r) => r.serverCpuUsPerMessage !== null)
        ? mine.reduce((s, r) => s + (r.serverCpuUsPerMessage ?? 0) * r.result.messages, 0) / Math.max(1, messages)
        : null;
      return {
        target,
        messages,
        messagesPerSec: messages / seconds,
        p50Ms: median(mine.map((r) => r.result.rttUs.p50)) / 1e3,
        p99Ms: median(mine.map((r) => r.result.rttUs.p99)) / 1e3,
        serverCpuUsPerMessage: cpu,
        verified: runs.filter((r) => r.target === target).every((r) => r.verified),
      };
    };
    const direct = summary('direct');
    const through = summary('waymark');
    return {
      sockets: options.sockets,
      inflight: options.inflight,
      payloadBytes: options.payloadBytes,
      warmupS: options.warmupS,
      roundS: options.roundS,
      rounds: options.rounds,
      handshake,
      runs,
      direct,
      waymark: through,
      ratios:
        direct && through
          ? {
              throughput: through.messagesPerSec / direct.messagesPerSec,
              p50: through.p50Ms / direct.p50Ms,
              p99: through.p99Ms / direct.p99Ms,
            }
          : null,
    };
  } finally {
    if (client && client.exitCode === null) {
      const c = client;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.disconnect();
        setTimeout(() => c.kill('SIGKILL'), 2_000).unref();
      });
    }
    await stopServers(servers);
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}
