import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { compileSnapshot } from '../src/routing/compile.js';
import { decide } from '../src/routing/decide.js';
import { seededRandom } from '../src/routing/random.js';
import type {
  ClusterSpec,
  FailoverRule,
  OverrideSpec,
  RandomSource,
  RequestFacts,
  ServiceSpec,
  Snapshot,
  SnapshotSource,
} from '../src/routing/types.js';
import { percentile } from './stats.js';

/** Ten cloud regions at roughly their real data-centre coordinates. */
export const BENCH_REGIONS = [
  { name: 'us-east1', lat: 33.2, lon: -80.0 },
  { name: 'us-central1', lat: 41.3, lon: -95.9 },
  { name: 'us-west1', lat: 45.6, lon: -121.2 },
  { name: 'southamerica-east1', lat: -23.5, lon: -46.6 },
  { name: 'eu-west1', lat: 50.4, lon: 3.8 },
  { name: 'europe-west3', lat: 50.1, lon: 8.7 },
  { name: 'asia-south1', lat: 19.1, lon: 72.9 },
  { name: 'ap-southeast1', lat: 1.35, lon: 103.8 },
  { name: 'asia-northeast1', lat: 35.7, lon: 139.7 },
  { name: 'australia-southeast1', lat: -33.9, lon: 151.2 },
] as const;

/** Where clients are: cities on every continent (clients without a region header are located here). */
const CLIENT_CITIES = [
  [40.7, -74.0],
  [34.1, -118.2],
  [41.9, -87.6],
  [19.4, -99.1],
  [4.7, -74.1],
  [-34.6, -58.4],
  [-23.5, -46.6],
  [51.5, -0.1],
  [48.9, 2.4],
  [52.5, 13.4],
  [59.3, 18.1],
  [41.0, 29.0],
  [30.0, 31.2],
  [6.5, 3.4],
  [-26.2, 28.0],
  [25.2, 55.3],
  [28.6, 77.2],
  [13.1, 80.3],
  [13.8, 100.5],
  [-6.2, 106.8],
  [22.3, 114.2],
  [31.2, 121.5],
  [37.6, 127.0],
  [35.7, 139.7],
  [-33.9, 151.2],
  [-36.8, 174.8],
  [64.1, -21.9],
  [61.2, -149.9],
] as const;

export const CLUSTERS_PER_SERVICE = 20;

/** The `now` the snapshot is compiled at (overrides expire an hour later). */
export const COMPILE_NOW = Date.UTC(2026, 0, 1);

/**
 * N services x 20 clusters. Each service runs in 4-10 of the regions (clusters spread over them, at least
 * one per region, jittered around the region's coordinates), has 1-3 hosts, mostly equal weights with
 * some skewed and some at weight 0; about a third carry failover rules; 3% of clusters are unhealthy,
 * 10% never probed; 2% of services have a drain override and 1% a pin.
 */
export function buildSource(services: number, seed = 7): SnapshotSource {
  const r = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(r() * items.length)] as T;
  const specs: ServiceSpec[] = [];
  const overrides: OverrideSpec[] = [];
  for (let i = 0; i < services; i++) {
    const name = `svc-${i}`;
    const hosts = [`${name}.example.com`, `www.${name}.example.com`, `api.${name}.example.com`].slice(
      0,
      1 + Math.floor(r() * 3),
    );
    const regions = shuffle([...BENCH_REGIONS], r).slice(0, 4 + Math.floor(r() * 7));
    const clusters: ClusterSpec[] = [];
    for (let k = 0; k < CLUSTERS_PER_SERVICE; k++) {
      const region = k < regions.length ? (regions[k] as (typeof regions)[number]) : pick(regions);
      const roll = r();
      clusters.push({
        name: `${region.name}-${k}`,
        region: region.name,
        origin: `https://${region.name}-${k}.${name}.internal`,
        latitude: region.lat + (r() - 0.5),
        longitude: region.lon + (r() - 0.5),
        weight: roll < 0.05 ? 0 : roll < 0.15 ? 1 + Math.floor(r() * 500) : 100,
        labels: { version: r() < 0.8 ? 'v1' : 'v2' },
        health: roll > 0.97 ? 'unhealthy' : roll > 0.87 ? 'unknown' : 'healthy',
      });
    }
    const failover: FailoverRule[] = [];
    if (r() < 0.33) {
      const from = shuffle([...BENCH_REGIONS], r).slice(0, 1 + Math.floor(r() * 2));
      for (const f of from)
        failover.push({
          from: f.name,
          to: shuffle(
            regions.map((x) => x.name),
            r,
          ).slice(0, 2),
        });
    }
    specs.push({ name, hosts, failover, clusters });
    const o = r();
    const target = pick(clusters);
    const expiresAt = COMPILE_NOW + 3_600_000;
    if (o < 0.02)
      overrides.push({ id: `o-${i}`, service: name, action: 'drain', cluster: target.name, region: null, expiresAt });
    else if (o < 0.03)
      overrides.push({
        id: `o-${i}`,
        service: name,
        action: 'pin',
        cluster: target.name,
        region: pick(regions).name,
        expiresAt,
      });
  }
  return { version: 1, services: specs, overrides };
}

