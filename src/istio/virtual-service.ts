import { compileRegex } from '../routing/match.js';
import type { ServiceSubsets, Subset, SubsetRef } from '../routing/types.js';
import { type Fields, type Loc, asFields, type Report } from './reader.js';
import { serviceOf, shortName, toName } from './names.js';

/** A route before validation: the body `routePutSchema` will check, and where it came from. */
export interface RouteDraft {
  name: string;
  order: number;
  /** `VirtualService reviews: http[0].match[1]`. */
  source: string;
  body: Record<string, unknown>;
}

/** The subsets the import's DestinationRules define, by Waymark service. */
type SubsetCatalog = ReadonlyMap<string, { owner: string; subsets: ReadonlyMap<string, Subset> }>;

export interface VirtualServiceContext {
  /** The DestinationRule subsets of the whole import. */
  subsets: SubsetCatalog;
  /** The subsets stored on existing services (applied by an earlier import or the admin API), by service. */
  stored: ReadonlyMap<string, ServiceSubsets>;
  /** The next free position (in steps of one) among the service's routes, in document order. */
  nextPosition: (service: string) => number;
  report: Report;
}

/** Waymark orders routes 10 apart, so one http entry may become at most this many routes. */
const MAX_MATCH_BLOCKS = 10;

const SPEC_WHY = {
  tcp: 'Waymark routes HTTP only',
  tls: 'Waymark routes HTTP only',
  exportTo: 'Waymark services are not namespaced',
};
const HTTP_WHY = {
  rewrite: 'Waymark forwards the path and authority unchanged',
  headers: 'Waymark does not add, set or remove headers on routes',
  corsPolicy: 'Waymark does not answer CORS itself; the clusters must',
  redirect: 'Waymark only forwards',
  directResponse: 'Waymark only forwards',
  delegate: 'Waymark routes are not delegated',
};
const MATCH_WHY = {
  sourceLabels: 'Waymark clients are outside the mesh; this route matches without it',
  sourceNamespace: 'Waymark clients are outside the mesh; this route matches without it',
  gateways: 'Waymark applies routes at every edge; this route matches without it',
  port: 'Waymark listens on one port; this route matches without it',
  scheme: 'this route matches without it',
  authority: "the service's hosts choose the service; this route matches without it",
  withoutHeaders: "Waymark cannot match on a header's absence; this route matches without it",
  name: 'Waymark names routes <http name>-m<index>',
  statPrefix: 'Waymark reports per route name',
};
const DESTINATION_WHY = { headers: 'Waymark does not add, set or remove headers on routes' };
const RETRY_WHY = {
  retryRemoteLocalities:
    'Waymark retries move on to the next cluster in failover order, which may be in another region',
  retryIgnorePreviousHosts: 'Waymark never retries the cluster that just failed',
  backoff: 'Waymark retries at once, on the next cluster',
};

/** Envoy retry_on conditions Waymark checks under the same name. */
const SAME_RETRY_CONDITIONS = new Set(['5xx', 'gateway-error', 'connect-failure', 'reset', 'retriable-4xx']);
/**
 * Envoy's `5xx` and `gateway-error` also retry when the upstream does not answer at all (connect
 * failure, reset, per-try timeout); Waymark names those conditions apart, so they are added.
 */
const NO_ANSWER_CONDITIONS = ['connect-failure', 'reset', 'timeout'];
/** Istio's default `retryOn` ("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes" with 503), as far as HTTP/1 can tell. */
const ISTIO_DEFAULT_RETRY_ON = ['connect-failure', 503];

/** Istio's name for the sidecars of the mesh among a VirtualService's `gateways`. */
const MESH_GATEWAY = 'mesh';

/**
 * Reads a VirtualService's spec into route drafts for its service (the first host's short name): one
 * per `http[]` entry, or one per match block when an entry ORs several. A VirtualService bound to
 * ingress gateways only, or to every host (`*`), is not a service's own routing: it is skipped with a
 * warning. Unknown subsets are errors; whatever Waymark cannot honour is a warning.
 */
