import { spawnSync } from 'node:child_process';

/**
 * Installs the Debian packages of the peers the benchmark needs (wrk, nginx-light) when missing: apt-get, as
 * root only, and not with BENCH_NO_APT=1 (then it says how). Both install in seconds and start no service.
 */
export function ensureApt(packages: { bin: () => boolean; pkg: string }[], log: (line: string) => void): void {
  const missing = packages.filter((p) => !p.bin()).map((p) => p.pkg);
  if (missing.length === 0) return;
  if (process.env.BENCH_NO_APT === '1' || process.getuid?.() !== 0) {
    log(
      `  missing ${missing.join(', ')}: install with \`apt-get install -y ${missing.join(' ')}\` (not root or BENCH_NO_APT=1: not installing)`,
    );
    return;
  }
  log(`  installing ${missing.join(', ')} (apt-get; BENCH_NO_APT=1 turns this off)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env, timeout: 120_000 });
  const install = spawnSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'ignore',
    env,
    timeout: 180_000,
  });
  if (update.status !== 0 || install.status !== 0)
    log(`  apt-get install ${missing.join(' ')} failed (exit ${install.status ?? update.status})`);
}
