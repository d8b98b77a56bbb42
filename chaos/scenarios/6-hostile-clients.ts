import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { nextMessage, ROOT_DIR, track } from '../../bench/procs.js';
import { clusterSpec, eventually, mustWrite, sleep } from '../fleet.js';
import { openLoop } from '../load.js';
import { CHAOS_ADMIN_TOKEN, RssWatch, rssMb, startUpstreamProcess, startWaymark } from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';

/**
 * Issue 14, scenario 6: one Waymark process in front of two healthy upstreams. A quiet baseline of normal
 * GETs, then the same load while hostile clients (a child process of their own, so their work does not
 * delay the load generator's clock) attack with raw sockets: Expect: 100-continue with and without a body,
 * uploads cut mid-body, slowloris, request smuggling variants, header floods, regex-bait header values on
 * a route matching a header by regex, WebSocket upgrade floods (to an origin that refuses upgrades and to
 * one that echoes), and a stream of distinct rate-limit keys. Claims: no healthy cluster ejected, normal
 * requests see no errors and a p99 within 2x of the quiet run, every smuggling variant gets a 400 or a
 * closed connection and never reaches an upstream as two requests, Waymark's RSS stays bounded.
 */
const scenario: Scenario = {
  name: '6 hostile clients',
  run,
};
export default scenario;

const HOST = 'app.chaos.test';
const WS_HOST = 'ws.chaos.test';
const CHILD_FLAG = '--chaos-hostile-child';
/** Attacks start at random moments within this long of the attack phase's start. */
const STAGGER_MS = 2_000;
const NORMAL_RATE = 100;
/** The control load straight to an upstream (see `direct` in run). */
const DIRECT_RATE = 50;
/** Above this ratio of attacked to quiet p99, the latency claim fails (one invariant violation). */
const MAX_P99_RATIO = 2;

/** What the parent asks the attacker child to do. */
interface AttackOrder {
  type: 'attack';
  /** Waymark's port on 127.0.0.1. */
  port: number;
  durationMs: number;
  quick: boolean;
  seed: number;
}

/** One smuggling attempt: what came back on its socket. */
interface SmuggleOutcome {
  variant: string;
  id: string;
  innerId: string;
  /** Final statuses seen on the socket, in order (100 Continue left out). */
  statuses: number[];
  closed: boolean;
}

/** What the attacker child reports. */
interface AttackReport {
  type: 'report';
  /** Requests (and connections, for slowloris and WebSockets) the attackers made. */
  requests: number;
  /** Answers by attack and status (`error` for a connection that failed). */
  statuses: Record<string, Record<string, number>>;
  /** Answers a well-formed request should not get (5xx to an Expect with its body, a bait GET that failed). */
  unexpected: string[];
  smuggling: SmuggleOutcome[];
  /** POST ids that carried a body, each sent once: more than one arrival upstream is a duplicate. */
  postIds: string[];
  slowloris: { opened: number; closedByServer: number };
  websocket: { refused: number; upgraded: number; echoed: number; failed: number };
  rateLimitKeys: number;
  baitP99Ms: number;
  /** CPU the attackers themselves used, percent of one core over the attack. */
  cpuPercent: number;
}

// ---------------------------------------------------------------------------------------------------
// The attacker child
// ---------------------------------------------------------------------------------------------------

type Rng = () => number;

function rngFrom(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A raw connection: bytes in, everything the server answered until it closed or `waitMs` passed. */
function rawExchange(
  port: number,
  parts: (string | Buffer)[],
  opts: { waitMs: number; gapMs?: number; destroyAfterSend?: boolean; continueThenSend?: string | Buffer },
): Promise<{ text: string; closed: boolean; error: string | null }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let settled = false;
    let closed = false;
    let error: string | null = null;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed, error });
    };
    const timer = setTimeout(finish, opts.waitMs);
    let continued = false;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (opts.continueThenSend !== undefined && !continued && /^HTTP\/1\.1 100 /m.test(text)) {
        continued = true;
        socket.write(opts.continueThenSend);
      }
    });
    socket.on('error', (e) => {
      error = e.message;
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    socket.on('end', () => {
      closed = true;
    });
    socket.once('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed) break;
        socket.write(part);
        if (opts.gapMs) await sleep(opts.gapMs);
      }
      if (opts.destroyAfterSend) finish();
    });
  });
}