export function readVirtualService(
  name: string,
  spec: Fields,
  ctx: VirtualServiceContext,
): { service: string; routes: RouteDraft[] } | null {
  const { report } = ctx;
  if (skipped(spec, report)) return null;
  const hosts = spec.list('hosts', true);
  if (hosts && hosts.length === 0) report.error(spec.at.key('hosts'), 'must list at least one host');
  const first = hosts?.[0];
  if (!first) {
    spec.rest(SPEC_WHY);
    return null;
  }
  if (typeof first.value !== 'string') {
    report.error(first.at, 'must be a string');
    return null;
  }
  const service = serviceOf(first.value, first.at, report);
  for (const other of hosts.slice(1)) {
    if (typeof other.value !== 'string') report.error(other.at, 'must be a string');
    else if (shortName(other.value) !== service) {
      report.warn(
        other.at,
        `("${other.value}") is not imported: the routes go to service "${service}" (hosts[0]); import a VirtualService per service`,
      );
    }
  }
  const http = spec.list('http') ?? [];
  if (http.length === 0) report.warn(spec.at.key('http'), 'is empty: this VirtualService gives no routes');
  const routes: RouteDraft[] = [];
  let retriesNoted = false;
  http.forEach((item, i) => {
    const entry = asFields(item.value, item.at, report);
    if (!entry || service === null) return;
    const drafts = readHttpRoute(entry, `${name}-${i}`, service, ctx);
    if (drafts.some((d) => 'retries' in d.body) && !retriesNoted) {
      retriesNoted = true;
      report.warn(
        entry.at.key('retries'),
        'differs for non-idempotent methods: Envoy retries every method on the retryOn conditions, Waymark retries POST and PATCH only after a connect failure unless the route sets retries.nonIdempotent',
      );
    }
    routes.push(...drafts);
  });
  const last = routes.at(-1);
  if (last && Object.keys(last.body.match as object).length > 0) {
    report.warn(
      spec.at.key('http'),
      `has no catch-all route: Istio answers 404 to requests no route matches, Waymark sends them to every cluster of service "${service}"`,
    );
  }
  spec.rest(SPEC_WHY);
  return service === null ? null : { service, routes };
}

/**
 * Whether the VirtualService routes something other than a service's own traffic: bound to gateways
 * that do not include the mesh (Istio applies it at those ingress gateways only), or to host `*`.
 */
function skipped(spec: Fields, report: Report): boolean {
  const gateways = (spec.list('gateways') ?? []).flatMap((g) => (typeof g.value === 'string' ? [g.value] : []));
  const ingress = gateways.filter((g) => g !== MESH_GATEWAY);
  const quoted = ingress.map((g) => `"${g}"`).join(', ');
  if (ingress.length && ingress.length === gateways.length) {
    report.warn(
      spec.at.key('gateways'),
      `(${quoted}) bind it to ingress gateways, not to the mesh: it is skipped. Waymark imports the mesh's VirtualServices (no gateways, or "${MESH_GATEWAY}" among them), one per service host`,
    );
    return true;
  }
  if (ingress.length) {
    report.warn(
      spec.at.key('gateways'),
      `(${quoted}) are not imported: the routes apply as Waymark applies every route, to requests for the service's hosts at every edge`,
    );
  }
  const hosts = spec.value.hosts;
  if (Array.isArray(hosts) && hosts[0] === '*') {
    report.warn(
      spec.at.key('hosts[0]'),
      '("*") matches every host and names no Waymark service: it is skipped. Expected a service\'s host, like "reviews" or "reviews.prod.svc.cluster.local"',
    );
    return true;
  }
  return false;
}

