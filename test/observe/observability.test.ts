import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSettings, SettingsError } from '../../src/settings.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startOrigin, type Origin } from '../support/origin.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { send } from '../../scripts/http-client.js';

const HOST = 'shop.example.com';
const METRICS_TOKEN = 'metrics-scraper-token-0123456789';
const READ_TOKEN = 'reader-token-0123456789abcdef';
const fromEu = { 'x-waymark-client-region': 'eu-west1' };

interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format 0.0.4, strictly enough to fail on a malformed line or an untyped metric. */
function parseProm(text: string): PromSample[] {
  const typed = new Set<string>();
  const samples: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      typed.add(type[1] as string);
      continue;
    }
    if (line.startsWith('# HELP ')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const name = m[1] as string;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(name) && !typed.has(base)) throw new Error(`no TYPE before ${name}`);
    const labels: Record<string, string> = {};
    const body = m[2] ?? '';
    const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    while (pair.lastIndex < body.length) {
      const p = pair.exec(body);
      if (!p) throw new Error(`bad labels: ${body}`);
      labels[p[1] as string] = (p[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const raw = m[3] as string;
    samples.push({ name, labels, value: raw === '+Inf' ? Number.POSITIVE_INFINITY : Number(raw) });
  }
  return samples;
}

function pick(samples: PromSample[], name: string, labels: Record<string, string> = {}): PromSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: PromSample[], name: string, labels: Record<string, string>): number | undefined {
  const found = pick(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} series match ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

/** An OTLP/HTTP receiver on 127.0.0.1: keeps every JSON body it gets. */
async function startReceiver(): Promise<{ url: string; bodies: unknown[]; stop: () => Promise<void> }> {
  const bodies: unknown[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      if (req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') bodies.push(JSON.parse(text));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    bodies,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: number;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string } }[];
}

function spansOf(bodies: unknown[]): Span[] {
  return bodies.flatMap((b) =>
    (b as { resourceSpans: { scopeSpans: { spans: Span[] }[] }[] }).resourceSpans.flatMap((r) =>
      r.scopeSpans.flatMap((s) => s.spans),
    ),
  );
}

function attr(span: Span, key: string): string | undefined {
  const v = span.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? v?.intValue;
}

describe('Prometheus metrics at /_waymark/metrics (Node)', () => {
  let server: TestServer;
  let fleet: Fleet;

  beforeEach(async () => {
    fleet = await startFleet();
    server = await startTestServer({
      WAYMARK_METRICS_TOKEN: METRICS_TOKEN,
      WAYMARK_READ_TOKENS: `grafana:${READ_TOKEN}`,
      WAYMARK_TRY_TIMEOUT_MS: '1000',
    });
    await registerFleet(server, fleet);
  });
  afterEach(async () => {
    await server.close();
    await fleet.stop();
  });

  const scrape = (token: string | null) =>
    send(`${server.url}/_waymark/metrics`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });

  it('after known traffic: exact counters, histogram count, attempts by outcome, shares per region, bounded labels', async () => {
    // One failing try: ew1 answers 503, the request moves on to the next cluster.
    fleet['eu-west1'].mode = 'fail';
    const first = await server.request(HOST, '/a?secret=1', { headers: fromEu });
    expect(first.status).toBe(200);
    const fallback = first.headers['x-waymark-cluster'] as string;
    expect(fallback).not.toBe('ew1');
    fleet['eu-west1'].mode = 'ok';
    for (let i = 0; i < 4; i++) expect((await server.request(HOST, `/b/${i}`, { headers: fromEu })).status).toBe(200);
    // Unknown hosts: one label value whatever the host.
    for (const host of ['a.unknown.test', 'b.unknown.test', 'c.unknown.test'])
      expect((await server.request(host, '/')).status).toBe(404);

    const res = await scrape(METRICS_TOKEN);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = parseProm(res.body);

    expect(value(m, 'waymark_requests_total', { service: 'shop', cluster: 'ew1', code: '2xx' })).toBe(4);
    expect(value(m, 'waymark_requests_total', { service: 'shop', cluster: fallback, code: '2xx' })).toBe(1);
    expect(pick(m, 'waymark_requests_total', { service: 'shop' }).every((s) => s.labels.route === '-')).toBe(true);
    expect(pick(m, 'waymark_requests_total', { service: '-' })).toEqual([
      { name: 'waymark_requests_total', labels: { service: '-', route: '-', cluster: '-', code: '4xx' }, value: 3 },
    ]);
    expect(value(m, 'waymark_request_duration_seconds_count', { service: 'shop', route: '-' })).toBe(5);
    expect(value(m, 'waymark_request_duration_seconds_bucket', { service: 'shop', route: '-', le: '+Inf' })).toBe(5);
    const buckets = pick(m, 'waymark_request_duration_seconds_bucket', { service: 'shop' }).map((s) => s.value);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
    expect(value(m, 'waymark_upstream_attempts_total', { service: 'shop', cluster: 'ew1', outcome: '5xx' })).toBe(1);
    expect(value(m, 'waymark_upstream_attempts_total', { service: 'shop', cluster: 'ew1', outcome: 'response' })).toBe(
      4,
    );
    expect(
      value(m, 'waymark_upstream_attempts_total', { service: 'shop', cluster: fallback, outcome: 'response' }),
    ).toBe(1);
    expect(value(m, 'waymark_retries_total', { service: 'shop', route: '-' })).toBe(1);
    expect(pick(m, 'waymark_retry_budget_exhausted_total')).toEqual([]);
    expect(pick(m, 'waymark_outlier_ejections_total')).toEqual([]);

    // Health: one series per cluster, value 1, state says which (never probed: unknown).
    const health = pick(m, 'waymark_cluster_health', { service: 'shop' });
    expect(health.map((s) => `${s.labels.cluster}:${s.labels.state}:${s.value}`).sort()).toEqual([
      'as1:unknown:1',
      'ew1:unknown:1',
      'ue1:unknown:1',
    ]);
    // Shares: fractions of each client region's traffic, summing to 1 per region; eu-west1's clients stay home.
    const shares = pick(m, 'waymark_traffic_share', { service: 'shop' });
    const byRegion = new Map<string, number>();
    for (const s of shares)
      byRegion.set(s.labels.client_region as string, (byRegion.get(s.labels.client_region as string) ?? 0) + s.value);
    expect([...byRegion.keys()].sort()).toEqual(['ap-southeast1', 'eu-west1', 'us-east1']);
    for (const sum of byRegion.values()) expect(sum).toBeCloseTo(1, 6);
    expect(value(m, 'waymark_traffic_share', { service: 'shop', client_region: 'eu-west1', cluster: 'ew1' })).toBe(1);

    const age = value(m, 'waymark_snapshot_age_seconds', {}) as number;
    expect(age).toBeGreaterThanOrEqual(0);
    expect(age).toBeLessThan(60);
    expect(value(m, 'waymark_store_errors_total', {})).toBe(0);
    expect(value(m, 'waymark_trace_spans_dropped_total', {})).toBe(0);
    // No request ids or raw paths anywhere in the labels.
    expect(res.body).not.toMatch(/\/a|\/b\/|secret|unknown\.test/);
  });

  it('outlier ejections and retries refused by the budget are counted', async () => {
    // Five 503s in a row from ew1 (each request then answered by another cluster): Envoy's consecutive-5xx ejects it.
    fleet['eu-west1'].mode = 'fail';
    for (let i = 0; i < 5; i++) expect((await server.request(HOST, `/e/${i}`, { headers: fromEu })).status).toBe(200);
    let m = parseProm((await scrape(METRICS_TOKEN)).body);
    expect(value(m, 'waymark_outlier_ejections_total', { service: 'shop', cluster: 'ew1' })).toBe(1);
    expect(value(m, 'waymark_retries_total', { service: 'shop', route: '-' })).toBe(5);

    // Six requests at once while every cluster hangs past the 1 s per-try timeout: when the first tries
    // time out, the budget lets 3 retries through at once (Envoy's min_retry_concurrency) and refuses the
    // other 3; those 3 retries are still in flight (hanging) whenever a refused one asks, so it is exactly 3.
    for (const region of ['eu-west1', 'us-east1', 'ap-southeast1'] as const) fleet[region].mode = 'hang';
    const fromUs = { 'x-waymark-client-region': 'us-east1' };
    await Promise.all(Array.from({ length: 6 }, (_, i) => server.request(HOST, `/h/${i}`, { headers: fromUs })));
    m = parseProm((await scrape(METRICS_TOKEN)).body);
    expect(value(m, 'waymark_retry_budget_exhausted_total', { service: 'shop', route: '-' })).toBe(3);
    for (const region of ['eu-west1', 'us-east1', 'ap-southeast1'] as const) fleet[region].mode = 'ok';
  });

  it('a store outage is counted', async () => {
    server.setStoreDown(true);
    await server.runtime.snapshots.refresh();
    const m = parseProm((await scrape(METRICS_TOKEN)).body);
    expect(value(m, 'waymark_store_errors_total', {})).toBe(1);
    server.setStoreDown(false);
  });

  it('the metrics token or a read-scoped token may scrape; no token or a wrong one gets 401', async () => {
    expect((await scrape(METRICS_TOKEN)).status).toBe(200);
    expect((await scrape(READ_TOKEN)).status).toBe(200);
    const none = await scrape(null);
    expect(none.status).toBe(401);
    expect(none.headers['content-type']).toBe('application/problem+json');
    expect((await scrape('not-a-valid-token-0123456789')).status).toBe(401);
    // The metrics token opens the metrics only, not the admin API.
    expect((await server.admin('GET', '/services', undefined, METRICS_TOKEN)).status).toBe(401);
  });
});

describe('traces: OTLP/HTTP JSON to a collector', () => {
  let server: TestServer;
  let origin: Origin;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeEach(async () => {
    origin = await startOrigin();
    receiver = await startReceiver();
    server = await startTestServer({ WAYMARK_OTLP_ENDPOINT: receiver.url, WAYMARK_TRACE_SAMPLE: '1' });
    await server.admin('PUT', '/services/echo', serviceBody(['echo.test']));
    await server.admin('PUT', '/services/echo/clusters/one', clusterBody('eu-west1', origin.url));
    await server.runtime.snapshots.refresh();
  });
  afterEach(async () => {
    await server.close();
    await origin.stop();
    await receiver.stop();
  });

  const traceparentSeen = () => origin.last().headers.find(([n]) => n === 'traceparent')?.[1] as string;

  it('a sampled incoming trace: a server span (child of the caller) and a client span whose id the origin got', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await server.request('echo.test', '/echo?q=1', {
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(res.status).toBe(200);
    await eventually(() => spansOf(receiver.bodies).length >= 2, 5_000);
    const spans = spansOf(receiver.bodies).filter((s) => s.traceId === traceId);
    const serverSpan = spans.find((s) => s.kind === 2) as Span;
    const clientSpan = spans.find((s) => s.kind === 3) as Span;
    expect(spans).toHaveLength(2);
    expect(serverSpan.parentSpanId).toBe('00f067aa0ba902b7');
    expect(clientSpan.parentSpanId).toBe(serverSpan.spanId);
    expect(serverSpan.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(clientSpan.spanId).not.toBe(serverSpan.spanId);
    // What the origin received names the client span as its parent, with the sampled flag kept.
    expect(traceparentSeen()).toBe(`00-${traceId}-${clientSpan.spanId}-01`);
    expect(attr(serverSpan, 'http.request.method')).toBe('GET');
    expect(attr(serverSpan, 'http.response.status_code')).toBe('200');
    expect(attr(serverSpan, 'server.address')).toBe('echo.test');
    expect(attr(serverSpan, 'url.path')).toBe('/echo');
    expect(attr(serverSpan, 'waymark.service')).toBe('echo');
    expect(attr(serverSpan, 'waymark.cluster')).toBe('one');
    expect(attr(clientSpan, 'waymark.cluster')).toBe('one');
    expect(BigInt(serverSpan.endTimeUnixNano)).toBeGreaterThanOrEqual(BigInt(serverSpan.startTimeUnixNano));
    expect(serverSpan.startTimeUnixNano).toMatch(/^\d{19}$/);
  });

  it('a mirrored copy is a span of its own: a client span, child of the server span, marked waymark.mirror', async () => {
    await server.admin(
      'PUT',
      '/services/echo/clusters/two',
      clusterBody('eu-west1', origin.url, { labels: { version: 'v2' } }),
    );
    const route = await server.admin('PUT', '/services/echo/routes/all', {
      order: 1,
      match: {},
      destinations: [{ subset: { version: 'v1' }, weight: 100 }],
      mirror: { subset: { version: 'v2' }, percent: 100 },
    });
    expect(route.status, route.body).toBe(201);
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await server.request('echo.test', '/m', {
      headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01` },
    });
    expect(res.status).toBe(200);
    await eventually(() => spansOf(receiver.bodies).filter((s) => s.traceId === traceId).length >= 3, 5_000);
    const spans = spansOf(receiver.bodies).filter((s) => s.traceId === traceId);
    const serverSpan = spans.find((s) => s.kind === 2) as Span;
    const mirror = spans.find((s) => s.attributes.some((a) => a.key === 'waymark.mirror')) as Span;
    expect(mirror.kind).toBe(3);
    expect(mirror.parentSpanId).toBe(serverSpan.spanId);
    expect(spans.filter((s) => s.kind === 3)).toHaveLength(2);
  });

  it('a not-sampled incoming trace is not exported; a request without one starts a sampled trace', async () => {
    const quiet = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    await server.request('echo.test', '/echo', { headers: { traceparent: `00-${quiet}-00f067aa0ba902b7-00` } });
    expect(traceparentSeen()).toMatch(new RegExp(`^00-${quiet}-[0-9a-f]{16}-00$`));
    await server.request('echo.test', '/echo');
    const fresh = traceparentSeen();
    expect(fresh).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    await eventually(() => spansOf(receiver.bodies).length >= 2, 5_000);
    await new Promise((r) => setTimeout(r, 1_200));
    const spans = spansOf(receiver.bodies);
    expect(spans.some((s) => s.traceId === quiet)).toBe(false);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([fresh.split('-')[1]]));
  });
});

describe('traces with retries: a client span per try', () => {
  it('each try is a child of the server span with its own id', async () => {
    const fleet = await startFleet();
    const receiver = await startReceiver();
    const server = await startTestServer({ WAYMARK_OTLP_ENDPOINT: receiver.url, WAYMARK_TRY_TIMEOUT_MS: '1000' });
    try {
      await registerFleet(server, fleet);
      fleet['eu-west1'].mode = 'fail';
      const res = await server.request(HOST, '/', { headers: fromEu });
      expect(res.headers['x-waymark-attempts']).toBe('2');
      await eventually(() => spansOf(receiver.bodies).length >= 3, 5_000);
      const spans = spansOf(receiver.bodies);
      const root = spans.find((s) => s.kind === 2) as Span;
      const tries = spans.filter((s) => s.kind === 3);
      expect(tries).toHaveLength(2);
      expect(tries.every((s) => s.parentSpanId === root.spanId && s.traceId === root.traceId)).toBe(true);
      expect(new Set(tries.map((s) => s.spanId)).size).toBe(2);
      expect(tries.map((s) => attr(s, 'http.response.status_code'))).toEqual(['503', '200']);
    } finally {
      await server.close();
      await fleet.stop();
      await receiver.stop();
    }
  });
});

describe('access log', () => {
  let fleet: Fleet;
  beforeEach(async () => {
    fleet = await startFleet();
  });
  afterEach(async () => {
    await fleet.stop();
  });

  it('sample 1: one JSON line per request, written after the response, the path without its query', async () => {
    const lines: string[] = [];
    const server = await startTestServer({}, { accessLog: (batch) => lines.push(...batch) });
    await registerFleet(server, fleet);
    const res = await server.request(HOST, '/cart?token=secret', {
      headers: { ...fromEu, 'x-request-id': 'req-1234567890' },
    });
    expect((await server.request('nobody.test', '/')).status).toBe(404);
    // Buffered: nothing is written on the request's path.
    expect(lines).toEqual([]);
    await eventually(() => lines.length === 2, 3_000);
    await server.close();
    const [line, unknown] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toMatchObject({
      requestId: 'req-1234567890',
      method: 'GET',
      host: HOST,
      path: '/cart',
      service: 'shop',
      route: null,
      cluster: 'ew1',
      clientRegion: 'eu-west1',
      status: 200,
      attempts: 1,
    });
    expect(line?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(typeof line?.durationMs).toBe('number');
    expect(res.headers['x-request-id']).toBe('req-1234567890');
    expect(unknown).toMatchObject({ host: 'nobody.test', service: null, status: 404, attempts: 0 });
    expect(lines.join('\n')).not.toContain('secret');
  });

  it('sample 0: no lines', async () => {
    const lines: string[] = [];
    const server = await startTestServer(
      { WAYMARK_ACCESS_LOG_SAMPLE: '0' },
      { accessLog: (batch) => lines.push(...batch) },
    );
    await registerFleet(server, fleet);
    for (let i = 0; i < 5; i++) expect((await server.request(HOST, '/', { headers: fromEu })).status).toBe(200);
    await server.close();
    expect(lines).toEqual([]);
  });
});

describe('observability settings', () => {
  const base = { WAYMARK_DATABASE_URL: 'file::memory:' };
  it.each([
    ['WAYMARK_ACCESS_LOG_SAMPLE', '1.5'],
    ['WAYMARK_ACCESS_LOG_SAMPLE', 'often'],
    ['WAYMARK_TRACE_SAMPLE', '-0.1'],
    ['WAYMARK_OTLP_ENDPOINT', 'collector:4318'],
    ['WAYMARK_METRICS_TOKEN', 'short'],
  ])('%s=%s is refused at start, naming the variable', (variable, bad) => {
    try {
      parseSettings({ ...base, [variable]: bad });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(SettingsError);
      expect((error as SettingsError).problems.map((p) => p.variable)).toEqual([variable]);
    }
  });

  it('defaults: no access log sample (the runtime chooses), every new trace sampled', () => {
    const s = parseSettings(base);
    expect(s.WAYMARK_ACCESS_LOG_SAMPLE).toBeUndefined();
    expect(s.WAYMARK_TRACE_SAMPLE).toBe(1);
    expect(parseSettings({ ...base, WAYMARK_ACCESS_LOG_SAMPLE: '0.25' }).WAYMARK_ACCESS_LOG_SAMPLE).toBe(0.25);
  });

  it('the metrics token must differ from every other token', () => {
    expect(() =>
      parseSettings({ ...base, WAYMARK_ADMIN_TOKEN: METRICS_TOKEN, WAYMARK_METRICS_TOKEN: METRICS_TOKEN }),
    ).toThrow(/WAYMARK_METRICS_TOKEN/);
  });
});
