import type { Command } from 'commander';
import type { IstioImportReport } from '../../control/istio-import.js';
import { type CommandContext, runWithApi } from '../context.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { type Output, paint, printJson, reportFailure, usageError } from '../output.js';
import { readDocument } from './read-file.js';

interface ImportOptions {
  file: string;
  dryRun?: boolean;
}

/** `waymark import istio -f FILE`: VirtualServices and DestinationRules as routes (POST /import/istio). */
export function registerImportCommands(program: Command): void {
  const imports = program.command('import').description('bring configuration in from elsewhere');
  imports
    .command('istio')
    .description('Istio VirtualService and DestinationRule YAML as routes, subsets and policy of existing services')
    .requiredOption('-f, --file <file>', 'the YAML (one or more documents separated by "---"; - for stdin)')
    .option('--dry-run', 'say what would change, write nothing')
    .action((opts: ImportOptions, command: Command) => runWithApi(command, (ctx) => importIstio(ctx, opts)));
}

async function importIstio(ctx: CommandContext, opts: ImportOptions): Promise<ExitCode> {
  const file = await readDocument(opts.file);
  if (!file.ok) return usageError(ctx.out, file.error);
  const result = await ctx.api.json<IstioImportReport>({
    method: 'POST',
    path: '/import/istio',
    query: { dryRun: opts.dryRun ? true : undefined },
    body: { text: file.text, contentType: 'application/yaml' },
  });
  if (!result.ok) return reportFailure(ctx.out, result.failure, { '(body)': '--file' });
  if (ctx.out.json) printJson(ctx.out, result.data);
  else ctx.out.out(renderImport(result.data, ctx.out));
  return EXIT.ok;
}

const ACTION_MARK = { create: ['+', 'green'], update: ['~', 'yellow'], unchanged: ['=', 'dim'] } as const;

function renderImport(report: IstioImportReport, output: Output): string {
  const lines: string[] = [];
  for (const service of report.services) {
    lines.push(`service ${paint(output.color, 'bold', service.name)}`);
    for (const route of service.routes) {
      const [mark, style] = ACTION_MARK[route.action as keyof typeof ACTION_MARK] ?? ['?', 'dim'];
      lines.push(`  ${paint(output.color, style, `${mark} route ${route.name}`)} (${route.action})`);
    }
    for (const field of ['subsets', 'policy', 'failover'] as const)
      if (service[field] !== null)
        lines.push(`  ${paint(output.color, 'yellow', `~ ${field}`)}: ${JSON.stringify(service[field])}`);
  }
  for (const warning of report.warnings) lines.push(`${paint(output.color, 'yellow', 'warning:')} ${warning}`);
  const changes = report.services.some(
    (s) =>
      s.routes.some((r) => r.action !== 'unchanged') || s.subsets !== null || s.policy !== null || s.failover !== null,
  );
  if (!changes) lines.push('Nothing to change: the services already say this.');
  else lines.push(report.dryRun ? 'Dry run: nothing was written.' : 'Imported.');
  return lines.join('\n');
}
