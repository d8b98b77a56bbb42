import { describe, expect, it } from 'vitest';
import { compileSnapshot } from '../../src/routing/compile.js';
import { leanServices } from '../../src/routing/intern.js';
import { DEFAULT_POLICY } from '../../src/routing/policy.js';
import { cluster, service } from './fixtures.js';

describe('leanServices', () => {
  // Each parsed the way an archive or a store read makes them: equal values, distinct objects.
  const parsed = () =>
    JSON.parse(
      JSON.stringify([
        service('a', [cluster('a1', 'us-east1', { labels: { version: 'v1' }, zone: null, originHost: null })], {
          policy: DEFAULT_POLICY,
          subsets: {},
          routes: [],
        }),
        service('b', [cluster('b1', 'us-east1', { labels: { version: 'v1' }, health: 'healthy' })], {
          policy: DEFAULT_POLICY,
          subsets: {},
          routes: [],
        }),
      ]),
    );

  it('shares equal policies, label sets, subsets, failover rules and empty route lists between services', () => {
    const [a, b] = leanServices(parsed());
    expect(a?.policy).toBe(b?.policy);
    expect(a?.subsets).toBe(b?.subsets);
    expect(a?.failover).toBe(b?.failover);
    expect(a?.routes).toBe(b?.routes);
    expect(a?.clusters[0]?.labels).toBe(b?.clusters[0]?.labels);
  });

  it('keeps only what routing reads: no null zone or origin host, health defaulting to unknown', () => {
    const [a, b] = leanServices(parsed());
    expect(a?.clusters[0]).toEqual({
      name: 'a1',
      region: 'us-east1',
      origin: 'https://a1.internal',
      latitude: 33.2,
      longitude: -80,
      weight: 100,
      labels: { version: 'v1' },
      health: 'unknown',
    });
    expect(b?.clusters[0]?.health).toBe('healthy');
  });

  it('routes a lean source exactly as the source it came from', () => {
    const services = parsed();
    const full = compileSnapshot({ version: 1, services, overrides: [] }, 0);
    const lean = compileSnapshot({ version: 1, services: leanServices(services), overrides: [] }, 0);
    for (const name of ['a', 'b'])
      for (const region of ['us-east1', 'eu-west1'])
        expect(lean.byName.get(name)?.byRegion.get(region)?.shares).toEqual(
          full.byName.get(name)?.byRegion.get(region)?.shares,
        );
  });
});
