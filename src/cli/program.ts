import { Command, CommanderError } from 'commander';
import { registerConfigCommands } from './commands/config.js';
import { registerEventsCommand } from './commands/events.js';
import { registerExplainCommand } from './commands/explain.js';
import { registerImportCommands } from './commands/import.js';
import { registerOverrideCommands } from './commands/overrides.js';
import { registerStatusCommand } from './commands/status.js';
import { CLI_VERSION } from './context.js';
import { EXIT, type ExitCode } from './exit-codes.js';

const EPILOG = `
Settings: WAYMARK_URL (Waymark's address) and WAYMARK_TOKEN (an admin API token), or --url and --token.
Exit codes: 0 done, 1 the API refused, 2 usage error, 3 diff found changes, 4 API unreachable.`;

/** The `waymark` command line: every command registered, usage errors exiting 2 rather than commander's 1. */
function buildProgram(): Command {
  const program = new Command('waymark')
    .description("Waymark's admin API from the command line: status, overrides, events, explain, config")
    .version(CLI_VERSION)
    .option('--url <url>', "Waymark's address (default: $WAYMARK_URL)")
    .option('--token <token>', 'admin API token (default: $WAYMARK_TOKEN)')
    .option('--json', "print the API's JSON instead of tables")
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EPILOG)
    // Subcommands created after this inherit it: commander's errors come back as CommanderError.
    .exitOverride();
  registerStatusCommand(program);
  registerOverrideCommands(program);
  registerEventsCommand(program);
  registerExplainCommand(program);
  registerImportCommands(program);
  registerConfigCommands(program);
  return program;
}

/** Runs the command line; answers the exit code (a command's own, or 2 for a usage error). */
export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return Number(process.exitCode ?? EXIT.ok);
  } catch (error) {
    // --help and --version end with exit code 0; every other commander error is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : (EXIT.usage satisfies ExitCode);
    throw error;
  }
}
