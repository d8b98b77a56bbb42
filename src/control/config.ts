import { Problem } from '../problem.js';
import type { ConfigDocument, ServiceDoc } from '../spec/config.js';
import type { Db } from '../store/client.js';
import { configAt, currentConfigVersion, readConfig } from '../store/config.js';
import type { ClusterConfig, ServiceConfig } from '../store/services.js';
import type { RouteConfig } from '../store/routes.js';
import { writeCluster, removeCluster } from './clusters.js';
import { type Actor, type CommandResult, type CommandTx, done, type Outcome, refuse, runCommand } from './command.js';
import { type ChangeAction, diffConfig, type FieldChange, type ObjectChange } from './config-diff.js';
import { removeRoute, writeRoute } from './routes.js';
import { removeService, writeService } from './services.js';

export interface ApplyInput {
  document: ConfigDocument;
  /** Delete the objects the document does not hold. */
  prune: boolean;
  /** Answer the diff, write nothing. */
  dryRun: boolean;
  /** Refuse (412) unless the configuration is still at this version. */
  ifMatch: number | null;
  /** The version's message. */
  message?: string;
  /**
   * The services the writer may touch (a team key's); the others are out of the apply: not in its diff,
   * never pruned. The caller refuses a document naming one of them.
   */
  allowed?: (service: string) => boolean;
}

/** One object's change as the API shows it. */
interface ChangeView {
  kind: ObjectChange['kind'];
  service: string;
  name?: string;
  action: ChangeAction;
  fields?: FieldChange[];
}

export interface ApplyResult {
  dryRun: boolean;
  /** The configuration's version after the apply (the one it was at, for a dry run or no change). */
  version: number;
  changes: ChangeView[];
  summary: Record<ChangeAction, number>;
}

/**
 * Applies a config document: its diff against the stored configuration, written in one transaction
 * (every object or none; one audit entry per object; one configuration version), or only answered
 * with `dryRun`. A refused object (a host another service holds, a route naming an undefined subset)
 * refuses the whole apply, naming the document's field.
 */
export function applyConfig(db: Db, actor: Actor, input: ApplyInput): Promise<CommandResult<ApplyResult>> {
  return runCommand(
    db,
    actor,
    async (c) => {
      const { version, document } = await readConfig(c.tx);
      if (input.ifMatch !== null && input.ifMatch !== version)
        return refuse(
          new Problem({
            code: 'precondition-failed',
            detail: `the configuration is at version ${version}, not ${input.ifMatch}: someone changed it since; diff again`,
          }),
        );
      const current = input.allowed ? only(document, input.allowed) : document;
      const changes = diffConfig(current, input.document, input.prune);
      const result = (at: number): ApplyResult => ({
        dryRun: input.dryRun,
        version: at,
        changes: changes.map(view),
        summary: summarize(changes),
      });
      const writes = changes.filter((ch) => ch.action !== 'unchanged');
      if (input.dryRun || writes.length === 0) return done(result(version), false);
      const paths = fieldPaths(input.document);
      for (const change of releasingHostsFirst(writes)) {
        const outcome = await write(c, change);
        if (!outcome.ok) return refuse(located(outcome.problem, paths.get(keyOf(change)) ?? 'services'));
      }
      return done(result(await currentConfigVersion(c.tx)));
    },
    input.message ? { message: input.message } : {},
  );
}

/**
 * Rolls the configuration back to version `n`: the document at n applied (pruning what came after) as a
 * new version of its own, diffed and audited like any apply.
 */
export async function rollbackConfig(
  db: Db,
  actor: Actor,
  input: { version: number; reason: string; allowed?: (service: string) => boolean },
): Promise<CommandResult<ApplyResult> | null> {
  const document = await configAt(db, input.version);
  if (!document) return null;
  return applyConfig(db, actor, {
    document: input.allowed ? only(document, input.allowed) : document,
    prune: true,
    dryRun: false,
    ifMatch: null,
    message: `rollback to version ${input.version}: ${input.reason}`,
    ...(input.allowed ? { allowed: input.allowed } : {}),
  });
}

function write(c: CommandTx, change: ObjectChange): Promise<Outcome<unknown>> {
  const { service, name } = change;
  if (change.action === 'delete') {
    if (change.kind === 'route') return removeRoute(c, service, name);
    if (change.kind === 'cluster') return removeCluster(c, service, name);
    return removeService(c, service);
  }
  if (change.kind === 'route') return writeRoute(c, { ...change.after, service } as RouteConfig);
  if (change.kind === 'cluster') return writeCluster(c, { ...change.after, service } as ClusterConfig);
  return writeService(c, change.after as ServiceConfig);
}

/**
 * Services giving up hosts are written before the others, so a host can move from one service to
 * another in one apply (two services swapping hosts still cannot: each would hold the other's).
 */
function releasingHostsFirst(writes: ObjectChange[]): ObjectChange[] {
  const releases = (ch: ObjectChange) => {
    if (ch.kind !== 'service' || ch.action !== 'update') return false;
    const kept = new Set((ch.after as ServiceConfig).hosts);
    return (ch.before as ServiceConfig).hosts.some((h) => !kept.has(h));
  };
  return [...writes.filter(releases), ...writes.filter((ch) => !releases(ch))];
}

const keyOf = (o: { kind: string; service: string; name: string }) => `${o.kind}:${o.service}/${o.name}`;

/** Where each object of the document is (`services.1.clusters.0`), for the fields a refusal names. */
function fieldPaths(doc: ConfigDocument): Map<string, string> {
  const out = new Map<string, string>();
  doc.services.forEach((s: ServiceDoc, i) => {
    out.set(keyOf({ kind: 'service', service: s.name, name: '' }), `services.${i}`);
    s.clusters.forEach((c, j) =>
      out.set(keyOf({ kind: 'cluster', service: s.name, name: c.name }), `services.${i}.clusters.${j}`),
    );
    s.routes.forEach((r, j) =>
      out.set(keyOf({ kind: 'route', service: s.name, name: r.name }), `services.${i}.routes.${j}`),
    );
  });
  return out;
}

/** The refusal with its fields named in the document (`hosts.0` of the second service: `services.1.hosts.0`). */
function located(problem: Problem, at: string): Problem {
  const errors = problem.errors?.length
    ? problem.errors.map((e) => ({ field: `${at}.${e.field}`, message: e.message }))
    : [{ field: at, message: problem.detail }];
  return new Problem({ code: problem.code, detail: `${at}: ${problem.detail}`, errors });
}

/** The document with only the services `allowed` says. */
function only(doc: ConfigDocument, allowed: (service: string) => boolean): ConfigDocument {
  return { ...doc, services: doc.services.filter((s) => allowed(s.name)) };
}

function view(change: ObjectChange): ChangeView {
  return {
    kind: change.kind,
    service: change.service,
    ...(change.kind === 'service' ? {} : { name: change.name }),
    action: change.action,
    ...(change.action === 'update' ? { fields: change.fields } : {}),
  };
}

function summarize(changes: ObjectChange[]): Record<ChangeAction, number> {
  const summary: Record<ChangeAction, number> = { create: 0, update: 0, delete: 0, unchanged: 0 };
  for (const ch of changes) summary[ch.action] += 1;
  return summary;
}
