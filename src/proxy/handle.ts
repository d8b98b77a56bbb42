import { Problem } from '../problem.js';
import { decide, normalizeHost, type Decision } from '../routing/decide.js';
import { parseGeoPoint, toGeoPoint } from '../routing/geo.js';
import type { RequestView } from '../routing/match.js';
import type { Cluster, CompiledRoute, CompiledService, RequestFacts } from '../routing/types.js';
import { isZoneName } from '../routing/zone.js';
import type { Runtime } from '../runtime.js';
import type { Settings } from '../settings.js';
import type { RequestRecord } from '../observe/observer.js';
import { attemptFailed, forward, type Attempt, type TryLimits, type TryPolicy, type TrySpans } from './forward.js';
import {
  clientAddress,
  connectionTokens,
  continueTrace,
  newSpanId,
  requestHost,
  upstreamHeaders,
  type HopTrace,
} from './headers.js';
import { boundedKey } from './limits.js';
import { sendMirror } from './mirror.js';
import { ExchangeAbort, type Exchange, type Transport } from './transport.js';

/** Without a route's own retry policy: move on after a connect failure, a reset, a timeout or a 502/503/504. */
const DEFAULT_RETRY_ON: ReadonlySet<string> = new Set(['connect-failure', 'reset', 'timeout', 'gateway-error']);
/** Without a route's own retry budget, retries in flight may be at most this percent of requests in flight (Envoy's default). */
const DEFAULT_BUDGET_PERCENT = 20;

type Routed = Extract<Decision, { kind: 'route' }>;

/**
 * A client's request as a runtime hands it over: what the proxy reads (route matching reads it as it is),
 * and its body in the runtime's form.
 */
export interface Incoming<Body> extends RequestView {
  method: string;
  /** Every Host header value the client sent (more than one is refused). */
  hostValues: readonly string[];
  /** http or https, as the client reached Waymark. */
  proto: string;
  /** The request target as forwarded: path and query. */
  pathAndQuery: string;
  /** A header by lowercase name (several values joined by ", "); null when absent. */
  header(name: string): string | null;
  /** Calls `visit` with every header (lowercase name, value; several values joined by ", "). */
  eachHeader(visit: (name: string, value: string) => void): void;
  /** Whoever connected: the socket's address on Node, cf-connecting-ip on Workers. */
  peerIp: string | null;
  /** request.cf on Workers. */
  cf?: { latitude?: unknown; longitude?: unknown; colo?: unknown } | undefined;
  /** Whether a body follows, and its declared length (null: chunked). */
  hasBody: boolean;
  contentLength: number | null;
  /** Reads the whole body (only called when its declared length is small enough to buffer). */
  readBody(): Promise<Uint8Array>;
  /** The body as a stream, sent once when too large to buffer. */
  body: Body;
  /** The protocol an upgrade asks for (`websocket`); null for ordinary requests. */
  upgrade: string | null;
}

/** A request target (`/path?query`) as the three fields an Incoming carries. */
export function requestTarget(pathAndQuery: string): Pick<Incoming<unknown>, 'pathAndQuery' | 'path' | 'query'> {
  const q = pathAndQuery.indexOf('?');
  return q < 0
    ? { pathAndQuery, path: pathAndQuery, query: '' }
    : { pathAndQuery, path: pathAndQuery.slice(0, q), query: pathAndQuery.slice(q + 1) };
}

/** What a runtime lends the proxy: its transport, and a way to run work after the answer. */
export interface ProxyTools<Body, Res> {
  transport: Transport<Body, Res>;
  background: (work: Promise<unknown>) => void;
}

/** The origin's answer, for the runtime to write: its own response object plus Waymark's headers. */
export interface ProxyReply<Res> {
  status: number;
  response: Res;
  cluster: Cluster;
  /** x-waymark-*, x-request-id and server-timing, set over the origin's. */
  headers: Record<string, string>;
  /** Call once the exchange is over (body sent, socket closed): frees the slot, stops the deadline. Null: nothing to do. */
  finish: (() => void) | null;
}

