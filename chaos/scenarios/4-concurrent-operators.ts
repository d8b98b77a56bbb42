import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createClient, type Client } from '@libsql/client';
import { startHranaServer } from '../../scripts/hrana-server.js';
import { CHAOS_ADMIN_TOKEN, RssWatch, startWaymark, type WaymarkProcess } from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';

/**
 * Issue 14, scenario 4: twenty operators at once on two Waymark processes that share a store, first a
 * libSQL file, then a remote store (the Hrana-over-HTTP server over the embedded engine). They drain and
 * pin clusters (overlapping, some forced), end each other's overrides, apply config documents (with a
 * fresh If-Match, a stale one, or none; some pruning) and delete and re-create clusters and hosts. A
 * checker reads the store every ~50 ms in one read transaction and checks:
 * - never stranded unless forced: every service with clusters keeps a non-drained one, unless an active
 *   drain of it was forced (`"force": true`, stored as `forced`);
 * - at most one active pin per (service, client region);
 * - a host belongs to one service;
 * and at the end: a stale If-Match got 412 and wrote no version; an If-Match apply that succeeded made
 * exactly the version after the one it named; every acknowledged write is in the store.
 */
const scenario: Scenario = {
  name: '4 concurrent operators',
  run,
};
export default scenario;

const OPERATORS = 20;
const SAMPLE_EVERY_MS = 50;
const ADMIN_BASE = '/_waymark/api/v1';
const ADMIN_TIMEOUT_MS = 20_000;

const SERVICES = ['s0', 's1', 's2', 's3'] as const;
const REGIONS = [
  { region: 'us-east1', latitude: 33.2, longitude: -80.0 },
  { region: 'eu-west1', latitude: 53.3, longitude: -6.3 },
  { region: 'ap-south1', latitude: 19.1, longitude: 72.9 },
] as const;
/** Clusters every service has; `x` (in ap-south1) comes and goes (config prune, DELETE, PUT). */
const BASE_CLUSTERS = [
  { name: 'a', at: 0 },
  { name: 'b', at: 0 },
  { name: 'c', at: 1 },
] as const;
const EXTRA_CLUSTER = { name: 'x', at: 2 } as const;
/** Hosts that move between services (each service keeps one host of its own). */
const FLOATING_HOSTS = ['f0.chaos.test', 'f1.chaos.test', 'f2.chaos.test', 'f3.chaos.test', 'f4.chaos.test'];

type Rng = () => number;

/** mulberry32: a small seeded PRNG, so a run's choices repeat with its seed. */
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

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T;
const between = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Answer {
  /** 0: no answer (network error or timeout). */
  status: number;
  headers: Headers | null;
  json: any;
  error: string | null;
  ms: number;
}