/** Final statuses in an answer stream (interim 100 Continue left out). */
function statusesOf(text: string): number[] {
  const out: number[] = [];
  // Anywhere: a pipelined answer's status line follows the last byte of the body before it.
  for (const m of text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)) {
    const status = Number(m[1]);
    if (status !== 100) out.push(status);
  }
  return out;
}

const inner = (id: string) => `GET /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\n\r\n`;

/** The smuggling variants: each a request whose framing a proxy and an origin could read differently. */
function smugglingVariants(id: string, innerId: string): { variant: string; bytes: string }[] {
  const head = (lines: string[]) =>
    `POST /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\n${lines.join('\r\n')}\r\n\r\n`;
  const smuggled = inner(innerId);
  const chunkedThenSmuggled = `0\r\n\r\n${smuggled}`;
  const chunk = `${Buffer.byteLength(smuggled).toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`;
  return [
    {
      variant: 'cl-te',
      bytes:
        head([`Content-Length: ${chunkedThenSmuggled.length}`, 'Transfer-Encoding: chunked']) + chunkedThenSmuggled,
    },
    { variant: 'te-cl', bytes: head(['Transfer-Encoding: chunked', 'Content-Length: 4']) + chunk },
    {
      variant: 'te-space-before-colon',
      bytes:
        head(['Transfer-Encoding : chunked', `Content-Length: ${chunkedThenSmuggled.length}`]) + chunkedThenSmuggled,
    },
    {
      variant: 'te-obs-fold',
      bytes:
        head(['Transfer-Encoding:', ' chunked', `Content-Length: ${chunkedThenSmuggled.length}`]) + chunkedThenSmuggled,
    },
    { variant: 'te-xchunked', bytes: head(['Transfer-Encoding: xchunked', 'Content-Length: 4']) + chunk },
    { variant: 'te-chunked-identity', bytes: head(['Transfer-Encoding: chunked, identity']) + chunkedThenSmuggled },
    {
      variant: 'te-duplicate',
      bytes: head(['Transfer-Encoding: chunked', 'Transfer-Encoding: identity']) + chunkedThenSmuggled,
    },
    { variant: 'te-vertical-tab', bytes: head(['Transfer-Encoding:\x0bchunked']) + chunkedThenSmuggled },
    {
      variant: 'cl-duplicate',
      bytes: `${head(['Content-Length: 5', `Content-Length: ${5 + smuggled.length}`])}hello${smuggled}`,
    },
    { variant: 'cl-list', bytes: `${head([`Content-Length: 5, ${5 + smuggled.length}`])}hello${smuggled}` },
    { variant: 'cl-plus-sign', bytes: `${head(['Content-Length: +5'])}hello${smuggled}` },
    {
      variant: 'chunk-size-overflow',
      bytes: `${head(['Transfer-Encoding: chunked'])}fffffffffffffffff1\r\nhello\r\n0\r\n\r\n${smuggled}`,
    },
    { variant: 'chunk-size-bare-lf', bytes: `${head(['Transfer-Encoding: chunked'])}5\nhello\r\n0\r\n\r\n${smuggled}` },
    { variant: 'header-bare-cr', bytes: head(['X-Split: a\rTransfer-Encoding: chunked']) + chunkedThenSmuggled },
  ];
}

