import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT_DIR, track } from './procs.js';

/** How long `wrangler deploy --dry-run` may take to bundle the worker. */
const BUILD_TIMEOUT_MS = 120_000;

/** Wrangler run offline and quiet, its config and logs kept under `dir`. */
function wranglerEnv(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    WRANGLER_HIDE_BANNER: 'true',
    CLOUDFLARE_CF_FETCH_ENABLED: 'false',
    XDG_CONFIG_HOME: join(dir, 'xdg'),
    WRANGLER_LOG_PATH: join(dir, 'wrangler-logs'),
  };
}

/**
 * `wrangler deploy --dry-run --outdir`: the bundle Cloudflare would run, from the repo's wrangler.toml
 * (`<outDir>/worker.js`). `dir` holds wrangler's config and logs.
 */
export function buildBundle(dir: string, outDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const bin = join(ROOT_DIR, 'node_modules', '.bin', 'wrangler');
    const child = track(
      spawn(bin, ['deploy', '--dry-run', '--outdir', outDir, '--config', join(ROOT_DIR, 'wrangler.toml')], {
        cwd: ROOT_DIR,
        env: wranglerEnv(dir),
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), BUILD_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`wrangler deploy --dry-run failed (${code ?? signal}):\n${output.slice(-2000)}`));
    });
  });
}

/**
 * compatibility_date, compatibility_flags and [vars] from wrangler.toml: the settings the deployed worker
 * gets. A small reader for the flat `key = "value"` lines this file uses, not a TOML parser.
 */
export function wranglerSettings(): {
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
} {
  const text = readFileSync(join(ROOT_DIR, 'wrangler.toml'), 'utf8');
  let section = '';
  let compatibilityDate = '2026-04-20';
  let compatibilityFlags: string[] = [];
  const vars: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const header = /^\[+([^\]]+)\]+$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    const kv = /^([A-Za-z0-9_]+)\s*=\s*(.+)$/.exec(line);
    if (!kv) continue;
    const [, key, value] = kv as unknown as [string, string, string];
    const str = /^"(.*)"$/.exec(value)?.[1];
    if (section === '' && key === 'compatibility_date' && str !== undefined) compatibilityDate = str;
    if (section === '' && key === 'compatibility_flags')
      compatibilityFlags = [...value.matchAll(/"([^"]+)"/g)].map((m) => m[1] as string);
    if (section === 'vars' && str !== undefined) vars[key] = str;
  }
  return { compatibilityDate, compatibilityFlags, vars };
}
