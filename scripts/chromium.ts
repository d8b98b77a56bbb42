import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium: Playwright's own browser download cannot reach its servers here. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Installs Debian's chromium when it is missing (a fresh CI machine has none), loudly: a browser test
 * never skips for want of a browser. Needs root (CI) or a machine that already has it.
 */
export function ensureChromium(): void {
  if (existsSync(CHROMIUM_PATH)) return;
  console.log(`${CHROMIUM_PATH} is missing: installing Debian's chromium (apt-get)`);
  const apt = (args: string[]) =>
    execFileSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt(['update']);
  apt(['install', '-y', '--no-install-recommends', 'chromium']);
  if (!existsSync(CHROMIUM_PATH)) throw new Error(`apt-get installed chromium, yet ${CHROMIUM_PATH} is missing`);
}

/** A headless chromium (without the sandbox, which refuses to run as root). */
export async function launchChromium(): Promise<Browser> {
  ensureChromium();
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}
