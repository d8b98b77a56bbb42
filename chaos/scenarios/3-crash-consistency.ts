import { join } from 'node:path';
import { createClient } from '@libsql/client';
import { seededRandom } from '../../src/routing/random.js';
import { type ChaosRegion, clusterSpec, sleep } from '../fleet.js';
import { type AdminAnswer, RssWatch, startWaymark, type WaymarkProcess } from '../procs.js';
import type { Scenario, ScenarioContext, ScenarioResult } from '../result.js';

/**
 * Scenario 3, crash consistency: 20 concurrent admin writers (cluster weights, service policies,
 * override creates and ends) against one Waymark process on a libSQL file; the process is killed with
 * SIGKILL at a seeded moment, the file is checked (`PRAGMA integrity_check`) and a new process starts
 * on it; then every write acknowledged with a 2xx must be there (the last acknowledged value of each
 * object, or the one write that was in flight at the kill), and the audit log must hold an entry for
 * every acknowledged write (with what it set) and none for a write that is not there.
 */
const WRITERS = 20;
const CLUSTERS: Record<'a' | 'b', ChaosRegion> = { a: 'us-east1', b: 'eu-west1' };
const DRAIN_TTL_SECONDS = 3_600;
/** Writers run this long (ms) at least before the kill, and at most `ROUND_SPAN_MS` more. */
const ROUND_MIN_MS = 1_500;
const ROUND_SPAN_MS = 2_500;

type ClusterName = keyof typeof CLUSTERS;

/** One object's known state: the last value acknowledged, and the write in flight when the server died. */
interface Known<T> {
  acked: T;
  ackedRequestId: string | null;
  pending: { value: T; requestId: string } | null;
}

/** An override write in flight at the kill: a create (its id unknown) or an end. */
type PendingOverride = { kind: 'create'; requestId: string } | { kind: 'end'; id: string; requestId: string };

interface Writer {
  service: string;
  weights: Record<ClusterName, Known<number>>;
  panic: Known<number>;
  /** Active drain overrides this writer created (at most one), by id. */
  overrides: Set<string>;
  pendingOverride: PendingOverride | null;
  sequence: number;
}

/** A write acknowledged with a 2xx: its request id and what its audit entry must say. */
interface Ack {
  requestId: string;
  target: string;
  check: (after: any) => boolean;
}