/**
 * Proxies one request: host -> snapshot (in memory) -> decision (pure) -> the route's rate limit and
 * faults -> forward with retries, budget and limits -> a mirror copy in the background. Throws a Problem
 * for an answer of Waymark's own. `exchange` is aborted by the runtime when the client goes away. Once
 * the answer is decided, the runtime's observer (metrics, access log, traces) gets the request's record:
 * the one hook, called synchronously, whose observers only count and queue.
 */
export async function handleProxy<Body, Res>(
  incoming: Incoming<Body>,
  requestId: string,
  rt: Runtime,
  tools: ProxyTools<Body, Res>,
  exchange: Exchange,
): Promise<ProxyReply<Res>> {
  const record: RequestRecord = {
    requestId,
    method: incoming.method,
    host: null,
    path: incoming.path,
    service: null,
    route: null,
    cluster: null,
    clientRegion: null,
    status: 0,
    startedAt: rt.now(),
    durationMs: 0,
    attempts: NO_ATTEMPTS,
    retries: 0,
    budgetExhausted: false,
    ejected: NO_CLUSTERS,
    trace: null,
  };
  try {
    const reply = await proxy(incoming, requestId, rt, tools, exchange, record);
    record.status = reply.status;
    return reply;
  } catch (error) {
    record.status = error instanceof Problem ? error.status : 500;
    throw error;
  } finally {
    record.durationMs = rt.now() - record.startedAt;
    rt.observer.requestFinished(record, tools.background);
  }
}

const NO_ATTEMPTS: readonly Attempt[] = [];
const NO_CLUSTERS: readonly Cluster[] = [];