function readHttpRoute(entry: Fields, fallbackName: string, service: string, ctx: VirtualServiceContext): RouteDraft[] {
  const { report } = ctx;
  const httpName = entry.str('name');
  const destinations = entry.list('route');
  if (!destinations) {
    const actions = ['redirect', 'directResponse', 'delegate'].filter((k) => entry.has(k));
    report.warn(
      entry.at,
      `is not imported: it has no route${actions.length ? ` (${actions.join(', ')} is not supported: Waymark only forwards)` : ''}`,
    );
    return [];
  }
  const body: Record<string, unknown> = {};
  const routed = destinations
    .map((d) => readDestination(d.value, d.at, service, destinations.length, ctx))
    .filter((d): d is { subset: SubsetRef; weight: number } => d !== null);
  if (routed.length === 0) {
    entry.consume(
      'match',
      'timeout',
      'retries',
      'fault',
      'mirror',
      'mirrors',
      'mirrorPercentage',
      'mirrorPercent',
      'corsPolicy',
      'headers',
      'rewrite',
    );
    report.warn(entry.at, `is not imported: none of its destinations is service "${service}"`);
    return [];
  }
  body.destinations = routed;

  const timeout = entry.duration('timeout');
  if (timeout === 0)
    report.warn(
      entry.at.key('timeout'),
      "is 0 (no timeout) in Istio; Waymark has no unlimited timeout, so the route keeps Waymark's default",
    );
  else if (timeout !== undefined) body.timeoutMs = timeout;

  const retries = entry.obj('retries');
  if (retries) {
    const r = readRetries(retries, report);
    if (r) body.retries = r;
  }
  const fault = entry.obj('fault');
  if (fault) {
    const f = readFault(fault, report);
    if (f) body.fault = f;
  }
  const mirror = readMirror(entry, service, ctx);
  if (mirror) body.mirror = mirror;

  const blocks = entry.list('match') ?? [];
  const matches = blocks.length ? blocks.map((b) => readMatch(b.value, b.at, report)) : [{}];
  entry.rest(HTTP_WHY);

  const position = ctx.nextPosition(service);
  let base = httpName === undefined ? '' : toName(httpName);
  if (httpName !== undefined && base !== httpName) {
    report.warn(
      entry.at.key('name'),
      base
        ? `("${httpName}") becomes route name "${base}"`
        : `("${httpName}") has no usable characters: the route is named "${toName(fallbackName)}"`,
    );
  }
  if (!base) base = toName(fallbackName);
  if (matches.length > MAX_MATCH_BLOCKS) {
    report.error(
      entry.at.key('match'),
      `has ${matches.length} blocks; at most ${MAX_MATCH_BLOCKS} can be imported (one route each, ordered 10 apart)`,
    );
    return [];
  }
  return matches.map((match, j) => {
    const name = matches.length === 1 ? base : toName(base, `-m${j}`);
    const source = (blocks.length > 1 ? entry.at.key('match').index(j) : entry.at).field;
    return { name, order: position * 10 + (matches.length === 1 ? 0 : j), source, body: { ...body, match } };
  });
}

/** A route destination of the service itself; null (with a warning) for other hosts. */
function readDestination(
  value: unknown,
  at: Loc,
  service: string,
  count: number,
  ctx: VirtualServiceContext,
): { subset: SubsetRef; weight: number } | null {
  const { report } = ctx;
  const f = asFields(value, at, report);
  if (!f) return null;
  const dest = f.obj('destination', true);
  const weight = f.num('weight', { int: true, min: 0 });
  if (!dest) {
    f.rest(DESTINATION_WHY);
    return null;
  }
  const target = readTarget(dest, service, 'destination', ctx);
  f.rest(DESTINATION_WHY);
  if (!target) return null;
  // Istio: a lone destination takes all traffic; otherwise a missing weight is 0.
  return { subset: target.subset, weight: weight ?? (count === 1 ? 100 : 0) };
}

/**
 * A `Destination` (host, subset, port) of the service: its subset by name (the service keeps the
 * labels, so a later DestinationRule moves the route as it does in Istio); null for another host.
 */
function readTarget(
  dest: Fields,
  service: string,
  what: string,
  ctx: VirtualServiceContext,
): { subset: SubsetRef } | null {
  const { report } = ctx;
  const host = dest.str('host', true);
  const subsetName = dest.str('subset');
  if (dest.has('port')) {
    dest.consume('port');
    report.warn(
      dest.at.key('port'),
      "is not supported: Waymark sends to each cluster's origin, whose URL sets the port",
    );
  }
  dest.rest();
  if (host === undefined) return null;
  if (shortName(host) !== service) {
    report.warn(
      dest.at.key('host'),
      `("${host}") is not service "${service}": cross-service routing is not supported, so this ${what} is dropped`,
    );
    return null;
  }
  if (subsetName === undefined) return { subset: {} };
  const rule = ctx.subsets.get(service);
  const stored = ctx.stored.get(service) ?? {};
  if (rule?.subsets.has(subsetName) || Object.hasOwn(stored, subsetName)) return { subset: subsetName };
  report.error(dest.at.key('subset'), unknownSubset(subsetName, service, rule, stored));
  return null;
}

/** Why a subset name is unknown, and what was expected instead. */
function unknownSubset(
  name: string,
  service: string,
  rule: { owner: string; subsets: ReadonlyMap<string, Subset> } | undefined,
  stored: ServiceSubsets,
): string {
  const known = [...new Set([...(rule?.subsets.keys() ?? []), ...Object.keys(stored)])];
  if (known.length === 0) {
    return `subset "${name}" is not defined: service "${service}" has no subsets and this import has no DestinationRule for host "${service}"; expected a DestinationRule that defines it, imported earlier or in the same file`;
  }
  const sources = [
    Object.keys(stored).length ? `stored on service "${service}"` : '',
    rule ? `defined by ${rule.owner} in this import` : '',
  ].filter(Boolean);
  return `subset "${name}" is not defined: expected one of ${known.map((k) => `"${k}"`).join(', ')} (${sources.join(', or ')})`;
}

