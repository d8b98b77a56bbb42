import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { done, runCommand } from '../../src/control/command.js';
import { pruneHistory, type Pruned, type Retention } from '../../src/control/retention.js';
import { actor, openTempStore, type TempStore } from '../store/temp-store.js';

/**
 * History retention (pruneHistory, run by the health sync in its write transaction): events and route
 * samples older than WAYMARK_RETENTION_DAYS, the audit log older than WAYMARK_AUDIT_RETENTION_DAYS and
 * edge reports older than an hour go, oldest first, at most 5 batches of 1,000 rows per table per call,
 * so a backlog is worked off over several syncs without holding the store. The old code pruned nothing:
 * every log grew without bound.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = Date.UTC(2026, 5, 1, 12, 0, 0);
const RETENTION: Retention = { days: 14, auditDays: 365 };

let store: TempStore;

beforeEach(async () => {
  store = await openTempStore();
});

afterEach(() => {
  store.dispose();
});

/** `n` rows at `at` in one statement (a recursive counter), tagged so a test can tell them apart. */
async function seed(
  table: 'events' | 'route_samples' | 'audit_log' | 'edge_reports',
  n: number,
  at: number,
  tag: string,
): Promise<void> {
  const rows: Record<typeof table, string> = {
    events: `insert into events (at, service, cluster, kind, message, detail) select ?, 'shop', null, ?, 'e' || x, null from c`,
    route_samples: `insert into route_samples (at, instance, service, route, kind, requests, errors, latency_ms_sum, latency_buckets) select ?, 'edge', 'shop', ?, 'primary', 1, 0, 1, '[]' from c`,
    audit_log: `insert into audit_log (at, actor, action, target, before, after, request_id) select ?, 'alice', ?, 'services/shop', null, null, null from c`,
    edge_reports: `insert into edge_reports (at, instance, service, cluster, client_region, requests, failures, latency_ms_sum) select ?, 'edge', 'shop', ?, 'eu-west1', 1, 0, 1 from c`,
  };
  await store.client.execute({
    sql: `with recursive c(x) as (select 1 union all select x + 1 from c where x < ?) ${rows[table]}`,
    args: [n, at, tag],
  });
}

/** Rows per tag (the column each seed tagged) in each table. */
async function tags(): Promise<Record<string, Record<string, number>>> {
  const column = { events: 'kind', route_samples: 'route', audit_log: 'action', edge_reports: 'cluster' } as const;
  const out: Record<string, Record<string, number>> = {};
  for (const [table, tag] of Object.entries(column)) {
    const rows = await store.client.execute(
      `select ${tag} as tag, count(*) as n from ${table} group by ${tag} order by ${tag}`,
    );
    out[table] = Object.fromEntries(rows.rows.map((r) => [String(r.tag), Number(r.n)]));
  }
  return out;
}

async function prune(now = NOW): Promise<Pruned> {
  const result = await runCommand(store.db, actor(now, 'health-sync'), async (c) =>
    done(await pruneHistory(c.tx, now, RETENTION), false),
  );
  if (!result.ok) throw new Error(result.problem.detail);
  return result.value;
}

describe('pruneHistory', () => {
  it('deletes what is past its retention and keeps the rest: a row exactly at the limit stays', async () => {
    await seed('events', 3, NOW - 14 * DAY_MS - 1, 'old');
    await seed('events', 2, NOW - 14 * DAY_MS, 'limit');
    await seed('events', 2, NOW - DAY_MS, 'new');
    await seed('route_samples', 3, NOW - 15 * DAY_MS, 'old');
    await seed('route_samples', 2, NOW - 14 * DAY_MS, 'limit');
    await seed('route_samples', 2, NOW, 'new');
    // The audit log has its own, longer retention: a month-old entry stays.
    await seed('audit_log', 3, NOW - 365 * DAY_MS - 1, 'old');
    await seed('audit_log', 2, NOW - 365 * DAY_MS, 'limit');
    await seed('audit_log', 2, NOW - 30 * DAY_MS, 'month');
    await seed('edge_reports', 3, NOW - 60 * 60 * 1000 - 1, 'old');
    await seed('edge_reports', 2, NOW - 60 * 60 * 1000, 'limit');

    expect(await prune()).toEqual({ events: 3, routeSamples: 3, auditLog: 3, edgeReports: 3, webhookDeliveries: 0 });
    expect(await tags()).toEqual({
      events: { limit: 2, new: 2 },
      route_samples: { limit: 2, new: 2 },
      audit_log: { limit: 2, month: 2 },
      edge_reports: { limit: 2 },
    });
    expect(await prune()).toEqual({ events: 0, routeSamples: 0, auditLog: 0, edgeReports: 0, webhookDeliveries: 0 });
  });

  it('is bounded: one call deletes at most 5,000 rows per table, the oldest first; the next call goes on from there', async () => {
    // New rows before and after the backlog: what goes is chosen by age, not by position.
    await seed('events', 3, NOW, 'new');
    await seed('events', 5_000, NOW - 20 * DAY_MS, 'old-first');
    await seed('events', 500, NOW - 20 * DAY_MS, 'old-last');
    await seed('events', 3, NOW, 'new');
    await seed('route_samples', 5_000, NOW - 15 * DAY_MS, 'old-first');
    await seed('route_samples', 1_200, NOW - 15 * DAY_MS, 'old-last');
    await seed('route_samples', 4, NOW - DAY_MS, 'new');
    await seed('audit_log', 5_000, NOW - 400 * DAY_MS, 'old-first');
    await seed('audit_log', 1, NOW - 400 * DAY_MS, 'old-last');
    await seed('audit_log', 4, NOW - 20 * DAY_MS, 'new');
    await seed('edge_reports', 5_001, NOW - DAY_MS, 'old');

    expect(await prune()).toEqual({
      events: 5_000,
      routeSamples: 5_000,
      auditLog: 5_000,
      edgeReports: 5_000,
      webhookDeliveries: 0,
    });
    expect(await tags()).toEqual({
      events: { new: 6, 'old-last': 500 },
      route_samples: { new: 4, 'old-last': 1_200 },
      audit_log: { new: 4, 'old-last': 1 },
      edge_reports: { old: 1 },
    });

    expect(await prune()).toEqual({
      events: 500,
      routeSamples: 1_200,
      auditLog: 1,
      edgeReports: 1,
      webhookDeliveries: 0,
    });
    expect(await tags()).toEqual({
      events: { new: 6 },
      route_samples: { new: 4 },
      audit_log: { new: 4 },
      edge_reports: {},
    });
    expect(await prune()).toEqual({ events: 0, routeSamples: 0, auditLog: 0, edgeReports: 0, webhookDeliveries: 0 });
  });
});
