/** @jsxImportSource hono/jsx */
import { addBuckets, emptyBuckets, quantileMs } from '../observe/latency.js';
import type { EdgeBucket } from '../store/health.js';

/** One cluster's last minutes as the edges reported them: a value per bucket, null where nothing was seen. */
export interface ClusterSeries {
  /** Requests per second. */
  rate: number[];
  /** Failures / requests, 0-1; null for a bucket without requests. */
  errorRate: (number | null)[];
  /** p95 latency (ms, the upper bound of its latency bucket); null for a bucket without requests. */
  latencyMs: (number | null)[];
}

interface Cell {
  requests: number;
  failures: number;
  buckets: number[];
}

/** Edge buckets spread over `count` buckets of `bucketMs` ending with the one holding `now`, per cluster. */
export function clusterSeries(
  buckets: readonly EdgeBucket[],
  clusters: readonly string[],
  now: number,
  bucketMs: number,
  count: number,
): Map<string, ClusterSeries> {
  const first = Math.floor(now / bucketMs) * bucketMs - (count - 1) * bucketMs;
  const series = new Map<string, ClusterSeries>();
  for (const cluster of clusters)
    series.set(cluster, {
      rate: new Array(count).fill(0),
      errorRate: new Array(count).fill(null),
      latencyMs: new Array(count).fill(null),
    });
  const sums = new Map<string, Cell[]>();
  for (const b of buckets) {
    const i = Math.floor((b.at - first) / bucketMs);
    if (i < 0 || i >= count || !series.has(b.cluster)) continue;
    const row =
      sums.get(b.cluster) ??
      Array.from({ length: count }, () => ({ requests: 0, failures: 0, buckets: emptyBuckets() }));
    sums.set(b.cluster, row);
    const cell = row[i] as Cell;
    cell.requests += b.requests;
    cell.failures += b.failures;
    addBuckets(cell.buckets, b.latencyBuckets);
  }
  for (const [cluster, row] of sums) {
    const s = series.get(cluster) as ClusterSeries;
    row.forEach((cell, i) => {
      s.rate[i] = cell.requests / (bucketMs / 1000);
      s.errorRate[i] = cell.requests ? cell.failures / cell.requests : null;
      s.latencyMs[i] = quantileMs(cell.buckets, 0.95);
    });
  }
  return series;
}

const WIDTH = 120;
const HEIGHT = 28;

/** A sparkline: the values as a line (gaps where null) with the latest value beside it. */
export function Spark(props: { values: readonly (number | null)[]; label: string; format: (v: number) => string }) {
  const { values } = props;
  const max = Math.max(0, ...values.map((v) => v ?? 0));
  const step = values.length > 1 ? WIDTH / (values.length - 1) : WIDTH;
  const y = (v: number) => (max === 0 ? HEIGHT - 1 : HEIGHT - 1 - (v / max) * (HEIGHT - 2));
  const segments: string[] = [];
  let current: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (current.length) segments.push(current.join(' '));
      current = [];
    } else current.push(`${(i * step).toFixed(1)},${y(v).toFixed(1)}`);
  });
  if (current.length) segments.push(current.join(' '));
  const last = [...values].reverse().find((v) => v !== null);
  return (
    <span class="spark">
      <svg width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={props.label}>
        <line x1="0" y1={HEIGHT - 0.5} x2={WIDTH} y2={HEIGHT - 0.5} class="axis" />
        {segments.map((points) =>
          points.includes(' ') ? (
            <polyline points={points} fill="none" />
          ) : (
            <circle cx={points.split(',')[0]} cy={points.split(',')[1]} r="1.5" />
          ),
        )}
      </svg>
      <span class="v">{last === undefined || last === null ? '–' : props.format(last)}</span>
    </span>
  );
}