function readMatch(value: unknown, at: Loc, report: Report): Record<string, unknown> {
  const f = asFields(value, at, report);
  if (!f) return {};
  const match: Record<string, unknown> = {};
  const uri = f.obj('uri');
  if (uri) {
    const path = readStringMatch(uri, report, false);
    if (path) match.path = path;
  }
  const method = f.obj('method');
  if (method) {
    const m = readStringMatch(method, report, false);
    if (m && 'exact' in m) match.methods = [m.exact];
    else if (m) report.warn(method.at, 'is not supported except as {exact: ...}: this route matches every method');
  }
  const headers = readStringMatches(f, 'headers', report);
  if (headers) match.headers = headers;
  const query = readStringMatches(f, 'queryParams', report);
  if (query) match.query = query;
  const ignoreCase = f.bool('ignoreUriCase');
  if (ignoreCase) report.warn(f.at.key('ignoreUriCase'), 'is not supported: Waymark compares paths case-sensitively');
  f.rest(MATCH_WHY);
  return match;
}

function readStringMatches(f: Fields, name: string, report: Report): Record<string, unknown> | undefined {
  const entries = f.entries(name);
  if (!entries?.length) return undefined;
  const out: Record<string, unknown> = {};
  for (const e of entries) {
    const m = asFields(e.value ?? {}, e.at, report);
    const parsed = m && readStringMatch(m, report, true);
    if (parsed) out[e.key] = parsed;
  }
  return out;
}

/** Istio's StringMatch: exactly one of exact, prefix, regex; an empty one (headers, query) means "present". */
function readStringMatch(
  f: Fields,
  report: Report,
  emptyIsPresent: boolean,
): { exact: string } | { prefix: string } | { regex: string } | { present: true } | undefined {
  const found: ({ exact: string } | { prefix: string } | { regex: string })[] = [];
  const exact = f.str('exact');
  if (exact !== undefined) found.push({ exact });
  const prefix = f.str('prefix');
  if (prefix !== undefined) found.push({ prefix });
  const regex = f.str('regex');
  if (regex !== undefined) {
    // Istio requires RE2 syntax here (it hands the pattern to Envoy's safe_regex), and so does Waymark.
    const compiled = compileRegex(regex);
    if (!compiled.ok) {
      report.error(f.at.key('regex'), compiled.error);
      f.rest();
      return undefined;
    }
    found.push({ regex });
  }
  f.rest();
  if (found.length > 1) {
    report.error(f.at, 'must set only one of exact, prefix or regex');
    return undefined;
  }
  if (found[0]) return found[0];
  if (emptyIsPresent && Object.keys(f.value).length === 0) return { present: true };
  report.error(f.at, 'must set one of exact, prefix or regex');
  return undefined;
}

function readRetries(f: Fields, report: Report): Record<string, unknown> | undefined {
  const attempts = f.num('attempts', { int: true, min: 0 });
  const perTry = f.duration('perTryTimeout');
  const retryOn = f.str('retryOn');
  const retry: Record<string, unknown> = {};
  if (perTry !== undefined) retry.perTryTimeoutMs = perTry;
  retry.retryOn =
    retryOn === undefined ? ISTIO_DEFAULT_RETRY_ON : retryConditions(retryOn, f.at.key('retryOn'), report);
  f.rest(RETRY_WHY);
  if (!attempts) {
    report.warn(f.at.key('attempts'), 'is 0 or missing, which turns retries off in Istio: the route gets none');
    return undefined;
  }
  retry.attempts = attempts;
  return retry;
}

/** Istio's comma list of Envoy retry_on conditions and status codes, as Waymark's retryOn. */
function retryConditions(text: string, at: Loc, report: Report): (string | number)[] {
  const out: (string | number)[] = [];
  const unsupported: string[] = [];
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const add = (...conditions: (string | number)[]) => {
    for (const c of conditions) if (!out.includes(c)) out.push(c);
  };
  for (const item of items) {
    if (/^\d+$/.test(item)) add(Number(item));
    else if (item === '5xx' || item === 'gateway-error') add(item, ...NO_ANSWER_CONDITIONS);
    else if (SAME_RETRY_CONDITIONS.has(item)) add(item);
    else if (item !== 'retriable-status-codes') unsupported.push(item);
  }
  // Istio adds retriable-status-codes itself when codes are listed; alone, it lists none.
  if (items.includes('retriable-status-codes') && !items.some((i) => /^\d+$/.test(i))) {
    report.warn(
      at,
      'has retriable-status-codes but no status code: Istio then retries on no status, and so does the import',
    );
  }
  if (unsupported.length) {
    report.warn(
      at,
      `conditions ${unsupported.map((u) => `"${u}"`).join(', ')} are not supported (Waymark knows connect-failure, reset, timeout, 5xx, gateway-error, retriable-4xx and status codes)`,
    );
  }
  if (out.length === 0) report.error(at, 'names no condition Waymark supports, so the route would never retry');
  return out;
}

