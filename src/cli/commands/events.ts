import { type Command, InvalidArgumentError } from 'commander';
import { type CommandContext, runWithApi } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatTime, type Output, paint, printJson, renderTable, reportFailure } from '../output.js';
import { durationOption } from './overrides.js';

/** `GET /events` (src/store/health.ts): one entry. */
interface EventEntry {
  id: number;
  at: string;
  service: string;
  cluster: string | null;
  kind: string;
  message: string;
  detail: unknown;
}

interface EventsPage {
  events: EventEntry[];
  next: number;
}

interface EventsOptions {
  service?: string;
  kind?: string[];
  limit: number;
  follow?: boolean;
  interval: number;
}

/** The API's page cap. */
const MAX_LIMIT = 1000;

function limitOption(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    throw new InvalidArgumentError(`must be a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

function kindsOption(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((k) => k.trim())].filter(Boolean);
}

/** `waymark events`: what changed and why; `--follow` polls with the API's cursor until Ctrl-C. */
export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('what changed and why (cluster states, shares, overrides, ramps), oldest first')
    .option('--service <service>', 'only this service')
    .option(
      '--kind <kind>',
      'only these kinds (repeat or comma-separate): cluster-state, shares, override-applied, override-ended, ...',
      kindsOption,
    )
    .option('--limit <n>', `the latest n events (1-${MAX_LIMIT}; --kind filters within them)`, limitOption, 50)
    .option('-f, --follow', 'keep printing new events as they happen, until Ctrl-C')
    .option('--interval <duration>', 'how often --follow asks', durationOption, 2)
    .action((opts: EventsOptions, command: Command) => runWithApi(command, (ctx) => events(ctx, opts)));
}

async function events(ctx: CommandContext, opts: EventsOptions): Promise<ExitCode> {
  const kinds = opts.kind?.length ? new Set(opts.kind) : null;
  const keep = (e: EventEntry) => kinds === null || kinds.has(e.kind);
  const hints = { 'query.service': '--service' };
  const first = await ctx.api.json<EventsPage>({
    path: '/events',
    query: { service: opts.service, limit: opts.limit },
  });
  if (!first.ok) return reportFailure(ctx.out, first.failure, hints);
  // Without a cursor the API answers newest first; people read a log oldest first, as --follow continues it.
  const initial = [...first.data.events].reverse().filter(keep);
  if (!opts.follow) {
    if (ctx.out.json) printJson(ctx.out, { events: first.data.events.filter(keep), next: first.data.next });
    else if (initial.length === 0) ctx.out.out('No events.');
    else ctx.out.out(renderEvents(initial, ctx.out, true));
    return EXIT.ok;
  }
  return follow(ctx, opts, keep, initial, first.data.next);
}

/**
 * Prints the first page, then asks for the events after the cursor every `interval` until Ctrl-C (exit
 * 0); it never returns. A failed poll is reported and retried: an API restart during an incident must not end the tail.
 * With `--json`, one event per line (JSON Lines), so a pipe can read them as they come.
 */
async function follow(
  ctx: CommandContext,
  opts: EventsOptions,
  keep: (e: EventEntry) => boolean,
  initial: EventEntry[],
  cursor: number,
): Promise<never> {
  // Ctrl-C is how a tail ends: everything printed is out already (writes to a terminal, file or pipe are
  // synchronous on Linux), and a poll in flight has nothing to finish.
  process.once('SIGINT', () => process.exit(EXIT.ok));
  let header = true;
  const print = (batch: EventEntry[]) => {
    if (batch.length === 0) return;
    if (ctx.out.json) for (const e of batch) ctx.out.out(JSON.stringify(e));
    else ctx.out.out(renderEvents(batch, ctx.out, header));
    header = false;
  };
  print(initial);
  if (!ctx.out.json)
    ctx.out.err(paint(ctx.out.errColor, 'dim', `following events (every ${opts.interval}s), Ctrl-C to stop`));
  let failing = false;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, opts.interval * 1000));
    const page = await ctx.api.json<EventsPage>({
      path: '/events',
      query: { service: opts.service, after: cursor, limit: MAX_LIMIT },
    });
    if (!page.ok) {
      if (!failing) reportFailure(ctx.out, page.failure);
      failing = true;
      continue;
    }
    if (failing) ctx.out.err('events: the API answers again');
    failing = false;
    cursor = page.data.next;
    print(page.data.events.filter(keep));
  }
}

const KIND_STYLE: Record<string, 'green' | 'yellow' | 'red' | undefined> = {
  'override-applied': 'yellow',
  'override-ended': 'green',
  'override-expired': 'green',
};

/** Events one a line: time, service, cluster, kind, message (no header when continuing a tail). */
function renderEvents(events: EventEntry[], output: Output, header: boolean): string {
  const rows = events.map((e) => {
    const style = KIND_STYLE[e.kind];
    return [
      formatTime(e.at),
      e.service,
      e.cluster ?? '-',
      style ? paint(output.color, style, e.kind) : e.kind,
      e.message,
    ];
  });
  // Fixed widths: the lines a tail prints later line up with the first page's.
  const table = renderTable(['AT', 'SERVICE', 'CLUSTER', 'KIND', 'MESSAGE'], rows, { minWidths: [20, 16, 12, 16] });
  return header ? table : table.split('\n').slice(1).join('\n');
}