/** How the pre-generated requests are mixed; printed with the results. */
export const FACTS_MIX =
  'client: 40% known clientRegion, 35% clientLocation only, 10% unknown clientRegion + clientLocation, 15% neither; ' +
  'host: 94% plain, 5% mixed case with :port, 1% unknown';

/** Request facts over the source's hosts (uniformly over services). */
export function buildFacts(source: SnapshotSource, count: number, seed = 11): RequestFacts[] {
  const r = seededRandom(seed);
  const facts: RequestFacts[] = [];
  const location = () => {
    const city = CLIENT_CITIES[Math.floor(r() * CLIENT_CITIES.length)] as readonly [number, number];
    return { lat: city[0] + (r() - 0.5) * 2, lon: city[1] + (r() - 0.5) * 2 };
  };
  for (let i = 0; i < count; i++) {
    const service = source.services[Math.floor(r() * source.services.length)] as ServiceSpec;
    let host = service.hosts[Math.floor(r() * service.hosts.length)] as string;
    const h = r();
    if (h < 0.01) host = `nobody-${i}.example.org`;
    else if (h < 0.06) host = `${host.slice(0, 1).toUpperCase()}${host.slice(1).replace('example', 'Example')}:8443`;
    const c = r();
    if (c < 0.4)
      facts.push({
        host,
        clientRegion: (BENCH_REGIONS[Math.floor(r() * BENCH_REGIONS.length)] as { name: string }).name,
      });
    else if (c < 0.75) facts.push({ host, clientLocation: location() });
    else if (c < 0.85) facts.push({ host, clientRegion: 'mars-north1', clientLocation: location() });
    else facts.push({ host });
  }
  return facts;
}

function shuffle<T>(items: T[], r: RandomSource): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** Timings of decide() over one facts array. */
export interface Timing {
  /** Decisions timed in batches. */
  decisions: number;
  decisionsPerSec: number;
  /** Per-decision cost in µs = batch time / batch size; percentiles over the batches of all passes. */
  p50Us: number;
  p99Us: number;
  /**
   * The same over the batches of the pass with the lowest p99: other processes on the machine only add
   * time, but so do GC scavenges, which are Waymark's own cost, hence not the headline figure.
   */
  bestPassP50Us: number;
  bestPassP99Us: number;
  /** p99 of each pass. */
  passP99Us: number[];
  maxBatchUs: number;
  /** For reference: hrtime around every single call, less the measured cost of an empty hrtime pair. */
  perCall: { samples: number; timerOverheadNs: number; p50Us: number; p99Us: number; p999Us: number };
}

export interface DecisionResult extends Timing {
  services: number;
  clusters: number;
  hosts: number;
  regions: number;
  buildSourceMs: number;
  /** One compileSnapshot() of the whole source (the first load, on the event loop). */
  compileMs: number;
  /** A reload after one cluster of one service changed (unchanged services are reused). */
  reloadOneChangeMs: number;
  /** Heap the compiled snapshot holds (heap after a full GC, with and without it); null when GC is not reachable. */
  snapshotHeapMb: number | null;
  batchSize: number;
  passes: number;
  outcomes: { route: number; unknownHost: number; noCluster: number };
  /**
   * The same snapshot, requests spread over only `services` services (a hot set that stays in CPU caches):
   * tells the cost of the snapshot's size apart from the cost of touching a large working set at random.
   */
  hotSet: (Timing & { services: number }) | null;
}

export interface DecisionOptions {
  batchSize: number;
  /** Batches per pass. */
  batches: number;
  passes: number;
  warmup: number;
  perCallSamples: number;
  factsCount: number;
  /** When set, also time requests for only this many services of the same snapshot. */
  hotSet?: number | undefined;
}

