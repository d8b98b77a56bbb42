import { healthLabel } from '../routing/availability.js';
import { clusterShares } from '../routing/shares.js';
import type { Cluster, Snapshot } from '../routing/types.js';
import type { MirrorRecord, RequestObserver, RequestRecord } from './observer.js';

/**
 * Label sets one metric keeps, at most. Past the cap, new label sets are counted in one set whose every
 * label is OVERFLOW_LABEL, so totals stay right while memory and the scrape stay bounded.
 */
const MAX_LABEL_SETS = 2_000;
const OVERFLOW_LABEL = '_other';
/** A label with nothing to say: no service (unknown host), no route matched, no cluster answered. */
export const NONE_LABEL = '-';
/** Prometheus' default buckets (client_golang `DefBuckets`), in seconds: fixed, so series never change. */
const DURATION_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

type Nested<T> = Map<string, Nested<T> | T>;

/**
 * Cells by label values, kept in nested maps (one level per label) so that counting a request looks up
 * its cell without building a key string.
 */
class LabeledCells<T> {
  #root: Nested<T> = new Map();
  #size = 0;
  #overflow: T | null = null;
  /** The one cell of a metric without labels. */
  #single: T | null = null;

  constructor(
    readonly labels: readonly string[],
    private readonly make: () => T,
    private readonly cap = MAX_LABEL_SETS,
  ) {}

  get(values: readonly string[]): T {
    if (values.length === 0) return (this.#single ??= this.make());
    let map = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const next = map.get(values[i] as string) as Nested<T> | undefined;
      if (next === undefined) return this.#add(values);
      map = next;
    }
    return (map.get(values[last] as string) as T | undefined) ?? this.#add(values);
  }

  #add(values: readonly string[]): T {
    if (this.#size >= this.cap) return (this.#overflow ??= this.make());
    let map = this.#root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = map.get(values[i] as string) as Nested<T> | undefined;
      if (next === undefined) map.set(values[i] as string, (next = new Map()));
      map = next;
    }
    const cell = this.make();
    map.set(values[last] as string, cell);
    this.#size += 1;
    return cell;
  }

  /** Every cell with its label values, the overflow set last. */
  *entries(): Generator<[string[], T]> {
    const depth = this.labels.length;
    if (depth === 0) {
      if (this.#single) yield [[], this.#single];
      return;
    }
    function* walk(map: Nested<T>, prefix: string[]): Generator<[string[], T]> {
      for (const [value, child] of map) {
        if (prefix.length + 1 === depth) yield [[...prefix, value], child as T];
        else yield* walk(child as Nested<T>, [...prefix, value]);
      }
    }
    yield* walk(this.#root, []);
    if (this.#overflow) yield [this.labels.map(() => OVERFLOW_LABEL), this.#overflow];
  }
}

interface Count {
  value: number;
}

class Counter {
  readonly cells: LabeledCells<Count>;
  constructor(
    readonly name: string,
    readonly help: string,
    labels: readonly string[],
  ) {
    this.cells = new LabeledCells(labels, () => ({ value: 0 }));
    // A counter without labels is one series: shown at 0 before anything happened.
    if (labels.length === 0) this.cells.get([]);
  }

  inc(values: readonly string[], by = 1): void {
    this.cells.get(values).value += by;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'counter');
    for (const [values, cell] of this.cells.entries()) sample(out, this.name, this.cells.labels, values, cell.value);
  }
}

interface Buckets {
  counts: number[];
  sum: number;
  count: number;
}

class Histogram {
  readonly cells: LabeledCells<Buckets>;
  constructor(
    readonly name: string,
    readonly help: string,
    labels: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    this.cells = new LabeledCells(labels, () => ({ counts: bounds.map(() => 0), sum: 0, count: 0 }));
  }

  observe(values: readonly string[], v: number): void {
    const cell = this.cells.get(values);
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (v <= (bounds[i] as number)) {
        cell.counts[i] = (cell.counts[i] as number) + 1;
        break;
      }
    }
    cell.sum += v;
    cell.count += 1;
  }

  render(out: string[]): void {
    header(out, this.name, this.help, 'histogram');
    const labels = [...this.cells.labels, 'le'];
    for (const [values, cell] of this.cells.entries()) {
      let cumulative = 0;
      this.bounds.forEach((bound, i) => {
        cumulative += cell.counts[i] as number;
        sample(out, `${this.name}_bucket`, labels, [...values, String(bound)], cumulative);
      });
      sample(out, `${this.name}_bucket`, labels, [...values, '+Inf'], cell.count);
      sample(out, `${this.name}_sum`, this.cells.labels, values, cell.sum);
      sample(out, `${this.name}_count`, this.cells.labels, values, cell.count);
    }
  }
}

/** What a scrape reads besides the counters: the routing table in force and the outlier state here. */
export interface ScrapeState {
  snapshot: Snapshot | null;
  /** When the store last confirmed the snapshot (ms); null: never. */
  confirmedAt: number | null;
  now: number;
  ejectedHere: (c: Cluster) => boolean;
}

/**
 * The proxy's Prometheus metrics: counters bumped once per finished request (cells looked up in nested
 * maps, no string built), and gauges computed from the snapshot only when scraped.
 */
