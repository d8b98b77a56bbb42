import { afterEach, describe, expect, it } from 'vitest';
import type { SimpleResponse } from '../../scripts/http-client.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { eventually } from '../support/fleet.js';
import {
  count,
  deploy,
  expectOk,
  RACE_TIMEOUT_MS,
  startFailingHealth,
  TOPOLOGIES,
  type Deployment,
  type FailingHealth,
  type Peer,
  type Topology,
} from './concurrency-support.js';

/**
 * The health sync's hysteresis ("unhealthyThreshold failing rounds in a row") only means something if a
 * round is counted once however many instances run the sync. Flagger had the same problem
 * (fluxcd/flagger#1613): with two replicas and no leader election both advanced every canary each
 * interval, so step weights and analysis ran at twice the configured pace. Here the sync takes a lease in
 * the store; whoever does not get it skips, and says who holds it.
 */

const UNHEALTHY_THRESHOLD = 3;
const TWO_SERVERS = TOPOLOGIES.filter((t) => t.servers + t.processes === 2);

interface Summary {
  skipped: boolean;
  at: string;
  reason?: string;
  holder?: string;
  until?: string;
  changes?: { service: string; cluster: string; from: string; to: string }[];
}

let d: Deployment | null = null;
let health: FailingHealth | null = null;
afterEach(async () => {
  // Held probes are answered first: a server's close waits for its outbound requests.
  health?.release();
  await d?.close();
  await health?.stop();
  d = null;
  health = null;
});

/** Service `probe` with one cluster whose health check always fails (503), answered after `answerAfterMs`. */
async function setUp(
  topology: Topology,
  env: Record<string, string> = {},
  answerAfterMs = 0,
): Promise<{ d: Deployment; health: FailingHealth; registeredAt: number }> {
  health = await startFailingHealth(answerAfterMs);
  d = await deploy(topology, env);
  const admin = d.peers[0] as Peer;
  expectOk(await admin.admin('PUT', '/services/probe', serviceBody(['probe.example.com'])));
  const registeredAt = Date.now();
  const healthCheck = {
    path: '/health/ready',
    expectedStatuses: ['2xx'],
    timeoutMs: 5_000,
    healthyThreshold: 2,
    unhealthyThreshold: UNHEALTHY_THRESHOLD,
  };
  expectOk(
    await admin.admin('PUT', '/services/probe/clusters/p1', clusterBody('eu-west1', health.url, { healthCheck })),
  );
  return { d, health, registeredAt };
}

async function p1Health(d: Deployment): Promise<{ failures: number; state: string | null }> {
  const rows = await d.db.execute(
    "select consecutive_failures, state from cluster_health where service = 'probe' and cluster = 'p1'",
  );
  const row = rows.rows[0];
  return row ? { failures: Number(row.consecutive_failures), state: String(row.state) } : { failures: 0, state: null };
}

function summaryOf(res: SimpleResponse): Summary {
  expect(res.status, res.body).toBe(200);
  return res.json as Summary;
}

/**
 * The lease holder id of each peer: known for a server in this process, learnt from the first skip that
 * names a server in another process. Asserts that a peer is always named by one id, and no two peers by
 * the same one.
 */
function holderIds(peers: Peer[]): (peer: number, named: string | undefined) => void {
  const ids = peers.map((p) => p.instanceId);
  return (peer, named) => {
    expect(named, 'a skip names the holder').toEqual(expect.stringMatching(/\S/));
    ids[peer] ??= named as string;
    expect(named, `the id of server ${peer}`).toBe(ids[peer]);
    expect(ids.filter((id) => id === named)).toHaveLength(1);
  };
}

/** Rejects with `message` when `pending` has not settled within `ms`. */
function within<T>(pending: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([pending, late]).finally(() => clearTimeout(timer));
}

describe.each(TWO_SERVERS)('two instances ask for the sync at once: $name', (topology) => {
  it('while one runs (its probe held), the other skips naming it; each round counts once toward the threshold', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    const { d, health } = await setUp(topology);
    const named = holderIds(d.peers);
    for (let round = 1; round <= 4; round++) {
      health.hold();
      const pending = d.peers.map((p, i) => p.admin('POST', '/sync').then((res) => ({ res, i })));
      // When both run (the defect this guards against), neither answers before the close cuts them.
      for (const p of pending) p.catch(() => undefined);
      await eventually(() => health.received() === round);
      // The running sync cannot finish while its probe is held: the first answer is the other one's.
      const first = await within(
        Promise.race(pending),
        5_000,
        'no instance skipped while another was running the sync',
      );
      const skipped = summaryOf(first.res);
      expect(skipped, JSON.stringify(skipped)).toMatchObject({
        skipped: true,
        reason: 'another instance is running the sync',
      });
      health.release();
      const [ran, ...others] = (await Promise.all(pending)).filter((a) => a.i !== first.i);
      expect(others).toEqual([]);
      expect(summaryOf(ran!.res).skipped).toBe(false);
      named(ran!.i, skipped.holder);
      expect(Date.parse(skipped.until!)).toBeGreaterThan(Date.parse(skipped.at));

      expect(health.received(), 'probes: one per round').toBe(round);
      const after = await p1Health(d);
      expect(after.failures, `round ${round}`).toBe(round);
      expect(after.state).toBe(round < UNHEALTHY_THRESHOLD ? 'unknown' : 'unhealthy');
      expect(summaryOf(ran!.res).changes, `round ${round}`).toEqual(
        round === UNHEALTHY_THRESHOLD
          ? [expect.objectContaining({ service: 'probe', cluster: 'p1', from: 'unknown', to: 'unhealthy' })]
          : [],
      );
    }
    // One state change, written once: in the round that reached the threshold.
    expect(await count(d.db, "select count(*) as n from events where kind = 'cluster-state' and cluster = 'p1'")).toBe(
      1,
    );
  });
});

