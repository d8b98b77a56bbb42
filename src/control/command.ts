import { sql } from 'drizzle-orm';
import type { Problem } from '../problem.js';
import type { Db } from '../store/client.js';
import { auditLog, configChanges, configVersions, events, revision } from '../store/schema.js';
import { transact, type Tx } from '../store/transaction.js';

/** Who makes a write, under which request, and when: every command takes one. */
export interface Actor {
  name: string;
  requestId: string;
  now: number;
}

/** What a command answers: its value and the revision its write produced, or why it refused. */
export type CommandResult<T> = { ok: true; value: T; revision: number | null } | { ok: false; problem: Problem };

/** A change recorded in the audit log: what, on which target, before and after. */
interface AuditEntryInput {
  action: string;
  target: string;
  before: unknown;
  after: unknown;
}

/** An event: what changed for routing and why (cluster states, shares, overrides, automation). */
export interface NewEvent {
  at: number;
  service: string;
  cluster: string | null;
  kind: string;
  message: string;
  detail: unknown;
}

/** A change of one configuration object (a service's own fields, a cluster, a route), in the config document's form. */
interface ConfigChangeInput {
  kind: 'service' | 'cluster' | 'route';
  service: string;
  /** The cluster's or route's name; '' for the service. */
  name: string;
  before: unknown;
  after: unknown;
}

/** A command's transaction: the query builders, the actor, and what to record with the write. */
export interface CommandTx {
  tx: Tx;
  actor: Actor;
  audit: (entry: AuditEntryInput) => Promise<void>;
  event: (event: NewEvent) => Promise<void>;
  /**
   * Records a configuration object's change in this transaction's configuration version (made with the
   * first change: every transaction that changes the configuration makes exactly one).
   */
  configChange: (change: ConfigChangeInput) => Promise<void>;
}

export interface CommandOptions {
  /** The configuration version's message; by default, what its first change did. */
  message?: string;
}

/** A command's decision inside its transaction: a value (and whether routing changed), or a refusal. */
export type Outcome<T> = { ok: true; value: T; routingChanged: boolean } | { ok: false; problem: Problem };

/** Thrown inside the transaction to roll a refused command back; caught by `runCommand`. */
class Refused extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail);
  }
}

/**
 * Runs a command's checks and writes in one write transaction: the invariants it checks hold for what it
 * writes even with concurrent writers, on a local file or a remote store. A refusal rolls back and
 * writes nothing. When routing changed, the revision moves in the same transaction, so edges see all
 * of the change or none; the audit entries and events go in with it.
 */
export async function runCommand<T>(
  db: Db,
  actor: Actor,
  work: (c: CommandTx) => Promise<Outcome<T>>,
  options: CommandOptions = {},
): Promise<CommandResult<T>> {
  try {
    return await transact(db, async (tx) => {
      let configVersion: number | null = null;
      const c: CommandTx = {
        tx,
        actor,
        audit: async (e) => {
          await tx.insert(auditLog).values({ at: actor.now, actor: actor.name, requestId: actor.requestId, ...e });
        },
        event: async (e) => {
          await tx.insert(events).values(e);
        },
        configChange: async (change) => {
          configVersion ??= await newConfigVersion(tx, actor, options.message ?? describeChange(change));
          await tx.insert(configChanges).values({ version: configVersion, ...change });
        },
      };
      const outcome = await work(c);
      if (!outcome.ok) throw new Refused(outcome.problem);
      const version = outcome.routingChanged ? await bumpRevision(tx, actor.now) : null;
      return { ok: true as const, value: outcome.value, revision: version };
    });
  } catch (error) {
    if (error instanceof Refused) return { ok: false, problem: error.problem };
    throw error;
  }
}

async function newConfigVersion(tx: Tx, actor: Actor, message: string): Promise<number> {
  const [row] = await tx
    .insert(configVersions)
    .values({ at: actor.now, actor: actor.name, requestId: actor.requestId, message })
    .returning({ version: configVersions.version });
  return row?.version ?? 0;
}

/** `update cluster shop/eu`: what a single-object write did, as its version's message. */
function describeChange(change: ConfigChangeInput): string {
  const action = change.before === null ? 'create' : change.after === null ? 'delete' : 'update';
  return `${action} ${change.kind} ${change.service}${change.name ? `/${change.name}` : ''}`;
}

/** The revision edges poll moves up by one; the new version. */
async function bumpRevision(tx: Tx, now: number): Promise<number> {
  const [row] = await tx
    .insert(revision)
    .values({ id: 1, version: 1, updatedAt: now })
    .onConflictDoUpdate({
      target: revision.id,
      set: { version: sql`${revision.version} + 1`, updatedAt: sql`excluded.updated_at` },
    })
    .returning({ version: revision.version });
  return row?.version ?? 0;
}

export function done<T>(value: T, routingChanged = true): Outcome<T> {
  return { ok: true, value, routingChanged };
}

export function refuse(problem: Problem): Outcome<never> {
  return { ok: false, problem };
}