/** An admin call with the headers the procs helper does not send (If-Match), never throwing. */
async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${CHAOS_ADMIN_TOKEN}`, ...opts.headers };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const started = performance.now();
  try {
    const res = await fetch(`${base}${ADMIN_BASE}${path}`, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(ADMIN_TIMEOUT_MS),
    });
    const text = await res.text();
    let json: any = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, headers: res.headers, json, error: null, ms: performance.now() - started };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { status: 0, headers: null, json: null, error: message, ms: performance.now() - started };
  }
}

/** An apply the operators made, checked against `config_versions` at the end. */
interface ApplyRecord {
  message: string;
  ifMatch: number | null;
  /** The If-Match named a version already superseded when it was sent: it must get 412. */
  stale: boolean;
  status: number;
  /** The version the answer named (200). */
  version: number | null;
  etag: string | null;
  changed: boolean;
}

/** What one phase (one store kind) saw. */
interface Tally {
  requests: number;
  clientErrors: number;
  lostWrites: number;
  violations: {
    stranded: number;
    pins: number;
    hosts: number;
    ifMatch: number;
  };
  statuses: Record<string, number>;
  /** Admin call latencies, ms. */
  latencies: number[];
  samples: number;
  sampleErrors: number;
  firstErrors: string[];
}

interface Phase {
  kind: 'file' | 'remote';
  procs: WaymarkProcess[];
  tally: Tally;
  applies: ApplyRecord[];
  /** Overrides created (201), by id. */
  created: Set<string>;
  /** Overrides ended by an operator (204). */
  ended: Set<string>;
  /** Recent override ids, for operators to end each other's. */
  recent: string[];
  /** Calls made by all operators. */
  opCount: number;
  /** The first stranding seen: its history is logged (the audit log around it) to say how it came about. */
  strandedAt?: { service: string; now: number };
}

function newTally(): Tally {
  return {
    requests: 0,
    clientErrors: 0,
    lostWrites: 0,
    violations: { stranded: 0, pins: 0, hosts: 0, ifMatch: 0 },
    statuses: {},
    latencies: [],
    samples: 0,
    sampleErrors: 0,
    firstErrors: [],
  };
}

function note(phase: Phase, what: string, answer: Answer): void {
  const t = phase.tally;
  t.requests += 1;
  t.latencies.push(answer.ms);
  const key = `${what} ${answer.status}`;
  t.statuses[key] = (t.statuses[key] ?? 0) + 1;
  if (answer.status === 0 || answer.status >= 500) {
    t.clientErrors += 1;
    if (t.firstErrors.length < 5)
      t.firstErrors.push(`${phase.kind} ${what}: ${answer.status} ${answer.error ?? JSON.stringify(answer.json)}`);
  }
}

function clusterDoc(name: string, at: number, origin: string, weight: number) {
  const r = REGIONS[at] as (typeof REGIONS)[number];
  return {
    name,
    region: r.region,
    origin,
    latitude: r.latitude,
    longitude: r.longitude,
    weight,
    healthCheck: { path: '/health', timeoutMs: 1_000, healthyThreshold: 1, unhealthyThreshold: 3 },
  };
}

/** A whole config document: every service, its own host plus some floating ones, random weights, `x` or not. */
function randomDocument(rng: Rng, origin: string) {
  const floating = new Map<string, string[]>(SERVICES.map((s) => [s, []]));
  for (const host of FLOATING_HOSTS) {
    if (rng() < 0.3) continue;
    floating.get(pick(rng, SERVICES))?.push(host);
  }
  return {
    apiVersion: 'waymark/v1',
    kind: 'Config',
    services: SERVICES.map((name) => ({
      name,
      hosts: [`${name}.chaos.test`, ...(floating.get(name) ?? [])],
      clusters: [
        ...BASE_CLUSTERS.map((c) => clusterDoc(c.name, c.at, origin, between(rng, 1, 4) * 50)),
        ...(rng() < 0.5 ? [clusterDoc(EXTRA_CLUSTER.name, EXTRA_CLUSTER.at, origin, 100)] : []),
      ],
    })),
  };
}

const etagVersion = (answer: Answer): number | null => {
  const tag = answer.headers?.get('etag');
  const m = tag ? /"?(\d+)"?/.exec(tag) : null;
  return m?.[1] ? Number(m[1]) : null;
};

/** One operator: a seeded stream of admin calls against either process until the deadline. */
async function operator(phase: Phase, index: number, seed: number, origin: string, deadline: number): Promise<void> {
  const rng = rngFrom(seed * 7919 + index * 104_729 + (phase.kind === 'file' ? 1 : 2));
  let n = 0;
  while (Date.now() < deadline) {
    const proc = pick(rng, phase.procs);
    const tag = `chaos-${phase.kind}-op${index}-${n++}`;
    const roll = rng();
    const service = pick(rng, SERVICES);
    if (roll < 0.3) {
      const shape = rng();
      const cluster = pick(rng, [...BASE_CLUSTERS, EXTRA_CLUSTER]);
      const body = {
        service,
        action: 'drain',
        ...(shape < 0.8 ? { cluster: cluster.name } : {}),
        ...(shape >= 0.5 ? { region: (REGIONS[cluster.at] as (typeof REGIONS)[number]).region } : {}),
        reason: `chaos drain ${tag}`,
        ttlSeconds: between(rng, 1, 6),
        force: rng() < 0.1,
      };
      const answer = await call(proc.url, 'POST', '/overrides', { body });
      note(phase, `drain${body.force ? '-forced' : ''}`, answer);
      if (answer.status === 201) remember(phase, answer.json?.id);
    } else if (roll < 0.45) {
      const cluster = pick(rng, [...BASE_CLUSTERS, EXTRA_CLUSTER]);
      const body = {
        service,
        action: 'pin',
        region: pick(rng, REGIONS).region,
        cluster: cluster.name,
        reason: `chaos pin ${tag}`,
        ttlSeconds: between(rng, 1, 6),
        force: rng() < 0.05,
      };
      const answer = await call(proc.url, 'POST', '/overrides', { body });
      note(phase, 'pin', answer);
      if (answer.status === 201) remember(phase, answer.json?.id);
    } else if (roll < 0.6) {
      const id = phase.recent.length ? pick(rng, phase.recent) : null;
      if (id) {
        const answer = await call(proc.url, 'DELETE', `/overrides/${id}?reason=chaos%20end`);
        note(phase, 'end-override', answer);
        if (answer.status === 204) phase.ended.add(id);
      }
    } else if (roll < 0.8) {
      await applyDocument(phase, proc, rng, origin, tag);
    } else if (roll < 0.87) {
      const hosts = [`${service}.chaos.test`, ...FLOATING_HOSTS.filter(() => rng() < 0.25)];
      const answer = await call(proc.url, 'PUT', `/services/${service}`, { body: { hosts } });
      note(phase, 'put-service', answer);
    } else if (roll < 0.94) {
      const answer = await call(proc.url, 'DELETE', `/services/${service}/clusters/${EXTRA_CLUSTER.name}`);
      note(phase, 'delete-cluster', answer);
    } else {
      const { name, ...config } = clusterDoc(EXTRA_CLUSTER.name, EXTRA_CLUSTER.at, origin, 100);
      const answer = await call(proc.url, 'PUT', `/services/${service}/clusters/${name}`, { body: config });
      note(phase, 'put-cluster', answer);
    }
    phase.opCount += 1;
    await sleep(between(rng, 5, 30));
  }
}

function remember(phase: Phase, id: unknown): void {
  if (typeof id !== 'string') return;
  phase.created.add(id);
  phase.recent.push(id);
  if (phase.recent.length > 60) phase.recent.shift();
}

/** A config apply: with a fresh If-Match (read just before), a stale one (one version back), or none. */
async function applyDocument(phase: Phase, proc: WaymarkProcess, rng: Rng, origin: string, tag: string) {
  const mode = rng();
  const document = randomDocument(rng, origin);
  let ifMatch: number | null = null;
  let stale = false;
  if (mode < 0.7) {
    const current = await call(proc.url, 'GET', '/config');
    note(phase, 'get-config', current);
    const version = etagVersion(current);
    if (current.status !== 200 || version === null) return;
    // One version back is stale for sure: versions only grow and this one was current a moment ago.
    stale = mode < 0.25 && version > 0;
    ifMatch = stale ? version - 1 : version;
  }
  const prune = ifMatch === null && rng() < 0.4;
  const query = `?message=${encodeURIComponent(tag)}${prune ? '&prune=true' : ''}`;
  const answer = await call(proc.url, 'POST', `/config${query}`, {
    body: document,
    headers: ifMatch === null ? {} : { 'if-match': `"${ifMatch}"` },
  });
  note(phase, ifMatch === null ? (prune ? 'apply-prune' : 'apply') : stale ? 'apply-stale' : 'apply-if-match', answer);
  const summary = answer.json?.summary as Record<string, number> | undefined;
  phase.applies.push({
    message: tag,
    ifMatch,
    stale,
    status: answer.status,
    version: typeof answer.json?.version === 'number' ? answer.json.version : null,
    etag: answer.headers?.get('etag') ?? null,
    changed: !!summary && (summary.create ?? 0) + (summary.update ?? 0) + (summary.delete ?? 0) > 0,
  });
}

const num = (v: unknown) => Number(v);

function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

/** One look at the store in one read transaction; each failed check counts once per sample. */
async function sampleStore(client: Client, phase: Phase): Promise<void> {
  const [clusterRows, hostRows, overrideRows, clock] = await client.batch(
    [
      'select service, name, region from clusters',
      'select host, service from service_hosts',
      'select id, service, action, cluster, region, forced, expires_at from overrides where ended_at is null',
      "select cast((julianday('now') - 2440587.5) * 86400000.0 as integer) as now",
    ],
    'deferred',
  );
  if (!clusterRows || !hostRows || !overrideRows || !clock) return;
  phase.tally.samples += 1;
  const now = num(clock.rows[0]?.now);
  const active = overrideRows.rows.filter((o) => num(o.expires_at) > now);
  const v = phase.tally.violations;

  const byService = new Map<string, { name: string; region: string }[]>();
  for (const c of clusterRows.rows) {
    const list = byService.get(String(c.service)) ?? [];
    list.push({ name: String(c.name), region: String(c.region) });
    byService.set(String(c.service), list);
  }
  for (const [service, clusters] of byService) {
    const drains = active.filter((o) => o.action === 'drain' && o.service === service);
    const drained = (c: { name: string; region: string }) =>
      drains.some((o) => (o.cluster === null || o.cluster === c.name) && (o.region === null || o.region === c.region));
    if (clusters.length > 0 && clusters.every(drained) && !drains.some((o) => num(o.forced) === 1)) {
      v.stranded += 1;
      if (v.stranded === 1) phase.strandedAt = { service, now };
      if (phase.tally.firstErrors.length < 5)
        phase.tally.firstErrors.push(
          `${phase.kind}: ${service} stranded without force: clusters ${JSON.stringify(clusters)} drains ${JSON.stringify(drains)}`,
        );
    }
  }

  const pins = new Map<string, number>();
  for (const o of active.filter((o) => o.action === 'pin')) {
    const key = `${o.service} ${o.region}`;
    pins.set(key, (pins.get(key) ?? 0) + 1);
  }
  v.pins += [...pins.values()].filter((count) => count > 1).length;

  const hosts = new Map<string, number>();
  for (const h of hostRows.rows) hosts.set(String(h.host), (hosts.get(String(h.host)) ?? 0) + 1);
  v.hosts += [...hosts.values()].filter((count) => count > 1).length;
}

/** After the load: If-Match honoured (by version numbers) and every acknowledged write in the store. */
async function verify(client: Client, phase: Phase): Promise<void> {
  const t = phase.tally;
  const versions = await client.execute('select version, message from config_versions order by version');
  const byMessage = new Map<string, number[]>();
  for (const row of versions.rows) {
    const message = String(row.message);
    byMessage.set(message, [...(byMessage.get(message) ?? []), num(row.version)]);
  }
  const fail = (why: string) => {
    t.violations.ifMatch += 1;
    if (t.firstErrors.length < 5) t.firstErrors.push(`${phase.kind}: ${why}`);
  };
  for (const a of phase.applies) {
    const written = byMessage.get(a.message) ?? [];
    if (a.status === 412) {
      if (written.length > 0) fail(`${a.message}: 412 yet wrote version ${written.join(',')}`);
      continue;
    }
    if (a.status !== 200) {
      if (written.length > 0 && a.status !== 0) fail(`${a.message}: ${a.status} yet wrote version ${written}`);
      continue;
    }
    if (a.stale) fail(`${a.message}: stale If-Match "${a.ifMatch}" was applied (version ${a.version})`);
    if (a.etag !== `"${a.version}"`) fail(`${a.message}: ETag ${a.etag} is not version ${a.version}`);
    if (a.changed) {
      if (written.length === 0) t.lostWrites += 1;
      else if (written.length !== 1 || written[0] !== a.version)
        fail(`${a.message}: answered version ${a.version}, wrote ${written.join(',')}`);
      if (a.ifMatch !== null && a.version !== a.ifMatch + 1)
        fail(`${a.message}: If-Match "${a.ifMatch}" applied as version ${a.version}`);
    } else {
      if (written.length > 0) fail(`${a.message}: unchanged yet wrote version ${written.join(',')}`);
      if (a.ifMatch !== null && a.version !== a.ifMatch)
        fail(`${a.message}: If-Match "${a.ifMatch}" unchanged at version ${a.version}`);
    }
  }

  const rows = await client.execute('select id, ended_at from overrides');
  const stored = new Map(rows.rows.map((r) => [String(r.id), r.ended_at]));
  for (const id of phase.created) if (!stored.has(id)) t.lostWrites += 1;
  for (const id of phase.ended) if (stored.get(id) === null || stored.get(id) === undefined) t.lostWrites += 1;
}

/** The audit entries about a stranded service in the seconds before it was seen stranded. */
async function logHistory(
  client: Client,
  context: ScenarioContext,
  phase: Phase,
  at: { service: string; now: number },
): Promise<void> {
  const rows = await client.execute({
    sql: `select at, actor, request_id, action, target, before, after from audit_log
          where at between ? and ? and (target like ? or coalesce(after, before) like ?) order by id`,
    args: [at.now - 30_000, at.now, `services/${at.service}%`, `%"service":"${at.service}"%`],
  });
  context.log(`4 ${phase.kind}: history of ${at.service} before it was seen stranded at ${at.now}:`);
  for (const r of rows.rows) {
    const state = String(r.after ?? r.before ?? '').slice(0, 220);
    context.log(`  ${num(r.at) - at.now} ms ${r.action} ${r.target} ${r.request_id} ${state}`);
  }
}

/** A health endpoint for every cluster's origin (no traffic is proxied in this scenario). */
async function startHealthOrigin(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function runPhase(
  context: ScenarioContext,
  kind: Phase['kind'],
  origin: string,
  rss: { pids: number[] },
): Promise<Phase> {
  const base = join(context.dir, kind);
  mkdirSync(join(base, 'a'), { recursive: true });
  mkdirSync(join(base, 'b'), { recursive: true });
  const dbPath = join(base, 'store.db');
  const hrana = kind === 'remote' ? await startHranaServer({ dbPath }) : null;
  const databaseUrl = hrana ? hrana.url : `file:${dbPath}`;
  const env = {
    WAYMARK_SNAPSHOT_REFRESH_MS: '250',
    // The health sync runs too (one process at a time, by lease): it probes and ends expired overrides.
    WAYMARK_SYNC_INTERVAL_MS: '1000',
    WAYMARK_LOG_LEVEL: 'warn',
  };
  const procs: WaymarkProcess[] = [];
  const phase: Phase = {
    kind,
    procs,
    tally: newTally(),
    applies: [],
    created: new Set(),
    ended: new Set(),
    recent: [],
    opCount: 0,
  };
  let checker: Client | null = null;
  try {
    procs.push(await startWaymark({ databaseUrl, dir: join(base, 'a'), env }));
    procs.push(await startWaymark({ databaseUrl, dir: join(base, 'b'), env }));
    rss.pids.push(...procs.map((p) => p.pid));
    const seedRng = rngFrom(context.seed);
    const first = procs[0] as WaymarkProcess;
    const seeded = await call(first.url, 'POST', '/config?message=seed', { body: randomDocument(seedRng, origin) });
    note(phase, 'seed', seeded);
    if (seeded.status !== 200)
      throw new Error(`seeding the config failed: ${seeded.status} ${JSON.stringify(seeded.json)}`);

    checker = createClient({ url: databaseUrl });
    const loadMs = context.quick ? 7_000 : 50_000;
    const deadline = Date.now() + loadMs;
    context.log(`4 ${kind}: ${OPERATORS} operators for ${loadMs} ms on ${procs.map((p) => p.url).join(', ')}`);
    let sampling = true;
    const client = checker;
    const sampler = (async () => {
      while (sampling) {
        const started = Date.now();
        try {
          await sampleStore(client, phase);
        } catch (error) {
          phase.tally.sampleErrors += 1;
          if (phase.tally.sampleErrors <= 3) context.log(`4 ${kind}: sample failed: ${String(error)}`);
        }
        await sleep(Math.max(0, SAMPLE_EVERY_MS - (Date.now() - started)));
      }
    })();
    await Promise.all(Array.from({ length: OPERATORS }, (_, i) => operator(phase, i, context.seed, origin, deadline)));
    // A last sample after every operator has its answer, then the end checks.
    sampling = false;
    await sampler;
    await sampleStore(client, phase);
    await verify(client, phase);
    if (phase.strandedAt) await logHistory(client, context, phase, phase.strandedAt);
    context.log(
      `4 ${kind}: ${phase.tally.requests} calls, ${phase.tally.samples} samples, statuses ${JSON.stringify(phase.tally.statuses)}`,
    );
    for (const line of phase.tally.firstErrors) context.log(`4 ${kind}: ${line}`);
  } finally {
    checker?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await hrana?.close();
  }
  return phase;
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const health = await startHealthOrigin();
  const pids: number[] = [];
  const watch = new RssWatch(() => pids);
  const phases: Phase[] = [];
  try {
    phases.push(await runPhase(context, 'file', health.url, { pids }));
    pids.length = 0;
    phases.push(await runPhase(context, 'remote', health.url, { pids }));
  } finally {
    watch.stop();
    health.server.close();
    health.server.closeAllConnections();
  }
  const sum = (f: (t: Tally) => number) => phases.reduce((n, p) => n + f(p.tally), 0);
  const details: Record<string, number | string> = {};
  for (const p of phases) {
    const t = p.tally;
    const count = (prefix: string, status: number) =>
      Object.entries(t.statuses)
        .filter(([k]) => k.startsWith(prefix) && k.endsWith(` ${status}`))
        .reduce((n, [, c]) => n + c, 0);
    details[`${p.kind}Calls`] = t.requests;
    details[`${p.kind}AdminP99Ms`] = Math.round(percentile(t.latencies, 0.99));
    details[`${p.kind}Samples`] = t.samples;
    details[`${p.kind}SampleErrors`] = t.sampleErrors;
    details[`${p.kind}Stranded`] = t.violations.stranded;
    details[`${p.kind}DoublePins`] = t.violations.pins;
    details[`${p.kind}SharedHosts`] = t.violations.hosts;
    details[`${p.kind}IfMatch`] = t.violations.ifMatch;
    details[`${p.kind}Overrides201`] = count('drain', 201) + count('pin', 201);
    details[`${p.kind}WouldStrand409`] = count('drain', 409);
    details[`${p.kind}Applies200`] = count('apply', 200);
    details[`${p.kind}Applies412`] = count('apply', 412);
    if (t.firstErrors[0]) details[`${p.kind}FirstError`] = t.firstErrors[0].slice(0, 300);
  }
  return {
    scenario: scenario.name,
    requests: sum((t) => t.requests),
    clientErrors: sum((t) => t.clientErrors),
    savableErrors: 0,
    duplicatedNonIdempotent: 0,
    lostWrites: sum((t) => t.lostWrites),
    invariantViolations: sum(
      (t) => t.violations.stranded + t.violations.pins + t.violations.hosts + t.violations.ifMatch,
    ),
    peakRssMb: watch.peakMb,
    details,
  };
}
