import type { ClusterPut } from '../spec/cluster.js';
import type { CanaryPolicy, RampPolicy, RoutePut, Subset, SubsetRef } from '../spec/route.js';
import type { FailoverRule, ServicePut, ServiceSubsets, StoredOutlierPolicy, StoredPolicy } from '../spec/service.js';
import type { CompiledMatch, RequestView } from './match.js';
import type { ServiceIndex } from './lazy-map.js';
import type { ShareTable } from './shares.js';

// The configured objects (services, clusters, routes) are described once, by the zod schemas in spec/;
// routing takes the types they parse to.
export type { LocalityDistribution } from '../spec/service.js';
export type { EvidenceBounds, RouteMatch, StringMatch } from '../spec/route.js';
export type { CanaryPolicy, FailoverRule, RampPolicy, ServiceSubsets, Subset, SubsetRef };

/** A point on Earth in degrees. */
export interface GeoPoint {
  lat: number;
  lon: number;
}

/** A cluster's health as the health sync last judged it; `unknown` (never probed) routes as healthy. */
export type ClusterHealth = 'healthy' | 'unhealthy' | 'unknown';

/**
 * A cluster as configured: one regional deployment of a service. Plain data, as loaded from the store.
 * `zone` and `originHost` may be left out (as null: none); the health check is the sync's, not routing's.
 */
export type ClusterSpec = Omit<ClusterPut, 'zone' | 'originHost' | 'healthCheck'> & {
  name: string;
  zone?: ClusterPut['zone'];
  originHost?: ClusterPut['originHost'];
  health?: ClusterHealth;
};

/** Passive health at the edge (Envoy's outlier detection), every field resolved (see `resolvePolicy`). */
export type OutlierPolicy = Required<StoredOutlierPolicy>;

/** How a service behaves when clusters fail: its stored policy with the defaults filled in (see `resolvePolicy`). */
export type ServicePolicy = Omit<StoredPolicy, 'panicThresholdPercent' | 'failClosed' | 'outlierDetection'> &
  Required<Pick<StoredPolicy, 'panicThresholdPercent' | 'failClosed'>> & { outlierDetection: OutlierPolicy };

/** A service as configured, with its clusters. Plain data, as loaded from the store. */
export interface ServiceSpec extends Pick<ServicePut, 'hosts' | 'failover'> {
  name: string;
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
export const OVERRIDE_ACTIONS = ['drain', 'pin', 'mirror-percent', 'canary-weight', 'freeze'] as const;
export type OverrideAction = (typeof OVERRIDE_ACTIONS)[number];

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
  /**
   * Present when `services` (and `overrides`) hold only part of the configuration: a cold isolate starts
   * from the archive's catalog and takes the shard of each host the first time a request needs it.
   */
  partial?: PartialSource;
}

/**
 * What a partial source knows of the services it does not hold: where they are, and the region catalog
 * of the whole configuration (which no part of it can compute). The services it holds are each whole.
 */
interface PartialSource {
  /** Every region of the whole configuration with its location (see `Snapshot.regions`). */
  regions: readonly (readonly [string, GeoPoint | null])[];
  /** Host -> the archive shard holding its service, for every host of the configuration. */
  shardOf: Pick<ReadonlyMap<string, string>, 'get'>;
  /** Shards taken already: a host still unknown after its shard was taken is unknown. */
  loaded: ReadonlySet<string>;
  /** Services deleted after the catalog was made: never taken from a shard. */
  removed: ReadonlySet<string>;
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
export type LevelReason =
  | 'pin'
  | 'distribute'
  | 'same-subzone'
  | 'same-zone'
  | 'same-region'
  | 'failover-rule'
  | 'latency'
  | 'distance'
  | 'no-locality';

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

/** A service ready for the hot path: a client region's plans are made the first time one of its clients asks. */
export interface CompiledService {
  name: string;
  /** What it was compiled from (the spec object and the overrides active then), so an unchanged service is reused. */
  spec: ServiceSpec;
  overrides: readonly OverrideSpec[];
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

/**
 * What a snapshot indexes of its source: services by name, hosts to services, and each region's
 * coordinate sums (micro-degrees, integers, so that taking a service out and putting it back is exact)
 * and how many failover rules name it. A later snapshot updates a copy for the services whose spec
 * objects changed instead of walking every cluster again.
 */
export interface SourceIndex {
  specs: ReadonlyMap<string, ServiceSpec>;
  serviceOf: ReadonlyMap<string, string>;
  located: ReadonlyMap<string, { lat: number; lon: number; n: number }>;
  named: ReadonlyMap<string, number>;
}

/** The compiled routing table. The only thing the hot path reads. */
export interface Snapshot {
  version: number;
  /** Host -> service (compiled on first lookup). */
  byHost: ReadonlyMap<string, CompiledService>;
  /** Name -> service, compiled on first use (see LazyMap). */
  byName: ServiceIndex;
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
  /** Its source indexed (services by name, hosts, region sums), updated rather than rebuilt by the next snapshot. */
  index: SourceIndex;
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

/** Where automation has brought a route (kept by the health sync, read by the edges). */
export interface RouteState {
  mirrorPercent: number | null;
  canaryWeight: number | null;
  phase: RoutePhase;
  paused: boolean;
}

export type RoutePhase = 'ramping' | 'halted' | 'complete' | 'promoted' | 'rolled-back';

/** A route: an ordered rule of a service, as its PUT body parses. Plain data, as loaded from the store. */
export interface RouteSpec extends RoutePut {
  name: string;
  /** Automation's current values (from the store), when the route has a ramp or a canary. */
  state?: RouteState;
}
