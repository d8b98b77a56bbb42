import { fieldErrors } from '../api/problem.js';
import { labelsSchema, regionSchema, subsetNameSchema } from '../spec/names.js';
import type { FailoverRule, Subset } from '../routing/types.js';
import { type Fields, type Loc, asFields, checkNumber, type Report } from './reader.js';
import { serviceOf } from './names.js';

/** Service policy fields as read from Istio, before the policy schema checks them. */
interface PolicyDraft {
  panicThresholdPercent?: number;
  maxConcurrent?: number;
  outlierDetection?: Record<string, number>;
  distribute?: { from: string; to: Record<string, number> }[];
}

/** What one DestinationRule gives Waymark. */
export interface DestinationRuleImport {
  service: string;
  /** Where its `host` is, to name it in errors. */
  at: Loc;
  /** Subset name -> label selector, kept on the service. */
  subsets: Map<string, Subset>;
  /** Policy fields it sets; undefined: none. */
  policy?: PolicyDraft;
  /** Failover rules, one per "from" region; undefined: none. */
  failover?: FailoverRule[];
  /** Applied to every route of the service: consistent hashing becomes affinity. */
  affinity?: { cookie: string } | { header: string };
  /** Where affinity came from, to warn when no route takes it. */
  routeExtrasAt?: Loc;
}

const SPEC_WHY = {
  exportTo: 'Waymark services are not namespaced',
  workloadSelector: 'Waymark applies the rule to every client of the service',
};
const POLICY_WHY = {
  tls: 'Waymark connects to each cluster origin as its URL says (http or https)',
  portLevelSettings: 'Waymark clusters have one origin each; port-level policies do not apply',
  tunnel: 'Waymark does not tunnel',
  proxyProtocol: 'Waymark does not send the PROXY protocol',
  retryBudget: 'set retries.budgetPercent on the routes instead',
};
const SUBSET_WHY = { trafficPolicy: 'Waymark policies are per service and per route, not per subset' };
const LB_WHY = {
  simple:
    'Waymark replaces it with its locality-aware weighted choice (nearest healthy region first, by cluster weight)',
  warmupDurationSecs: 'Waymark does not ramp new clusters up slowly',
  warmup: 'Waymark does not ramp new clusters up slowly',
};
const HASH_WHY = {
  useSourceIp: 'Waymark affinity is by cookie or header only',
  httpQueryParameterName: 'Waymark affinity is by cookie or header only',
  ringHash: 'Waymark hashes the key onto destinations by weight; the ring is not configurable',
  maglev: 'Waymark hashes the key onto destinations by weight; the ring is not configurable',
  minimumRingSize: 'Waymark hashes the key onto destinations by weight; the ring is not configurable',
};
const COOKIE_WHY = {
  ttl: 'Waymark reads the cookie but never sets it: requests without it are spread by weight',
  path: 'Waymark reads the cookie but never sets it',
  attributes: 'Waymark reads the cookie but never sets it',
};
const LOCALITY_WHY = {
  failoverPriority: 'Waymark fails over by region (failover rules, then distance), not by labels',
};
const OUTLIER_WHY = {
  interval: 'Waymark ejects as soon as the consecutive failures are counted; there is no analysis sweep',
  maxEjectionTime: 'Waymark caps ejections at 300 s or baseEjectionTime, whichever is longer, as Envoy does by default',
  consecutiveLocalOriginFailures: 'Waymark counts connect failures together with 5xx answers',
  splitExternalLocalOriginErrors: 'Waymark counts connect failures together with 5xx answers',
};
const HTTP_POOL_WHY = {
  maxRequestsPerConnection: 'Waymark leaves connection reuse to the runtime',
  maxRetries: "Waymark bounds retries with each route's retries.budgetPercent instead",
  idleTimeout: 'Waymark leaves connection reuse to the runtime',
  h2UpgradePolicy: 'Waymark leaves the HTTP version to the runtime',
  useClientProtocol: 'Waymark leaves the HTTP version to the runtime',
  maxConcurrentStreams: 'Waymark leaves the HTTP version to the runtime',
};
const TCP_POOL_WHY = {
  connectTimeout: "a connect timeout counts against each route's retries.perTryTimeoutMs in Waymark",
  tcpKeepalive: 'Waymark leaves connections to the runtime',
  maxConnectionDuration: 'Waymark leaves connections to the runtime',
  idleTimeout: 'Waymark leaves connections to the runtime',
};

