import { createClient } from '@libsql/client';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { serviceMatcher } from '../../src/spec/token.js';
import { storeFromClient } from '../../src/store/client.js';
import { serviceIn } from '../../src/store/tokens.js';

/**
 * A key's service patterns are checked twice: in handlers (`serviceMatcher`) and in the store's list
 * queries (`serviceIn`, SQLite GLOB). Both must say the same for every service name.
 */
const store = storeFromClient(createClient({ url: ':memory:' }));

afterAll(() => {
  store.client.close();
});

const CASES: [readonly string[] | null, string, boolean][] = [
  [null, 'anything', true],
  [['shop'], 'shop', true],
  [['shop'], 'shop-eu', false],
  [['shop'], 'eshop', false],
  [['pay-*'], 'pay-eu', true],
  [['pay-*'], 'pay-', true],
  [['pay-*'], 'repay-eu', false],
  [['pay-*'], 'pay', false],
  [['*-eu'], 'pay-eu', true],
  [['*-eu'], 'pay-eu-2', false],
  [['p*y'], 'pay', true],
  [['p*y'], 'py', true],
  [['*'], 'blog', true],
  [['shop', 'pay-*'], 'blog', false],
  [['shop', 'pay-*'], 'pay-us', true],
  [[], 'shop', false],
];

describe('service patterns', () => {
  it.each(CASES)('%j matches %s: %s (in handlers and in SQL alike)', async (patterns, service, expected) => {
    expect(serviceMatcher(patterns)(service)).toBe(expected);
    const condition = serviceIn(sql`${service}`, patterns) ?? sql`1`;
    const row = await store.db.get<{ ok: number }>(sql`select (${condition}) as ok`);
    expect(Boolean(row.ok)).toBe(expected);
  });
});
