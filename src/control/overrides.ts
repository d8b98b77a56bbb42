import { and, eq, gt, isNull } from 'drizzle-orm';
import { invalid, notFound, Problem, type FieldError } from '../problem.js';
import { availability } from '../routing/availability.js';
import { compileSnapshot } from '../routing/compile.js';
import type { CompiledService, OverrideAction, SnapshotSource } from '../routing/types.js';
import type { Db } from '../store/client.js';
import { EXPIRY, getOverride, toOverrideSpec, viewOverride, type OverrideRow } from '../store/overrides.js';
import { overrides } from '../store/schema.js';
import { loadSnapshotSource } from '../store/snapshots.js';
import { done, refuse, runCommand, type Actor, type CommandResult, type CommandTx } from './command.js';

/** What an operator asks for; checked against the store by `createOverride`. */
export interface OverrideInput {
  service: string;
  action: OverrideAction;
  cluster?: string | undefined;
  region?: string | undefined;
  route?: string | undefined;
  value?: number | undefined;
  reason: string;
  ttlSeconds: number;
  force: boolean;
}

/**
 * Records an operator's override. It must name what exists; one pin per client region of a service;
 * and unless forced, it must leave the service somewhere to send traffic for every client. The checks
 * read the store inside the write's transaction, so concurrent overrides cannot each pass on a state
 * the others are about to change (20 simultaneous drains of 20 clusters: the last ones are refused).
 */
export function createOverride(db: Db, actor: Actor, input: OverrideInput): Promise<CommandResult<OverrideRow>> {
  return runCommand(db, actor, async (c) => {
    const { now } = c.actor;
    const source = await loadSnapshotSource(c.tx);
    const spec = source.services.find((s) => s.name === input.service);
    if (!spec) return refuse(notFound(`service "${input.service}"`));
    const errors = referenceErrors(source, input);
    if (errors.length) return refuse(invalid('the override names something that does not exist', errors));
    const rival =
      input.action === 'pin'
        ? source.overrides.find(
            (o) => o.action === 'pin' && o.service === input.service && o.region === input.region && o.expiresAt > now,
          )
        : undefined;
    if (rival) {
      return refuse(
        new Problem({
          code: 'conflicting-override',
          detail: `pin ${rival.id} already sends ${input.region} clients of "${input.service}" to ${rival.cluster}; delete it first`,
        }),
      );
    }
    const row: OverrideRow = {
      id: crypto.randomUUID(),
      service: input.service,
      action: input.action,
      cluster: input.cluster ?? null,
      region: input.region ?? null,
      route: input.route ?? null,
      value: input.value ?? null,
      reason: input.reason,
      actor: c.actor.name,
      forced: input.force,
      createdAt: now,
      expiresAt: now + input.ttlSeconds * 1000,
      endedAt: null,
      endedBy: null,
      endReason: null,
    };
    const withIt = compileSnapshot({ ...source, overrides: [...source.overrides, toOverrideSpec(row)] }, now);
    const service = withIt.byName.get(input.service);
    const stranded = service ? strandedBy(service) : null;
    if (stranded && !input.force)
      return refuse(
        new Problem({ code: 'would-strand', detail: `${stranded}; send "force": true to apply it anyway` }),
      );
    await c.tx.insert(overrides).values(row);
    await c.audit({
      action: 'override.create',
      target: `overrides/${row.id}`,
      before: null,
      after: viewOverride(row, now),
    });
    await c.event({
      at: now,
      service: row.service,
      cluster: row.cluster,
      kind: 'override-applied',
      message: `${row.action} ${describeTarget(row)} by ${row.actor} until ${new Date(row.expiresAt).toISOString()}: ${row.reason}`,
      detail: viewOverride(row, now),
    });
    return done(row);
  });
}

/** An operator ends an override before its time. */
export function endOverride(db: Db, actor: Actor, id: string, why?: string): Promise<CommandResult<OverrideRow>> {
  return runCommand(db, actor, async (c) => {
    const row = await getOverride(c.tx, id);
    if (!row) return refuse(notFound(`override "${id}"`));
    if (row.endedAt !== null || row.expiresAt <= c.actor.now) {
      return refuse(new Problem({ code: 'already-ended', detail: `override "${id}" is no longer active` }));
    }
    return done(await recordEnd(c, row, 'deleted', why));
  });
}

/**
 * Marks an override ended: deleted by an operator (now, by them), or expired (at its expiry, by the
 * expiry, whoever noticed it; the noticing actor is audited). Audited, with an event.
 */
export async function recordEnd(
  c: CommandTx,
  row: OverrideRow,
  endReason: 'expired' | 'deleted',
  why?: string,
): Promise<OverrideRow> {
  const endedAt = endReason === 'expired' ? row.expiresAt : c.actor.now;
  const endedBy = endReason === 'expired' ? EXPIRY : c.actor.name;
  const ended: OverrideRow = { ...row, endedAt, endedBy, endReason };
  await c.tx
    .update(overrides)
    .set({ endedAt, endedBy, endReason })
    .where(and(eq(overrides.id, row.id), isNull(overrides.endedAt)));
  await c.audit({
    action: endReason === 'expired' ? 'override.expire' : 'override.delete',
    target: `overrides/${row.id}`,
    before: row,
    after: ended,
  });
  await c.event({
    at: c.actor.now,
    service: row.service,
    cluster: row.cluster,
    kind: endReason === 'expired' ? 'override-expired' : 'override-ended',
    message: `${row.action} ${describeTarget(row)} ${endReason === 'expired' ? 'expired' : `ended by ${c.actor.name}`}${why ? `: ${why}` : ''}`,
    detail: viewOverride(ended, c.actor.now),
  });
  return ended;
}