async function attackerMain(): Promise<void> {
  // An origin that accepts WebSockets and echoes, for upgrades that should succeed through Waymark.
  const http = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  process.send?.({ type: 'ready', wsPort: (http.address() as AddressInfo).port });
  process.on('message', (m: AttackOrder) => {
    if (m?.type !== 'attack') return;
    void attack(m).then(
      (report) => process.send?.(report),
      (error: unknown) => process.send?.({ type: 'error', message: String(error) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

async function attack(order: AttackOrder): Promise<AttackReport> {
  const { port, durationMs, quick } = order;
  const rng = rngFrom(order.seed);
  const report: AttackReport = {
    type: 'report',
    requests: 0,
    statuses: {},
    unexpected: [],
    smuggling: [],
    postIds: [],
    slowloris: { opened: 0, closedByServer: 0 },
    websocket: { refused: 0, upgraded: 0, echoed: 0, failed: 0 },
    rateLimitKeys: 0,
    baitP99Ms: 0,
    cpuPercent: 0,
  };
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const seen = (attack: string, status: number | string) => {
    const row = (report.statuses[attack] ??= {});
    row[status] = (row[status] ?? 0) + 1;
  };
  const unexpected = (line: string) => {
    if (report.unexpected.length < 20) report.unexpected.push(line);
  };
  const deadline = Date.now() + durationMs;
  let n = 0;
  const nextId = (what: string) => `hostile-${what}-${n++}`;
  // CHAOS_HOSTILE_ONLY=bait,smuggling runs only those attacks (to find which one costs what).
  const only = (process.env.CHAOS_HOSTILE_ONLY ?? '').split(',').filter((a) => a !== '');
  const on = (attack: string) => only.length === 0 || only.includes(attack);
  // Each attack starts at its own moment in the first seconds: all of them in the same millisecond would
  // measure a burst of connections (which any proxy on two shared cores queues), not hostile requests.
  const loop = async (attack: string, everyMs: number, work: () => Promise<void>) => {
    if (!on(attack)) return;
    await sleep(rng() * STAGGER_MS);
    const pending = new Set<Promise<void>>();
    while (Date.now() < deadline) {
      const p = work().finally(() => pending.delete(p));
      pending.add(p);
      await sleep(everyMs);
    }
    await Promise.all(pending);
  };

  // Slowloris: many connections each trickling a header one byte at a time, never finishing it.
  const slowSockets: Socket[] = [];
  const slowloris = (async () => {
    if (!on('slowloris')) return;
    await sleep(rng() * STAGGER_MS);
    const count = quick ? 150 : 400;
    for (let i = 0; i < count && Date.now() < deadline; i++) {
      const s = connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => {
        if (Date.now() < deadline) report.slowloris.closedByServer += 1;
      });
      s.write(`GET /chaos HTTP/1.1\r\nHost: ${HOST}\r\nX-Slow: `);
      slowSockets.push(s);
      report.slowloris.opened += 1;
      report.requests += 1;
      await sleep(10);
    }
    while (Date.now() < deadline) {
      for (const s of slowSockets) if (!s.destroyed) s.write('a');
      await sleep(1_000);
    }
    for (const s of slowSockets) s.destroy();
  })();

  // Expect: 100-continue with the body sent after the 100, and without ever sending it.
  const expectWithBody = loop('expect', 100, async () => {
    const id = nextId('expect');
    const body = JSON.stringify({ id, pad: 'x'.repeat(800) });
    report.postIds.push(id);
    report.requests += 1;
    const r = await rawExchange(
      port,
      [
        `POST /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
      ],
      { waitMs: 5_000, continueThenSend: body },
    );
    const status = statusesOf(r.text)[0];
    seen('expect-with-body', status ?? 'none');
    if (status !== 200) unexpected(`expect-with-body ${id}: ${status ?? r.error ?? 'no answer'}`);
  });
  const expectNoBody = loop('expect', 200, async () => {
    const id = nextId('expect-nobody');
    report.postIds.push(id);
    report.requests += 1;
    const zero = rng() < 0.3;
    const r = await rawExchange(
      port,
      [
        `POST /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\nContent-Length: ${zero ? 0 : 4096}\r\nExpect: 100-continue\r\n\r\n`,
      ],
      { waitMs: zero ? 3_000 : 1_500 },
    );
    const status = statusesOf(r.text)[0];
    seen(zero ? 'expect-empty-body' : 'expect-body-never-sent', status ?? (r.closed ? 'closed' : 'held'));
    if (zero && status !== 200) unexpected(`expect-empty-body ${id}: ${status ?? 'no answer'}`);
  });

  // Uploads cut mid-body: the connection goes away a quarter of the way through.
  const aborted = loop('aborted', 200, async () => {
    const id = nextId('abort');
    report.postIds.push(id);
    report.requests += 1;
    const size = rng() < 0.5 ? 8_192 : 200_000;
    await rawExchange(
      port,
      [
        `POST /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${size}\r\n\r\n`,
        Buffer.alloc(size / 4, 0x61),
      ],
      { waitMs: 300, gapMs: 20, destroyAfterSend: true },
    );
    seen('aborted-upload', 'cut');
  });

  // Smuggling: every variant once a round, each on a fresh connection.
  const smuggling = loop('smuggling', quick ? 700 : 1_000, async () => {
    const round = n++;
    await Promise.all(
      smugglingVariants('', '').map(async ({ variant }) => {
        const id = `hostile-smuggle-${variant}-${round}`;
        const innerId = `${id}-inner`;
        const bytes = smugglingVariants(id, innerId).find((v) => v.variant === variant)?.bytes ?? '';
        report.requests += 1;
        const r = await rawExchange(port, [bytes], { waitMs: 3_000 });
        const statuses = statusesOf(r.text);
        seen(`smuggle ${variant}`, statuses.join('+') || (r.closed ? 'closed' : 'held'));
        report.smuggling.push({ variant, id, innerId, statuses, closed: r.closed });
        report.postIds.push(id);
      }),
    );
  });

  // Header floods: thousands of headers, one huge value, and a legitimate many-headers request.
  const floods = loop('floods', 300, async () => {
    const kind = Math.floor(rng() * 3);
    const id = nextId('flood');
    report.requests += 1;
    let head = `GET /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\n`;
    if (kind === 0) for (let i = 0; i < 3_000; i++) head += `X-Flood-${i}: v\r\n`;
    else if (kind === 1) head += `X-Huge: ${'h'.repeat(1_048_576)}\r\n`;
    else for (let i = 0; i < 150; i++) head += `X-Many-${i}: ${'m'.repeat(40)}\r\n`;
    const r = await rawExchange(port, [`${head}Connection: close\r\n\r\n`], { waitMs: 3_000 });
    const status = statusesOf(r.text)[0];
    const name = ['flood-3000-headers', 'flood-1mb-value', 'flood-150-headers-ok'][kind] as string;
    seen(name, status ?? (r.closed ? 'closed' : 'held'));
    if (kind === 2 && status !== 200) unexpected(`${name} ${id}: ${status ?? 'no answer'}`);
    if (kind !== 2 && status !== undefined && status >= 500) unexpected(`${name} ${id}: ${status}`);
  });

  // Regex bait: long values built to make a backtracking engine explode, on the route matching by regex.
  const baitAgent = new Agent({ connections: 8 });
  const baitLatencies: number[] = [];
  const bait = loop('bait', 50, async () => {
    const value = `${'a'.repeat(Math.floor(4_000 + rng() * 8_000))}${rng() < 0.5 ? '!' : 'c'}`;
    report.requests += 1;
    const started = performance.now();
    try {
      const res = await request(`http://127.0.0.1:${port}/bait`, {
        headers: { host: HOST, 'x-bait': value, 'x-bait-2': `${'ab'.repeat(2_000)}x` },
        dispatcher: baitAgent,
        signal: AbortSignal.timeout(10_000),
      });
      await res.body.dump();
      baitLatencies.push(performance.now() - started);
      seen('regex-bait', res.statusCode);
      if (res.statusCode !== 200) unexpected(`regex-bait: ${res.statusCode}`);
    } catch (error) {
      seen('regex-bait', 'error');
      unexpected(`regex-bait: ${String(error)}`);
    }
  });

  // Upgrades: to the service whose origin refuses them (a plain HTTP server), and real WebSockets.
  const refusedUpgrades = loop('upgrades', 100, async () => {
    const id = nextId('upgrade');
    report.requests += 1;
    const key = Buffer.from(id.padEnd(16, '.').slice(0, 16)).toString('base64');
    const r = await rawExchange(
      port,
      [
        `GET /chaos HTTP/1.1\r\nHost: ${HOST}\r\nx-chaos-id: ${id}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
      ],
      { waitMs: 3_000 },
    );
    const status = statusesOf(r.text)[0];
    seen('upgrade-refused-by-origin', status ?? (r.closed ? 'closed' : 'held'));
    if (status === 101) unexpected(`upgrade ${id}: 101 from an origin that does not speak WebSocket`);
    else if (status === undefined || status >= 500) unexpected(`upgrade ${id}: ${status ?? 'no answer'}`);
    else report.websocket.refused += 1;
  });
  const upgrades = loop('upgrades', quick ? 1_500 : 2_000, async () => {
    const wave = quick ? 40 : 60;
    await Promise.all(
      Array.from({ length: wave }, async (_, i) => {
        // A wave's upgrades come over half a second, not in one instant.
        await sleep((i * 500) / wave);
        report.requests += 1;
        const outcome = await new Promise<'echoed' | 'upgraded' | 'failed'>((resolve) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, {
            headers: { host: WS_HOST },
            handshakeTimeout: 5_000,
          });
          let upgraded = false;
          const timer = setTimeout(() => {
            ws.terminate();
            resolve(upgraded ? 'upgraded' : 'failed');
          }, 5_000);
          ws.on('open', () => {
            upgraded = true;
            ws.send(`hello ${i}`);
          });
          ws.on('message', (data) => {
            clearTimeout(timer);
            ws.close();
            resolve(String(data) === `hello ${i}` ? 'echoed' : 'upgraded');
          });
          ws.on('error', () => {
            clearTimeout(timer);
            resolve(upgraded ? 'upgraded' : 'failed');
          });
        });
        if (outcome !== 'failed') report.websocket.upgraded += 1;
        if (outcome === 'echoed') report.websocket.echoed += 1;
        else if (outcome === 'failed') report.websocket.failed += 1;
        seen('websocket', outcome);
      }),
    );
  });

  // Rate-limit keys: every request a new key, pipelined on a few keep-alive connections.
  const keys = (async () => {
    if (!on('keys')) return;
    await sleep(rng() * STAGGER_MS);
    const perSecond = quick ? 300 : 400;
    const connections = 4;
    const batch = Math.ceil(perSecond / connections / 10);
    await Promise.all(
      Array.from({ length: connections }, async (_, c) => {
        while (Date.now() < deadline) {
          let bytes = '';
          for (let i = 0; i < batch; i++)
            bytes += `GET /limited HTTP/1.1\r\nHost: ${HOST}\r\nx-tenant: tenant-${c}-${report.rateLimitKeys++}-${'k'.repeat(64)}\r\n\r\n`;
          report.requests += batch;
          const r = await rawExchange(
            port,
            [
              `${bytes}GET /limited HTTP/1.1\r\nHost: ${HOST}\r\nx-tenant: last-${c}-${report.rateLimitKeys++}\r\nConnection: close\r\n\r\n`,
            ],
            {
              waitMs: 2_000,
            },
          );
          for (const status of statusesOf(r.text)) seen('rate-limit-keys', status);
          await sleep(100);
        }
      }),
    );
  })();

  await Promise.all([
    slowloris,
    expectWithBody,
    expectNoBody,
    aborted,
    smuggling,
    floods,
    bait,
    refusedUpgrades,
    upgrades,
    keys,
  ]);
  await baitAgent.close();
  baitLatencies.sort((a, b) => a - b);
  report.baitP99Ms = Math.round(baitLatencies[Math.floor(baitLatencies.length * 0.99)] ?? 0);
  const used = process.cpuUsage(cpuBefore);
  report.cpuPercent = Math.round((used.user + used.system) / 10 / (performance.now() - startedAt));
  return report;
}

if (process.argv.includes(CHILD_FLAG) && process.send) void attackerMain();

// ---------------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------------

function p99(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] as number;
}

/** The sum of `waymark_outlier_ejections_total`, and the clusters not healthy, from /_waymark/metrics. */
async function clusterStates(url: string): Promise<{ ejections: number; notHealthy: string[] }> {
  const res = await fetch(`${url}/_waymark/metrics`, { headers: { authorization: `Bearer ${CHAOS_ADMIN_TOKEN}` } });
  const text = await res.text();
  let ejections = 0;
  const notHealthy: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('waymark_outlier_ejections_total{')) ejections += Number(line.split(' ').pop());
    const m = /^waymark_cluster_health\{([^}]*)\} 1$/.exec(line);
    if (m?.[1] && !/state="(healthy|unknown)"/.test(m[1])) notHealthy.push(m[1]);
  }
  return { ejections, notHealthy };
}

/** CPU time a process has used so far, ms (utime + stime from /proc; 0 when it is gone). */
function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * (1000 / CLOCK_TICKS);
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = 100;

/** A load window with the Waymark process's CPU over it, percent of one core. */
async function measured<T>(pid: number, work: () => Promise<T>): Promise<{ value: T; cpuPercent: number }> {
  const cpu = cpuMs(pid);
  const started = performance.now();
  const value = await work();
  return { value, cpuPercent: Math.round(((cpuMs(pid) - cpu) / (performance.now() - started)) * 100) };
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const quietMs = context.quick ? 6_000 : 30_000;
  const attackMs = context.quick ? 8_000 : 50_000;
  const [h1, h2] = await Promise.all([startUpstreamProcess('h1', 'us-east1'), startUpstreamProcess('h2', 'eu-west1')]);
  const child: ChildProcess = track(
    fork(fileURLToPath(import.meta.url), [CHILD_FLAG], {
      cwd: ROOT_DIR,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  const { wsPort } = await nextMessage<{ wsPort: number }>(child, (m) => m?.type === 'ready', 30_000, 'attacker');
  const waymark = await startWaymark({
    databaseUrl: `file:${join(context.dir, 'store.db')}`,
    dir: context.dir,
    env: { WAYMARK_SYNC_INTERVAL_MS: '2000', WAYMARK_LOG_LEVEL: 'error' },
  });
  const watch = new RssWatch(() => [waymark.pid]);
  try {
    await mustWrite(waymark, 'PUT', '/services/app', { hosts: [HOST] });
    await mustWrite(waymark, 'PUT', '/services/app/clusters/h1', clusterSpec('us-east1', h1.url));
    await mustWrite(waymark, 'PUT', '/services/app/clusters/h2', clusterSpec('eu-west1', h2.url));
    await mustWrite(waymark, 'PUT', '/services/app/routes/bait', {
      order: 10,
      // Patterns a backtracking engine takes exponential time over on the values the attackers send.
      match: {
        path: { prefix: '/bait' },
        headers: { 'x-bait': { regex: '(a+)+b' }, 'x-bait-2': { regex: '(ab|a)*c' } },
      },
    });
    await mustWrite(waymark, 'PUT', '/services/app/routes/limited', {
      order: 20,
      match: { path: { prefix: '/limited' } },
      // Every key gets its bucket, then the abort answers without bothering an origin.
      rateLimit: { requestsPerSecond: 1, burst: 1, key: { header: 'x-tenant' } },
      fault: { abort: { percent: 100, status: 418 } },
    });
    await mustWrite(waymark, 'PUT', '/services/ws', { hosts: [WS_HOST] });
    await mustWrite(
      waymark,
      'PUT',
      '/services/ws/clusters/echo',
      clusterSpec('us-east1', `http://127.0.0.1:${wsPort}`, {
        healthCheck: { path: '/', timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 2 },
      }),
    );
    await eventually('the routes serve', async () => {
      // undici's request: fetch does not let a caller set Host.
      const res = await request(`${waymark.url}/chaos`, { headers: { host: HOST } });
      await res.body.dump();
      return res.statusCode === 200;
    });

    // Warm up the connections and the JIT (p99 keeps falling for seconds after a start), then the quiet baseline.
    const normal = (durationMs: number) =>
      openLoop({ url: waymark.url, host: HOST, ratePerSec: NORMAL_RATE, durationMs, postShare: 0 });
    await normal(context.quick ? 4_000 : 10_000);
    // A control beside each measured window: the same kind of GET straight to an upstream, bypassing
    // Waymark. When it slows down as much, the machine (shared, 2 cores) is what slowed, not Waymark.
    const direct = (durationMs: number) =>
      openLoop({ url: h1.url, host: HOST, ratePerSec: DIRECT_RATE, durationMs, postShare: 0, path: '/direct' });
    const quietDirect = direct(quietMs);
    const { value: quiet, cpuPercent: quietCpu } = await measured(waymark.pid, () => normal(quietMs));
    const rssQuiet = rssMb(waymark.pid) ?? 0;
    const before = await clusterStates(waymark.url);
    context.log(`6: quiet p99 ${p99(quiet.latenciesMs.get).toFixed(1)} ms, rss ${rssQuiet} MB`);

    const reportP = nextMessage<AttackReport>(child, (m) => m?.type === 'report', attackMs + 60_000, 'attack report');
    child.send({
      type: 'attack',
      port: Number(new URL(waymark.url).port),
      durationMs: attackMs,
      quick: context.quick,
      seed: context.seed,
    } satisfies AttackOrder);
    const attackedDirect = direct(attackMs);
    const { value: attacked, cpuPercent: attackedCpu } = await measured(waymark.pid, () => normal(attackMs));
    const attack = await reportP;
    // The quiet baseline again after the attack: the two quiet windows together are the reference, so
    // neither the warm-up's tail nor what the attack left behind decides the ratio alone.
    const quietAfter = await normal(quietMs);
    const after = await clusterStates(waymark.url);
    const alive = waymark.pid > 0 && rssMb(waymark.pid) !== null;
    const received = await Promise.all([h1.received(), h2.received()]);
    const arrivals = (id: string) => received.reduce((n, r) => n + (r[id] ?? 0), 0);

    let violations = 0;
    const problems: string[] = [];
    const violation = (why: string) => {
      violations += 1;
      if (problems.length < 10) problems.push(why);
    };
    const quietP99 = p99([...quiet.latenciesMs.get, ...quietAfter.latenciesMs.get]);
    const attackedP99 = p99(attacked.latenciesMs.get);
    const ratio = quietP99 > 0 ? attackedP99 / quietP99 : 0;
    const directQuietP99 = p99((await quietDirect).latenciesMs.get);
    const directAttackedP99 = p99((await attackedDirect).latenciesMs.get);
    // A latency ratio is a measurement, not a check, on a shared 2-core machine over an 8 s quick run: CI's
    // quick run reports it in the details; the full run (50 s of attack) holds the claim.
    if (ratio > MAX_P99_RATIO && !context.quick)
      violation(`p99 under attack ${attackedP99.toFixed(1)} ms is ${ratio.toFixed(2)}x quiet`);
    if (after.ejections > before.ejections) violation(`${after.ejections - before.ejections} ejections`);
    if (after.notHealthy.length > 0) violation(`clusters not healthy: ${after.notHealthy.join('; ')}`);
    if (!alive) violation('waymark died');
    const smugglingOutcomes: Record<string, string> = {};
    for (const s of attack.smuggling) {
      const refused = (s.statuses.length === 0 && s.closed) || (s.statuses.length === 1 && s.statuses[0] === 400);
      if (!refused) violation(`smuggling ${s.variant}: answered ${s.statuses.join('+') || 'nothing, connection held'}`);
      if (arrivals(s.innerId) > 0) violation(`smuggling ${s.variant}: the smuggled request reached an upstream`);
      if (arrivals(s.id) > 1) violation(`smuggling ${s.variant}: reached an upstream ${arrivals(s.id)} times`);
      smugglingOutcomes[s.variant] ??= s.statuses.join('+') || (s.closed ? 'closed' : 'held');
    }
    const duplicated = attack.postIds.filter((id) => arrivals(id) > 1).length;
    const normalFailures = quiet.failures.length + attacked.failures.length + quietAfter.failures.length;
    const clientErrors = normalFailures + attack.unexpected.length;
    for (const line of [...problems, ...attack.unexpected.slice(0, 5)]) context.log(`6: ${line}`);
    context.log(`6: attack statuses ${JSON.stringify(attack.statuses)}`);

    const peak = watch.stop();
    return {
      scenario: scenario.name,
      requests: quiet.requests + attacked.requests + quietAfter.requests + attack.requests,
      clientErrors,
      savableErrors: 0,
      duplicatedNonIdempotent: duplicated,
      lostWrites: 0,
      invariantViolations: violations,
      peakRssMb: peak,
      details: {
        quietP99Ms: Math.round(quietP99 * 10) / 10,
        attackedP99Ms: Math.round(attackedP99 * 10) / 10,
        p99Ratio: Math.round(ratio * 100) / 100,
        quietBeforeP99Ms: Math.round(p99(quiet.latenciesMs.get) * 10) / 10,
        quietAfterP99Ms: Math.round(p99(quietAfter.latenciesMs.get) * 10) / 10,
        directQuietP99Ms: Math.round(directQuietP99 * 10) / 10,
        directAttackedP99Ms: Math.round(directAttackedP99 * 10) / 10,
        // The ratio with the machine's own slowdown (the control's ratio) divided out: Waymark's share.
        p99RatioOverControl:
          directQuietP99 > 0 ? Math.round((ratio / (directAttackedP99 / directQuietP99)) * 100) / 100 : 0,
        waymarkCpuQuietPct: quietCpu,
        waymarkCpuAttackedPct: attackedCpu,
        attackerCpuPct: attack.cpuPercent,
        normalFailures,
        hostileUnexpected: attack.unexpected.length,
        ejections: after.ejections - before.ejections,
        rssQuietMb: rssQuiet,
        rateLimitKeys: attack.rateLimitKeys,
        slowlorisSockets: attack.slowloris.opened,
        slowlorisClosedByServer: attack.slowloris.closedByServer,
        wsUpgraded: attack.websocket.upgraded,
        wsEchoed: attack.websocket.echoed,
        wsFailed: attack.websocket.failed,
        wsRefusedCleanly: attack.websocket.refused,
        baitP99Ms: attack.baitP99Ms,
        smugglingAttempts: attack.smuggling.length,
        smuggling: Object.entries(smugglingOutcomes)
          .map(([v, o]) => `${v}:${o}`)
          .join(' '),
        ...(problems[0] ? { firstProblem: problems[0].slice(0, 300) } : {}),
        ...(attack.unexpected[0] ? { firstUnexpected: attack.unexpected[0].slice(0, 300) } : {}),
      },
    };
  } finally {
    watch.stop();
    child.kill('SIGKILL');
    await waymark.stop();
    await Promise.all([h1.stop(), h2.stop()]);
  }
}
