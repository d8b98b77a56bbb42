import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';

/**
 * The history logs over time, with an injected clock: retention (WAYMARK_RETENTION_DAYS for events and
 * route samples, WAYMARK_AUDIT_RETENTION_DAYS for the audit log) applied by the health sync, and the
 * pollers' cursors on GET /events and GET /audit (`after`, `next`), with ISO 8601 timestamps.
 *
 * The old code kept every log forever (no pruning, no `pruned` in the sync summary), answered `at` as
 * epoch milliseconds, and refused `after` as an unknown query parameter.
 */

const HOST = 'shop.example.com';
const DAY_MS = 24 * 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

type Entry = { id: number; at: string; action?: string; kind?: string };
type Pruned = { events: number; routeSamples: number; auditLog: number; edgeReports: number };

let server: TestServer;
let origin: Upstream;
let clock = T0;

beforeEach(async () => {
  clock = T0;
  origin = await startUpstream('ew1', 'eu-west1');
  server = await startTestServer(
    { WAYMARK_RETENTION_DAYS: '2', WAYMARK_AUDIT_RETENTION_DAYS: '5' },
    { now: () => clock },
  );
  expect((await server.admin('PUT', '/services/shop', serviceBody([HOST]))).status).toBe(201);
  expect((await server.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', origin.url))).status).toBe(
    201,
  );
  expect((await server.admin('PUT', '/services/shop/routes/all', { order: 1 })).status).toBe(201);
});

afterEach(async () => {
  await server.close();
  await origin.stop();
});

async function sync(): Promise<{ pruned: Pruned; revisionBumped: boolean }> {
  const res = await server.admin('POST', '/sync');
  expect(res.status, res.body).toBe(200);
  return res.json;
}

/** Proxied requests through route "all": route samples and edge reports, flushed by the next sync. */
async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await server.request(HOST, `/t/${i}`)).status).toBe(200);
}

/** Ids of each log's rows, by the time they were written at. */
async function rowsAt(): Promise<
  Record<'events' | 'route_samples' | 'audit_log' | 'edge_reports', Map<number, number>>
> {
  const out = {} as Record<'events' | 'route_samples' | 'audit_log' | 'edge_reports', Map<number, number>>;
  for (const table of ['events', 'route_samples', 'audit_log', 'edge_reports'] as const) {
    const rows = await server.db.execute(`select at, count(*) as n from ${table} group by at`);
    out[table] = new Map(rows.rows.map((r) => [Number(r.at), Number(r.n)]));
  }
  return out;
}

function olderThan(rows: Map<number, number>, limit: number): number {
  return [...rows].filter(([at]) => at < limit).reduce((sum, [, n]) => sum + n, 0);
}

describe('retention: the health sync prunes history', () => {
  it('deletes events and route samples older than WAYMARK_RETENTION_DAYS and audit entries older than WAYMARK_AUDIT_RETENTION_DAYS; keeps the newer', async () => {
    // Day 0: the writes above, a probe that finds ew1 healthy (an event), traffic (samples, reports).
    await traffic(3);
    expect((await sync()).pruned).toEqual({
      events: 0,
      routeSamples: 0,
      auditLog: 0,
      edgeReports: 0,
      webhookDeliveries: 0,
    });
    // Day 1: an override (audit entry and event) and more traffic.
    clock = T0 + DAY_MS;
    const freeze = await server.admin('POST', '/overrides', {
      service: 'shop',
      action: 'freeze',
      reason: 'release week',
      ttlSeconds: 600,
    });
    expect(freeze.status, freeze.body).toBe(201);
    await traffic(2);
    const day1 = await sync();
    expect(day1.pruned).toEqual({
      events: 0,
      routeSamples: 0,
      auditLog: 0,
      edgeReports: expect.any(Number),
      webhookDeliveries: 0,
    });
    expect(day1.pruned.edgeReports, 'day 0 edge reports are past their hour').toBeGreaterThan(0);

    const before = await rowsAt();
    expect(before.events.get(T0)).toBeGreaterThan(0);
    expect(before.route_samples.get(T0)).toBeGreaterThan(0);
    expect(before.route_samples.get(T0 + DAY_MS)).toBeGreaterThan(0);
    expect(before.audit_log.get(T0)).toBe(3);

    // Exactly 2 days after day 0: day 0 is at the limit, not past it.
    clock = T0 + 2 * DAY_MS;
    const atLimit = await sync();
    expect(atLimit.pruned).toMatchObject({ events: 0, routeSamples: 0, auditLog: 0 });
    expect((await rowsAt()).events.get(T0)).toBe(before.events.get(T0));

    // One millisecond later, day 0's events and samples go; its audit entries stay (5 days).
    clock = T0 + 2 * DAY_MS + 1;
    const snapshot = await rowsAt();
    const pastDay0 = await sync();
    expect(pastDay0.pruned).toEqual({
      events: olderThan(snapshot.events, clock - 2 * DAY_MS),
      routeSamples: olderThan(snapshot.route_samples, clock - 2 * DAY_MS),
      auditLog: 0,
      edgeReports: olderThan(snapshot.edge_reports, clock - HOUR_MS),
      webhookDeliveries: 0,
    });
    expect(pastDay0.pruned.events).toBe(before.events.get(T0));
    expect(pastDay0.pruned.routeSamples).toBe(before.route_samples.get(T0));
    const after2 = await rowsAt();
    expect(after2.events.has(T0)).toBe(false);
    expect(after2.route_samples.has(T0)).toBe(false);
    expect(after2.events.get(T0 + DAY_MS)).toBe(before.events.get(T0 + DAY_MS));
    expect(after2.route_samples.get(T0 + DAY_MS)).toBe(before.route_samples.get(T0 + DAY_MS));
    expect(after2.audit_log.get(T0)).toBe(3);
    const events = await server.admin('GET', '/events?limit=1000');
    expect((events.json.events as Entry[]).every((e) => Date.parse(e.at) >= clock - 2 * DAY_MS)).toBe(true);

    // Past 5 days, day 0's audit entries go, day 1's stay; pruning alone moves no revision.
    clock = T0 + 5 * DAY_MS + 1;
    const pastAudit = await sync();
    expect(pastAudit.pruned).toMatchObject({ auditLog: 3 });
    expect(pastAudit.revisionBumped).toBe(false);
    const audit = await server.admin('GET', '/audit?limit=1000');
    const ats = (audit.json.entries as Entry[]).map((e) => Date.parse(e.at));
    expect(ats.length).toBeGreaterThan(0);
    expect(ats.every((at) => at > T0)).toBe(true);
    expect((audit.json.entries as Entry[]).map((e) => e.action)).toContain('override.create');
  });
});