function readFault(f: Fields, report: Report): Record<string, unknown> | undefined {
  const fault: Record<string, unknown> = {};
  const delay = f.obj('delay');
  if (delay) {
    const ms = delay.duration('fixedDelay');
    const percent = faultPercent(delay, report);
    if (delay.has('exponentialDelay')) {
      delay.consume('exponentialDelay');
      report.warn(delay.at.key('exponentialDelay'), 'is not supported: Waymark injects fixed delays only');
    }
    delay.rest();
    if (ms !== undefined && percent !== undefined) fault.delay = { percent, ms };
    else if (!delay.has('fixedDelay')) report.warn(delay.at, 'has no fixedDelay: no delay is imported');
  }
  const abort = f.obj('abort');
  if (abort) {
    const status = abort.num('httpStatus', { int: true });
    const percent = faultPercent(abort, report);
    for (const name of ['grpcStatus', 'http2Error']) {
      if (abort.has(name)) {
        abort.consume(name);
        report.warn(abort.at.key(name), 'is not supported: Waymark aborts with an HTTP status only');
      }
    }
    abort.rest();
    if (status !== undefined && percent !== undefined) fault.abort = { percent, status };
    else if (!abort.has('httpStatus')) report.warn(abort.at, 'has no httpStatus: no abort is imported');
  }
  f.rest();
  return Object.keys(fault).length ? fault : undefined;
}

/** `percentage.value` (or the deprecated integer `percent`); missing means no request, as Envoy does it (istio/istio#36303). */
function faultPercent(f: Fields, report: Report): number | undefined {
  const percentage = f.obj('percentage');
  if (percentage) {
    const value = percentage.num('value', { min: 0, max: 100 });
    percentage.rest();
    return value ?? 0;
  }
  const legacy = f.num('percent', { min: 0, max: 100 });
  if (legacy !== undefined) return legacy;
  report.warn(f.at, 'has no percentage: Istio (like Envoy) then injects it into no request, so it is imported at 0%');
  return 0;
}

/**
 * `mirror` with `mirrorPercentage.value` (or the deprecated integer `mirrorPercent`/`mirror_percent`),
 * 100 when absent, as Istio does; or the first of `mirrors[]`. Waymark has one mirror per route.
 */
function readMirror(
  entry: Fields,
  service: string,
  ctx: VirtualServiceContext,
): { subset: SubsetRef; percent: number } | undefined {
  const { report } = ctx;
  const single = entry.obj('mirror');
  const percentage = entry.obj('mirrorPercentage');
  // An empty percentage is protobuf's 0, so nothing is mirrored.
  let percent = percentage ? (percentage.num('value', { min: 0, max: 100 }) ?? 0) : undefined;
  percentage?.rest();
  const legacy = entry.num('mirrorPercent', { min: 0, max: 100 });
  if (percent === undefined) percent = legacy;
  let mirror: { subset: SubsetRef; percent: number } | undefined;
  if (single) {
    const target = readTarget(single, service, 'mirror', ctx);
    if (target) mirror = { subset: target.subset, percent: percent ?? 100 };
  } else if (percentage || legacy !== undefined) {
    report.warn(
      entry.at.key(percentage ? 'mirrorPercentage' : 'mirrorPercent'),
      'is set without mirror: nothing is mirrored',
    );
  }
  const many = entry.list('mirrors') ?? [];
  many.forEach((item, i) => {
    const f = asFields(item.value, item.at, report);
    if (!f) return;
    if (mirror || i > 0) {
      f.consume('destination', 'percentage');
      f.rest();
      report.warn(item.at, 'is not imported: Waymark routes have one mirror');
      return;
    }
    const dest = f.obj('destination', true);
    const p = f.obj('percentage');
    const value = p ? (p.num('value', { min: 0, max: 100 }) ?? 0) : undefined;
    p?.rest();
    f.rest();
    const target = dest && readTarget(dest, service, 'mirror', ctx);
    if (target) mirror = { subset: target.subset, percent: value ?? 100 };
  });
  return mirror;
}