/** Reads a DestinationRule's spec: subsets, and the traffic policy Waymark can honour. */
export function readDestinationRule(spec: Fields, report: Report): DestinationRuleImport | null {
  const host = spec.str('host', true);
  const hostAt = spec.at.key('host');
  const service = host === undefined ? null : serviceOf(host, hostAt, report);
  const subsets = readSubsets(spec, report);
  const result: DestinationRuleImport = { service: service ?? '', at: hostAt, subsets };
  const policy = spec.obj('trafficPolicy');
  if (policy) readTrafficPolicy(policy, result, report);
  spec.rest(SPEC_WHY);
  return service === null ? null : result;
}

/** A Waymark service holds at most this many subsets (the service schema's limit). */
const MAX_SUBSETS = 100;

/** Istio's subset names are DNS-1123 labels and so are Waymark's; labels follow Waymark's cluster labels. */
function readSubsets(spec: Fields, report: Report): Map<string, Subset> {
  const subsets = new Map<string, Subset>();
  const items = spec.list('subsets') ?? [];
  if (items.length > MAX_SUBSETS)
    report.error(spec.at.key('subsets'), `has ${items.length} subsets; a Waymark service holds at most ${MAX_SUBSETS}`);
  for (const item of items) {
    const f = asFields(item.value, item.at, report);
    if (!f) continue;
    const name = f.str('name', true);
    const labels: Subset = {};
    for (const label of f.entries('labels') ?? []) {
      if (typeof label.value !== 'string') {
        report.error(label.at, 'must be a string (quote numbers and booleans)');
        continue;
      }
      const checked = labelsSchema.safeParse({ [label.key]: label.value });
      if (checked.success) labels[label.key] = label.value;
      else report.error(label.at, fieldErrors(checked.error)[0]?.message ?? 'is not a valid label');
    }
    f.rest(SUBSET_WHY);
    if (name === undefined) continue;
    const named = subsetNameSchema.safeParse(name);
    if (!named.success)
      report.error(f.at.key('name'), `"${name}" ${named.error.issues[0]?.message ?? 'is not a subset name'}`);
    else if (subsets.has(name))
      report.error(f.at.key('name'), `subset "${name}" is defined twice: give each subset its own name`);
    else subsets.set(name, labels);
  }
  return subsets;
}

function readTrafficPolicy(policy: Fields, result: DestinationRuleImport, report: Report): void {
  const outlier = policy.obj('outlierDetection');
  if (outlier) result.policy = readOutlierDetection(outlier, report);

  const lb = policy.obj('loadBalancer');
  if (lb) readLoadBalancer(lb, result, Boolean(outlier), report);

  const pool = policy.obj('connectionPool');
  if (pool) readConnectionPool(pool, result, report);

  policy.rest(POLICY_WHY);
}

/**
 * Istio's OutlierDetection defaults (istio/api networking/v1alpha3/destination_rule.proto), filled in
 * for fields a rule leaves out, as Istio configures Envoy with them; each with the Waymark field it sets.
 */
const ISTIO_OUTLIER_DEFAULTS: readonly {
  istio: string;
  waymark: string;
  value: number;
  shown: string;
  mapped: boolean;
}[] = [
  { istio: 'consecutive5xxErrors', waymark: 'consecutiveFailures', value: 5, shown: '5', mapped: true },
  { istio: 'interval', waymark: 'intervalMs', value: 10_000, shown: '10s', mapped: true },
  { istio: 'baseEjectionTime', waymark: 'baseEjectionMs', value: 30_000, shown: '30s', mapped: true },
  { istio: 'maxEjectionPercent', waymark: 'maxEjectionPercent', value: 10, shown: '10', mapped: true },
];

/**
 * Envoy's consecutive-5xx ejection maps to Waymark's: consecutive5xxErrors -> consecutiveFailures,
 * interval -> intervalMs, baseEjectionTime -> baseEjectionMs, maxEjectionTime (Envoy's
 * max_ejection_time, which Istio's API does not expose; taken where a rule has it) -> maxEjectionMs,
 * maxEjectionPercent as is, and minHealthPercent (which Istio turns into Envoy's
 * healthy panic threshold) -> panicThresholdPercent. Fields left out take Istio's defaults, said in a
 * warning, so the service ejects as the mesh did rather than by Waymark's own defaults.
 */
