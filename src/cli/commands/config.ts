import { writeFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import type { ApiResult } from '../client.js';
import { type CommandContext, runWithApi } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatTime, type Output, paint, printJson, renderTable, reportFailure, usageError } from '../output.js';
import { readDocument } from './read-file.js';

type ChangeAction = 'create' | 'update' | 'delete' | 'unchanged';

/** One object's change, as `POST /config` and `POST /config/rollback` answer it. */
interface ConfigChange {
  kind: 'service' | 'cluster' | 'route';
  service: string;
  /** The cluster's or route's name; absent for a service. */
  name?: string;
  action: ChangeAction;
  /** Updates only: each changed field, dotted path, old and new values (absent or null: not set). */
  fields?: { path: string; old?: unknown; new?: unknown }[];
}

interface ConfigResult {
  dryRun: boolean;
  /** Dry run: the version in force; applied: the new version (the same when nothing changed). */
  version: number;
  changes: ConfigChange[];
  summary: Record<ChangeAction, number>;
}

interface ConfigVersion {
  version: number;
  at: string;
  actor: string;
  message: string | null;
  changes: number;
}

interface ApplyOptions {
  file: string;
  dryRun?: boolean;
  prune?: boolean;
  message?: string;
  ifMatch?: number;
}

function versionArgument(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw new InvalidArgumentError('must be a configuration version: a whole number');
  return Number(value);
}

const APPLY_HINTS = { '(body)': '--file', 'query.message': '--message', 'If-Match': '--if-match' };

/** `waymark apply`, `diff`, `export`, `versions`, `rollback`: the configuration as one document (/config). */
export function registerConfigCommands(program: Command): void {
  const fileOption = '-f, --file <file>';
  const fileHelp = 'the config document, YAML or JSON (- for stdin)';
  const pruneHelp = 'delete what the document leaves out (services, clusters, routes); without it they stay';

  program
    .command('apply')
    .description('make the configuration say what the document says; prints what changed')
    .requiredOption(fileOption, fileHelp)
    .option('--dry-run', 'print what would change, write nothing (same as waymark diff)')
    .option('--prune', pruneHelp)
    .option('-m, --message <text>', 'why, kept with the new version')
    .option('--if-match <version>', 'refuse (412) if the configuration is no longer at this version', versionArgument)
    .action((opts: ApplyOptions, command: Command) => runWithApi(command, (ctx) => apply(ctx, opts, 'apply')));

  program
    .command('diff')
    .description('what apply would change; exits 0 when nothing, 3 when something would change')
    .requiredOption(fileOption, fileHelp)
    .option('--prune', pruneHelp)
    .action((opts: ApplyOptions, command: Command) =>
      runWithApi(command, (ctx) => apply(ctx, { ...opts, dryRun: true }, 'diff')),
    );

  program
    .command('export')
    .description('the configuration in force as one document (YAML; JSON with --json)')
    .option('-o, --output <file>', 'write it to this file instead of stdout')
    .option('--at <version>', 'the document as it was at this version (see waymark versions)', versionArgument)
    .action((opts: { output?: string; at?: number }, command: Command) =>
      runWithApi(command, (ctx) => exportConfig(ctx, opts)),
    );

  program
    .command('versions')
    .description('configuration versions, newest first: when, who, why, how many changes')
    .action((_opts: unknown, command: Command) => runWithApi(command, (ctx) => versions(ctx)));

  program
    .command('rollback')
    .description('make the configuration what it was at a version (a new version, audited)')
    .argument('<version>', 'the version to go back to (see waymark versions)', versionArgument)
    .requiredOption('--reason <text>', 'why, in a few words')
    .action((version: number, opts: { reason: string }, command: Command) =>
      runWithApi(command, (ctx) => rollback(ctx, version, opts.reason)),
    );
}

async function apply(ctx: CommandContext, opts: ApplyOptions, verb: 'apply' | 'diff'): Promise<ExitCode> {
  const file = await readDocument(opts.file);
  if (!file.ok) return usageError(ctx.out, file.error);
  const result = await ctx.api.json<ConfigResult>({
    method: 'POST',
    path: '/config',
    query: {
      dryRun: opts.dryRun ? true : undefined,
      prune: opts.prune ? true : undefined,
      message: opts.message,
    },
    headers: opts.ifMatch === undefined ? {} : { 'if-match': String(opts.ifMatch) },
    body: { text: file.text, contentType: file.name.endsWith('.json') ? 'application/json' : 'application/yaml' },
  });
  const code = report(ctx, result, APPLY_HINTS);
  if (code !== EXIT.ok || verb === 'apply' || !result.ok) return code;
  return changed(result.data.summary) ? EXIT.changes : EXIT.ok;
}

async function rollback(ctx: CommandContext, version: number, reason: string): Promise<ExitCode> {
  const result = await ctx.api.json<ConfigResult>({
    method: 'POST',
    path: '/config/rollback',
    json: { version, reason },
  });
  return report(ctx, result, { version: 'VERSION', reason: '--reason' }, version);
}