async function proxy<Body, Res>(
  incoming: Incoming<Body>,
  requestId: string,
  rt: Runtime,
  tools: ProxyTools<Body, Res>,
  exchange: Exchange,
  record: RequestRecord,
): Promise<ProxyReply<Res>> {
  const started = record.startedAt;
  if (incoming.method === 'CONNECT') throw connectRefused();
  const hostCheck = requestHost(incoming.hostValues);
  if (!hostCheck.ok) throw new Problem({ code: 'bad-host', detail: hostCheck.detail });
  record.host = hostCheck.host;
  const hop = continueTrace(incoming.header('traceparent'), sampleNewTrace(rt));
  const exported = traceRecord(rt, hop, record);
  let snapshot = rt.snapshots.peek(tools.background) ?? (await rt.snapshots.get(tools.background));
  if (!snapshot)
    throw new Problem({ code: 'not-ready', detail: 'the routing table has not been loaded from the store yet' });
  // A cold isolate that started from the archive's catalog takes this host's part of the configuration.
  if (snapshot.source.partial) snapshot = await rt.snapshots.withHost(snapshot, normalizeHost(hostCheck.host));
  if (!snapshot)
    throw new Problem({
      code: 'not-ready',
      detail: `the configuration of host "${hostCheck.host}" cannot be loaded yet`,
      headers: { 'retry-after': '1' },
    });

  const facts = requestFacts(incoming, hostCheck.host, rt.settings, requestId);
  const decision = decide(snapshot, facts, rt.random, rt.settings.WAYMARK_MAX_ATTEMPTS, rt.outliers);
  if (decision.kind === 'unknown-host') {
    throw new Problem({ code: 'unknown-host', detail: `no service is configured for host "${decision.host}"` });
  }
  record.service = decision.service.name;
  record.route = decision.route?.name ?? null;
  if (decision.kind === 'no-cluster') {
    const why = decision.failClosed
      ? 'too few healthy clusters and the service fails closed'
      : 'no cluster can take this request';
    throw new Problem({
      code: 'no-cluster',
      detail: `service "${decision.service.name}": ${why}`,
      headers: routeHeader(decision.route),
    });
  }
  const { route } = decision;
  record.clientRegion = decision.clientRegion;
  const client = clientAddress(incoming.header('x-forwarded-for'), incoming.peerIp, rt.settings.WAYMARK_TRUSTED_HOPS);
  if (route?.spec.rateLimit) limitRate(incoming, client.clientIp, rt, decision.service, route);
  // Faults and mirrors apply to requests, not to the bytes of an upgraded connection.
  const upgrade = incoming.upgrade;
  if (!upgrade && decision.fault.delayMs !== null)
    await new Promise((resolve) => setTimeout(resolve, decision.fault.delayMs as number));
  if (!upgrade && decision.fault.abortStatus !== null) {
    throw new Problem({
      code: 'fault-injected',
      detail: `route "${route?.name}" aborts this share of requests`,
      headers: {
        'x-waymark-fault': 'abort',
        ...routeHeader(route),
      },
      status: decision.fault.abortStatus,
    });
  }

  const headers = upstreamHeaders(incoming, connectionTokens(incoming.header('connection')), {
    peerIp: incoming.peerIp,
    ...client,
    proto: incoming.proto,
    host: hostCheck.host,
    requestId,
    traceparent: hop.traceparent,
    upgrade,
  });
  const body = incoming.hasBody ? await requestBody(incoming, rt.settings.WAYMARK_RETRY_BUFFER_BYTES) : null;
  if (decision.mirror && !upgrade) mirror(rt, tools, decision, incoming, headers, body, record, exported);

  const timeoutMs = route?.spec.timeoutMs ?? null;
  const deadline =
    timeoutMs === null ? null : setTimeout(() => exchange.abort(new ExchangeAbort('deadline')), timeoutMs);
  const limits = new RequestLimits(
    rt,
    route ?? decision.service,
    route?.spec.retries?.budgetPercent ?? DEFAULT_BUDGET_PERCENT,
    concurrencySlots(rt, decision.service, route),
    exchange,
  );
  rt.retryBudget.start(limits.budgetKey);
  const result = await forward(
    tools.transport,
    { method: incoming.method, headers, body, upgrade: upgrade !== null },
    incoming.pathAndQuery,
    decision.attempts,
    tryPolicy(rt, route),
    limits,
    exchange,
    rt.now,
    exported,
  );
  rt.retryBudget.end(limits.budgetKey, limits.retries);
  record.attempts = result.attempts;
  record.retries = limits.retries + limits.freeRetries;
  record.budgetExhausted = limits.budgetExhausted;
  if (result.ok) record.cluster = result.cluster.name;
  observe(rt, tools, decision, result.attempts, requestId, record);
  const tries = String(result.attempts.length);
  if (!result.ok) {
    if (deadline) clearTimeout(deadline);
    if (result.failure === 'overflow') {
      throw new Problem({
        code: 'overflow',
        detail: result.message,
        headers: { 'x-waymark-overflow': '1', 'x-waymark-attempts': tries, ...routeHeader(route) },
      });
    }
    if (result.failure === 'client-gone') throw new Problem({ code: 'client-gone', detail: result.message });
    if (result.failure === 'unsendable')
      throw new Problem({ code: 'unsendable', detail: result.message, headers: routeHeader(route) });
    const tried = result.attempts.map((a) => `${a.cluster.name}: ${a.outcome}`).join(', ');
    const message = result.failure === 'deadline' ? `the route's ${timeoutMs} ms deadline passed` : result.message;
    throw new Problem({
      code: `upstream-${result.failure}` as const,
      detail: `no cluster answered (${tried}): ${message}`,
      headers: { 'x-waymark-attempts': tries, ...routeHeader(route) },
    });
  }
  const out: Record<string, string> = {
    'x-waymark-cluster': result.cluster.name,
    'x-waymark-attempts': tries,
    'x-request-id': requestId,
    'server-timing': `waymark;dur=${rt.now() - started};desc="${result.cluster.name}"`,
  };
  if (route) out['x-waymark-route'] = route.name;
  if (decision.fault.delayMs !== null && !upgrade) out['x-waymark-fault'] = 'delay';
  const cluster = result.cluster;
  // Once upgraded, the connection belongs to the client and the origin: the route's deadline stops.
  if (deadline && result.status === 101) clearTimeout(deadline);
  const running = result.status === 101 ? null : deadline;
  const slots = limits.slots;
  const finish =
    running || slots
      ? () => {
          if (running) clearTimeout(running);
          slots?.done(cluster);
        }
      : null;
  return { status: result.status, response: result.response, cluster, headers: out, finish };
}

