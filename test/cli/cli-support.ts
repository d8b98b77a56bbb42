import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The launcher `npx waymark` runs: the tests go through it, tsx and all. */
const BIN = fileURLToPath(new URL('../../bin/waymark.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without any WAYMARK_* the machine may have, plus `env`. */
function cliEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WAYMARK_')));
  return { ...clean, ...env };
}

/** Starts `waymark ARGS` as a subprocess. */
export function spawnCli(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: cliEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs `waymark ARGS` to the end (`input` on stdin), with what it printed and its exit code. */
export function runCli(args: string[], env: Record<string, string> = {}, input = ''): Promise<CliRun> {
  const child = spawnCli(args, env);
  return collect(child, input);
}

/** What a started CLI prints until it exits. */
export function collect(child: ChildProcess, input = ''): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdin?.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A run's output for assertion messages. */
export function shown(run: CliRun): string {
  return `exit ${run.code}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}
