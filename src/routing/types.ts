import type { CompiledMatch, RequestView } from './match.js';
import type { ShareTable } from './shares.js';

/** A point on Earth in degrees. */
export interface GeoPoint {
  lat: number;
  lon: number;
}

/** Clients of `from` fail over to the regions in `to`, in that order, before distance decides. */
export interface FailoverRule {
  from: string;
  to: string[];
}

/** A cluster's health as the health sync last judged it; `unknown` (never probed) routes as healthy. */
export type ClusterHealth = 'healthy' | 'unhealthy' | 'unknown';

/** A cluster as configured: one regional deployment of a service. Plain data, as loaded from the store. */
export interface ClusterSpec {
  name: string;
  region: string;
  /** Istio's `zone` or `zone/subzone` inside the region; absent or null: none. */
  zone?: string | null;
  /** scheme://host[:port], optionally followed by a base path (no trailing slash), as stored. */
  origin: string;
  /** The Host header the origin sees; absent or null: the host of `origin`. */
  originHost?: string | null;
  latitude: number;
  longitude: number;
  weight: number;
  labels: Record<string, string>;
  health?: ClusterHealth;
}

/** Passive health at the edge (Envoy's outlier detection, consecutive-5xx flavour). */
export interface OutlierPolicy {
  /** Consecutive 5xx answers or connect failures that eject a cluster (Envoy's consecutive_5xx). */
  consecutiveFailures: number;
  /** Each interval a cluster spends back in rotation takes one off its ejection multiplier (Envoy's interval). */
  intervalMs: number;
  /** An ejection lasts this long times the cluster's ejection multiplier (Envoy's base_ejection_time). */
  baseEjectionMs: number;
  /** No ejection lasts longer than this, or than baseEjectionMs if that is longer (Envoy's max_ejection_time). */
  maxEjectionMs: number;
  /** Never more than this percent of a service's clusters ejected at once (Envoy's max_ejection_percent). */
  maxEjectionPercent: number;
}

/**
 * Istio's localityLbSetting.distribute: clients in `from` (a locality `region`, `region/zone` or
 * `region/zone/subzone`, where `*` or a missing part matches any) send each `to` locality its percent of
 * their traffic (the percents add up to 100), spread inside a locality by cluster weight.
 */
export interface LocalityDistribution {
  from: string;
  to: Record<string, number>;
}

/** How a service behaves when clusters fail. */
export interface ServicePolicy {
  /** Below this normalised total health (percent), health is not trusted. */
  panicThresholdPercent: number;
  /** In panic, send nothing (true) instead of ignoring health (false, the default). */
  failClosed: boolean;
  /**
   * Requests in flight per cluster for every request of the service, routed or not (Istio's
   * DestinationRule connectionPool, Envoy's circuit breaker max_requests); a route's own limit applies too.
   */
  maxConcurrent?: number;
  outlierDetection: OutlierPolicy;
  /**
   * Fixed locality shares for the clients each rule's `from` matches (the first that does): the `to`
   * localities' clusters form their level 0 with those shares; the rest keep their failover order.
   */
  distribute?: LocalityDistribution[];
}

/** A service as configured, with its clusters. Plain data, as loaded from the store. */
export interface ServiceSpec {
  name: string;
  hosts: string[];
  failover: FailoverRule[];
  clusters: ClusterSpec[];
  policy?: ServicePolicy;
  /** Named subsets routes may refer to by name; absent: none. */
  subsets?: ServiceSubsets;
  routes?: RouteSpec[];
  /**
   * Per client region, the regions to fail over to in the order measured latency gave (from edge
   * reports, with hysteresis); where present it replaces distance for the regions it names.
   */
  latencyOrders?: Record<string, string[]>;
}

/**
 * drain: the cluster (or every cluster of `region`) takes no new traffic; pin: clients of `region` go
 * to `cluster` first while it is healthy; mirror-percent and canary-weight hold a route's value; freeze
 * stops automation for a route (or every route of the service).
 */
export type OverrideAction = 'drain' | 'pin' | 'mirror-percent' | 'canary-weight' | 'freeze';

/** An operator's decision that beats computed data. */
export interface OverrideSpec {
  id: string;
  service: string;
  action: OverrideAction;
  cluster: string | null;
  region: string | null;
  route?: string | null;
  value?: number | null;
  expiresAt: number;
}

/** Everything routing needs, as read from the store at one revision. */
export interface SnapshotSource {
  version: number;
  services: ServiceSpec[];
  overrides: OverrideSpec[];
}