function readOutlierDetection(f: Fields, report: Report): PolicyDraft | undefined {
  const outlier: Record<string, number> = {};
  const policy: PolicyDraft = {};

  const consecutive5xx = f.num('consecutive5xxErrors', { int: true, min: 0 });
  if (consecutive5xx === 0)
    report.warn(
      f.at.key('consecutive5xxErrors'),
      'is 0, which turns 5xx ejection off in Istio; Waymark cannot turn it off, so its setting is left unchanged',
    );
  else if (consecutive5xx !== undefined) outlier.consecutiveFailures = consecutive5xx;

  for (const name of ['consecutiveGatewayErrors', 'consecutiveErrors']) {
    if (f.has(name)) {
      f.consume(name);
      report.warn(
        f.at.key(name),
        'is not supported: Waymark counts every 5xx answer and connect failure (consecutive5xxErrors), not gateway errors apart',
      );
    }
  }

  const interval = f.duration('interval');
  if (interval !== undefined) outlier.intervalMs = interval;
  const base = f.duration('baseEjectionTime');
  if (base !== undefined) outlier.baseEjectionMs = base;
  const max = f.duration('maxEjectionTime');
  if (max !== undefined) outlier.maxEjectionMs = max;
  const maxPercent = f.num('maxEjectionPercent', { min: 0, max: 100 });
  if (maxPercent !== undefined) outlier.maxEjectionPercent = maxPercent;
  const minHealth = f.num('minHealthPercent', { min: 0, max: 100 });
  if (minHealth !== undefined) policy.panicThresholdPercent = minHealth;
  else {
    report.warn(
      f.at,
      "has no minHealthPercent: Istio then turns panic mode off (threshold 0); Waymark keeps the service's panicThresholdPercent (50% by default). Set minHealthPercent to carry a threshold over",
    );
  }

  const filled = ISTIO_OUTLIER_DEFAULTS.filter((d) => d.mapped && !f.has(d.istio));
  for (const d of filled) outlier[d.waymark] = d.value;
  if (filled.length) {
    const fewClusters = filled.some((d) => d.waymark === 'maxEjectionPercent')
      ? '; with maxEjectionPercent 10, a service of fewer than 10 clusters ejects none, as in Envoy: set maxEjectionPercent to let one go'
      : '';
    report.warn(
      f.at,
      `leaves ${filled.map((d) => `${d.istio} (${d.shown})`).join(', ')} to Istio's defaults, imported as ${filled.map((d) => `${d.waymark} ${d.value}`).join(', ')}${fewClusters}`,
    );
  }
  f.rest(OUTLIER_WHY);
  if (Object.keys(outlier).length) policy.outlierDetection = outlier;
  return Object.keys(policy).length ? policy : undefined;
}

function readLoadBalancer(
  lb: Fields,
  result: DestinationRuleImport,
  hasOutlierDetection: boolean,
  report: Report,
): void {
  const hash = lb.obj('consistentHash');
  if (hash) {
    const cookie = hash.obj('httpCookie');
    const header = hash.str('httpHeaderName');
    if (cookie) {
      const name = cookie.str('name', true);
      if (name !== undefined) result.affinity = { cookie: name };
      cookie.rest(COOKIE_WHY);
    }
    if (header !== undefined) {
      if (result.affinity)
        report.warn(hash.at.key('httpHeaderName'), 'is not used: httpCookie already gives the affinity key');
      else result.affinity = { header };
    }
    if (result.affinity) {
      result.routeExtrasAt ??= hash.at;
      // Istio's consistent hash sticks a key to one host; Waymark's affinity sticks it to a destination.
      report.warn(
        hash.at,
        'keeps a key on the route destination (subset) it hashes to, not on one cluster: inside the subset Waymark spreads by weight and health',
      );
    }
    hash.rest(HASH_WHY);
  }

  const locality = lb.obj('localityLbSetting');
  if (locality) {
    const enabled = locality.bool('enabled');
    if (enabled === false)
      report.warn(
        locality.at.key('enabled'),
        'is false: Waymark routing is always locality-aware; the failover rules below are still imported',
      );
    const failover = locality.list('failover');
    if (failover) {
      result.failover = readFailover(failover, report);
      if (!hasOutlierDetection && result.failover.length) {
        report.warn(
          locality.at.key('failover'),
          "takes effect in Istio only with outlierDetection; Waymark applies it whenever its health checks or outlier detection find a region's clusters down",
        );
      }
    }
    const distribute = locality.list('distribute');
    if (distribute) {
      result.policy = { ...result.policy, distribute: readDistribute(distribute, report) };
      // Istio refuses distribute and failover together; Waymark keeps both (istio/istio#35124).
      if (failover)
        report.warn(
          locality.at.key('distribute'),
          'is kept with failover: Waymark distributes among the healthy localities and fails over by priority when they are not (Istio accepts only one of the two)',
        );
    }
    locality.rest(LOCALITY_WHY);
  }
  lb.rest(LB_WHY);
}

