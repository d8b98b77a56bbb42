import { type Command, InvalidArgumentError } from 'commander';
import type { Explanation } from '../../routing/explain.js';
import { type CommandContext, runWithApi } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type Output, paint, printJson, renderTable, reportFailure } from '../output.js';

interface ExplainOptions {
  region?: string;
  zone?: string;
  location?: string;
  header: [string, string][];
  method: string;
  requestId?: string;
}

/** `-H name:value`, as curl takes it; repeatable. */
function headerOption(value: string, previous: [string, string][] = []): [string, string][] {
  const colon = value.indexOf(':');
  if (colon < 1) throw new InvalidArgumentError('must be "name: value", as curl -H takes it');
  return [...previous, [value.slice(0, colon).trim(), value.slice(colon + 1).trim()]];
}

/** `waymark explain HOST PATH`: the decision the edges would make for a described request (POST /explain). */
export function registerExplainCommand(program: Command): void {
  program
    .command('explain')
    .description('how a request would be routed, step by step: route, destination, clusters, attempts')
    .argument('<host>', 'the Host the request is for, e.g. shop.example.com')
    .argument('[path]', 'the path, with a query if any', '/')
    .option('--region <region>', 'the client region (default: as the API decides without one)')
    .option('--zone <zone>', "the client's zone")
    .option('--location <lat,lon>', "the client's location instead of a region, e.g. 53.3,-6.3")
    .option('-H, --header <name:value>', 'a request header (repeatable)', headerOption, [])
    .option('-X, --method <method>', 'the HTTP method', 'GET')
    .option('--request-id <id>', "a request's id, to reproduce its mirror sampling")
    .action((host: string, path: string, opts: ExplainOptions, command: Command) =>
      runWithApi(command, (ctx) => explain(ctx, host, path, opts)),
    );
}

async function explain(ctx: CommandContext, host: string, path: string, opts: ExplainOptions): Promise<ExitCode> {
  const result = await ctx.api.json<Explanation & { snapshotVersion: number }>({
    method: 'POST',
    path: '/explain',
    json: {
      host,
      path,
      method: opts.method,
      headers: Object.fromEntries(opts.header),
      ...(opts.region ? { clientRegion: opts.region } : {}),
      ...(opts.zone ? { clientZone: opts.zone } : {}),
      ...(opts.location ? { clientLocation: opts.location } : {}),
      ...(opts.requestId ? { requestId: opts.requestId } : {}),
    },
  });
  if (!result.ok) {
    return reportFailure(ctx.out, result.failure, {
      host: 'HOST',
      path: 'PATH',
      method: '--method',
      clientRegion: '--region',
      clientZone: '--zone',
      clientLocation: '--location',
      requestId: '--request-id',
    });
  }
  if (ctx.out.json) printJson(ctx.out, result.data);
  else ctx.out.out(renderExplanation(result.data, ctx.out));
  return EXIT.ok;
}

function renderExplanation(x: Explanation, output: Output): string {
  const { color } = output;
  const lines = [
    `${paint(color, 'bold', 'outcome:')} ${x.outcome}`,
    `host ${x.host} -> ${x.service ? `service ${x.service}` : 'no service'}`,
    `client region: ${x.clientRegion.region ?? 'none'} (${x.clientRegion.how})`,
  ];
  if (x.clientZone.zone) lines.push(`client zone: ${x.clientZone.zone} (${x.clientZone.how})`);
  if (x.routes.length) {
    lines.push('routes tried, in order:');
    for (const r of x.routes)
      lines.push(
        `  ${r.matched ? paint(color, 'green', 'match') : paint(color, 'dim', 'skip ')} ${r.route} (order ${r.order}): ${r.why}`,
      );
  }
  if (x.destination) {
    const { subset, chosenBy } = x.destination;
    const named =
      typeof subset === 'string'
        ? `subset ${subset}`
        : Object.keys(subset).length
          ? `clusters labelled ${JSON.stringify(subset)}`
          : 'every cluster of the service';
    lines.push(`destination: ${named} (${chosenBy})`);
  }
  if (x.candidates.length) {
    const flags = [x.panic ? 'PANIC: health ignored' : '', x.failClosed ? 'fail closed' : ''].filter(Boolean);
    lines.push(`candidate clusters${flags.length ? ` (${flags.join(', ')})` : ''}:`);
    lines.push(
      renderTable(
        ['CLUSTER', 'REGION', 'LEVEL', 'SHARE', 'HEALTH'],
        x.candidates.map((c) => [
          c.cluster,
          c.region,
          `${c.level} ${c.levelReason}`,
          `${c.share.toFixed(1)}%`,
          c.health,
        ]),
        { indent: '  ', right: [3] },
      ),
    );
  }
  if (x.attempts.length) lines.push(`attempts: ${x.attempts.join(' -> ')}`);
  if (x.fault.delay || x.fault.abort)
    lines.push(
      `fault: ${[x.fault.delay && `delay ${x.fault.delay}`, x.fault.abort && `abort ${x.fault.abort}`].filter(Boolean).join(', ')}`,
    );
  if (x.mirror)
    lines.push(
      `mirror: ${x.mirror.percent}% to ${x.mirror.cluster ?? 'no cluster'}${x.mirror.sampled ? ' (this request is sampled)' : ''}`,
    );
  return lines.join('\n');
}
