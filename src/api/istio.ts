import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { planIstioImport, type PlannedService } from '../istio/import.js';
import { mergeFailover, mergePolicy, mergeSubsets, sameConfig } from '../istio/merge.js';
import { writeIstioImport, type ServiceChange } from '../istio/write.js';
import type { Runtime } from '../runtime.js';
import * as q from '../store/queries.js';
import { listRoutes } from '../store/routes.js';
import { requireScope } from './auth.js';
import { invalid, Problem } from '../problem.js';
import { isConstraintError, parseParam } from './problem.js';
import { subsetWarnings } from './routes.js';
import { actorOf, changed } from './write.js';

/** Istio YAML for a handful of services is kilobytes; anything this big is a mistake, refused unread. */
export const MAX_IMPORT_BYTES = 1_000_000;

const dryRunSchema = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

/**
 * `POST /import/istio[?dryRun=true]`: Istio VirtualService and DestinationRule YAML becomes routes,
 * service subsets, policy and failover rules of services that already exist (the import does not
 * invent origins). As with `kubectl apply`, each file may hold part of the configuration: a
 * VirtualService names subsets stored by an earlier import as well as those of its own file.
 * Everything is written in one batch, or nothing; what already says the same is not written again; a
 * dry run answers the same without writing. Whatever Waymark cannot honour is listed in `warnings`.
 */
export function registerIstioRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.post('/import/istio', requireScope(rt.grants, 'write'), async (c) => {
    const dryRun = parseParam('dryRun', c.req.query('dryRun'), dryRunSchema);
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > MAX_IMPORT_BYTES) throw tooLarge();
    const text = await c.req.text();
    if (text.length > MAX_IMPORT_BYTES) throw tooLarge();
    if (text.trim() === '') {
      throw invalid('the body is empty', [{ field: '(body)', message: 'must be YAML: VirtualService and DestinationRule documents separated by "---"' }]);
    }
    // Subsets stored by earlier imports (or the admin API) are the ones a VirtualService may name besides its file's.
    const known = await q.listServices(db);
    const planned = planIstioImport(text, new Map(known.map((s) => [s.name, s.subsets])));
    if (!planned.ok) throw invalid('the Istio resources cannot be imported', planned.errors);
    const { services, warnings: planWarnings } = planned.plan;

    const stored = services.map((s) => known.find((k) => k.name === s.name));
    const missing = services.filter((_, i) => !stored[i]).map((s) => `"${s.name}"`);
    if (missing.length) {
      const which = missing.length === 1 ? `service ${missing[0]} does` : `services ${missing.join(', ')} do`;
      throw new Problem({ code: 'not-found', detail: `${which} not exist: create it with its clusters first; the import sets routes, subsets and policy, not origins` });
    }

    const warnings = [...planWarnings];
    const changes: ServiceChange[] = [];
    for (const [i, service] of services.entries()) {
      const change = await changeFor(service, stored[i] as q.ServiceConfig, warnings);
      changes.push(change);
    }

    if (!dryRun) {
      let wrote: boolean;
      try {
        wrote = await writeIstioImport(db, actorOf(c, rt), changes);
      } catch (error) {
        // A service deleted between the check and the write: its routes break the foreign key.
        if (isConstraintError(error)) throw new Problem({ code: 'not-found', detail: 'a service of the import was deleted meanwhile; nothing was written' });
        throw error;
      }
      if (wrote) await changed(rt);
    }
    return c.json({ dryRun, services: services.map((s, i) => describe(s, changes[i] as ServiceChange)), warnings });
  });

  /**
   * The service's writes (none for what already says the same), warning about routes and subsets kept,
   * route subsets that select no cluster, and failover regions without clusters.
   */
  async function changeFor(service: PlannedService, before: q.ServiceConfig, warnings: string[]): Promise<ServiceChange> {
    const [existing, clusters] = await Promise.all([listRoutes(db, service.name), q.listClusters(db, service.name)]);
    const imported = new Set(service.routes.map((r) => r.route.name));
    const kept = existing.filter((r) => !imported.has(r.name));
    if (kept.length && service.routes.length) {
      warnings.push(`service "${service.name}": routes not in this import are kept as they are: ${kept.map((r) => `${r.name} (order ${r.order})`).join(', ')}`);
    }
    const subsets = service.subsets ? mergeSubsets(before.subsets, service.subsets) : before.subsets;
    const keptSubsets = service.subsets ? Object.keys(before.subsets).filter((name) => !Object.hasOwn(service.subsets ?? {}, name)) : [];
    if (keptSubsets.length) {
      warnings.push(`service "${service.name}": subsets not in this import's DestinationRule are kept as they are: ${keptSubsets.join(', ')}`);
    }
    const routes = service.routes.map(({ route }) => {
      const after = { service: service.name, ...route };
      for (const w of subsetWarnings(after, subsets, clusters)) warnings.push(`service "${service.name}": route ${route.name}: ${w}`);
      const previous = existing.find((r) => r.name === route.name) ?? null;
      const action = !previous ? 'create' : sameConfig(previous, after) ? 'unchanged' : 'update';
      return { before: previous, after, action } as const;
    });
    for (const rule of service.failover ?? []) {
      for (const to of rule.to) {
        if (!clusters.some((cl) => cl.region === to)) warnings.push(`service "${service.name}": failover from ${rule.from} to ${to}: no cluster of the service is in ${to} yet`);
      }
    }
    const after: q.ServiceConfig = {
      ...before,
      policy: service.policy ? mergePolicy(before.policy, service.policy) : before.policy,
      failover: service.failover ? mergeFailover(before.failover, service.failover) : before.failover,
      subsets,
    };
    return { before, after: sameConfig(before, after) ? null : after, routes };
  }
}

/**
 * What the import writes (or would) for a service: routes with their Istio source and action, and the
 * policy, failover rules and subsets after it (null: unchanged).
 */
function describe(service: PlannedService, change: ServiceChange) {
  const set = <K extends 'policy' | 'failover' | 'subsets'>(field: K) => (change.after && service[field] && !sameConfig(change.after[field], change.before[field]) ? change.after[field] : null);
  return {
    name: service.name,
    routes: change.routes.map(({ after, action }, i) => ({ ...after, source: service.routes[i]?.source, action })),
    policy: set('policy'),
    failover: set('failover'),
    subsets: set('subsets'),
  };
}

function tooLarge(): Problem {
  return new Problem({ code: 'payload-too-large', detail: `the body is over ${MAX_IMPORT_BYTES} bytes; import fewer resources at a time` });
}
