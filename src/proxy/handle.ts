import type { Context } from 'hono';
import { Problem } from '../api/problem.js';
import type { AppEnv } from '../app-env.js';
import { decide, type Decision } from '../routing/decide.js';
import { parseGeoPoint, toGeoPoint } from '../routing/geo.js';
import type { RequestView } from '../routing/match.js';
import type { CompiledRoute, CompiledService, RequestFacts } from '../routing/types.js';
import { inBackground, type Runtime } from '../runtime.js';
import type { Settings } from '../settings.js';
import { forward, prepareBody, type Attempt, type PreparedBody, type TryPolicy } from './forward.js';
import { nextTraceparent, upstreamHeaders } from './headers.js';
import { sendMirror } from './mirror.js';

/** Without a route's own retry policy: move on after a connect failure, a reset, a timeout or a 502/503/504. */
const DEFAULT_RETRY_ON: ReadonlySet<string> = new Set(['connect-failure', 'reset', 'timeout', 'gateway-error']);
/** Without a route's own retry budget, retries may still be at most this percent of recent requests. */
const DEFAULT_BUDGET_PERCENT = 20;

type Routed = Extract<Decision, { kind: 'route' }>;

/**
 * Proxies one request: snapshot (in memory) -> decision (pure) -> the route's rate limit and faults ->
 * forward with retries, budget and limits -> a mirror copy in the background.
 */
export async function handleProxy(c: Context<AppEnv>, rt: Runtime): Promise<Response> {
  const started = rt.now();
  const snapshot = await rt.snapshots.get((work) => inBackground(c, work));
  if (!snapshot) throw new Problem(503, 'not-ready', 'Not ready', 'the routing table has not been loaded from the store yet');

  const request = c.req.raw;
  const requestId = c.get('requestId');
  const { proto, pathAndQuery } = splitUrl(request.url);
  const facts = requestFacts(request, rt.settings, pathAndQuery, requestId);
  const decision = decide(snapshot, facts, rt.random, rt.settings.WAYMARK_MAX_ATTEMPTS, rt.outliers);
  if (decision.kind === 'unknown-host') {
    throw new Problem(404, 'unknown-host', 'Unknown host', `no service is configured for host "${decision.host}"`);
  }
  if (decision.kind === 'no-cluster') {
    const why = decision.failClosed ? 'too few healthy clusters and the service fails closed' : 'no cluster can take this request';
    throw new Problem(503, 'no-cluster', 'No usable cluster', `service "${decision.service.name}": ${why}`, undefined, routeHeader(decision.route));
  }
  const { route } = decision;
  if (route?.spec.rateLimit) limitRate(c, rt, decision.service, route);
  if (decision.fault.delayMs !== null) await new Promise((resolve) => setTimeout(resolve, decision.fault.delayMs as number));
  if (decision.fault.abortStatus !== null) {
    throw new Problem(decision.fault.abortStatus as 500, 'fault-injected', 'Fault injected', `route "${route?.name}" aborts this share of requests`, undefined, {
      'x-waymark-fault': 'abort',
      ...routeHeader(route),
    });
  }

  const headers = upstreamHeaders(request.headers, {
    clientIp: rt.clientIp(c),
    proto,
    host: facts.host,
    requestId,
    traceparent: nextTraceparent(request.headers.get('traceparent')),
  });
  const prepared = await prepareBody(request, rt.settings.WAYMARK_RETRY_BUFFER_BYTES);
  if (decision.mirror) mirror(c, rt, decision, request.method, pathAndQuery, headers, prepared);

  const budgetKey = `${decision.service.name}/${route?.name ?? ''}`;
  rt.retryBudget.request(budgetKey);
  const result = await forward(request, pathAndQuery, headers, decision.attempts, prepared, tryPolicy(rt, route, budgetKey), rt.now);
  observe(c, rt, decision, result.attempts);
  const tries = String(result.attempts.length);
  if (!result.ok) {
    if (result.failure === 'overflow') {
      throw new Problem(503, 'overflow', 'Over the concurrency limit', result.message, undefined, { 'x-waymark-overflow': '1', 'x-waymark-attempts': tries, ...routeHeader(route) });
    }
    const status = result.failure === 'timeout' || result.failure === 'deadline' ? 504 : 502;
    const tried = result.attempts.map((a) => `${a.cluster.name}: ${a.outcome}`).join(', ');
    throw new Problem(status, `upstream-${result.failure}`, 'Upstream failed', `no cluster answered (${tried}): ${result.message}`, undefined, {
      'x-waymark-attempts': tries,
      ...routeHeader(route),
    });
  }
  const out = result.response.headers;
  out.set('x-waymark-cluster', result.cluster.name);
  out.set('x-waymark-attempts', tries);
  if (route) out.set('x-waymark-route', route.name);
  if (decision.fault.delayMs !== null) out.set('x-waymark-fault', 'delay');
  out.set('x-request-id', requestId);
  out.append('server-timing', `waymark;dur=${rt.now() - started};desc="${result.cluster.name}"`);
  return result.response;
}

function routeHeader(route: CompiledRoute | null): Record<string, string> {
  return route ? { 'x-waymark-route': route.name } : {};
}

