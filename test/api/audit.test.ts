import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
  for (const [name, host] of [
    ['shop', 'shop.example.com'],
    ['shop-eu', 'shop-eu.example.com'],
    ['blog', 'blog.example.com'],
  ] as const) {
    expect((await server.admin('PUT', `/services/${name}`, serviceBody([host]))).status).toBe(201);
  }
  expect(
    (await server.admin('PUT', '/services/shop/clusters/eu', clusterBody('eu-west1', 'https://eu.shop.internal')))
      .status,
  ).toBe(201);
});

afterEach(async () => {
  await server.close();
});

async function targets(query: string): Promise<string[]> {
  const res = await server.admin('GET', `/audit${query}`);
  expect(res.status, res.body).toBe(200);
  return (res.json.entries as { target: string }[]).map((e) => e.target);
}

describe('audit: happy', () => {
  it('without a target lists every write, newest first', async () => {
    expect(await targets('')).toEqual([
      'services/shop/clusters/eu',
      'services/blog',
      'services/shop-eu',
      'services/shop',
    ]);
  });

  it('a cluster target lists only that cluster', async () => {
    expect(await targets('?target=services/shop/clusters/eu')).toEqual(['services/shop/clusters/eu']);
  });

  it('a target is a prefix: services/blog covers the blog service', async () => {
    expect(await targets('?target=services/blog')).toEqual(['services/blog']);
  });
});

describe('audit: errors', () => {
  it('reading the audit log requires a token', async () => {
    expectProblem(await server.admin('GET', '/audit', undefined, null), 401, 'unauthorized');
  });

  // KNOWN BUG (src/store/queries.ts listAudit): the prefix is matched with SQL LIKE and is not escaped, so
  // "_" and "%" act as wildcards and the match ignores case; listAudit promises "target starts with".
  it('the target filter is a literal, case-sensitive prefix (no LIKE wildcards)', async () => {
    expect(await targets('?target=services/s_op')).toEqual([]);
    expect(await targets('?target=%25')).toEqual([]);
    expect(await targets('?target=%25/blog')).toEqual([]);
    expect(await targets('?target=SERVICES/BLOG')).toEqual([]);
  });

  // KNOWN BUG (src/store/queries.ts listAudit via src/api/audit.ts): a bare string prefix makes
  // target=services/shop also return the writes of the sibling service "shop-eu".
  it('target=services/shop lists shop and its clusters, not the service shop-eu', async () => {
    expect(await targets('?target=services/shop')).toEqual(['services/shop/clusters/eu', 'services/shop']);
  });
});