/** A cluster ready for the hot path. */
export interface Cluster {
  service: string;
  name: string;
  /** `service/name`: the key of per-cluster state (outlier ejection, reports). */
  key: string;
  region: string;
  /** Istio's `zone` or `zone/subzone` inside the region; null: none. */
  zone: string | null;
  /** scheme://host[:port] only, so `origin + basePath + path` is the upstream URL. */
  origin: string;
  /** The base path every upstream path goes under: '' for none, else like '/shop' (no trailing slash). */
  basePath: string;
  /** The Host header the origin sees; null: the host of `origin`. */
  originHost: string | null;
  weight: number;
  labels: Readonly<Record<string, string>>;
  location: GeoPoint;
  health: ClusterHealth;
  /** An active drain override covers it. */
  drained: boolean;
}

/** Clusters of equal rank for a client region; the choice among them is weighted. */
export interface Level {
  /** The region these clusters are in, or null for a level that mixes regions. */
  region: string | null;
  clusters: Cluster[];
}

/** Why a level holds the place it does in a priority list. */
export type LevelReason = 'pin' | 'distribute' | 'same-subzone' | 'same-zone' | 'same-region' | 'failover-rule' | 'latency' | 'distance' | 'no-locality';

/** A service's clusters in failover order for one client region. */
export interface PriorityList {
  levels: Level[];
  reasons: LevelReason[];
}

/** A priority list with the traffic split the snapshot's health and overrides give it. */
export interface RoutePlan {
  list: PriorityList;
  shares: ShareTable;
}

/**
 * Per client region, per client zone (`zone` or `zone/subzone`): plans only for the zones some cluster
 * of that region is in (and the zone part of each subzone), so memory grows with clusters, not clients.
 */
export type ZonePlans = ReadonlyMap<string, ReadonlyMap<string, RoutePlan>>;

/** Plans for a set of clusters (a whole service, or one subset of it). */
export interface SubsetPlans {
  clusters: Cluster[];
  byRegion: ReadonlyMap<string, RoutePlan>;
  /** Clients whose zone is known and has clusters in their region use these; others, `byRegion`. */
  byZone: ZonePlans;
  anyRegion: RoutePlan;
}

/** A route ready for the hot path: matcher compiled, each destination with its own plans. */
export interface CompiledRoute {
  name: string;
  order: number;
  spec: RouteSpec;
  match: CompiledMatch;
  /** Weights as in force now (a canary's share taken from the others in proportion). */
  destinations: { subset: SubsetRef; labels: Subset | null; weight: number; plans: SubsetPlans; canary: boolean }[];
  totalWeight: number;
  mirror: { percent: number; labels: Subset | null; plans: SubsetPlans } | null;
  /** The retry policy's conditions as a set, built once (null: the default policy). */
  retryOn: ReadonlySet<string> | null;
}

/** A service ready for the hot path: plans are computed for every known region up front. */
export interface CompiledService {
  name: string;
  /** A hash of everything it was compiled from, so an unchanged service can be reused. */
  fingerprint: number;
  hosts: string[];
  clusters: Cluster[];
  policy: ServicePolicy;
  byRegion: ReadonlyMap<string, RoutePlan>;
  byZone: ZonePlans;
  /** Used when the client's region is unknown: every cluster in one weighted level. */
  anyRegion: RoutePlan;
  /** In order; the first that matches wins; none: the plans above. */
  routes: CompiledRoute[];
  /** routes[i].match.pathGate, side by side, so most non-matching routes are skipped without a call. */
  routeGates: (string | null)[];

  /** routes[i].match.headerGate, side by side, for routes without a path gate. */
  routeHeaderGates: (string | null)[];
  /** routes[i].match, side by side: matching walks these (shared across services) before any route. */
  routeMatches: CompiledMatch[];
}

/** The compiled routing table. The only thing the hot path reads. */
export interface Snapshot {
  version: number;
  byHost: ReadonlyMap<string, CompiledService>;
  byName: ReadonlyMap<string, CompiledService>;
  /** Every region known to routing, with its location when known (centroid of its clusters). */
  regions: ReadonlyMap<string, GeoPoint | null>;
  /** The region catalog as text: services can be reused from a snapshot with the same one. */
  regionsKey: string;
  /** The regions with a known location, as an array for the hot path's nearest-region scan. */
  locatedRegions: readonly { region: string; location: GeoPoint }[];
  /** When the earliest active override expires: the snapshot must be rebuilt by then. */
  validUntil: number;
  /** What it was compiled from, so it can be rebuilt for a later time without the store. */
  source: SnapshotSource;
}