describe('cursors: GET /events and GET /audit', () => {
  /** Writes at successive minutes: audit entries, and events (an override's start and end each say so). */
  async function history(): Promise<void> {
    for (let i = 1; i <= 3; i++) {
      clock = T0 + i * 60_000;
      const o = await server.admin('POST', '/overrides', {
        service: 'shop',
        action: 'freeze',
        reason: `hold ${i}`,
        ttlSeconds: 600,
      });
      expect(o.status, o.body).toBe(201);
      clock += 1_000;
      expect((await server.admin('DELETE', `/overrides/${o.json.id}`)).status).toBe(204);
    }
  }

  for (const log of [
    {
      path: '/audit',
      key: 'entries',
      write: async () =>
        expect((await server.admin('PUT', '/services/shop/routes/late', { order: 2 })).status).toBe(201),
    },
    {
      path: '/events',
      key: 'events',
      write: async () =>
        expect(
          (
            await server.admin('POST', '/overrides', {
              service: 'shop',
              action: 'freeze',
              reason: 'late hold',
              ttlSeconds: 600,
            })
          ).status,
        ).toBe(201),
    },
  ]) {
    it(`${log.path}: newest first without after; after=<id> answers the newer entries oldest first, and next moves`, async () => {
      await history();
      const page = async (query: string) => {
        const res = await server.admin('GET', `${log.path}${query}`);
        expect(res.status, res.body).toBe(200);
        return { entries: res.json[log.key] as Entry[], next: res.json.next as number };
      };

      const newest = await page('?limit=1000');
      const ids = newest.entries.map((e) => e.id);
      expect(ids.length).toBeGreaterThanOrEqual(6);
      expect(ids).toEqual([...ids].sort((a, b) => b - a));
      expect(newest.next).toBe(ids[0]);
      const ascending = [...ids].reverse();
      for (const e of newest.entries) expect(e.at).toMatch(ISO);

      // From the start, two at a time, oldest first: the cursor walks the whole log.
      const walked: number[] = [];
      let cursor = 0;
      for (let i = 0; i < 10 && walked.length < ascending.length; i++) {
        const p = await page(`?after=${cursor}&limit=2`);
        expect(p.entries.length).toBeGreaterThan(0);
        expect(p.next).toBe(p.entries.at(-1)?.id);
        walked.push(...p.entries.map((e) => e.id));
        cursor = p.next;
      }
      expect(walked).toEqual(ascending);

      // From a middle entry: only those after it.
      const middle = ascending[2] as number;
      const rest = await page(`?after=${middle}&limit=1000`);
      expect(rest.entries.map((e) => e.id)).toEqual(ascending.slice(3));
      expect(rest.entries).toEqual(newest.entries.filter((e) => e.id > middle).reverse());

      // Caught up: nothing newer, and next stays where it was.
      expect(await page(`?after=${cursor}`)).toEqual({ entries: [], next: cursor });

      // A new write: the poller sees exactly it, stamped with the clock in ISO 8601.
      clock = T0 + 10 * 60_000;
      await log.write();
      const fresh = await page(`?after=${cursor}`);
      expect(fresh.entries.map((e) => e.at)).toEqual(fresh.entries.map(() => new Date(clock).toISOString()));
      expect(fresh.entries.length).toBeGreaterThan(0);
      expect(fresh.entries.every((e) => e.id > cursor)).toBe(true);
      expect(fresh.next).toBe(fresh.entries.at(-1)?.id);
      expect(await page(`?after=${fresh.next}`)).toEqual({ entries: [], next: fresh.next });
    });

    it.each(['-1', 'x', '1.5'])(
      `${log.path}?after=%s -> 400 naming query.after (a cursor is a whole id, 0 or more)`,
      async (after) => {
        const start = await server.admin('GET', `${log.path}?after=0`);
        expect(start.status, start.body).toBe(200);
        expectProblem(await server.admin('GET', `${log.path}?after=${after}`), 400, 'invalid-request', ['query.after']);
      },
    );
  }

  it('events: every timestamp is ISO 8601 at the time of the write, and a service filter keeps its cursor', async () => {
    await history();
    const all = await server.admin('GET', '/events?service=shop&limit=1000');
    const events = all.json.events as (Entry & { kind: string })[];
    expect(events.map((e) => [e.kind, e.at])).toEqual(
      [1, 2, 3]
        .flatMap((i) => [
          ['override-applied', new Date(T0 + i * 60_000).toISOString()],
          ['override-ended', new Date(T0 + i * 60_000 + 1_000).toISOString()],
        ])
        .reverse(),
    );
    const other = await server.admin('GET', `/events?service=blog&after=${all.json.next}`);
    expect(other.json).toEqual({ events: [], next: all.json.next });
  });
});
