import { createRequire } from 'node:module';
import type { Command } from 'commander';
import { type ApiClient, createApiClient } from './client.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { type Output, processOutput, usageError } from './output.js';
import { resolveSettings } from './settings.js';

export const CLI_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string })
  .version;

/** What every command gets: the admin API and where to write. */
export interface CommandContext {
  api: ApiClient;
  out: Output;
}

/** The options every command takes (set on the program, read through `optsWithGlobals`). */
interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

/**
 * Runs a command's body with the API client built from the settings (a missing or bad setting is a
 * usage error, exit 2) and sets the process's exit code to what the body answers.
 */
export async function runWithApi(command: Command, body: (ctx: CommandContext) => Promise<ExitCode>): Promise<void> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const out = processOutput(globals.json === true);
  const settings = resolveSettings(globals, process.env);
  if (!settings.ok) {
    for (const error of settings.errors) usageError(out, error);
    process.exitCode = EXIT.usage;
    return;
  }
  process.exitCode = await body({ api: createApiClient(settings.settings, `waymark-cli/${CLI_VERSION}`), out });
}
