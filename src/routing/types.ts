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

/** A cluster as configured: one regional deployment of a service. Plain data, as loaded from the store. */
export interface ClusterSpec {
  name: string;
  region: string;
  origin: string;
  latitude: number;
  longitude: number;
  weight: number;
  labels: Record<string, string>;
}

/** A service as configured, with its clusters. Plain data, as loaded from the store. */
export interface ServiceSpec {
  name: string;
  hosts: string[];
  failover: FailoverRule[];
  clusters: ClusterSpec[];
}

/** Everything routing needs, as read from the store at one revision. */
export interface SnapshotSource {
  version: number;
  services: ServiceSpec[];
}

/** A cluster ready for the hot path. */
export interface Cluster {
  service: string;
  name: string;
  region: string;
  /** Origin without a trailing slash, so `origin + path` is the upstream URL. */
  origin: string;
  weight: number;
  labels: Readonly<Record<string, string>>;
  location: GeoPoint;
}

/** Clusters of equal rank for a client region; the choice among them is weighted. */
export interface Level {
  /** The region these clusters are in, or null for a level that mixes regions. */
  region: string | null;
  clusters: Cluster[];
}

/** Why a level holds the place it does in a priority list. */
export type LevelReason = 'same-region' | 'failover-rule' | 'distance' | 'no-locality';

/** A service's clusters in failover order for one client region. */
export interface PriorityList {
  levels: Level[];
  reasons: LevelReason[];
}

/** A service ready for the hot path: priority lists are computed for every known region up front. */
export interface CompiledService {
  name: string;
  hosts: string[];
  clusters: Cluster[];
  byRegion: ReadonlyMap<string, PriorityList>;
  /** Used when the client's region is unknown: every cluster in one weighted level. */
  anyRegion: PriorityList;
}

/** The compiled routing table. The only thing the hot path reads. */
export interface Snapshot {
  version: number;
  byHost: ReadonlyMap<string, CompiledService>;
  byName: ReadonlyMap<string, CompiledService>;
  /** Every region known to routing, with its location when known (centroid of its clusters). */
  regions: ReadonlyMap<string, GeoPoint | null>;
}

/** What routing knows about a request. */
export interface RequestFacts {
  host: string;
  /** The client's region, when the runtime or a trusted header says it. Wins over `location`. */
  clientRegion?: string | undefined;
  /** The client's location (request.cf on Workers, or a trusted header in Node). */
  clientLocation?: GeoPoint | undefined;
}

/** A number in [0, 1), like Math.random; injected so that tests and benchmarks are repeatable. */
export type RandomSource = () => number;