/** CONNECT asks for a tunnel: Waymark is a reverse proxy, not a forward one. */
export function connectRefused(): Problem {
  return new Problem({
    code: 'method-not-allowed',
    detail: 'Waymark is not a forward proxy: CONNECT is not supported',
    headers: {
      allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
    },
  });
}

function routeHeader(route: CompiledRoute | null): Record<string, string> {
  return route ? { 'x-waymark-route': route.name } : {};
}

/** The route's token bucket for this client (per instance): 429 with Retry-After when empty. */
function limitRate<Body>(
  incoming: Incoming<Body>,
  clientIp: string | null,
  rt: Runtime,
  service: CompiledService,
  route: CompiledRoute,
): void {
  const limit = route.spec.rateLimit;
  if (!limit) return;
  // Client-chosen values are hashed: a key's size must not depend on what the client sends.
  const key =
    limit.key === 'global'
      ? ''
      : limit.key === 'client-ip'
        ? boundedKey(clientIp ?? 'unknown')
        : boundedKey(incoming.header(limit.key.header) ?? '');
  const taken = rt.rateLimiter.take(`${service.name}/${route.name}/${key}`, limit.requestsPerSecond, limit.burst);
  if (!taken.ok) {
    throw new Problem({
      code: 'rate-limited',
      detail: `route "${route.name}" allows ${limit.requestsPerSecond} requests per second`,
      headers: {
        'retry-after': String(taken.retryAfterS),
        'x-waymark-route': route.name,
      },
    });
  }
}

/** This request's share of the route's retry budget and slots, and whether its deadline passed. */
class RequestLimits implements TryLimits {
  /** Retries taken from the budget (given back when the request ends). */
  retries = 0;
  /** Retries after a connect failure, which the budget does not count. */
  freeRetries = 0;
  budgetExhausted = false;
  constructor(
    private readonly rt: Runtime,
    readonly budgetKey: object,
    private readonly budgetPercent: number,
    readonly slots: TryLimits['slots'],
    private readonly exchange: Exchange,
  ) {}

  allowRetry(afterConnectFailure = false): boolean {
    // Envoy counts every retry; a retry after a connect failure amplifies nothing (the failed cluster got
    // no request), and refusing it turned a region's sudden loss into 502s for a burst of requests.
    if (afterConnectFailure) {
      this.freeRetries += 1;
      return true;
    }
    if (!this.rt.retryBudget.tryRetry(this.budgetKey, this.budgetPercent)) {
      this.budgetExhausted = true;
      return false;
    }
    this.retries += 1;
    return true;
  }

  expired(): boolean {
    return this.exchange.aborted;
  }
}

/** Try policies are built once per route (and once for requests no route takes), not per request. */
const policies = new WeakMap<object, TryPolicy>();

function tryPolicy(rt: Runtime, route: CompiledRoute | null): TryPolicy {
  const key: object = route ?? rt;
  let policy = policies.get(key);
  if (!policy) {
    const retries = route?.spec.retries;
    policy = {
      perTryTimeoutMs: retries?.perTryTimeoutMs ?? rt.settings.WAYMARK_TRY_TIMEOUT_MS,
      retryOn: route?.retryOn ?? DEFAULT_RETRY_ON,
      nonIdempotent: retries?.nonIdempotent ?? false,
    };
    policies.set(key, policy);
  }
  return policy;
}

/**
 * The concurrency limits a try must fit in, per cluster: the service's (every request of the service,
 * Istio's connectionPool) and the route's own; null when neither is set.
 */
