import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

const HOST = 'shop.example.com';
const EU = { 'x-waymark-client-region': 'eu-west1' };
/** 30 "a"s and no "b": 2^30 ways for a backtracking engine to split them between (a+)+ before it gives up. */
const EVIL = `${'a'.repeat(30)}!`;

describe('route regexes on the Node runtime: RE2, linear time', () => {
  let server: TestServer;
  let fleet: Fleet;

  beforeEach(async () => {
    fleet = await startFleet();
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '1000' });
    await registerFleet(server, fleet);
    for (const [name, body] of Object.entries({
      nested: { order: 10, match: { headers: { 'x-token': { regex: '(a+)+b' } } } },
      fallback: { order: 100 },
    })) {
      const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
      expect(res.status, res.body).toBe(201);
    }
  });
  afterEach(async () => {
    await server.close();
    await fleet.stop();
  });

  // Per-test timeout: a backtracking engine would hold the process (server and test alike) for seconds
  // on the first request, and vitest fails a test that ran past its timeout even when it ran synchronously.
  it('a header matcher (a+)+b against 30 "a"s and "!" answers at once, and a request sent with it is served', {
    timeout: 3000,
  }, async () => {
    const [evil, other, matching] = await Promise.all([
      server.request(HOST, '/evil', { headers: { ...EU, 'x-token': EVIL } }),
      server.request(HOST, '/other', { headers: EU }),
      server.request(HOST, '/match', { headers: { ...EU, 'x-token': 'aaab' } }),
    ]);
    expect([evil.status, other.status, matching.status], evil.body).toEqual([200, 200, 200]);
    expect(evil.headers['x-waymark-route']).toBe('fallback');
    expect(other.headers['x-waymark-route']).toBe('fallback');
    expect(matching.headers['x-waymark-route']).toBe('nested');
    expect(evil.json.path).toBe('/evil');
    expect(other.json.path).toBe('/other');
  });
});
