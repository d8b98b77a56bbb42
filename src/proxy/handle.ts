import type { Context } from 'hono';
import { Problem } from '../api/problem.js';
import type { AppEnv } from '../app-env.js';
import { decide } from '../routing/decide.js';
import { parseGeoPoint, toGeoPoint } from '../routing/geo.js';
import type { CompiledService, RequestFacts } from '../routing/types.js';
import { inBackground, type Runtime } from '../runtime.js';
import type { Settings } from '../settings.js';
import { forward, type Attempt } from './forward.js';
import { nextTraceparent, upstreamHeaders } from './headers.js';

/** Proxies one request: snapshot (in memory) -> decision (pure) -> forward with retries. */
export async function handleProxy(c: Context<AppEnv>, rt: Runtime): Promise<Response> {
  const started = rt.now();
  const snapshot = await rt.snapshots.get((work) => inBackground(c, work));
  if (!snapshot) throw new Problem(503, 'not-ready', 'Not ready', 'the routing table has not been loaded from the store yet');

  const request = c.req.raw;
  const facts = requestFacts(request, rt.settings);
  const decision = decide(snapshot, facts, rt.random, rt.settings.WAYMARK_MAX_ATTEMPTS, rt.outliers);
  if (decision.kind === 'unknown-host') {
    throw new Problem(404, 'unknown-host', 'Unknown host', `no service is configured for host "${decision.host}"`);
  }
  if (decision.kind === 'no-cluster') {
    const why = decision.failClosed ? 'too few healthy clusters and the service fails closed' : 'no cluster can take this request';
    throw new Problem(503, 'no-cluster', 'No usable cluster', `service "${decision.service.name}": ${why}`);
  }

  const { proto, pathAndQuery } = splitUrl(request.url);
  const requestId = c.get('requestId');
  const headers = upstreamHeaders(request.headers, {
    clientIp: rt.clientIp(c),
    proto,
    host: facts.host,
    requestId,
    traceparent: nextTraceparent(request.headers.get('traceparent')),
  });
  const result = await forward(request, pathAndQuery, headers, decision.attempts, forwardOptions(rt.settings), rt.now);
  observe(c, rt, decision.service, decision.clientRegion, result.attempts);
  const tries = String(result.attempts.length);
  if (!result.ok) {
    const status = result.failure === 'timeout' ? 504 : 502;
    const tried = result.attempts.map((a) => `${a.cluster.name}: ${a.outcome}`).join(', ');
    throw new Problem(status, `upstream-${result.failure}`, 'Upstream failed', `no cluster answered (${tried})`, undefined, {
      'x-waymark-attempts': tries,
    });
  }
  const out = result.response.headers;
  out.set('x-waymark-cluster', result.cluster.name);
  out.set('x-waymark-attempts', tries);
  out.set('x-request-id', requestId);
  out.append('server-timing', `waymark;dur=${rt.now() - started};desc="${result.cluster.name}"`);
  return result.response;
}

/**
 * Feeds each try's outcome to passive health: local outlier ejection now, and the edge reports the
 * health sync folds in later (flushed in the background once due, never on the request's time).
 */
function observe(c: Context<AppEnv>, rt: Runtime, service: CompiledService, clientRegion: string | null, attempts: Attempt[]): void {
  for (const a of attempts) {
    const ok = a.outcome === 'response' && (a.status ?? 0) < 500;
    const ejection = rt.outliers.record(service, a.cluster, ok);
    if (ejection) rt.log.log('warn', 'cluster ejected by outlier detection', { ...ejection, requestId: c.get('requestId') });
    rt.reports.record(service.name, a.cluster.name, clientRegion, ok, a.ms);
  }
  if (rt.reports.due()) inBackground(c, rt.flushReports());
}

/** Where the request comes from: trusted headers (only when enabled), then request.cf, then this node's region. */
export function requestFacts(request: Request, settings: Settings): RequestFacts {
  const headers = request.headers;
  const host = headers.get('host') ?? new URL(request.url).host;
  if (settings.WAYMARK_TRUST_LOCALITY_HEADERS) {
    const clientRegion = headers.get('x-waymark-client-region') ?? undefined;
    const clientLocation = parseGeoPoint(headers.get('x-waymark-client-location')) ?? undefined;
    if (clientRegion || clientLocation) return { host, clientRegion, clientLocation };
  }
  const cf = (request as { cf?: { latitude?: unknown; longitude?: unknown } }).cf;
  const fromCf = cf ? toGeoPoint(cf.latitude, cf.longitude) : null;
  if (fromCf) return { host, clientLocation: fromCf };
  return { host, clientRegion: settings.WAYMARK_REGION };
}

/** Scheme and path-with-query of an absolute URL, without a URL parse on the hot path. */
function splitUrl(url: string): { proto: string; pathAndQuery: string } {
  const schemeEnd = url.indexOf('://');
  const pathStart = url.indexOf('/', schemeEnd + 3);
  return { proto: url.slice(0, schemeEnd), pathAndQuery: pathStart < 0 ? '/' : url.slice(pathStart) };
}

function forwardOptions(settings: Settings) {
  return { tryTimeoutMs: settings.WAYMARK_TRY_TIMEOUT_MS, retryBufferBytes: settings.WAYMARK_RETRY_BUFFER_BYTES };
}