/** localityLbSetting.distribute as Waymark's policy.distribute (the policy schema checks the localities and percents). */
function readDistribute(
  items: { value: unknown; at: Loc }[],
  report: Report,
): { from: string; to: Record<string, number> }[] {
  const rules: { from: string; to: Record<string, number> }[] = [];
  for (const item of items) {
    const f = asFields(item.value, item.at, report);
    if (!f) continue;
    const from = f.str('from', true);
    const to: Record<string, number> = {};
    for (const e of f.entries('to') ?? []) {
      const percent = checkNumber(e.value, e.at, report, { int: true, min: 0, max: 100 });
      if (percent !== undefined) to[e.key] = percent;
    }
    f.rest();
    if (from !== undefined) rules.push({ from, to });
  }
  return rules;
}

/**
 * Istio localities are `region/zone/subzone`; Waymark fails over between regions, so the region part
 * is kept. Rules with the same `from` merge into one Waymark rule, `to` regions in document order.
 */
function readFailover(items: { value: unknown; at: Loc }[], report: Report): FailoverRule[] {
  const rules: FailoverRule[] = [];
  for (const item of items) {
    const f = asFields(item.value, item.at, report);
    if (!f) continue;
    const from = region(f, 'from', report);
    const to = region(f, 'to', report);
    f.rest();
    if (from === undefined || to === undefined) continue;
    const rule = rules.find((r) => r.from === from);
    if (!rule) rules.push({ from, to: [to] });
    else if (!rule.to.includes(to)) rule.to.push(to);
  }
  return rules;
}

function region(f: Fields, name: string, report: Report): string | undefined {
  const locality = f.str(name, true);
  if (locality === undefined) return undefined;
  const regionName = locality.split('/')[0] ?? '';
  const parsed = regionSchema.safeParse(regionName);
  if (parsed.success) return parsed.data;
  report.error(f.at.key(name), `region "${regionName}" ${parsed.error.issues[0]?.message ?? 'is not a region name'}`);
  return undefined;
}

/**
 * Envoy's circuit breakers as one Waymark limit on requests in flight per cluster: http2MaxRequests
 * (max_requests) when given; else tcp.maxConnections plus http1MaxPendingRequests, the requests Envoy
 * holds (one per connection, and that many more waiting for one) before it overflows. Waymark does not
 * queue, so it sends as many at once and refuses the next at once, as Envoy's overflow does.
 */
function readConnectionPool(pool: Fields, result: DestinationRuleImport, report: Report): void {
  const http = pool.obj('http');
  const tcp = pool.obj('tcp');
  const maxRequests = http?.num('http2MaxRequests', { int: true, min: 1 });
  const pending = http?.num('http1MaxPendingRequests', { int: true, min: 1 });
  const maxConnections = tcp?.num('maxConnections', { int: true, min: 1 });
  let limit: number | undefined;
  let source = '';
  if (maxRequests !== undefined) {
    limit = maxRequests;
    source = 'http.http2MaxRequests';
    if (maxConnections !== undefined)
      report.warn(tcp?.at.key('maxConnections') ?? pool.at, 'is not used: http.http2MaxRequests gives the limit');
    if (pending !== undefined)
      report.warn(
        http?.at.key('http1MaxPendingRequests') ?? pool.at,
        'is not used: http.http2MaxRequests gives the limit',
      );
  } else if (maxConnections !== undefined) {
    limit = maxConnections + (pending ?? 0);
    source = pending === undefined ? 'tcp.maxConnections' : 'tcp.maxConnections + http.http1MaxPendingRequests';
  } else if (pending !== undefined) {
    report.warn(
      http?.at.key('http1MaxPendingRequests') ?? pool.at,
      'is not used: without tcp.maxConnections Istio opens connections without limit, so no request waits for one; Waymark does not queue either',
    );
  }
  if (limit !== undefined) {
    const scope = "Waymark's limit is per cluster per Waymark instance, not per Envoy host across the mesh";
    result.policy = { ...result.policy, maxConcurrent: limit };
    report.warn(pool.at, `(${source}) becomes the service's policy.maxConcurrent ${limit}: ${scope}`);
  }
  http?.rest(HTTP_POOL_WHY);
  tcp?.rest(TCP_POOL_WHY);
  pool.rest();
}
