import type { Client } from '@libsql/client';
import { afterEach, beforeEach, expect } from 'vitest';
import type { SimpleResponse } from '../../scripts/http-client.js';
import { registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { dbState, type DbState } from './api-support.js';

const HOST = 'shop.example.com';

/** A read-only token and an on-call token, as the settings give them ("name:token"). */
export const READ_TOKEN = 'read-token-0123456789abcdef';
export const READ_NAME = 'dashboard';
export const ONCALL_TOKEN = 'oncall-token-0123456789abcdef';
export const ONCALL_NAME = 'pager';
export const TOKEN_ENV = {
  WAYMARK_READ_TOKENS: `${READ_NAME}:${READ_TOKEN}`,
  WAYMARK_ONCALL_TOKENS: `${ONCALL_NAME}:${ONCALL_TOKEN}`,
};

/** A server with read and on-call tokens, routing service "shop" over three real upstreams. */
async function startShop(
  env: Record<string, string> = {},
): Promise<{ server: TestServer; fleet: Fleet; stop: () => Promise<void> }> {
  const fleet = await startFleet();
  const server = await startTestServer({ ...TOKEN_ENV, WAYMARK_TRY_TIMEOUT_MS: '1000', ...env });
  await registerFleet(server, fleet);
  return {
    server,
    fleet,
    stop: async () => {
      await server.close();
      await fleet.stop();
    },
  };
}

/** A fresh `startShop()` for every test of the file; read `shop.server` and `shop.fleet` inside tests. */
export function shopPerTest(): { server: TestServer; fleet: Fleet } {
  const shop = {} as { server: TestServer; fleet: Fleet; stop: () => Promise<void> };
  beforeEach(async () => {
    Object.assign(shop, await startShop());
  });
  afterEach(async () => {
    await shop.stop();
  });
  return shop;
}

/** An override body; `extra` overrides or adds fields. */
export function drainBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service: 'shop',
    action: 'drain',
    cluster: 'ew1',
    reason: 'kernel upgrade in eu-west1',
    ttlSeconds: 600,
    ...extra,
  };
}

export function pinBody(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service: 'shop',
    action: 'pin',
    region: 'eu-west1',
    cluster: 'as1',
    reason: 'testing as1 with eu traffic',
    ttlSeconds: 600,
    ...extra,
  };
}

export interface OverrideState extends DbState {
  overrides: number;
  events: number;
}

/** What "nothing written" compares for overrides: the admin tables, the revision, overrides and events. */
export async function overrideState(db: Client): Promise<OverrideState> {
  const count = async (table: string) => Number((await db.execute(`select count(*) as n from ${table}`)).rows[0]?.n);
  return { ...(await dbState(db)), overrides: await count('overrides'), events: await count('events') };
}

/** A proxied GET for `shop` from a client in `region`. */
export function fromRegion(server: TestServer, region: string, path = '/'): Promise<SimpleResponse> {
  return server.request(HOST, path, { headers: { 'x-waymark-client-region': region } });
}

/** Which cluster served a GET from a client in `region` (asserting it succeeded). */
export async function servedBy(server: TestServer, region: string): Promise<string> {
  const res = await fromRegion(server, region);
  expect(res.status, res.body).toBe(200);
  expect(res.headers['x-waymark-cluster'], res.body).toBe(res.json.cluster);
  return res.json.cluster as string;
}

export interface MatrixEntry {
  cluster: string;
  region: string;
  share: number;
  level: number;
  levelReason: string;
  health: string;
  reason: string;
}

/** The failover matrix for `shop` (optionally a what-if), asserting 200. */
export async function matrix(
  server: TestServer,
  query = '',
): Promise<{ regions: Record<string, MatrixEntry[]>; whatIf: unknown; summary: Record<string, unknown> }> {
  const res = await server.admin('GET', `/services/shop/failover${query}`);
  expect(res.status, res.body).toBe(200);
  return res.json;
}

/** One cluster's entry for clients in `region`. */
export function entryFor(m: { regions: Record<string, MatrixEntry[]> }, region: string, cluster: string): MatrixEntry {
  const entry = m.regions[region]?.find((e) => e.cluster === cluster);
  expect(entry, `${region}/${cluster} in ${JSON.stringify(m.regions)}`).toBeDefined();
  return entry as MatrixEntry;
}

/** Creates an override with the admin token (unless told otherwise), asserting 201; returns its view. */
export async function createOverride(server: TestServer, body: Record<string, unknown>, token?: string) {
  const res = await server.admin('POST', '/overrides', body, token);
  expect(res.status, res.body).toBe(201);
  return res.json as {
    id: string;
    active: boolean;
    actor: string;
    createdAt: string;
    expiresAt: string;
    [k: string]: unknown;
  };
}

export async function eventsFor(
  server: TestServer,
  service = 'shop',
): Promise<{ kind: string; cluster: string | null; message: string; detail: any }[]> {
  const res = await server.admin('GET', `/events?service=${service}`);
  expect(res.status, res.body).toBe(200);
  return res.json.events;
}

export async function auditFor(
  server: TestServer,
  target: string,
): Promise<{ action: string; actor: string; target: string; before: any; after: any }[]> {
  const res = await server.admin('GET', `/audit?target=${target}`);
  expect(res.status, res.body).toBe(200);
  return res.json.entries;
}
