import { type Command, InvalidArgumentError } from 'commander';
import type { OverrideView } from '../../store/overrides.js';
import { type CommandContext, runWithApi } from '../context.js';
import { formatDuration, parseDuration } from '../duration.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type FieldHints, formatTime, printJson, reportFailure } from '../output.js';
import { overrideTarget, renderOverrides, SHORT_ID_CHARS } from './override-table.js';

/** The most overrides one listing asks for (the API's own cap). */
const LIST_LIMIT = 1000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** commander's parser for `--for`: a bad duration is a usage error naming the forms it takes. */
export function durationOption(value: string): number {
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new InvalidArgumentError(parsed.error);
  return parsed.seconds;
}

interface CreateOptions {
  region?: string;
  cluster?: string;
  for: number;
  reason: string;
  force?: boolean;
}

/** `waymark drain`, `pin`, `overrides`, `end`: POST, GET and DELETE /overrides. */
export function registerOverrideCommands(program: Command): void {
  program
    .command('drain')
    .description('send no traffic to a cluster, or to every cluster of a region, for a while')
    .argument('<service>', 'the service')
    .argument('[cluster]', 'the cluster to drain (or --region, or both)')
    .option(
      '--region <region>',
      'drain every cluster of this region (with CLUSTER: only that cluster, for clients in it)',
    )
    .requiredOption('--for <duration>', 'how long: 30s, 10m, 2h, 1d (at most 7d); it ends by itself', durationOption)
    .requiredOption('--reason <text>', 'why, in a few words (the audit log and the events show it)')
    .option('--force', 'apply it even if it leaves the service nowhere to send traffic')
    .action((service: string, cluster: string | undefined, opts: CreateOptions, command: Command) =>
      runWithApi(command, (ctx) =>
        createOverride(ctx, { service, action: 'drain', ...optional({ cluster, region: opts.region }) }, opts, {
          cluster: 'CLUSTER',
        }),
      ),
    );

  program
    .command('pin')
    .description("send a client region's traffic to one cluster first, while it is healthy")
    .argument('<service>', 'the service')
    .requiredOption('--region <region>', 'the client region whose traffic is pinned')
    .requiredOption('--cluster <cluster>', 'the cluster it goes to')
    .requiredOption('--for <duration>', 'how long: 30s, 10m, 2h, 1d (at most 7d); it ends by itself', durationOption)
    .requiredOption('--reason <text>', 'why, in a few words')
    .option('--force', 'apply it even if it leaves the service nowhere to send traffic')
    .action((service: string, opts: CreateOptions, command: Command) =>
      runWithApi(command, (ctx) =>
        createOverride(ctx, { service, action: 'pin', region: opts.region, cluster: opts.cluster }, opts, {
          cluster: '--cluster',
        }),
      ),
    );

  program
    .command('overrides')
    .description('overrides, newest first')
    .option('--active', 'only those in force now')
    .option('--service <service>', 'only those of this service')
    .action((opts: { active?: boolean; service?: string }, command: Command) =>
      runWithApi(command, (ctx) => listOverrides(ctx, opts)),
    );

  program
    .command('end')
    .description('end an override now (its id, or the first characters of it, as tables show)')
    .argument('<id>', 'the override id or a unique prefix of an active one')
    .option('--reason <text>', 'why it ends now (sent as ?reason=; recorded once the API reads it)')
    .action((id: string, opts: { reason?: string }, command: Command) =>
      runWithApi(command, (ctx) => endOverride(ctx, id, opts.reason)),
    );
}

function optional<T extends Record<string, string | undefined>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}

async function createOverride(
  ctx: CommandContext,
  target: { service: string; action: 'drain' | 'pin'; cluster?: string | undefined; region?: string | undefined },
  opts: CreateOptions,
  clusterHint: FieldHints,
): Promise<ExitCode> {
  const result = await ctx.api.json<OverrideView>({
    method: 'POST',
    path: '/overrides',
    json: { ...target, reason: opts.reason, ttlSeconds: opts.for, ...(opts.force ? { force: true } : {}) },
  });
  if (!result.ok) {
    return reportFailure(ctx.out, result.failure, {
      service: 'SERVICE',
      region: '--region',
      reason: '--reason',
      ttlSeconds: '--for',
      ...clusterHint,
    });
  }
  const o = result.data;
  if (ctx.out.json) printJson(ctx.out, o);
  else {
    const verb = o.action === 'drain' ? 'Drained' : 'Pinned';
    ctx.out.out(
      [
        `${verb} ${o.service} ${overrideTarget(o)} for ${formatDuration(opts.for)}, until ${formatTime(o.expiresAt)}${o.forced ? ' (forced)' : ''}.`,
        `Override ${o.id}`,
        `End it early: waymark end ${o.id.slice(0, SHORT_ID_CHARS)}`,
      ].join('\n'),
    );
  }
  return EXIT.ok;
}

async function listOverrides(ctx: CommandContext, opts: { active?: boolean; service?: string }): Promise<ExitCode> {
  const result = await ctx.api.json<{ overrides: OverrideView[] }>({
    path: '/overrides',
    query: { service: opts.service, active: opts.active ? true : undefined, limit: LIST_LIMIT },
  });
  if (!result.ok) return reportFailure(ctx.out, result.failure, { 'query.service': '--service' });
  const { overrides } = result.data;
  if (ctx.out.json) printJson(ctx.out, result.data);
  else if (overrides.length === 0) ctx.out.out(opts.active ? 'No override is in force.' : 'No overrides.');
  else ctx.out.out(renderOverrides(overrides, ctx.out));
  return EXIT.ok;
}

async function endOverride(ctx: CommandContext, idOrPrefix: string, reason: string | undefined): Promise<ExitCode> {
  let id = idOrPrefix;
  if (!UUID.test(idOrPrefix)) {
    // A prefix, as tables show ids: it must name one override, one in force if any is.
    const listed = await ctx.api.json<{ overrides: OverrideView[] }>({
      path: '/overrides',
      query: { limit: LIST_LIMIT },
    });
    if (!listed.ok) return reportFailure(ctx.out, listed.failure);
    const matches = listed.data.overrides.filter((o) => o.id.startsWith(idOrPrefix.toLowerCase()));
    const active = matches.filter((o) => o.active);
    const candidates = active.length ? active : matches;
    if (candidates.length > 1) {
      ctx.out.err(`error: "${idOrPrefix}" starts the ids of ${candidates.length} overrides; give more of it:`);
      ctx.out.err(renderOverrides(candidates, ctx.out, '  '));
      return EXIT.usage;
    }
    // None: the API says it does not exist.
    id = candidates[0]?.id ?? idOrPrefix;
  }
  const path = `/overrides/${encodeURIComponent(id)}`;
  const ended = await ctx.api.json<null>({ method: 'DELETE', path, query: { reason } });
  if (!ended.ok) return reportFailure(ctx.out, ended.failure);
  const after = await ctx.api.json<OverrideView>({ path });
  if (!after.ok) return reportFailure(ctx.out, after.failure);
  const o = after.data;
  if (ctx.out.json) printJson(ctx.out, o);
  else {
    const left = (Date.parse(o.expiresAt) - Date.parse(o.endedAt ?? o.expiresAt)) / 1000;
    ctx.out.out(
      `Ended ${o.action} of ${o.service} ${overrideTarget(o)} (override ${o.id}); it had ${formatDuration(left)} left.`,
    );
  }
  return EXIT.ok;
}