/** A full GC, when V8 lets us have one (--expose-gc switched on at run time). */
const fullGc: (() => void) | null = (() => {
  try {
    v8.setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
})();

function heapAfterGc(): number {
  fullGc?.();
  return process.memoryUsage().heapUsed;
}

/** Compiles a snapshot of `services` services once, then times decide() over pre-generated facts. */
export function benchDecisions(services: number, options: DecisionOptions): DecisionResult {
  let t = process.hrtime.bigint();
  const source = buildSource(services);
  const facts = buildFacts(source, options.factsCount);
  const buildSourceMs = Number(process.hrtime.bigint() - t) / 1e6;

  const heapBefore = heapAfterGc();
  t = process.hrtime.bigint();
  const snapshot = compileSnapshot(source, COMPILE_NOW);
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  const snapshotHeapMb = fullGc ? (heapAfterGc() - heapBefore) / 2 ** 20 : null;
  const [firstService, ...otherServices] = source.services;
  const changed = firstService
    ? {
        ...source,
        services: [
          {
            ...firstService,
            clusters: firstService.clusters.map((c, i) => (i === 0 ? { ...c, weight: c.weight + 1 } : c)),
          },
          ...otherServices,
        ],
      }
    : source;
  t = process.hrtime.bigint();
  compileSnapshot(changed, COMPILE_NOW, snapshot);
  const reloadOneChangeMs = Number(process.hrtime.bigint() - t) / 1e6;

  const random = seededRandom(1234);
  const outcomes = { route: 0, unknownHost: 0, noCluster: 0 };
  for (let i = 0; i < Math.min(facts.length, 100_000); i++) {
    const d = decide(snapshot, facts[i] as RequestFacts, random, 3);
    if (d.kind === 'route') outcomes.route += 1;
    else if (d.kind === 'unknown-host') outcomes.unknownHost += 1;
    else outcomes.noCluster += 1;
  }
  const timing = measure(snapshot, facts, random, options);
  let hotSet: DecisionResult['hotSet'] = null;
  if (options.hotSet && options.hotSet < services) {
    const hot = buildFacts({ ...source, services: source.services.slice(0, options.hotSet) }, options.factsCount, 13);
    hotSet = { services: options.hotSet, ...measure(snapshot, hot, random, options) };
  }
  return {
    services,
    clusters: services * CLUSTERS_PER_SERVICE,
    hosts: snapshot.byHost.size,
    regions: snapshot.regions.size,
    buildSourceMs,
    compileMs,
    reloadOneChangeMs,
    snapshotHeapMb,
    batchSize: options.batchSize,
    passes: options.passes,
    outcomes,
    ...timing,
    hotSet,
  };
}

export function measure(
  snapshot: Snapshot,
  facts: RequestFacts[],
  random: RandomSource,
  options: DecisionOptions,
): Timing {
  const n = facts.length;
  let cursor = 0;
  let sink = 0;
  const one = (s: Snapshot, f: RequestFacts): void => {
    const d = decide(s, f, random, 3);
    if (d.kind === 'route') sink += d.attempts.length;
    else sink += 1;
  };

  // Warm-up: let the JIT settle on the real mix.
  for (let i = 0; i < options.warmup; i++) {
    one(snapshot, facts[cursor] as RequestFacts);
    cursor = cursor + 1 === n ? 0 : cursor + 1;
  }

  // Batches: one hrtime pair per `batchSize` decisions, so timer cost is negligible per decision.
  const size = options.batchSize;
  const all = new Float64Array(options.batches * options.passes);
  const passP99Ns: number[] = [];
  let best: Float64Array | null = null;
  let totalNs = 0;
  for (let p = 0; p < options.passes; p++) {
    const perDecisionNs = new Float64Array(options.batches);
    for (let b = 0; b < options.batches; b++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < size; i++) {
        one(snapshot, facts[cursor] as RequestFacts);
        cursor = cursor + 1 === n ? 0 : cursor + 1;
      }
      const ns = Number(process.hrtime.bigint() - start);
      totalNs += ns;
      perDecisionNs[b] = ns / size;
      all[p * options.batches + b] = ns / size;
    }
    perDecisionNs.sort();
    passP99Ns.push(percentile(perDecisionNs, 99));
    if (!best || percentile(perDecisionNs, 99) < percentile(best, 99)) best = perDecisionNs;
  }
  all.sort();
  const chosen = best as Float64Array;

  // Per-call timing, for reference only (shows single-call tails such as GC pauses; inflated by the timer).
  const emptyNs = new Float64Array(20_000);
  for (let i = 0; i < emptyNs.length; i++) {
    const a = process.hrtime.bigint();
    emptyNs[i] = Number(process.hrtime.bigint() - a);
  }
  emptyNs.sort();
  const timerOverheadNs = percentile(emptyNs, 50);
  const perCallNs = new Float64Array(options.perCallSamples);
  for (let i = 0; i < perCallNs.length; i++) {
    const f = facts[cursor] as RequestFacts;
    cursor = cursor + 1 === n ? 0 : cursor + 1;
    const a = process.hrtime.bigint();
    one(snapshot, f);
    perCallNs[i] = Math.max(0, Number(process.hrtime.bigint() - a) - timerOverheadNs);
  }
  perCallNs.sort();

  if (sink === 42) console.log(''); // keep the work observable
  return {
    decisions: options.batches * options.passes * size,
    decisionsPerSec: (options.batches * options.passes * size) / (totalNs / 1e9),
    p50Us: percentile(all, 50) / 1e3,
    p99Us: percentile(all, 99) / 1e3,
    bestPassP50Us: percentile(chosen, 50) / 1e3,
    bestPassP99Us: percentile(chosen, 99) / 1e3,
    passP99Us: passP99Ns.map((v) => v / 1e3),
    maxBatchUs: (all[all.length - 1] ?? Number.NaN) / 1e3,
    perCall: {
      samples: perCallNs.length,
      timerOverheadNs,
      p50Us: percentile(perCallNs, 50) / 1e3,
      p99Us: percentile(perCallNs, 99) / 1e3,
      p999Us: percentile(perCallNs, 99.9) / 1e3,
    },
  };
}
