import { describe, expect, it } from 'vitest';
import { ReportBuffer, UNKNOWN_REGION, type EdgeReport } from '../../src/observe/edge-reports.js';

const T0 = 1_700_000_000_000;

function clock(start = T0) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** The rows in key order, latency buckets aside (their own test below). */
const byKey = (rows: EdgeReport[]) =>
  noBuckets(rows).sort((a, b) =>
    `${a.service}/${a.cluster}/${a.clientRegion}`.localeCompare(`${b.service}/${b.cluster}/${b.clientRegion}`),
  );
const noBuckets = (rows: EdgeReport[]) => rows.map(({ latencyBuckets: _, ...r }) => r);

describe('ReportBuffer: aggregation', () => {
  it('aggregates per (service, cluster, client region)', () => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000);
    const outcomes: [string, string, string | null, boolean, number][] = [
      ['shop', 'ue1', 'us-east1', true, 10],
      ['shop', 'ue1', 'us-east1', false, 30],
      ['shop', 'ue1', 'us-east1', true, 20],
      ['shop', 'ue1', 'eu-west1', false, 100],
      ['shop', 'ew1', 'eu-west1', true, 5],
      ['api', 'ue1', 'us-east1', true, 7],
      ['shop', 'ue1', null, false, 50],
      ['shop', 'ue1', null, true, 60],
    ];
    for (const o of outcomes) buffer.record(...o);
    expect(buffer.pending).toBe(outcomes.length);
    expect(byKey(buffer.take())).toEqual([
      { service: 'api', cluster: 'ue1', clientRegion: 'us-east1', requests: 1, failures: 0, latencyMsSum: 7 },
      { service: 'shop', cluster: 'ew1', clientRegion: 'eu-west1', requests: 1, failures: 0, latencyMsSum: 5 },
      { service: 'shop', cluster: 'ue1', clientRegion: '-', requests: 2, failures: 1, latencyMsSum: 110 },
      { service: 'shop', cluster: 'ue1', clientRegion: 'eu-west1', requests: 1, failures: 1, latencyMsSum: 100 },
      { service: 'shop', cluster: 'ue1', clientRegion: 'us-east1', requests: 3, failures: 1, latencyMsSum: 60 },
    ]);
  });

  it("records an unknown client region as '-'", () => {
    expect(UNKNOWN_REGION).toBe('-');
    const buffer = new ReportBuffer(clock().now, 1_000);
    buffer.record('shop', 'ue1', null, true, 1);
    expect(noBuckets(buffer.take())).toEqual([
      { service: 'shop', cluster: 'ue1', clientRegion: '-', requests: 1, failures: 0, latencyMsSum: 1 },
    ]);
  });

  it('keys do not collide when names share a prefix', () => {
    const buffer = new ReportBuffer(clock().now, 1_000);
    buffer.record('a', 'b-c', 'r', true, 1);
    buffer.record('a-b', 'c', 'r', true, 1);
    expect(buffer.take()).toHaveLength(2);
  });

  it('never holds more than maxRows rows: outcomes for new rows are dropped, existing rows still count', () => {
    const buffer = new ReportBuffer(clock().now, 1_000, 10_000, 2);
    buffer.record('shop', 'a', 'r', true, 1);
    buffer.record('shop', 'b', 'r', true, 1);
    buffer.record('shop', 'c', 'r', true, 1);
    buffer.record('shop', 'a', 'r', false, 1);
    expect(buffer.pending).toBe(3);
    const rows = buffer.take();
    expect(rows.map((r) => `${r.cluster}:${r.requests}`)).toEqual(['a:2', 'b:1']);
  });
});

describe('ReportBuffer: due', () => {
  it.each<[string, boolean, number, number]>([
    // due, outcomes recorded, ms elapsed since the interval started (interval 10 s, size limit 5)
    ['nothing pending, interval passed', false, 0, 60_000],
    ['pending, interval not passed', false, 3, 9_999],
    ['pending, interval just passed', true, 3, 10_000],
    ['pending, long after', true, 1, 60_000],
    ['at the size limit, no time passed', true, 5, 0],
    ['one under the size limit', false, 4, 0],
  ])('%s -> due: %s', (_name, due, outcomes, elapsed) => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000, 5);
    for (let i = 0; i < outcomes; i++) buffer.record('shop', 'ue1', 'us-east1', true, 1);
    c.advance(elapsed);
    expect(buffer.due()).toBe(due);
  });

  it('the interval starts at construction, not at the first outcome', () => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000);
    c.advance(10_000);
    buffer.record('shop', 'ue1', 'us-east1', true, 1);
    expect(buffer.due()).toBe(true);
  });
});