function concurrencySlots(rt: Runtime, service: CompiledService, route: CompiledRoute | null): TryLimits['slots'] {
  const shared = service.policy.maxConcurrent;
  const own = route?.spec.maxConcurrent;
  if (shared === undefined && own === undefined) return null;
  const sharedKey = (cluster: Cluster) => `${service.name}/${cluster.name}`;
  const ownKey = (cluster: Cluster) => `${service.name}/${route?.name}/${cluster.name}`;
  return {
    admit: (cluster) => {
      if (shared !== undefined && !rt.concurrency.acquire(sharedKey(cluster), shared))
        return `the service's policy.maxConcurrent ${shared}`;
      if (own !== undefined && !rt.concurrency.acquire(ownKey(cluster), own)) {
        if (shared !== undefined) rt.concurrency.release(sharedKey(cluster));
        return `route "${route?.name}" maxConcurrent ${own}`;
      }
      return null;
    },
    done: (cluster) => {
      if (shared !== undefined) rt.concurrency.release(sharedKey(cluster));
      if (own !== undefined) rt.concurrency.release(ownKey(cluster));
    },
  };
}

/** The body for the tries: none, bytes when small enough to replay (or mirror), else the client's stream, once. */
async function requestBody<Body>(incoming: Incoming<Body>, bufferBytes: number): Promise<Uint8Array | Body> {
  if (incoming.contentLength === null || incoming.contentLength > bufferBytes) return incoming.body;
  try {
    return await incoming.readBody();
  } catch {
    throw new Problem({ code: 'client-gone', detail: 'the client stopped sending its body' });
  }
}

/** A copy to the mirror cluster, in the background; its outcome is recorded next to the primary's. */
function mirror<Body, Res>(
  rt: Runtime,
  tools: ProxyTools<Body, Res>,
  decision: Routed,
  incoming: Incoming<Body>,
  headers: Record<string, string>,
  body: Uint8Array | Body | null,
  record: RequestRecord,
  spans: TrySpans | null,
): void {
  const { mirror: target, route, service } = decision;
  if (!target || !route) return;
  // A body that streams (too large to buffer) cannot be sent twice: such requests are not mirrored.
  const bytes = body instanceof Uint8Array ? body : null;
  if (body !== null && (bytes === null || bytes.byteLength > rt.settings.WAYMARK_MIRROR_BODY_BYTES)) return;
  // A traced mirror is a span of its own, a child of the request's server span.
  const spanId = spans ? spans.newSpanId() : null;
  const trace = record.trace;
  const startedAt = rt.now();
  tools.background(
    sendMirror(
      tools.transport,
      target,
      incoming.method,
      incoming.pathAndQuery,
      spans && spanId ? { ...headers, traceparent: spans.traceparent(spanId) } : headers,
      bytes,
      rt.settings.WAYMARK_TRY_TIMEOUT_MS,
      rt.now,
    ).then((outcome) => {
      rt.routeSamples.record(service.name, route.name, 'mirror', outcome.ok, outcome.ms);
      rt.observer.mirrorFinished?.(
        {
          requestId: record.requestId,
          method: incoming.method,
          path: incoming.path,
          service: service.name,
          route: route.name,
          cluster: target.name,
          status: outcome.status,
          ok: outcome.ok,
          startedAt,
          durationMs: outcome.ms,
          trace: spanId && trace ? { traceId: trace.traceId, spanId, parentSpanId: trace.spanId } : null,
        },
        tools.background,
      );
    }),
  );
}

/**
 * Whether a request that starts a trace is sampled: only when traces are exported
 * (WAYMARK_OTLP_ENDPOINT), by WAYMARK_TRACE_SAMPLE. Math.random, not the routing's random source,
 * so turning tracing on does not move routing's draws.
 */
function sampleNewTrace(rt: Runtime): boolean {
  if (rt.settings.WAYMARK_OTLP_ENDPOINT === undefined) return false;
  const rate = rt.settings.WAYMARK_TRACE_SAMPLE;
  return rate >= 1 || (rate > 0 && Math.random() < rate);
}

/**
 * The request's trace for its record; the try spans when its spans are exported (traces on and the
 * trace sampled), else null, and nothing more is spent on it.
 */
function traceRecord(rt: Runtime, hop: HopTrace, record: RequestRecord): TrySpans | null {
  const exported = hop.sampled && rt.settings.WAYMARK_OTLP_ENDPOINT !== undefined;
  record.trace = {
    traceId: hop.traceId,
    spanId: exported ? newSpanId() : hop.spanId,
    parentSpanId: hop.parentSpanId,
    sampled: exported,
  };
  if (!exported) return null;
  const prefix = `00-${hop.traceId}-`;
  const suffix = hop.traceparent.slice(-3);
  return { first: hop.spanId, traceparent: (spanId) => prefix + spanId + suffix, newSpanId };
}

