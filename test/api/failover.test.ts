import { describe, expect, it } from 'vitest';
import { expectProblem } from './api-support.js';
import {
  entryFor,
  matrix,
  ONCALL_TOKEN,
  overrideState,
  READ_TOKEN,
  servedBy,
  shopPerTest,
} from './override-support.js';

const CLIENT_REGIONS = ['ap-southeast1', 'eu-west1', 'us-east1'];

const shop = shopPerTest();

function sum(entries: { share: number }[]): number {
  return Math.round(entries.reduce((a, e) => a + e.share, 0) * 10) / 10;
}

describe('failover: happy', () => {
  it('lists every client region known to routing, each with all three clusters and shares summing to 100', async () => {
    const m = await matrix(shop.server);
    expect(Object.keys(m.regions).sort()).toEqual(CLIENT_REGIONS);
    for (const region of CLIENT_REGIONS) {
      const entries = m.regions[region] ?? [];
      expect(entries.map((e) => e.cluster).sort(), region).toEqual(['as1', 'ew1', 'ue1']);
      expect(sum(entries), region).toBe(100);
      expect(
        entries.map((e) => e.level),
        region,
      ).toEqual([...entries.map((e) => e.level)].sort((a, b) => a - b));
    }
    expect(m.whatIf).toBeNull();
    expect(Object.keys(m.summary).sort()).toEqual(CLIENT_REGIONS);
  });

  it('for eu-west1 the first entry is ew1 at level 0, same-region, taking everything', async () => {
    const m = await matrix(shop.server);
    expect(m.regions['eu-west1']?.[0]).toMatchObject({
      cluster: 'ew1',
      region: 'eu-west1',
      level: 0,
      levelReason: 'same-region',
      share: 100,
    });
    expect(m.regions['eu-west1']?.slice(1).map((e) => e.levelReason)).toEqual(['distance', 'distance']);
    // Nearest first: Belgium is closer to South Carolina than to Singapore.
    expect(m.regions['eu-west1']?.[1]?.cluster).toBe('ue1');
  });

  it('?down=ew1 moves eu-west1 traffic away in the answer only: routing is untouched', async () => {
    const before = await overrideState(shop.server.db);
    const m = await matrix(shop.server, '?down=ew1');
    expect(m.whatIf).toEqual({ down: ['ew1'] });
    expect(entryFor(m, 'eu-west1', 'ew1')).toMatchObject({ health: 'down', share: 0 });
    expect(entryFor(m, 'eu-west1', 'ue1').share).toBe(100);
    for (const region of CLIENT_REGIONS) expect(sum(m.regions[region] ?? []), region).toBe(100);

    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
    expect(shop.fleet['eu-west1'].served).toBe(1);
    expect(entryFor(await matrix(shop.server), 'eu-west1', 'ew1')).toMatchObject({ health: 'unknown', share: 100 });
    expect(await overrideState(shop.server.db)).toEqual(before);
  });

  it('?down=ew1,ue1 leaves eu-west1 with as1 only', async () => {
    const m = await matrix(shop.server, '?down=ew1,ue1');
    expect(m.whatIf).toEqual({ down: ['ew1', 'ue1'] });
    const eu = Object.fromEntries((m.regions['eu-west1'] ?? []).map((e) => [e.cluster, e.share]));
    expect(eu).toEqual({ ew1: 0, ue1: 0, as1: 100 });
  });
});

describe('failover: errors', () => {
  it('?down=nope -> 400 naming down', async () => {
    const res = await shop.server.admin('GET', '/services/shop/failover?down=nope');
    expectProblem(res, 400, 'invalid-request', ['down']);
    expect(res.json.errors[0].message).toContain('nope');
  });

  it('?down with one known and one unknown cluster -> 400 naming down', async () => {
    expectProblem(await shop.server.admin('GET', '/services/shop/failover?down=ew1,nope'), 400, 'invalid-request', [
      'down',
    ]);
  });

  it('an unknown service -> 404', async () => {
    const res = await shop.server.admin('GET', '/services/nope/failover');
    expectProblem(res, 404, 'not-found');
    expect(res.json.detail).toContain('nope');
  });
});

describe('failover: security', () => {
  it('no token -> 401', async () => {
    expectProblem(await shop.server.admin('GET', '/services/shop/failover', undefined, null), 401, 'unauthorized');
  });

  it('a read token and an on-call token may read it', async () => {
    for (const token of [READ_TOKEN, ONCALL_TOKEN]) {
      const res = await shop.server.admin('GET', '/services/shop/failover?down=ew1', undefined, token);
      expect(res.status, res.body).toBe(200);
      expect(res.json.service).toBe('shop');
    }
  });
});