/**
 * Ends the active overrides about a service (or one of its clusters or routes), as an operator's delete
 * would: an override about something that no longer exists must not come back with its namesake.
 */
export async function endOverridesOf(
  c: CommandTx,
  about: { service: string; cluster?: string; route?: string },
  why: string,
): Promise<void> {
  const rows = await c.tx
    .select()
    .from(overrides)
    .where(
      and(
        eq(overrides.service, about.service),
        about.cluster === undefined ? undefined : eq(overrides.cluster, about.cluster),
        about.route === undefined ? undefined : eq(overrides.route, about.route),
        isNull(overrides.endedAt),
        gt(overrides.expiresAt, c.actor.now),
      ),
    );
  for (const row of rows) await recordEnd(c, row, 'deleted', why);
}

/**
 * Why a change to a service's clusters (a delete, a move to another region) would leave every cluster it
 * keeps under a drain made without force, or null. `createOverride` keeps that from ever holding (a drain
 * that would leave no cluster is refused unless forced, counting forced drains too), so a service is only
 * ever stranded while a forced drain says so; without this check, deleting the cluster the drains spared
 * would strand it for as long as they last. Forced drains do not excuse the change: they may end first.
 * A service left with no cluster at all is not refused. `after` is the service's clusters as the change
 * leaves them; `change` says what it is, for the refusal.
 */
export async function strandingChange(
  c: CommandTx,
  service: string,
  after: readonly { name: string; region: string }[],
  change: string,
): Promise<Problem | null> {
  if (after.length === 0) return null;
  const drains = await c.tx
    .select()
    .from(overrides)
    .where(
      and(
        eq(overrides.service, service),
        eq(overrides.action, 'drain'),
        eq(overrides.forced, false),
        isNull(overrides.endedAt),
        gt(overrides.expiresAt, c.actor.now),
      ),
    );
  // What a drain covers, as routing reads it (routing/compile.ts): its cluster, or every cluster of its region.
  const drained = (cl: { name: string; region: string }) =>
    drains.some((o) => (o.cluster === null || o.cluster === cl.name) && (o.region === null || o.region === cl.region));
  if (!after.every(drained)) return null;
  return new Problem({
    code: 'would-strand',
    detail: `${change} would leave service "${service}" with only drained clusters (${after.map((cl) => cl.name).join(', ')}); end those drains first`,
  });
}

export function describeTarget(row: Pick<OverrideRow, 'service' | 'cluster' | 'region' | 'route' | 'value'>): string {
  if (row.route) return `${row.service} route ${row.route}${row.value !== null ? ` at ${row.value}` : ''}`;
  if (row.cluster && row.region) return `${row.service}/${row.cluster} for clients in ${row.region}`;
  if (row.cluster) return `${row.service}/${row.cluster}`;
  return `${row.service} in ${row.region}`;
}

/** The fields of an override that name a cluster, region or route the store does not have. */
function referenceErrors(source: SnapshotSource, o: OverrideInput): FieldError[] {
  const spec = source.services.find((s) => s.name === o.service);
  if (!spec) return [];
  const errors: FieldError[] = [];
  if (o.cluster && !spec.clusters.some((cl) => cl.name === o.cluster))
    errors.push({ field: 'cluster', message: `service "${o.service}" has no cluster "${o.cluster}"` });
  if (
    o.action === 'drain' &&
    o.region &&
    !spec.clusters.some((cl) => cl.region === o.region && (!o.cluster || cl.name === o.cluster))
  ) {
    errors.push({
      field: 'region',
      message: `service "${o.service}" has no cluster${o.cluster ? ` "${o.cluster}"` : ''} in region "${o.region}"`,
    });
  }
  if (
    o.action === 'pin' &&
    o.region &&
    !source.services.some(
      (sv) => sv.clusters.some((cl) => cl.region === o.region) || sv.failover.some((r) => r.from === o.region),
    )
  ) {
    errors.push({
      field: 'region',
      message: `no client region "${o.region}" is known to routing (no cluster or failover rule names it)`,
    });
  }
  const route = o.route ? spec.routes?.find((r) => r.name === o.route) : undefined;
  if (o.route && !route) errors.push({ field: 'route', message: `service "${o.service}" has no route "${o.route}"` });
  if (route && o.action === 'mirror-percent' && !route.mirror)
    errors.push({ field: 'route', message: `route "${o.route}" has no mirror` });
  if (route && o.action === 'canary-weight' && !route.canary)
    errors.push({ field: 'route', message: `route "${o.route}" has no canary` });
  return errors;
}

/** Why the service would have nowhere to send traffic, or null when it still has somewhere. */
function strandedBy(service: CompiledService): string | null {
  const plans = [
    service.anyRegion,
    ...service.byRegion.values(),
    ...[...service.byZone.values()].flatMap((zones) => [...zones.values()]),
  ];
  if (plans.every((p) => p.shares.levels.some((l) => l.pool.length > 0))) return null;
  const states = service.clusters
    .map((c) => `${c.name}: ${availability(c) === 'drained' ? 'drained' : c.health}`)
    .join(', ');
  const closed = plans.some((p) => p.shares.closed);
  return `this would leave service "${service.name}" with no routable cluster (${states})${closed ? ' and the service fails closed' : ''}`;
}
