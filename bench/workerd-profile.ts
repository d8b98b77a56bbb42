import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { decodeMappings, type CpuProfile } from './profile.js';

/**
 * A V8 CPU profile of one worker inside workerd, taken through workerd's inspector (Miniflare's
 * `inspectorPort`) with the DevTools protocol's Profiler domain, the way DevTools' Performance tab does it.
 * It covers the worker's own isolate only (not Miniflare's entry worker, not workerd's C++ I/O).
 */
export interface WorkerdProfiler {
  stop(): Promise<CpuProfile>;
}

const CALL_TIMEOUT_MS = 10_000;
const SAMPLING_INTERVAL_US = 250;

/** A DevTools protocol session with one worker's isolate in workerd (Miniflare's `inspectorPort`). */
interface InspectorSession {
  call<T>(method: string, params?: Record<string, unknown>): Promise<T>;
  close(): void;
}

async function openInspector(inspector: URL, worker: string): Promise<InspectorSession> {
  const socket = new WebSocket(new URL(`/core:user:${worker}`, inspector), {
    perMessageDeflate: false,
    maxPayload: 1024 * 2 ** 20,
  });
  await new Promise<void>((ok, fail) => {
    socket.once('open', () => ok());
    socket.once('error', fail);
  });
  let nextId = 0;
  const pending = new Map<number, (reply: { result?: unknown; error?: { message: string } }) => void>();
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    // Events carry no id. workerd answers some calls (Profiler.enable...) with an echo of the request
    // rather than an empty result: any message with the call's id settles it.
    if (message.id === undefined) return;
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  return {
    call: <T>(method: string, params: Record<string, unknown> = {}): Promise<T> =>
      new Promise((ok, fail) => {
        const id = ++nextId;
        const timer = setTimeout(() => fail(new Error(`workerd inspector: ${method} timed out`)), CALL_TIMEOUT_MS);
        pending.set(id, (reply) => {
          clearTimeout(timer);
          if (reply.error) fail(new Error(`workerd inspector: ${method}: ${reply.error.message}`));
          else ok(reply.result as T);
        });
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

export async function startWorkerdProfiler(inspector: URL, worker: string): Promise<WorkerdProfiler> {
  const session = await openInspector(inspector, worker);
  await session.call('Profiler.enable');
  await session.call('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
  await session.call('Profiler.start');
  return {
    async stop() {
      try {
        return (await session.call<{ profile: CpuProfile }>('Profiler.stop')).profile;
      } finally {
        session.close();
      }
    },
  };
}

/**
 * The worker's isolate heap in use after a full GC (MiB), as DevTools' Memory panel reads it
 * (HeapProfiler.collectGarbage, then Runtime.getHeapUsage). workerd runs a DevTools command only when
 * something takes the isolate's lock: `nudge` sends the worker a request (a cheap one) for that.
 */
export async function workerdHeapMb(inspector: URL, worker: string, nudge: () => Promise<void>): Promise<number> {
  const session = await openInspector(inspector, worker);
  try {
    let collected = false;
    const gc = session.call('HeapProfiler.collectGarbage').finally(() => {
      collected = true;
    });
    // The command may reach workerd after a nudge's request has run: nudge until it has been run.
    while (!collected) await Promise.race([nudge().then(() => sleep(50)), gc]);
    await gc;
    const { usedSize } = await session.call<{ usedSize: number }>('Runtime.getHeapUsage');
    return usedSize / 2 ** 20;
  } finally {
    session.close();
  }
}

/**
 * Rewrites the bundle's frames (worker.js line:column) to the original files and lines through the
 * bundle's source map, so that bench/profile.ts can group them by area (src/, hono, drizzle...).
 */
export function mapBundleProfile(profile: CpuProfile, bundleFile: string): CpuProfile {
  let map: { sources: string[]; mappings: string; sourceRoot?: string };
  try {
    map = JSON.parse(readFileSync(`${bundleFile}.map`, 'utf8')) as typeof map;
  } catch {
    return profile;
  }
  const lines = decodeMappings(map.mappings);
  const base = resolve(dirname(bundleFile), map.sourceRoot ?? '');
  const urls = map.sources.map((s) => pathToFileURL(resolve(base, s)).href);
  const bundleName = bundleFile.slice(bundleFile.lastIndexOf('/') + 1);
  for (const node of profile.nodes) {
    const f = node.callFrame;
    if (!f.url.endsWith(bundleName)) continue;
    const segments = lines[f.lineNumber];
    if (!segments?.length) continue;
    let best = segments[0] as [number, number, number];
    for (const s of segments) {
      if (s[0] <= f.columnNumber) best = s;
      else break;
    }
    const url = urls[best[1]];
    if (!url) continue;
    f.url = url;
    f.lineNumber = best[2];
    f.columnNumber = 0;
  }
  return profile;
}