export class ProxyMetrics implements RequestObserver {
  readonly requests = new Counter(
    'waymark_requests_total',
    'Requests answered, by service, route, final cluster and status class (1xx-5xx).',
    ['service', 'route', 'cluster', 'code'],
  );
  readonly duration = new Histogram(
    'waymark_request_duration_seconds',
    "Time from the request's arrival to the response headers (Waymark's own answers included).",
    ['service', 'route'],
    DURATION_BUCKETS_S,
  );
  readonly attempts = new Counter(
    'waymark_upstream_attempts_total',
    'Tries at clusters, by outcome: response (below 500), 5xx, connect-failure, reset, timeout, deadline, client-gone, unsendable, overflow.',
    ['service', 'cluster', 'outcome'],
  );
  readonly retries = new Counter('waymark_retries_total', 'Retries taken from the retry budget.', ['service', 'route']);
  readonly budgetExhausted = new Counter(
    'waymark_retry_budget_exhausted_total',
    'Requests that wanted a retry the retry budget refused.',
    ['service', 'route'],
  );
  readonly ejections = new Counter(
    'waymark_outlier_ejections_total',
    'Clusters ejected by outlier detection in this process.',
    ['service', 'cluster'],
  );
  readonly mirrors = new Counter(
    'waymark_mirror_requests_total',
    'Mirrored copies sent, by outcome (ok: answered below 500).',
    ['service', 'route', 'outcome'],
  );
  readonly storeErrors = new Counter(
    'waymark_store_errors_total',
    'Store calls that failed (snapshot refreshes, report flushes).',
    [],
  );
  readonly spansDropped = new Counter(
    'waymark_trace_spans_dropped_total',
    'Spans dropped because the export queue was full or the collector refused them.',
    [],
  );

  requestFinished(r: RequestRecord): void {
    const service = r.service ?? NONE_LABEL;
    const route = r.route ?? NONE_LABEL;
    this.requests.inc([service, route, r.cluster ?? NONE_LABEL, statusClass(r.status)]);
    this.duration.observe([service, route], r.durationMs / 1000);
    for (const a of r.attempts) {
      const outcome =
        a.outcome === 'response' || a.outcome === 'retry-status'
          ? (a.status ?? 0) >= 500
            ? '5xx'
            : 'response'
          : a.outcome;
      this.attempts.inc([service, a.cluster.name, outcome]);
    }
    if (r.retries > 0) this.retries.inc([service, route], r.retries);
    if (r.budgetExhausted) this.budgetExhausted.inc([service, route]);
    for (const c of r.ejected) this.ejections.inc([service, c.name]);
  }

  mirrorFinished(m: MirrorRecord): void {
    this.mirrors.inc([m.service, m.route, m.ok ? 'ok' : 'failed']);
  }

  /** The text exposition format 0.0.4. */
  render(state: ScrapeState): string {
    const out: string[] = [];
    for (const metric of [
      this.requests,
      this.duration,
      this.attempts,
      this.retries,
      this.budgetExhausted,
      this.ejections,
      this.mirrors,
    ])
      metric.render(out);
    renderSnapshotGauges(out, state);
    this.storeErrors.render(out);
    this.spansDropped.render(out);
    return `${out.join('\n')}\n`;
  }
}

/** `2xx` for 200-299, and so on: five values, whatever the origins answer. */
function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : NONE_LABEL;
}

/**
 * Gauges from the snapshot, computed at scrape time: cluster health (one series per cluster, the
 * `state` label says which, value 1), traffic shares per client region (fractions of that region's
 * traffic, summing to 1 per service and client region when any cluster is routable), snapshot age.
 */
function renderSnapshotGauges(out: string[], state: ScrapeState): void {
  const { snapshot } = state;
  const health = new LabeledCells<Count>(['service', 'cluster', 'state'], () => ({ value: 0 }));
  const shares = new LabeledCells<Count>(['service', 'client_region', 'cluster'], () => ({ value: 0 }));
  if (snapshot) {
    for (const service of snapshot.byName.values()) {
      for (const c of service.clusters)
        health.get([service.name, c.name, healthLabel(c, { ejectedHere: state.ejectedHere })]).value = 1;
      for (const region of snapshot.regions.keys()) {
        const plan = service.byRegion.get(region);
        if (!plan) continue;
        for (const [c, percent] of clusterShares(plan.shares))
          shares.get([service.name, region, c.name]).value += percent / 100;
      }
    }
  }
  header(
    out,
    'waymark_cluster_health',
    'One series per cluster with value 1; state is healthy, unknown (never probed, routed as healthy), unhealthy, drained or ejected (by outlier detection here).',
    'gauge',
  );
  for (const [values, cell] of health.entries())
    sample(out, 'waymark_cluster_health', health.labels, values, cell.value);
  header(
    out,
    'waymark_traffic_share',
    "Fraction (0-1) of a client region's traffic each cluster takes under the snapshot in force.",
    'gauge',
  );
  for (const [values, cell] of shares.entries())
    sample(out, 'waymark_traffic_share', shares.labels, values, round(cell.value));
  header(
    out,
    'waymark_snapshot_age_seconds',
    'Seconds since the store last confirmed the routing table in force (grows while the store is unreachable).',
    'gauge',
  );
  if (snapshot && state.confirmedAt !== null)
    sample(out, 'waymark_snapshot_age_seconds', [], [], Math.max(0, (state.now - state.confirmedAt) / 1000));
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

function header(out: string[], name: string, help: string, type: string): void {
  out.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
}

function sample(out: string[], name: string, labels: readonly string[], values: readonly string[], v: number): void {
  const pairs = labels.map((l, i) => `${l}="${escapeLabel(values[i] as string)}"`);
  out.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(v)}`);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}