describe.each(TOPOLOGIES)('bursts of POST /sync: $name', (topology) => {
  it('3 requests per server at once, 4 times: consecutive failures = runs that did not skip; every skip names the holder', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    // A probe takes 30 ms, so two runs (one after the other, whichever instance ran them) never share their `at`.
    const { d, health } = await setUp(topology, {}, 30);
    const named = holderIds(d.peers);
    const runs = new Set<string>();
    let skips = 0;
    for (let round = 1; round <= 4; round++) {
      const sent = d.peers.flatMap((p, i) =>
        [1, 2, 3].map(() => p.admin('POST', '/sync').then((res) => ({ i, summary: summaryOf(res) }))),
      );
      const answers = await Promise.all(sent);
      const ran = answers.filter((a) => !a.summary.skipped);
      expect(ran.length, 'at least one request per round ran the sync').toBeGreaterThan(0);
      for (const a of ran) runs.add(a.summary.at);
      for (const a of answers.filter((x) => x.summary.skipped)) {
        skips += 1;
        expect(a.summary.reason).toBe('another instance is running the sync');
        // Only another server can hold it: requests to one server share its run in flight.
        const holder = ran.find((r) => r.i !== a.i);
        if (holder) named(holder.i, a.summary.holder);
        expect(d.peers[a.i]?.instanceId ?? null).not.toBe(a.summary.holder);
      }
      expect((await p1Health(d)).failures, `round ${round}: runs at ${[...runs].join(', ')}`).toBe(runs.size);
      expect(health.answered()).toBe(runs.size);
    }
    if (d.peers.length === 1) expect(skips).toBe(0);
  });
});

describe.each(TWO_SERVERS)('sync timers on two instances: $name', (topology) => {
  const INTERVAL_MS = 100;
  // A timer's run may start 0.9 of the interval after the last one anywhere (src/runtime.ts).
  const MIN_SPACING_MS = Math.floor(INTERVAL_MS * 0.9);

  it('both run the sync every 100 ms on a timer: each run counts once, and runs are an interval apart across both', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    const { d, health, registeredAt } = await setUp(topology, { WAYMARK_SYNC_INTERVAL_MS: String(INTERVAL_MS) });
    await eventually(() => health.answered() >= 10, 10_000);
    // Freeze: no probe is answered from now on, so the runs answered so far finish writing and no new one can.
    health.hold();
    // A lost update (two runs reading the same count) keeps failures below answered: the assertion says by how much.
    // A run whose probe was answered may still be writing: on a starved machine (it failed once here with a
    // benchmark running beside it, 9 of 10) that can take longer than a file store's 5 s lock wait.
    await eventually(async () => (await p1Health(d)).failures >= health.answered(), 15_000).catch(() => undefined);
    const ended = Date.now();
    const answered = health.answered();
    expect((await p1Health(d)).failures, 'consecutive failures once every answered probe is written').toBe(answered);
    // The runs hold the lease one at a time and take it at least MIN_SPACING_MS apart: those that took it
    // since the cluster was registered, plus at most the one running then. (A sound bound, though a weak one
    // when both timers tick in step: then the later one finds the lease held whatever the spacing.)
    expect(answered).toBeLessThanOrEqual(Math.floor((ended - registeredAt) / MIN_SPACING_MS) + 2);
  });
});

describe.each(TWO_SERVERS)('POST /sync while the other instance writes: $name', (topology) => {
  it('every sync answer is a run or a skip and every write succeeds (no store error); the lease is free afterwards', {
    timeout: RACE_TIMEOUT_MS,
  }, async () => {
    const { d } = await setUp(topology, {}, 5);
    const [syncer, writer] = d.peers as [Peer, Peer];
    let writing = true;
    const writes: SimpleResponse[] = [];
    // Four writers at once on one server: its transactions queue, so it holds the write lock most of the time.
    const writers = Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; writing; i++)
          writes.push(
            await writer.admin('PUT', `/services/busy-${w}-${i % 5}`, serviceBody([`busy-${w}-${i % 5}.example.com`])),
          );
      }),
    );
    const syncs: SimpleResponse[] = [];
    try {
      for (let i = 0; i < 8; i++) syncs.push(await syncer.admin('POST', '/sync'));
    } finally {
      writing = false;
      await writers;
    }
    const failed = (answers: SimpleResponse[]) =>
      answers.filter((r) => r.status >= 300).map((r) => `${r.status} ${r.json?.code ?? r.body}`);
    expect({ syncs: failed(syncs), writes: failed(writes) }, `${syncs.length} syncs, ${writes.length} writes`).toEqual({
      syncs: [],
      writes: [],
    });
    const lease = await d.db.execute("select expires_at from leases where name = 'health-sync'");
    expect(Number(lease.rows[0]?.expires_at), 'the sync lease was released').toBeLessThanOrEqual(Date.now());
    const last = summaryOf(await writer.admin('POST', '/sync'));
    expect(last.skipped, JSON.stringify(last)).toBe(false);
  });
});