/**
 * Feeds each try's outcome to passive health (local outlier ejection now, edge reports for the health
 * sync later) and the route's primary outcome to its samples; flushes in the background once due. Only
 * what the origin did counts: a client that went away, a request that could not be sent or the route's
 * own deadline say nothing about the cluster.
 */
function observe<Body, Res>(
  rt: Runtime,
  tools: ProxyTools<Body, Res>,
  decision: Routed,
  attempts: Attempt[],
  requestId: string,
  record: RequestRecord,
): void {
  const { service, clientRegion, route } = decision;
  for (const a of attempts) {
    const failed = attemptFailed(a);
    if (failed === null) continue;
    const ejection = rt.outliers.record(service, a.cluster, !failed);
    if (ejection) {
      rt.log.log('warn', 'cluster ejected by outlier detection', { ...ejection, requestId });
      record.ejected = [...record.ejected, a.cluster];
    }
    rt.reports.record(service.name, a.cluster.name, clientRegion, !failed, a.ms);
  }
  const final = attempts.at(-1);
  const finalFailed = final ? attemptFailed(final) : null;
  if (route && final && finalFailed !== null) {
    const canary = decision.destination !== null && route.destinations[decision.destination]?.canary === true;
    rt.routeSamples.record(
      service.name,
      route.name,
      canary ? 'canary' : 'primary',
      !finalFailed,
      attempts.reduce((ms, a) => ms + a.ms, 0),
    );
  }
  if (rt.reports.due()) tools.background(rt.flushReports());
}

/**
 * Where the request comes from and what it asks for: trusted headers (only when enabled), then
 * request.cf, then this node's region. The zone: a trusted `x-waymark-client-zone`, else the colo's
 * zone (WAYMARK_COLO_ZONES) on Workers, else this node's WAYMARK_ZONE when the node's region is used.
 */
export function requestFacts<Body>(
  incoming: Incoming<Body>,
  host: string,
  settings: Settings,
  requestId: string,
): RequestFacts {
  // Built by assignment, not spreads: this runs for every request (spreads cost it 3 µs here).
  const facts: RequestFacts = { host, request: incoming, sampleKey: requestId };
  const trusted = settings.WAYMARK_TRUST_LOCALITY_HEADERS;
  const named = trusted ? trustedZone(incoming.header('x-waymark-client-zone')) : undefined;
  if (named !== undefined) {
    facts.clientZone = named;
    facts.clientZoneSource = 'header';
  }
  if (trusted) {
    const clientRegion = incoming.header('x-waymark-client-region') ?? undefined;
    const clientLocation = parseGeoPoint(incoming.header('x-waymark-client-location')) ?? undefined;
    if (clientRegion || clientLocation) {
      facts.clientRegion = clientRegion;
      facts.clientLocation = clientLocation;
      return facts;
    }
  }
  const cf = incoming.cf;
  const fromCf = cf ? toGeoPoint(cf.latitude, cf.longitude) : null;
  if (fromCf) {
    facts.clientLocation = fromCf;
    const colo = typeof cf?.colo === 'string' ? settings.WAYMARK_COLO_ZONES.get(cf.colo.toUpperCase()) : undefined;
    if (named === undefined && colo !== undefined) {
      facts.clientZone = colo;
      facts.clientZoneSource = 'colo';
    }
    return facts;
  }
  facts.clientRegion = settings.WAYMARK_REGION;
  if (named === undefined && settings.WAYMARK_ZONE !== undefined) {
    facts.clientZone = settings.WAYMARK_ZONE;
    facts.clientZoneSource = 'node';
  }
  return facts;
}

/** A client-zone header's value when it is a zone name; anything else is ignored, as an unknown zone would be. */
function trustedZone(value: string | null): string | undefined {
  return value !== null && isZoneName(value) ? value : undefined;
}
