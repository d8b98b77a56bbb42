import { SELF } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, upstreams } from './support.js';

/**
 * On Workers a client's zone comes from the colo that took its request (request.cf.colo), where
 * WAYMARK_COLO_ZONES maps it (vitest.config.ts: DUB -> eu-west1-b, AMS -> eu-west1-a). Service "zoned"
 * has one cluster in each of those zones of eu-west1.
 */
const HOST = 'zoned.example.com';
const at = (colo: string) => ({ latitude: '53.35', longitude: '-6.26', colo, country: 'IE' });
const servedBy = async (colo: string) =>
  (await SELF.fetch(`https://${HOST}/where`, { cf: at(colo) } as RequestInit)).headers.get('x-waymark-cluster');

beforeAll(async () => {
  expect((await admin('PUT', '/services/zoned', { hosts: [HOST] })).status).toBeLessThan(300);
  for (const [name, zone, origin] of [
    ['za', 'eu-west1-a', upstreams.ew1],
    ['zb', 'eu-west1-b', upstreams.ue1],
  ] as const) {
    const res = await admin('PUT', `/services/zoned/clusters/${name}`, {
      region: 'eu-west1',
      zone,
      latitude: 50.4,
      longitude: 3.8,
      origin,
    });
    expect(res.status, await res.text()).toBeLessThan(300);
  }
});

afterAll(async () => {
  await admin('DELETE', '/services/zoned');
});

describe('zones from the colo inside workerd', () => {
  it('a client at a mapped colo is served in its zone; another colo maps to the other zone', async () => {
    for (let i = 0; i < 10; i++) expect(await servedBy('DUB')).toBe('zb');
    for (let i = 0; i < 10; i++) expect(await servedBy('AMS')).toBe('za');
  });

  it('a colo the mapping does not name gets the region: both zones take traffic', async () => {
    const seen = new Set<string | null>();
    for (let i = 0; i < 40; i++) seen.add(await servedBy('LHR'));
    expect(seen).toEqual(new Set(['za', 'zb']));
  });
});
