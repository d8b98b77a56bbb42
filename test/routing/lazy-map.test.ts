import { describe, expect, it } from 'vitest';
import { LazyMap } from '../../src/routing/lazy-map.js';

describe('LazyMap', () => {
  const counting = () => {
    const calls: string[] = [];
    const map = new LazyMap(new Set(['a', 'b', 'c']), (key: string) => {
      calls.push(key);
      return { key };
    });
    return { map, calls };
  };

  it('makes each value once, the first time its key is asked for, and keeps it', () => {
    const { map, calls } = counting();
    expect(map.madeCount).toBe(0);
    const a = map.get('a');
    expect(map.get('a')).toBe(a);
    const b = map.get('b');
    const c = map.get('c');
    expect([map.get('a'), map.get('b'), map.get('c')]).toEqual([a, b, c]);
    expect(map.get('a')).toBe(a);
    expect(map.get('c')).toBe(c);
    expect(calls).toEqual(['a', 'b', 'c']);
    expect(map.madeCount).toBe(3);
  });

  it('answers undefined for a key it does not have, and makes nothing', () => {
    const { map, calls } = counting();
    expect(map.get('z')).toBeUndefined();
    expect(map.has('z')).toBe(false);
    expect(calls).toEqual([]);
    expect(map.madeCount).toBe(0);
  });

  it('made() holds every value made so far, the first one included, as a map of its own', () => {
    const { map } = counting();
    expect(map.made().size).toBe(0);
    const b = map.get('b');
    expect([...map.made()]).toEqual([['b', b]]);
    const a = map.get('a');
    const made = map.made();
    expect(new Map(made)).toEqual(
      new Map([
        ['a', a],
        ['b', b],
      ]),
    );
    map.get('c');
    expect(made.size).toBe(2);
  });

  it('iterating makes every value, in the order of its keys', () => {
    const { map, calls } = counting();
    map.get('b');
    expect([...map.keys()]).toEqual(['a', 'b', 'c']);
    expect([...map.values()].map((v) => v.key)).toEqual(['a', 'b', 'c']);
    expect(calls).toEqual(['b', 'a', 'c']);
    expect(map.size).toBe(3);
  });
});
