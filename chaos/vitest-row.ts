import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { descendants, processTable } from '../bench/proc-stat.js';
import { ROOT_DIR, track } from '../bench/procs.js';
import type { ScenarioContext, ScenarioResult } from './result.js';

/**
 * A chaos row made by one of the vitest files that already implement a scenario (test/chaos/*.test.ts):
 * the file runs in a vitest child process, unchanged but for its run counts (`env`), and the row reads
 * two things back: vitest's JSON report (every failed test is a property or assertion that found a
 * violation, a failed hook included) and the counters the test writes to CHAOS_REPORT when it is set.
 * So the logic lives once, in the test, and `npm test` runs it as before.
 */
export interface VitestRowOptions {
  scenario: string;
  /** The test file, relative to the repository. */
  file: string;
  /** Extra environment for the child: run counts. */
  env: Record<string, string>;
  /** The test's counters (CHAOS_REPORT's JSON) as the row's request count and details. */
  read: (counters: Record<string, number>) => { requests: number; details: Record<string, number | string> };
  /** A bound on the child's run time, after which it is killed and the row counts a violation. */
  timeoutMs: number;
}

interface VitestJson {
  numTotalTests?: number;
  numPassedTests?: number;
  numFailedTests?: number;
  testResults?: { status?: string; message?: string; assertionResults?: { status?: string; fullName?: string }[] }[];
}

const RSS_SAMPLE_MS = 250;

/** The resident set of `pid` in MB, or 0 when it has ended. */
function rssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

export async function runVitestRow(context: ScenarioContext, options: VitestRowOptions): Promise<ScenarioResult> {
  const reportFile = join(context.dir, 'counters.json');
  const jsonFile = join(context.dir, 'vitest.json');
  const started = performance.now();
  // Tracked: the runner's stopAll() kills it (by PID) if the row is cut short.
  const child = track(
    spawn(
      join(ROOT_DIR, 'node_modules', '.bin', 'vitest'),
      ['run', '--project', 'node', options.file, '--reporter=json', `--outputFile=${jsonFile}`],
      {
        cwd: ROOT_DIR,
        env: { ...process.env, ...options.env, CHAOS_REPORT: reportFile, FORCE_COLOR: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    ),
  );
  let output = '';
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // peakRssMb: the largest single process under vitest's root, which is the worker fork running the file
  // (with the API fuzz, the Waymark server under test runs inside it; with the routing properties, the
  // routing core). vitest's own main process and esbuild are not counted: they are the harness.
  let peakRssMb = 0;
  const sampler = setInterval(() => {
    const pid = child.pid;
    if (pid === undefined) return;
    const procs = processTable();
    for (const p of descendants(procs, pid)) {
      if (procs.get(p)?.comm === 'esbuild') continue;
      peakRssMb = Math.max(peakRssMb, rssMb(p));
    }
  }, RSS_SAMPLE_MS);
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  clearTimeout(timer);
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;

  const report: VitestJson = existsSync(jsonFile) ? (JSON.parse(readFileSync(jsonFile, 'utf8')) as VitestJson) : {};
  const counters = existsSync(reportFile)
    ? (JSON.parse(readFileSync(reportFile, 'utf8')) as Record<string, number>)
    : {};
  const failed = report.numFailedTests ?? 0;
  // A file that failed outside any test (an import error, a hook, a timeout kill) has no failed test to count.
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
  ).length;
  const noReport = report.numTotalTests === undefined ? 1 : 0;
  const violations = failed + brokenFiles + (exit.code !== 0 && failed + brokenFiles === 0 ? 1 : 0);
  if (violations > 0) {
    const names = (report.testResults ?? [])
      .flatMap((f) => f.assertionResults ?? [])
      .filter((a) => a.status === 'failed')
      .map((a) => a.fullName);
    context.log(`${options.scenario}: ${violations} violation(s): ${names.join('; ') || output.slice(-2_000)}`);
  }
  const { requests, details } = options.read(counters);
  return {
    scenario: options.scenario,
    requests,
    clientErrors: 0,
    savableErrors: 0,
    duplicatedNonIdempotent: 0,
    lostWrites: 0,
    invariantViolations: violations,
    peakRssMb: Math.round(peakRssMb),
    details: {
      ...details,
      tests: report.numTotalTests ?? 0,
      failedTests: failed,
      ...(noReport ? { vitestReport: 'missing' } : {}),
      ...(exit.signal ? { killed: exit.signal } : {}),
      seconds: Number(seconds.toFixed(1)),
    },
  };
}
