import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { decide, normalizeHost, resolveClientRegion } from '../../src/routing/decide.js';
import { pickAttempts } from '../../src/routing/shares.js';
import { seededRandom } from '../../src/routing/random.js';
import type { RequestFacts } from '../../src/routing/types.js';
import { AT, cluster, service } from './fixtures.js';

const snapshot = compileSnapshot(
  {
    version: 1,
    services: [
      service('shop', [
        cluster('ue1', 'us-east1'),
        cluster('ue2', 'us-east1', { weight: 300 }),
        cluster('ew1', 'eu-west1'),
        cluster('as1', 'ap-southeast1'),
      ]),
      service('empty', []),
    ],
    overrides: [],
  },
  0,
);

/** Attempt order with the clusters of one region (drawn by weight) sorted, so the table reads plainly. */
const names = (facts: RequestFacts, seed = 1) => {
  const d = decide(snapshot, facts, seededRandom(seed), 4);
  if (d.kind !== 'route') return d.kind;
  const [first, ...rest] = d.attempts;
  const groups: string[][] = [];
  for (const c of rest) {
    const last = groups.at(-1);
    if (last && rest.find((r) => r.name === last[0])?.region === c.region) last.push(c.name);
    else groups.push([c.name]);
  }
  return [first!.name, ...groups.flatMap((g) => g.sort())];
};

describe('decide', () => {
  it.each<[string, RequestFacts, string[] | string]>([
    [
      'client region picks its own region first',
      { host: 'shop.example.com', clientRegion: 'eu-west1' },
      ['ew1', 'ue1', 'ue2', 'as1'],
    ],
    [
      'Dublin coordinates resolve to eu-west1',
      { host: 'shop.example.com', clientLocation: { lat: 53.3, lon: -6.3 } },
      ['ew1', 'ue1', 'ue2', 'as1'],
    ],
    [
      'Tokyo coordinates resolve to ap-southeast1',
      { host: 'shop.example.com', clientLocation: { lat: 35.7, lon: 139.7 } },
      ['as1', 'ew1', 'ue1', 'ue2'],
    ],
    [
      'a named region wins over a location',
      { host: 'shop.example.com', clientRegion: 'ap-southeast1', clientLocation: { lat: 53.3, lon: -6.3 } },
      ['as1', 'ew1', 'ue1', 'ue2'],
    ],
    [
      'host matching ignores case and port',
      { host: 'SHOP.example.com:8443', clientRegion: 'ap-southeast1' },
      ['as1', 'ew1', 'ue1', 'ue2'],
    ],
    ['unknown host', { host: 'nope.example.com', clientRegion: 'eu-west1' }, 'unknown-host'],
    ['service without clusters', { host: 'empty.example.com', clientRegion: 'eu-west1' }, 'no-cluster'],
  ])('%s', (_name, facts, expected) => {
    expect(names(facts)).toEqual(expected);
  });

  it('an unknown region with no location falls back to every cluster, weighted', () => {
    const d = decide(snapshot, { host: 'shop.example.com', clientRegion: 'mars-1' }, seededRandom(3), 3);
    expect(d.kind === 'route' && d.clientRegion).toBe(null);
    expect(d.kind === 'route' && d.plan.list.reasons).toEqual(['no-locality']);
  });

  it('is pure: the same random sequence gives the same decision', () => {
    const facts = { host: 'shop.example.com', clientRegion: 'us-east1' };
    for (let seed = 0; seed < 20; seed++) expect(names(facts, seed)).toEqual(names(facts, seed));
  });

  it('never tries more clusters than allowed, nor one twice', () => {
    const d = decide(snapshot, { host: 'shop.example.com', clientRegion: 'us-east1' }, seededRandom(9), 6);
    const attempts = d.kind === 'route' ? d.attempts.map((c) => c.name) : [];
    expect(attempts).toHaveLength(4);
    expect(new Set(attempts).size).toBe(4);
    const one = decide(snapshot, { host: 'shop.example.com', clientRegion: 'us-east1' }, seededRandom(9), 1);
    expect(one.kind === 'route' && one.attempts).toHaveLength(1);
  });
});

describe('weighted choice inside a level', () => {
  const shares = snapshot.byName.get('shop')!.byRegion.get('us-east1')!.shares;

  it('follows weights (ue2 has 3x the weight of ue1)', () => {
    const random = seededRandom(2024);
    let ue2 = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) if (pickAttempts(shares, random, 1)[0]?.name === 'ue2') ue2 += 1;
    expect(ue2 / n).toBeGreaterThan(0.73);
    expect(ue2 / n).toBeLessThan(0.77);
  });

  it('never picks a weight-0 cluster first, but retries may go there', () => {
    const snap = compileSnapshot(
      {
        version: 1,
        services: [
          service('s', [cluster('a', 'us-east1', { weight: 0 }), cluster('b', 'us-east1'), cluster('c', 'eu-west1')]),
        ],
        overrides: [],
      },
      0,
    );
    const table = snap.byName.get('s')!.byRegion.get('us-east1')!.shares;
    for (let seed = 0; seed < 50; seed++)
      expect(pickAttempts(table, seededRandom(seed), 3).map((c) => c.name)).toEqual(['b', 'a', 'c']);
  });
});

describe('resolveClientRegion', () => {
  it.each([
    [{ lat: AT['us-west1'].latitude + 1, lon: AT['us-west1'].longitude }, 'us-east1'],
    [{ lat: 48.85, lon: 2.35 }, 'eu-west1'],
    [{ lat: -33.9, lon: 151.2 }, 'ap-southeast1'],
  ])('location %o -> %s (only regions routing knows)', (clientLocation, expected) => {
    expect(resolveClientRegion(snapshot, { host: 'x', clientLocation })).toBe(expected);
  });

  it('no region and no location -> null', () => {
    expect(resolveClientRegion(snapshot, { host: 'x' })).toBe(null);
  });
});

describe('normalizeHost', () => {
  it.each([
    ['Shop.Example.com', 'shop.example.com'],
    ['shop.example.com:8080', 'shop.example.com'],
    ['[::1]:8787', '[::1]'],
    ['127.0.0.1', '127.0.0.1'],
  ])('%s -> %s', (input, expected) => expect(normalizeHost(input)).toBe(expected));
});
