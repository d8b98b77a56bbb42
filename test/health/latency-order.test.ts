import { describe, expect, it } from 'vitest';
import {
  LATENCY_HYSTERESIS,
  LATENCY_MIN_SAMPLES,
  latencyOrder,
  type RegionLatency,
} from '../../src/health/latency-order.js';

const m = (region: string, meanMs: number, samples = 50): RegionLatency => ({ region, meanMs, samples });
const regions = (order: RegionLatency[]) => order.map((o) => o.region);

describe('latencyOrder: defaults', () => {
  it('needs 20 samples and a 20% margin by default', () => {
    expect(LATENCY_MIN_SAMPLES).toBe(20);
    expect(LATENCY_HYSTERESIS).toBe(0.2);
  });
});

describe('latencyOrder: ordering by mean', () => {
  it('with no current order, regions are ordered by mean latency', () => {
    expect(regions(latencyOrder([], [m('a', 120), m('b', 40), m('c', 80)]))).toEqual(['b', 'c', 'a']);
  });

  it('returns each region with the mean and samples that placed it', () => {
    expect(latencyOrder([], [m('a', 120, 25), m('b', 40, 300)])).toEqual([m('b', 40, 300), m('a', 120, 25)]);
  });

  it('an order that already matches the means is kept', () => {
    expect(regions(latencyOrder(['b', 'c', 'a'], [m('a', 120), m('b', 40), m('c', 80)]))).toEqual(['b', 'c', 'a']);
  });

  it('a reversed order is fully re-sorted when every gap is beyond the margin', () => {
    expect(regions(latencyOrder(['a', 'b', 'c', 'd'], [m('a', 400), m('b', 200), m('c', 100), m('d', 50)]))).toEqual([
      'd',
      'c',
      'b',
      'a',
    ]);
  });

  it('nothing measured: empty order', () => {
    expect(latencyOrder(['a', 'b'], [])).toEqual([]);
    expect(latencyOrder([], [])).toEqual([]);
  });

  it('does not mutate its inputs', () => {
    const current = ['a', 'b'];
    const measured = [m('a', 100), m('b', 10)];
    latencyOrder(current, measured);
    expect(current).toEqual(['a', 'b']);
    expect(measured).toEqual([m('a', 100), m('b', 10)]);
  });
});

describe('latencyOrder: min samples', () => {
  const rows: [string, RegionLatency[], string[]][] = [
    ['a region one sample short of 20 is left out (to distance)', [m('a', 100, 50), m('b', 10, 19)], ['a']],
    ['exactly 20 samples qualifies', [m('a', 100, 50), m('b', 10, 20)], ['b', 'a']],
    ['no region qualifies: empty', [m('a', 100, 5), m('b', 10, 19)], []],
    ['zero samples is left out', [m('a', 100, 0), m('b', 10, 30)], ['b']],
  ];
  it.each(rows)('%s', (_name, measured, expected) => {
    expect(regions(latencyOrder([], measured))).toEqual(expected);
  });

  it('a custom minimum applies', () => {
    expect(regions(latencyOrder([], [m('a', 100, 5), m('b', 10, 5)], 5))).toEqual(['b', 'a']);
    expect(regions(latencyOrder([], [m('a', 100, 5), m('b', 10, 4)], 5))).toEqual(['a']);
  });

  it('a region in the current order that falls under the minimum drops out; the rest keep their order', () => {
    expect(regions(latencyOrder(['a', 'b', 'c'], [m('a', 50), m('b', 60, 3), m('c', 55)]))).toEqual(['a', 'c']);
  });
});

describe('latencyOrder: hysteresis (20%)', () => {
  const rows: [string, string[], RegionLatency[], string[]][] = [
    ['a 10% faster region does not pass the one ahead', ['a', 'b'], [m('a', 100), m('b', 90)], ['a', 'b']],
    ['a 19% faster region does not pass', ['a', 'b'], [m('a', 100), m('b', 81)], ['a', 'b']],
    [
      'exactly 20% faster does not pass (it must be faster by more than the margin)',
      ['a', 'b'],
      [m('a', 100), m('b', 80)],
      ['a', 'b'],
    ],
    ['a 21% faster region passes', ['a', 'b'], [m('a', 100), m('b', 79)], ['b', 'a']],
    ['a 30% faster region passes', ['a', 'b'], [m('a', 100), m('b', 70)], ['b', 'a']],
    [
      'a slower region ahead stays ahead while within the margin (no flapping back)',
      ['b', 'a'],
      [m('a', 90), m('b', 100)],
      ['b', 'a'],
    ],
    [
      'a 30% faster region passes two that are each slower by far',
      ['a', 'b', 'c'],
      [m('a', 200), m('b', 180), m('c', 70)],
      ['c', 'a', 'b'],
    ],
  ];
  it.each(rows)('%s', (_name, current, measured, expected) => {
    expect(regions(latencyOrder(current, measured))).toEqual(expected);
  });

  it('a custom margin applies', () => {
    expect(regions(latencyOrder(['a', 'b'], [m('a', 100), m('b', 90)], 20, 0.05))).toEqual(['b', 'a']);
    expect(regions(latencyOrder(['a', 'b'], [m('a', 100), m('b', 90)], 20, 0.2))).toEqual(['a', 'b']);
  });

  it('repeated runs on the same numbers are stable (no oscillation)', () => {
    const measured = [m('a', 100), m('b', 90), m('c', 85)];
    let order = ['a', 'b', 'c'];
    for (let i = 0; i < 5; i++) order = regions(latencyOrder(order, measured));
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('numbers drifting by less than the margin never reorder; a big change does', () => {
    let order = regions(latencyOrder([], [m('a', 50), m('b', 100)]));
    expect(order).toEqual(['a', 'b']);
    for (const [a, b] of [
      [60, 55],
      [70, 60],
      [80, 70],
    ] as const) {
      order = regions(latencyOrder(order, [m('a', a), m('b', b)]));
      expect(order, `a ${a} b ${b}`).toEqual(['a', 'b']);
    }
    order = regions(latencyOrder(order, [m('a', 100), m('b', 70)]));
    expect(order).toEqual(['b', 'a']);
  });
});

describe('latencyOrder: regions appearing and dropping out', () => {
  it('a region no longer measured is dropped from the order', () => {
    expect(regions(latencyOrder(['a', 'b', 'c'], [m('a', 50), m('c', 60)]))).toEqual(['a', 'c']);
  });

  it('every current region gone: only the newly measured ones remain', () => {
    expect(regions(latencyOrder(['a', 'b'], [m('c', 60), m('d', 30)]))).toEqual(['d', 'c']);
  });

  it('a new region joins behind the current ones, and passes them only when faster by more than the margin', () => {
    expect(regions(latencyOrder(['a'], [m('a', 100), m('b', 90)]))).toEqual(['a', 'b']);
    expect(regions(latencyOrder(['a'], [m('a', 100), m('b', 50)]))).toEqual(['b', 'a']);
  });

  it('new regions are sorted among themselves by mean before joining', () => {
    expect(regions(latencyOrder(['a'], [m('a', 10), m('c', 300), m('b', 200)]))).toEqual(['a', 'b', 'c']);
  });

  it('a region that comes back after dropping out is placed by its numbers again', () => {
    let order = regions(latencyOrder(['a', 'b'], [m('a', 50), m('b', 60, 2)]));
    expect(order).toEqual(['a']);
    order = regions(latencyOrder(order, [m('a', 50), m('b', 20)]));
    expect(order).toEqual(['b', 'a']);
  });
});
