import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterSeries } from '../../src/dashboard/charts.js';
import { ReportBuffer } from '../../src/observe/edge-reports.js';
import { insertEdgeReports, loadEdgeBuckets } from '../../src/store/health.js';
import { openTempStore, type TempStore } from './temp-store.js';

const MINUTE = 60_000;
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % MINUTE);

let store: TempStore;
beforeEach(async () => {
  store = await openTempStore();
});
afterEach(async () => {
  store.dispose();
});

describe('edge buckets for the dashboard', () => {
  it("sums two instances' reports per cluster and minute, latency buckets included: the p95 comes from them", async () => {
    const report = (latencies: number[]) => {
      const buffer = new ReportBuffer(() => T0, 1_000);
      for (const ms of latencies) buffer.record('shop', 'ew1', 'eu-west1', true, ms);
      return buffer.take();
    };
    // 95 fast answers and 5 slow ones, from two instances in the same minute: p95 is the fast bucket's bound;
    // 10 more slow ones move it to the slow bucket.
    await insertEdgeReports(store.db, 'a', T0 + 1_000, report(Array(50).fill(8)));
    await insertEdgeReports(store.db, 'b', T0 + 2_000, report([...Array(45).fill(8), ...Array(5).fill(900)]));
    await insertEdgeReports(store.db, 'a', T0 + MINUTE + 1_000, report([...Array(90).fill(8), ...Array(10).fill(900)]));
    const buckets = await loadEdgeBuckets(store.db, 'shop', T0 - MINUTE, MINUTE);
    expect(buckets.map((b) => [b.at - T0, b.requests])).toEqual([
      [0, 100],
      [MINUTE, 100],
    ]);
    const series = clusterSeries(buckets, ['ew1'], T0 + MINUTE, MINUTE, 2).get('ew1');
    expect(series?.latencyMs).toEqual([10, 1000]);
    expect(series?.rate).toEqual([100 / 60, 100 / 60]);
  });
});