/** What routing knows about a request. */
export interface RequestFacts {
  host: string;
  /** The client's region, when the runtime or a trusted header says it. Wins over `location`. */
  clientRegion?: string | undefined;
  /** The client's location (request.cf on Workers, or a trusted header in Node). */
  clientLocation?: GeoPoint | undefined;
  /** The client's zone (`zone` or `zone/subzone`) inside its region, when known. */
  clientZone?: string | undefined;
  /** How the zone became known (a trusted header, the colo's mapping, the node's setting), for explain. */
  clientZoneSource?: 'header' | 'colo' | 'node' | undefined;
  /** Method, path, query and headers, for route matching and affinity; absent: the service's default. */
  request?: RequestView | undefined;
  /** What the mirror sample hashes when the route has no affinity key: the request id. */
  sampleKey?: string | undefined;
}

/** A number in [0, 1), like Math.random; injected so that tests and benchmarks are repeatable. */
export type RandomSource = () => number;

/** How a header, query parameter or path is compared. Exactly one field is set. */
export type StringMatch = { exact: string } | { prefix: string } | { regex: string } | { present: true };

/** Which requests a route takes; every field given must match. */
export interface RouteMatch {
  path?: { exact: string } | { prefix: string } | { regex: string };
  methods?: string[];
  headers?: Record<string, StringMatch>;
  query?: Record<string, StringMatch>;
}

/** A label selector over a service's clusters (Istio's DestinationRule subset). Empty: every cluster. */
export type Subset = Record<string, string>;

/** A service's named subsets: name -> label selector. */
export type ServiceSubsets = Record<string, Subset>;

/**
 * Where a route sends traffic: a label selector, or the name of one of the service's subsets, resolved
 * to its labels when the snapshot compiles (a name the service does not define selects no cluster).
 */
export type SubsetRef = Subset | string;

export interface Destination {
  subset: SubsetRef;
  weight: number;
}

export interface RetryPolicy {
  attempts: number;
  perTryTimeoutMs: number;
  /** connect-failure, reset, timeout, 5xx, gateway-error (502/503/504), retriable-4xx (409), or a status code. */
  retryOn: string[];
  /** Retries may be at most this percent of the route's recent requests (with a small floor). */
  budgetPercent: number;
  /** Also retry non-idempotent methods after a response or timeout, not only after a connect failure. */
  nonIdempotent: boolean;
}

/** The bounds a shadow or canary must keep against the primary for automation to move on. */
export interface EvidenceBounds {
  /** Outcomes needed since the last step before the next one. */
  minSamples: number;
  /** The shadow's (canary's) error rate may exceed the primary's by at most this much (0.01 = 1 point). */
  maxErrorRateDelta: number;
  /** The shadow's (canary's) p95 latency may be at most this multiple of the primary's. */
  maxLatencyRatio: number;
}

/** Mirror percent automation: up by `step` to `max` while the shadow keeps within bounds. */
export interface RampPolicy extends EvidenceBounds {
  step: number;
  max: number;
}

/** Canary automation: weight up by `stepWeight` to `maxWeight`, then promotion; rollback on a breach. */
export interface CanaryPolicy extends EvidenceBounds {
  subset: SubsetRef;
  stepWeight: number;
  maxWeight: number;
}

/** Where automation has brought a route (kept by the health sync, read by the edges). */
export interface RouteState {
  mirrorPercent: number | null;
  canaryWeight: number | null;
  phase: RoutePhase;
  paused: boolean;
}

export type RoutePhase = 'ramping' | 'halted' | 'complete' | 'promoted' | 'rolled-back';

/** A route: an ordered rule of a service. Plain data, as loaded from the store. */
export interface RouteSpec {
  name: string;
  /** Automation's current values (from the store), when the route has a ramp or a canary. */
  state?: RouteState;
  order: number;
  match: RouteMatch;
  destinations: Destination[];
  affinity?: { cookie: string } | { header: string };
  mirror?: { subset: SubsetRef; percent: number; ramp?: RampPolicy };
  /** A canary subset whose weight the health sync moves step by step from what edges observe. */
  canary?: CanaryPolicy;
  fault?: { delay?: { percent: number; ms: number }; abort?: { percent: number; status: number } };
  retries?: RetryPolicy;
  timeoutMs?: number;
  maxConcurrent?: number;
  rateLimit?: { requestsPerSecond: number; burst: number; key: 'client-ip' | 'global' | { header: string } };
}
