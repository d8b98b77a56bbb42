import { eq } from 'drizzle-orm';
import { planIstioImport, type PlannedService } from '../istio/import.js';
import { mergeFailover, mergePolicy, mergeSubsets, sameConfig } from '../istio/merge.js';
import { invalid, Problem } from '../problem.js';
import type { Db } from '../store/client.js';
import { listRoutes, type RouteConfig } from '../store/routes.js';
import { services } from '../store/schema.js';
import { listClusters, listServices, type ServiceConfig } from '../store/services.js';
import type { Tx } from '../store/transaction.js';
import { done, refuse, runCommand, type Actor, type CommandResult } from './command.js';
import { subsetWarnings, upsertRoute } from './routes.js';

/** What an import does to a route: one it creates, one it changes, or one that already says the same. */
type RouteAction = 'create' | 'update' | 'unchanged';

/** What an import changes for one service, with the state before for the audit log. */
interface ServiceChange {
  before: ServiceConfig;
  /** The service with its new policy, failover rules and subsets; null: the service row is left as it is. */
  after: ServiceConfig | null;
  routes: { before: RouteConfig | null; after: RouteConfig; action: RouteAction }[];
}

/** What the import wrote (or, in a dry run, would write), service by service, and what it could not honour. */
export interface IstioImportReport {
  dryRun: boolean;
  services: ReturnType<typeof describe>[];
  warnings: string[];
}

/**
 * Istio VirtualService and DestinationRule YAML becomes routes, service subsets, policy and failover
 * rules of services that already exist (the import does not invent origins). As with `kubectl apply`,
 * each file may hold part of the configuration: a VirtualService names subsets stored by an earlier
 * import as well as those of its own file. Read and written in one transaction: all of it or nothing;
 * what already says the same is not written again (an unchanged import moves no revision), and a dry
 * run answers the same without writing. `allowed`: the services the importer may touch (all by default).
 */
export function importIstio(
  db: Db,
  actor: Actor,
  input: { yaml: string; dryRun: boolean; allowed?: (service: string) => boolean },
): Promise<CommandResult<IstioImportReport>> {
  return runCommand(db, actor, async (c) => {
    // Subsets stored by earlier imports (or the admin API) are the ones a VirtualService may name besides its file's.
    const known = await listServices(c.tx);
    const planned = planIstioImport(input.yaml, new Map(known.map((s) => [s.name, s.subsets])));
    if (!planned.ok) return refuse(invalid('the Istio resources cannot be imported', planned.errors));
    const { services: planServices, warnings: planWarnings } = planned.plan;
    // A key limited to some services imports for those only: the whole import is refused, not trimmed.
    const denied = input.allowed ? planServices.find((s) => !input.allowed?.(s.name)) : undefined;
    if (denied) {
      return refuse(
        new Problem({
          code: 'forbidden',
          detail: `this token may not touch service "${denied.name}", which the import configures`,
        }),
      );
    }
    const stored = planServices.map((s) => known.find((k) => k.name === s.name));
    const missing = planServices.filter((_, i) => !stored[i]).map((s) => `"${s.name}"`);
    if (missing.length) {
      const which = missing.length === 1 ? `service ${missing[0]} does` : `services ${missing.join(', ')} do`;
      return refuse(
        new Problem({
          code: 'not-found',
          detail: `${which} not exist: create it with its clusters first; the import sets routes, subsets and policy, not origins`,
        }),
      );
    }
    const warnings = [...planWarnings];
    const changes: ServiceChange[] = [];
    for (const [i, service] of planServices.entries())
      changes.push(await changeFor(c.tx, service, stored[i] as ServiceConfig, warnings));
    const report = {
      dryRun: input.dryRun,
      services: planServices.map((s, i) => describe(s, changes[i] as ServiceChange)),
      warnings,
    };
    if (input.dryRun) return done(report, false);
    let wrote = false;
    for (const change of changes) {
      for (const { before, after, action } of change.routes) {
        if (action === 'unchanged') continue;
        await upsertRoute(c, before, after);
        wrote = true;
      }
      if (change.after) {
        const { name, failover, policy, subsets } = change.after;
        await c.tx
          .update(services)
          .set({ failover, policy, subsets, updatedAt: actor.now })
          .where(eq(services.name, name));
        await c.audit({
          action: 'service.update',
          target: `services/${name}`,
          before: change.before,
          after: change.after,
        });
        await c.configChange({ kind: 'service', service: name, name: '', before: change.before, after: change.after });
        wrote = true;
      }
    }
    return done(report, wrote);
  });
}

/**
 * The service's writes (none for what already says the same), warning about routes and subsets kept,
 * route subsets that select no cluster, and failover regions without clusters.
 */
async function changeFor(
  tx: Tx,
  service: PlannedService,
  before: ServiceConfig,
  warnings: string[],
): Promise<ServiceChange> {
  const existing = await listRoutes(tx, service.name);
  const clusters = await listClusters(tx, service.name);
  const imported = new Set(service.routes.map((r) => r.route.name));
  const kept = existing.filter((r) => !imported.has(r.name));
  if (kept.length && service.routes.length) {
    warnings.push(
      `service "${service.name}": routes not in this import are kept as they are: ${kept.map((r) => `${r.name} (order ${r.order})`).join(', ')}`,
    );
  }
  const subsets = service.subsets ? mergeSubsets(before.subsets, service.subsets) : before.subsets;
  const keptSubsets = service.subsets
    ? Object.keys(before.subsets).filter((name) => !Object.hasOwn(service.subsets ?? {}, name))
    : [];
  if (keptSubsets.length) {
    warnings.push(
      `service "${service.name}": subsets not in this import's DestinationRule are kept as they are: ${keptSubsets.join(', ')}`,
    );
  }
  const routeChanges = service.routes.map(({ route }) => {
    const after = { service: service.name, ...route };
    for (const w of subsetWarnings(after, subsets, clusters))
      warnings.push(`service "${service.name}": route ${route.name}: ${w}`);
    const previous = existing.find((r) => r.name === route.name) ?? null;
    const action: RouteAction = !previous ? 'create' : sameConfig(previous, after) ? 'unchanged' : 'update';
    return { before: previous, after, action };
  });
  for (const rule of service.failover ?? []) {
    for (const to of rule.to) {
      if (!clusters.some((cl) => cl.region === to))
        warnings.push(
          `service "${service.name}": failover from ${rule.from} to ${to}: no cluster of the service is in ${to} yet`,
        );
    }
  }
  const after: ServiceConfig = {
    ...before,
    policy: service.policy ? mergePolicy(before.policy, service.policy) : before.policy,
    failover: service.failover ? mergeFailover(before.failover, service.failover) : before.failover,
    subsets,
  };
  return { before, after: sameConfig(before, after) ? null : after, routes: routeChanges };
}

/**
 * What the import writes (or would) for a service: routes with their Istio source and action, and the
 * policy, failover rules and subsets after it (null: unchanged).
 */
function describe(service: PlannedService, change: ServiceChange) {
  const set = <K extends 'policy' | 'failover' | 'subsets'>(field: K) =>
    change.after && service[field] && !sameConfig(change.after[field], change.before[field])
      ? change.after[field]
      : null;
  return {
    name: service.name,
    routes: change.routes.map(({ after, action }, i) => ({ ...after, source: service.routes[i]?.source, action })),
    policy: set('policy'),
    failover: set('failover'),
    subsets: set('subsets'),
  };
}