/** The route's token bucket for this client (per instance): 429 with Retry-After when empty. */
function limitRate(c: Context<AppEnv>, rt: Runtime, service: CompiledService, route: CompiledRoute): void {
  const limit = route.spec.rateLimit;
  if (!limit) return;
  const key = limit.key === 'global' ? '' : limit.key === 'client-ip' ? (rt.clientIp(c) ?? 'unknown') : (c.req.header(limit.key.header) ?? '');
  const taken = rt.rateLimiter.take(`${service.name}/${route.name}/${key}`, limit.requestsPerSecond, limit.burst);
  if (!taken.ok) {
    throw new Problem(429, 'rate-limited', 'Too many requests', `route "${route.name}" allows ${limit.requestsPerSecond} requests per second`, undefined, {
      'retry-after': String(taken.retryAfterS),
      'x-waymark-route': route.name,
    });
  }
}

function tryPolicy(rt: Runtime, route: CompiledRoute | null, budgetKey: string): TryPolicy {
  const retries = route?.spec.retries;
  const max = route?.spec.maxConcurrent;
  const budgetPercent = retries?.budgetPercent ?? DEFAULT_BUDGET_PERCENT;
  return {
    perTryTimeoutMs: retries?.perTryTimeoutMs ?? rt.settings.WAYMARK_TRY_TIMEOUT_MS,
    timeoutMs: route?.spec.timeoutMs ?? null,
    retryOn: route?.retryOn ?? DEFAULT_RETRY_ON,
    nonIdempotent: retries?.nonIdempotent ?? false,
    bufferBytes: rt.settings.WAYMARK_RETRY_BUFFER_BYTES,
    allowRetry: () => rt.retryBudget.tryRetry(budgetKey, budgetPercent),
    limit:
      max === undefined
        ? null
        : { admit: (cluster) => rt.concurrency.acquire(`${budgetKey}/${cluster.name}`, max), done: (cluster) => rt.concurrency.release(`${budgetKey}/${cluster.name}`) },
  };
}

/** A copy to the mirror cluster, in the background; its outcome is recorded next to the primary's. */
function mirror(c: Context<AppEnv>, rt: Runtime, decision: Routed, method: string, pathAndQuery: string, headers: Headers, prepared: PreparedBody): void {
  const { mirror: target, route, service } = decision;
  if (!target || !route) return;
  // A body that was streamed (too large to buffer) cannot be sent twice: such requests are not mirrored.
  if (prepared.body !== null && (prepared.buffered === null || prepared.buffered.byteLength > rt.settings.WAYMARK_MIRROR_BODY_BYTES)) return;
  inBackground(
    c,
    sendMirror(target, method, pathAndQuery, headers, prepared.buffered, rt.settings.WAYMARK_TRY_TIMEOUT_MS, rt.now).then((outcome) =>
      rt.routeSamples.record(service.name, route.name, 'mirror', outcome.ok, outcome.ms),
    ),
  );
}

/**
 * Feeds each try's outcome to passive health (local outlier ejection now, edge reports for the health
 * sync later) and the route's primary outcome to its samples; flushes in the background once due.
 */
function observe(c: Context<AppEnv>, rt: Runtime, decision: Routed, attempts: Attempt[]): void {
  const { service, clientRegion, route } = decision;
  for (const a of attempts) {
    if (a.outcome === 'overflow') continue;
    const ok = a.outcome === 'response' && (a.status ?? 0) < 500;
    const ejection = rt.outliers.record(service, a.cluster, ok);
    if (ejection) rt.log.log('warn', 'cluster ejected by outlier detection', { ...ejection, requestId: c.get('requestId') });
    rt.reports.record(service.name, a.cluster.name, clientRegion, ok, a.ms);
  }
  const final = attempts.at(-1);
  if (route && final && final.outcome !== 'overflow') {
    const ok = final.outcome === 'response' && (final.status ?? 0) < 500;
    const canary = decision.destination !== null && route.destinations[decision.destination]?.canary === true;
    rt.routeSamples.record(service.name, route.name, canary ? 'canary' : 'primary', ok, attempts.reduce((ms, a) => ms + a.ms, 0));
  }
  if (rt.reports.due()) inBackground(c, rt.flushReports());
}

/** Where the request comes from and what it asks for: trusted headers (only when enabled), then request.cf, then this node's region. */
export function requestFacts(request: Request, settings: Settings, pathAndQuery: string, requestId: string): RequestFacts {
  const headers = request.headers;
  const host = headers.get('host') ?? new URL(request.url).host;
  const q = pathAndQuery.indexOf('?');
  const view: RequestView = {
    method: request.method,
    path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? '' : pathAndQuery.slice(q + 1),
    header: (name) => headers.get(name),
  };
  const base = { host, request: view, sampleKey: requestId };
  if (settings.WAYMARK_TRUST_LOCALITY_HEADERS) {
    const clientRegion = headers.get('x-waymark-client-region') ?? undefined;
    const clientLocation = parseGeoPoint(headers.get('x-waymark-client-location')) ?? undefined;
    if (clientRegion || clientLocation) return { ...base, clientRegion, clientLocation };
  }
  const cf = (request as { cf?: { latitude?: unknown; longitude?: unknown } }).cf;
  const fromCf = cf ? toGeoPoint(cf.latitude, cf.longitude) : null;
  if (fromCf) return { ...base, clientLocation: fromCf };
  return { ...base, clientRegion: settings.WAYMARK_REGION };
}

/** Scheme and path-with-query of an absolute URL, without a URL parse on the hot path. */
function splitUrl(url: string): { proto: string; pathAndQuery: string } {
  const schemeEnd = url.indexOf('://');
  const pathStart = url.indexOf('/', schemeEnd + 3);
  return { proto: url.slice(0, schemeEnd), pathAndQuery: pathStart < 0 ? '/' : url.slice(pathStart) };
}