describe('ReportBuffer: take', () => {
  it('empties the buffer and restarts the interval', () => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000);
    buffer.record('shop', 'ue1', 'us-east1', true, 1);
    c.advance(10_000);
    expect(buffer.due()).toBe(true);
    expect(buffer.take()).toHaveLength(1);
    expect(buffer.pending).toBe(0);
    expect(buffer.due()).toBe(false);
    expect(buffer.take()).toEqual([]);

    buffer.record('shop', 'ue1', 'us-east1', true, 1);
    c.advance(9_999);
    expect(buffer.due()).toBe(false);
    c.advance(1);
    expect(buffer.due()).toBe(true);
  });

  it('rows taken are not changed by later outcomes', () => {
    const buffer = new ReportBuffer(clock().now, 10_000);
    buffer.record('shop', 'ue1', 'us-east1', true, 1);
    const [row] = noBuckets(buffer.take());
    buffer.record('shop', 'ue1', 'us-east1', false, 9);
    expect(row).toEqual({
      service: 'shop',
      cluster: 'ue1',
      clientRegion: 'us-east1',
      requests: 1,
      failures: 0,
      latencyMsSum: 1,
    });
  });

  it('the size limit counts again from zero after a take', () => {
    const buffer = new ReportBuffer(clock().now, 10_000, 3);
    for (let i = 0; i < 3; i++) buffer.record('shop', 'ue1', 'us-east1', true, 1);
    expect(buffer.due()).toBe(true);
    buffer.take();
    for (let i = 0; i < 2; i++) buffer.record('shop', 'ue1', 'us-east1', true, 1);
    expect(buffer.due()).toBe(false);
  });
});

describe('ReportBuffer: latency buckets', () => {
  it('counts each outcome in its latency bucket, and restore adds the buckets back', () => {
    const buffer = new ReportBuffer(clock().now, 10_000);
    for (const ms of [3, 4, 40, 400]) buffer.record('shop', 'ue1', 'us-east1', true, ms);
    const [row] = buffer.take();
    // Buckets: <=1, <=2, <=5, <=10, <=20, <=35, <=50, ..., <=500 (12th), ...
    expect(row?.latencyBuckets?.[2]).toBe(2);
    expect(row?.latencyBuckets?.[6]).toBe(1);
    expect(row?.latencyBuckets?.[12]).toBe(1);
    expect(row?.latencyBuckets?.reduce((a, b) => a + b, 0)).toBe(4);
    buffer.record('shop', 'ue1', 'us-east1', true, 3);
    buffer.restore([row as EdgeReport]);
    expect(buffer.take()[0]?.latencyBuckets?.[2]).toBe(3);
  });
});

describe('ReportBuffer: restore', () => {
  it('merges failed rows back into what came in meanwhile, and counts them as pending', () => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000);
    buffer.record('shop', 'ue1', 'us-east1', false, 10);
    buffer.record('shop', 'ew1', 'eu-west1', true, 20);
    const failed = buffer.take();

    buffer.record('shop', 'ue1', 'us-east1', true, 5);
    buffer.restore(failed);
    expect(buffer.pending).toBe(3);
    expect(byKey(buffer.take())).toEqual([
      { service: 'shop', cluster: 'ew1', clientRegion: 'eu-west1', requests: 1, failures: 0, latencyMsSum: 20 },
      { service: 'shop', cluster: 'ue1', clientRegion: 'us-east1', requests: 2, failures: 1, latencyMsSum: 15 },
    ]);
  });

  it('restored outcomes make the buffer due once the interval passes', () => {
    const c = clock();
    const buffer = new ReportBuffer(c.now, 10_000);
    buffer.record('shop', 'ue1', 'us-east1', true, 1);
    const failed = buffer.take();
    buffer.restore(failed);
    expect(buffer.due()).toBe(false);
    c.advance(10_000);
    expect(buffer.due()).toBe(true);
  });

  it('restored rows count towards the size limit', () => {
    const buffer = new ReportBuffer(clock().now, 10_000, 10);
    buffer.restore([
      { service: 'shop', cluster: 'ue1', clientRegion: 'us-east1', requests: 10, failures: 2, latencyMsSum: 100 },
    ]);
    expect(buffer.pending).toBe(10);
    expect(buffer.due()).toBe(true);
  });

  it('does not keep a reference to the rows it was given', () => {
    const buffer = new ReportBuffer(clock().now, 10_000);
    const row: EdgeReport = {
      service: 'shop',
      cluster: 'ue1',
      clientRegion: 'us-east1',
      requests: 1,
      failures: 0,
      latencyMsSum: 1,
    };
    buffer.restore([row]);
    buffer.record('shop', 'ue1', 'us-east1', false, 2);
    expect(row.requests).toBe(1);
  });

  it('respects maxRows: rows beyond the bound are dropped, merges into existing rows still happen', () => {
    const buffer = new ReportBuffer(clock().now, 10_000, 10_000, 2);
    buffer.record('shop', 'a', 'r', true, 1);
    const row = (cluster: string, requests: number): EdgeReport => ({
      service: 'shop',
      cluster,
      clientRegion: 'r',
      requests,
      failures: 0,
      latencyMsSum: requests,
    });
    buffer.restore([row('b', 2), row('c', 4), row('a', 8)]);
    expect(buffer.pending).toBe(1 + 2 + 8);
    expect(byKey(buffer.take()).map((r) => `${r.cluster}:${r.requests}`)).toEqual(['a:9', 'b:2']);
  });
});