/** An apply's (or rollback's) answer: the JSON, or the diff and a summary line. */
function report(
  ctx: CommandContext,
  result: ApiResult<ConfigResult>,
  hints: Record<string, string>,
  rolledBackTo?: number,
): ExitCode {
  if (!result.ok) return reportFailure(ctx.out, result.failure, hints);
  if (ctx.out.json) printJson(ctx.out, result.data);
  else ctx.out.out(renderConfigResult(result.data, ctx.out, rolledBackTo));
  return EXIT.ok;
}

function changed(summary: ConfigResult['summary']): boolean {
  return summary.create + summary.update + summary.delete > 0;
}

const MARK: Record<Exclude<ChangeAction, 'unchanged'>, ['+' | '~' | '-', 'green' | 'yellow' | 'red']> = {
  create: ['+', 'green'],
  update: ['~', 'yellow'],
  delete: ['-', 'red'],
};

/** A field's value in a diff line: JSON, `(none)` when not set. */
function shown(value: unknown): string {
  return value === undefined || value === null ? '(none)' : JSON.stringify(value);
}

/**
 * The diff as `terraform plan` and `kubectl diff` readers expect: `+ create`, `~ update` with each
 * `field: old -> new`, `- delete` (green, yellow, red on a terminal), unchanged objects counted only,
 * then one summary line.
 */
export function renderConfigResult(result: ConfigResult, output: Output, rolledBackTo?: number): string {
  const lines: string[] = [];
  for (const change of result.changes) {
    if (change.action === 'unchanged') continue;
    const [mark, style] = MARK[change.action];
    const what =
      change.kind === 'service' ? `service ${change.service}` : `${change.kind} ${change.service}/${change.name}`;
    lines.push(paint(output.color, style, `${mark} ${what}`));
    for (const field of change.fields ?? [])
      lines.push(`    ${field.path}: ${shown(field.old)} -> ${paint(output.color, style, shown(field.new))}`);
  }
  const s = result.summary;
  const counts = result.dryRun
    ? `${s.create} to create, ${s.update} to update, ${s.delete} to delete, ${s.unchanged} unchanged`
    : `${s.create} created, ${s.update} updated, ${s.delete} deleted, ${s.unchanged} unchanged`;
  if (!changed(s)) {
    lines.push(`No changes: the configuration in force (version ${result.version}) already says this.`);
    return lines.join('\n');
  }
  if (result.dryRun) lines.push(`${counts}. Dry run against version ${result.version}: nothing was written.`);
  else if (rolledBackTo !== undefined)
    lines.push(`${counts}. Rolled back to version ${rolledBackTo}'s configuration: now version ${result.version}.`);
  else lines.push(`${counts}. Applied: now version ${result.version}.`);
  return lines.join('\n');
}

async function exportConfig(ctx: CommandContext, opts: { output?: string; at?: number }): Promise<ExitCode> {
  const path = opts.at === undefined ? '/config' : `/config/versions/${opts.at}`;
  const result = await ctx.api.text({ path, accept: ctx.out.json ? 'application/json' : 'application/yaml' });
  if (!result.ok) return reportFailure(ctx.out, result.failure, { version: '--at' });
  let text = result.data;
  if (ctx.out.json) {
    try {
      text = `${JSON.stringify(JSON.parse(text), null, 2)}\n`;
    } catch {
      return reportFailure(ctx.out, {
        kind: 'unexpected',
        url: ctx.api.urlOf({ path }),
        status: result.answer.status,
        body: text.slice(0, 300),
      });
    }
  } else if (!text.endsWith('\n')) text += '\n';
  if (!opts.output) {
    ctx.out.out(text.replace(/\n$/, ''));
    return EXIT.ok;
  }
  try {
    await writeFile(opts.output, text);
  } catch (error) {
    return usageError(
      ctx.out,
      `cannot write ${opts.output}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const version = result.answer.headers.get('etag')?.replace(/\W/g, '');
  ctx.out.err(`Wrote ${opts.output}${version ? ` (configuration version ${version})` : ''}.`);
  return EXIT.ok;
}

async function versions(ctx: CommandContext): Promise<ExitCode> {
  const result = await ctx.api.json<{ versions: ConfigVersion[] }>({ path: '/config/versions' });
  if (!result.ok) return reportFailure(ctx.out, result.failure);
  if (ctx.out.json) printJson(ctx.out, result.data);
  else if (result.data.versions.length === 0) ctx.out.out('No configuration versions yet.');
  else
    ctx.out.out(
      renderTable(
        ['VERSION', 'AT', 'ACTOR', 'CHANGES', 'MESSAGE'],
        result.data.versions.map((v) => [
          String(v.version),
          formatTime(v.at),
          v.actor,
          String(v.changes),
          v.message ?? '',
        ]),
      ),
    );
  return EXIT.ok;
}