interface Counters {
  requests: number;
  acked: number;
  unacknowledged: number;
  lostWrites: number;
  auditMismatches: number;
  integrityFailures: number;
  refused: number;
  /** Writes in flight at a kill that turned out applied / not applied. */
  inFlightApplied: number;
  inFlightDropped: number;
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const rounds = context.quick ? 3 : 10;
  const random = seededRandom(context.seed * 31 + 3);
  const file = join(context.dir, 'waymark.db');
  const env = { WAYMARK_SYNC_INTERVAL_MS: '0', WAYMARK_LOG_LEVEL: 'warn' };
  const counters: Counters = {
    requests: 0,
    acked: 0,
    unacknowledged: 0,
    lostWrites: 0,
    auditMismatches: 0,
    integrityFailures: 0,
    refused: 0,
    inFlightApplied: 0,
    inFlightDropped: 0,
  };
  let waymark = await startWaymark({ databaseUrl: `file:${file}`, dir: context.dir, env });
  const rss = new RssWatch(() => [waymark.pid]);
  let auditCursor = 0;
  const writers: Writer[] = [];
  try {
    const acks: Ack[] = [];
    const call = async (
      method: string,
      path: string,
      body: unknown,
      requestId: string,
    ): Promise<AdminAnswer | null> => {
      counters.requests += 1;
      try {
        return await waymark.admin(method, path, body, { 'x-request-id': requestId });
      } catch {
        return null;
      }
    };

    // Each writer owns a service with two clusters: its writes never race another writer's, so the
    // order of its acknowledgements is the order of its writes.
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, i) => {
        const w: Writer = {
          service: `svc-${i}`,
          weights: {
            a: { acked: 100, ackedRequestId: null, pending: null },
            b: { acked: 100, ackedRequestId: null, pending: null },
          },
          panic: { acked: 50, ackedRequestId: null, pending: null },
          overrides: new Set(),
          pendingOverride: null,
          sequence: 0,
        };
        writers[i] = w;
        const setup = async (path: string, body: unknown, what: string, check: (after: any) => boolean) => {
          const requestId = `chaos3-setup-${i}-${what}`;
          const res = await call('PUT', path, body, requestId);
          if (!res || res.status >= 300) throw new Error(`setup PUT ${path}: ${res?.status} ${res?.text}`);
          counters.acked += 1;
          acks.push({ requestId, target: path.slice(1), check });
        };
        await setup(
          `/services/${w.service}`,
          serviceBody(w, 50),
          'service',
          (a) => a?.policy?.panicThresholdPercent === 50,
        );
        for (const name of Object.keys(CLUSTERS) as ClusterName[])
          await setup(clusterPath(w, name), clusterBody(name, 100), name, (a) => a?.weight === 100);
      }),
    );

    for (let round = 1; round <= rounds; round++) {
      let stopped = false;
      const killAtMs = ROUND_MIN_MS + Math.round(random() * ROUND_SPAN_MS);
      const loops = writers.map((w, i) =>
        writeUntilKilled(w, seededRandom(context.seed * 1_000 + round * 100 + i), round, () => stopped),
      );
      await sleep(killAtMs);
      stopped = true;
      await waymark.kill('SIGKILL');
      await Promise.all(loops);

      const integrity = await integrityCheck(file);
      if (integrity !== 'ok') {
        counters.integrityFailures += 1;
        context.log(`round ${round}: integrity_check: ${integrity}`);
      }
      waymark = await startWaymark({ databaseUrl: `file:${file}`, dir: context.dir, env });
      const audit = await readAudit(waymark, auditCursor);
      counters.requests += audit.pages;
      auditCursor = audit.next;
      await verify(round, audit.entries);
      context.log(
        `round ${round}: killed at ${killAtMs} ms; ${counters.acked} acknowledged so far, ` +
          `${counters.lostWrites} lost, ${counters.auditMismatches} audit mismatches`,
      );
    }

    /** One writer's loop: random writes, one at a time, until the server dies under it. */
    async function writeUntilKilled(w: Writer, r: () => number, round: number, stop: () => boolean): Promise<void> {
      while (!stop()) {
        const requestId = `chaos3-r${round}-${w.service}-${++w.sequence}`;
        const pick = r();
        if (pick < 0.5) {
          const name: ClusterName = r() < 0.5 ? 'a' : 'b';
          const known = w.weights[name];
          const value = freshValue(r, 1, 10_000, known.acked);
          known.pending = { value, requestId };
          const res = await call('PUT', clusterPath(w, name), clusterBody(name, value), requestId);
          if (!settle(res)) return;
          if (res && res.status < 300) {
            known.acked = value;
            known.ackedRequestId = requestId;
            acks.push({ requestId, target: clusterPath(w, name).slice(1), check: (after) => after?.weight === value });
          }
          known.pending = null;
        } else if (pick < 0.75) {
          const value = freshValue(r, 0, 100, w.panic.acked);
          w.panic.pending = { value, requestId };
          const res = await call('PUT', `/services/${w.service}`, serviceBody(w, value), requestId);
          if (!settle(res)) return;
          if (res && res.status < 300) {
            w.panic.acked = value;
            w.panic.ackedRequestId = requestId;
            acks.push({
              requestId,
              target: `services/${w.service}`,
              check: (after) => after?.policy?.panicThresholdPercent === value,
            });
          }
          w.panic.pending = null;
        } else if (w.overrides.size === 0) {
          w.pendingOverride = { kind: 'create', requestId };
          const res = await call('POST', '/overrides', drainBody(w), requestId);
          if (!settle(res)) return;
          if (res && res.status < 300) {
            const id = String(res.json?.id);
            w.overrides.add(id);
            acks.push({ requestId, target: `overrides/${id}`, check: (after) => after?.active !== false });
          }
          w.pendingOverride = null;
        } else {
          const id = [...w.overrides][0] as string;
          w.pendingOverride = { kind: 'end', id, requestId };
          const res = await call('DELETE', `/overrides/${id}`, undefined, requestId);
          if (!settle(res)) return;
          if (res && res.status < 300) {
            w.overrides.delete(id);
            acks.push({ requestId, target: `overrides/${id}`, check: () => true });
          }
          w.pendingOverride = null;
        }
      }
    }

    /** Counts an answer; false when there was none (the server died: the write stays pending). */
    function settle(res: AdminAnswer | null): boolean {
      if (!res) {
        counters.unacknowledged += 1;
        return false;
      }
      if (res.status < 300) counters.acked += 1;
      else {
        counters.refused += 1;
        context.log(`refused: ${res.status} ${res.text.slice(0, 200)}`);
      }
      return true;
    }

    /** After a restart: every acknowledged write is there, and the audit log agrees with the state. */
    async function verify(round: number, entries: AuditEntry[]): Promise<void> {
      const byRequest = new Map<string, AuditEntry[]>();
      for (const e of entries) {
        if (!e.requestId) continue;
        const list = byRequest.get(e.requestId) ?? [];
        list.push(e);
        byRequest.set(e.requestId, list);
      }
      for (const ack of acks) {
        const found = byRequest.get(ack.requestId)?.find((e) => e.target === ack.target);
        if (!found || !ack.check(found.after)) {
          counters.auditMismatches += 1;
          context.log(`round ${round}: no audit entry matching ${ack.requestId} on ${ack.target}`);
        }
      }
      acks.length = 0;
      const audited = (requestId: string) => byRequest.has(requestId);

      for (const w of writers) {
        counters.requests += 3;
        const [service, clusters, overrides] = await Promise.all([
          waymark.admin('GET', `/services/${w.service}`),
          waymark.admin('GET', `/services/${w.service}/clusters`),
          waymark.admin('GET', `/overrides?service=${w.service}&active=true`),
        ]);
        const weightOf = (name: string) =>
          (clusters.json?.clusters as { name: string; weight: number }[] | undefined)?.find((c) => c.name === name)
            ?.weight;
        for (const name of Object.keys(CLUSTERS) as ClusterName[])
          resolve(round, `${w.service}/${name} weight`, w.weights[name], weightOf(name), audited);
        resolve(
          round,
          `${w.service} panicThresholdPercent`,
          w.panic,
          service.json?.policy?.panicThresholdPercent,
          audited,
        );

        const active = new Set(((overrides.json?.overrides ?? []) as { id: string }[]).map((o) => o.id));
        const pending = w.pendingOverride;
        for (const id of w.overrides) {
          if (active.has(id)) continue;
          // An acknowledged drain is gone: lost, unless its end was the write in flight.
          if (pending?.kind === 'end' && pending.id === id) {
            w.overrides.delete(id);
            if (!audited(pending.requestId)) flagAudit(round, `end of override ${id} applied without an audit entry`);
          } else {
            counters.lostWrites += 1;
            context.log(`round ${round}: ${w.service}: acknowledged override ${id} is not active`);
            w.overrides.delete(id);
          }
        }
        if (pending?.kind === 'end' && w.overrides.has(pending.id) && audited(pending.requestId))
          flagAudit(round, `override ${pending.id}: an audited end that did not happen`);
        let adopted = false;
        for (const id of active) {
          if (w.overrides.has(id)) continue;
          // An active override nobody acknowledged: only the create in flight may have made it.
          if (pending?.kind === 'create' && !adopted) {
            adopted = true;
            w.overrides.add(id);
            if (!audited(pending.requestId)) flagAudit(round, `override ${id} created without an audit entry`);
          } else {
            counters.lostWrites += 1;
            context.log(`round ${round}: ${w.service}: override ${id} is active, but was ended`);
          }
        }
        if (pending?.kind === 'create' && !adopted && audited(pending.requestId))
          flagAudit(round, `${w.service}: an audited override create that did not happen`);
        w.pendingOverride = null;
      }
    }

    /** Compares one value with what was acknowledged, then takes what is there as the new truth. */
    function resolve(
      round: number,
      what: string,
      known: Known<number>,
      actual: number | undefined,
      audited: (requestId: string) => boolean,
    ): void {
      const pending = known.pending;
      if (actual === known.acked) {
        if (pending) counters.inFlightDropped += 1;
        if (pending && audited(pending.requestId)) flagAudit(round, `${what}: audited write ${pending.requestId} lost`);
      } else if (pending && actual === pending.value) {
        counters.inFlightApplied += 1;
        if (!audited(pending.requestId)) flagAudit(round, `${what}: ${pending.requestId} applied without audit`);
        known.acked = pending.value;
        known.ackedRequestId = pending.requestId;
      } else {
        counters.lostWrites += 1;
        context.log(`round ${round}: ${what} is ${actual}, acknowledged ${known.acked} (${known.ackedRequestId})`);
        if (typeof actual === 'number') known.acked = actual;
      }
      known.pending = null;
    }

    function flagAudit(round: number, message: string): void {
      counters.auditMismatches += 1;
      context.log(`round ${round}: ${message}`);
    }

    return {
      scenario: '3 crash consistency',
      requests: counters.requests,
      clientErrors: 0,
      savableErrors: 0,
      duplicatedNonIdempotent: 0,
      lostWrites: counters.lostWrites,
      invariantViolations: counters.auditMismatches + counters.integrityFailures,
      peakRssMb: Math.round(rss.stop()),
      details: {
        rounds,
        acknowledged: counters.acked,
        inFlightAtKill: counters.unacknowledged,
        inFlightApplied: counters.inFlightApplied,
        inFlightDropped: counters.inFlightDropped,
        refused: counters.refused,
        auditMismatches: counters.auditMismatches,
        integrityFailures: counters.integrityFailures,
      },
    };
  } finally {
    rss.stop();
    await waymark.stop();
  }
}

