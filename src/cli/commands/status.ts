import type { Command } from 'commander';
import type { FailoverMatrix, MatrixEntry } from '../../routing/matrix.js';
import type { OverrideView } from '../../store/overrides.js';
import type { ApiFailure } from '../client.js';
import { type CommandContext, runWithApi } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type Output, paint, printJson, renderTable, reportFailure } from '../output.js';
import { renderOverrides } from './override-table.js';

/** `GET /services/{s}/failover`: the matrix, plus what this instance has ejected. */
type FailoverAnswer = FailoverMatrix & { snapshotVersion: number; ejectedHere: string[] };

/** One service as `waymark status --json` prints it. */
interface ServiceStatus {
  name: string;
  failover: FailoverAnswer;
  overrides: OverrideView[];
}

/** Services whose matrices are fetched at once when no service is named. */
const STATUS_CONCURRENCY = 8;

/** `waymark status [service]`: per client region, the clusters with share, health, level and ejection. */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('where each client region sends traffic now: clusters, shares, health, levels, overrides')
    .argument('[service]', 'one service (default: every service)')
    .action((service: string | undefined, _opts: unknown, command: Command) =>
      runWithApi(command, (ctx) => status(ctx, service)),
    );
}

async function status(ctx: CommandContext, service: string | undefined): Promise<ExitCode> {
  let names: string[];
  if (service) names = [service];
  else {
    const list = await ctx.api.json<{ services: { name: string }[] }>({ path: '/services' });
    if (!list.ok) return reportFailure(ctx.out, list.failure);
    names = list.data.services.map((s) => s.name);
  }
  const statuses: ServiceStatus[] = [];
  for (let i = 0; i < names.length; i += STATUS_CONCURRENCY) {
    const batch = await Promise.all(names.slice(i, i + STATUS_CONCURRENCY).map((name) => serviceStatus(ctx, name)));
    for (const result of batch) {
      if (!result.ok) return reportFailure(ctx.out, result.failure, { service: 'SERVICE' });
      statuses.push(result.status);
    }
  }
  if (ctx.out.json) printJson(ctx.out, { services: statuses });
  else if (statuses.length === 0) ctx.out.out('No services are configured.');
  else ctx.out.out(statuses.map((s) => renderStatus(s, ctx.out)).join('\n\n'));
  return EXIT.ok;
}

async function serviceStatus(
  ctx: CommandContext,
  name: string,
): Promise<{ ok: true; status: ServiceStatus } | { ok: false; failure: ApiFailure }> {
  const path = `/services/${encodeURIComponent(name)}`;
  const [failover, overrides] = await Promise.all([
    ctx.api.json<FailoverAnswer>({ path: `${path}/failover` }),
    ctx.api.json<{ overrides: OverrideView[] }>({ path: '/overrides', query: { service: name, active: true } }),
  ]);
  if (!failover.ok) return failover;
  if (!overrides.ok) return overrides;
  return { ok: true, status: { name, failover: failover.data, overrides: overrides.data.overrides } };
}

const HEALTH_STYLE = {
  healthy: 'green',
  unknown: 'dim',
  unhealthy: 'red',
  down: 'red',
  ejected: 'red',
  drained: 'yellow',
} as const;

function renderStatus(s: ServiceStatus, output: Output): string {
  const { color } = output;
  const lines = [`${paint(color, 'bold', s.name)}  (routing table version ${s.failover.snapshotVersion})`];
  if (s.overrides.length) {
    lines.push(`  overrides in force:`, renderOverrides(s.overrides, output, '    '));
  }
  const regions = Object.entries(s.failover.regions);
  if (regions.length === 0) lines.push('  no client regions yet: the service has no clusters');
  const ejected = new Set(s.failover.ejectedHere);
  for (const [region, entries] of regions) {
    const summary = s.failover.summary[region];
    const flags = [
      summary ? `total health ${summary.totalHealth}%` : '',
      summary?.panic ? paint(color, 'red', 'PANIC: health ignored') : '',
      summary?.closed ? paint(color, 'red', 'FAIL CLOSED: some traffic refused') : '',
    ].filter(Boolean);
    lines.push(`  clients in ${paint(color, 'bold', region)}: ${flags.join(', ')}`);
    lines.push(
      renderTable(['CLUSTER', 'REGION', 'ZONE', 'LEVEL', 'SHARE', 'HEALTH', 'EJECTED'], entries.map(row), {
        indent: '    ',
        right: [4],
      }),
    );
  }
  return lines.join('\n');

  function row(e: MatrixEntry): string[] {
    const share = `${e.share.toFixed(1)}%`;
    return [
      e.cluster,
      e.region,
      e.zone ?? '-',
      `${e.level} ${e.levelReason}`,
      e.share > 0 ? paint(color, 'bold', share) : share,
      paint(color, HEALTH_STYLE[e.health], e.health),
      ejected.has(e.cluster) ? paint(color, 'red', 'yes (this instance)') : '-',
    ];
  }
}
