import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT_DIR } from '../bench/procs.js';
import { table } from '../bench/stats.js';
import { clearOutput, processOutput, stopAll } from './procs.js';
import { type Scenario, type ScenarioResult, ZERO_CLAIMS } from './result.js';

/**
 * `npm run chaos` (issue 14): runs every scenario of chaos/scenarios one at a time against real
 * processes, prints one table and writes the figures to .tmp/chaos-latest.json. Exits 1 when a claim
 * counter is not zero. CHAOS_QUICK=1 is the short run CI executes; CHAOS_ONLY=1,3 runs a subset;
 * CHAOS_SEED seeds every random choice; CHAOS_VERBOSE=1 prints progress and the processes' output.
 */
const QUICK = process.env.CHAOS_QUICK === '1';
const VERBOSE = process.env.CHAOS_VERBOSE === '1';
const SEED = Number(process.env.CHAOS_SEED ?? 1414);
const ONLY = (process.env.CHAOS_ONLY ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '')
  .map(Number);
/**
 * Each scenario gets a time limit (quick runs take 10-80 s each here; full runs 2-10 min): one that
 * hangs is reported with its progress lines and its processes' output, counted as failed, and the
 * suite goes on, so CI shows what hung instead of a bare watchdog line.
 */
const SCENARIO_LIMIT_MS = (QUICK ? 6 : 20) * 60_000;
const SCENARIO_DIR = join(ROOT_DIR, 'chaos', 'scenarios');
const OUT_FILE = join(ROOT_DIR, '.tmp', 'chaos-latest.json');
const COLUMNS = [
  'scenario',
  'requests',
  'clientErrors',
  'savableErrors',
  'duplicatedNonIdempotent',
  'lostWrites',
  'invariantViolations',
  'peakRssMb',
] as const satisfies readonly (keyof ScenarioResult)[];

interface ScenarioFile {
  number: number;
  file: string;
}

function scenarioFiles(): ScenarioFile[] {
  return readdirSync(SCENARIO_DIR)
    .map((file) => ({ file, m: /^(\d+)-.+\.ts$/.exec(file) }))
    .filter((f): f is { file: string; m: RegExpExecArray } => f.m !== null)
    .map(({ file, m }) => ({ number: Number(m[1]), file }))
    .filter((f) => ONLY.length === 0 || ONLY.includes(f.number))
    .sort((a, b) => a.number - b.number || a.file.localeCompare(b.file));
}

function failedClaims(row: ScenarioResult): string[] {
  return ZERO_CLAIMS.filter((claim) => row[claim] !== 0);
}

function emptyRow(scenario: string): ScenarioResult {
  return {
    scenario,
    requests: 0,
    clientErrors: 0,
    savableErrors: 0,
    duplicatedNonIdempotent: 0,
    lostWrites: 0,
    invariantViolations: 0,
    peakRssMb: 0,
  };
}

function progress(line: string): void {
  if (VERBOSE || process.stderr.isTTY) process.stderr.write(`chaos: ${line}\n`);
}

const rows: ScenarioResult[] = [];

function writeResults(incomplete: string | null): void {
  mkdirSync(join(ROOT_DIR, '.tmp'), { recursive: true });
  const document = {
    date: new Date().toISOString(),
    machine: { cores: cpus().length, totalMemoryMb: Math.round(totalmem() / 2 ** 20), node: process.version },
    quick: QUICK,
    seed: SEED,
    ...(ONLY.length > 0 ? { only: ONLY } : {}),
    ...(incomplete ? { incomplete } : {}),
    scenarios: rows,
  };
  writeFileSync(OUT_FILE, `${JSON.stringify(document, null, 2)}\n`);
}

/** The table: the claims' columns, then how long each scenario took (CI's budget is the sum). */
function printTable(): void {
  const cells = rows.map((row) => [...COLUMNS.map((c) => String(row[c])), String(row.details?.seconds ?? '')]);
  console.log(table([[...COLUMNS, 'seconds'], ...cells]));
}

async function runOne(entry: ScenarioFile): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(tmpdir(), `waymark-chaos-${entry.number}-`));
  const logs: string[] = [];
  const started = performance.now();
  const log = (line: string) => {
    const stamped = `${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${line}`;
    logs.push(stamped);
    if (VERBOSE) process.stderr.write(`  [${entry.file}] ${stamped}\n`);
  };
  clearOutput();
  let row: ScenarioResult;
  let error: unknown = null;
  let name = entry.file.replace(/\.ts$/, '');
  try {
    const scenario = (await import(pathToFileURL(join(SCENARIO_DIR, entry.file)).href)).default as Scenario;
    name = scenario.name;
    progress(`${name}...`);
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`it ran over its ${SCENARIO_LIMIT_MS / 60_000} minute limit`)),
        SCENARIO_LIMIT_MS,
      );
    });
    row = await Promise.race([scenario.run({ quick: QUICK, seed: SEED, dir, log }), limit]).finally(() =>
      clearTimeout(timer),
    );
  } catch (e) {
    error = e;
    row = emptyRow(name);
    row.invariantViolations += 1;
    row.details = { error: e instanceof Error ? e.message : String(e) };
  } finally {
    // Whatever the scenario left running (it threw, or forgot one) goes before the next one starts.
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  const seconds = Math.round((performance.now() - started) / 100) / 10;
  row.details = { ...row.details, seconds };
  const failed = failedClaims(row);
  if (error || failed.length > 0) {
    console.error(`chaos: ${row.scenario} failed: ${failed.join(', ')}`);
    if (error) console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    if (!VERBOSE) {
      // The processes' output first, cut short, and the scenario's own progress last: CI keeps the tail.
      const output = processOutput();
      if (output)
        console.error(
          output
            .split('\n')
            .slice(-30)
            .map((line) => (line.length > 240 ? `${line.slice(0, 240)}...` : line))
            .join('\n'),
        );
      if (logs.length > 0) console.error(logs.slice(-40).join('\n'));
    }
    console.error(`details: ${JSON.stringify(row.details)}`);
  } else progress(`${row.scenario}: ok in ${seconds} s`);
  return row;
}

const files = scenarioFiles();
if (files.length === 0) {
  console.error(`chaos: no scenario matches CHAOS_ONLY=${process.env.CHAOS_ONLY ?? ''}`);
  process.exit(1);
}
for (const entry of files) rows.push(await runOne(entry));
printTable();
if (VERBOSE) for (const row of rows) console.log(`${row.scenario}: ${JSON.stringify(row.details ?? {})}`);
writeResults(null);
process.exit(rows.some((row) => failedClaims(row).length > 0) ? 1 : 0);