function clusterPath(w: Writer, name: ClusterName): string {
  return `/services/${w.service}/clusters/${name}`;
}

/** Clusters point at a closed port: the health sync is off, nothing is ever proxied to them. */
function clusterBody(name: ClusterName, weight: number) {
  return clusterSpec(CLUSTERS[name], `http://127.0.0.1:${name === 'a' ? 40_001 : 40_002}`, { weight });
}

function serviceBody(w: Writer, panicThresholdPercent: number) {
  return { hosts: [`${w.service}.chaos.test`], policy: { panicThresholdPercent } };
}

function drainBody(w: Writer) {
  return {
    service: w.service,
    cluster: 'b',
    action: 'drain',
    reason: 'chaos crash consistency',
    ttlSeconds: DRAIN_TTL_SECONDS,
    force: true,
  };
}

/** A random integer in [min, max] other than `not`, so that every write changes its object. */
function freshValue(r: () => number, min: number, max: number, not: number): number {
  for (;;) {
    const v = min + Math.floor(r() * (max - min + 1));
    if (v !== not) return v;
  }
}

interface AuditEntry {
  id: number;
  target: string;
  action: string;
  after: any;
  requestId: string | null;
}

/** Every audit entry after `cursor`, oldest first, page by page. */
async function readAudit(
  waymark: WaymarkProcess,
  cursor: number,
): Promise<{ entries: AuditEntry[]; next: number; pages: number }> {
  const entries: AuditEntry[] = [];
  let next = cursor;
  let pages = 0;
  for (;;) {
    pages += 1;
    const res = await waymark.admin('GET', `/audit?after=${next}&limit=1000`);
    if (res.status !== 200) throw new Error(`GET /audit: ${res.status} ${res.text.slice(0, 300)}`);
    const page = res.json as { entries: AuditEntry[]; next: number | null };
    entries.push(...page.entries);
    if (page.entries.length === 0 || page.next === null || page.next === next) break;
    next = page.next;
    if (page.entries.length < 1000) break;
  }
  const last = entries[entries.length - 1];
  return { entries, next: last ? Math.max(next, last.id) : next, pages };
}

/** `PRAGMA integrity_check` on the store file, opened on its own while no server runs. */
async function integrityCheck(file: string): Promise<string> {
  const client = createClient({ url: `file:${file}` });
  try {
    const rs = await client.execute('PRAGMA integrity_check');
    return rs.rows.map((row) => String(row[0])).join('; ');
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  } finally {
    client.close();
  }
}

const scenario: Scenario = { name: '3 crash consistency', run };
export default scenario;
