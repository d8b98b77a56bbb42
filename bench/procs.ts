import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT_DIR = join(BENCH_DIR, '..');

/** Every process this benchmark started, so that it can stop exactly those (and only those). */
const started = new Set<ChildProcess>();

/** Synchronous clean-ups (temp folders) to run when the benchmark is stopped early. */
const cleanups = new Set<() => void>();

export function onAbort(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export function killAll(): void {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  started.clear();
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // best effort
    }
  }
  cleanups.clear();
}

export function track(child: ChildProcess): ChildProcess {
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** Starts `bench/<script>` under tsx (through `node --import tsx`) with an IPC channel. */
export function forkTs(script: string, args: string[], extraExecArgv: string[] = []): ChildProcess {
  return track(
    fork(join(BENCH_DIR, script), args, {
      cwd: ROOT_DIR,
      execArgv: ['--import', 'tsx', ...extraExecArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
}

/** The next IPC message that satisfies `accept`; rejects when the child exits or after `timeoutMs`. */
export function nextMessage<T>(
  child: ChildProcess,
  accept: (m: any) => boolean,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    const onMessage = (m: any) => {
      if (m?.type === 'error') finish(new Error(`${what}: ${m.message}`));
      else if (accept(m)) finish(null, m as T);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`${what}: process exited (${code ?? signal})`));
    function finish(error: Error | null, value?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(value as T);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Asks a child to stop and waits for it to exit (SIGKILL after `graceMs`). */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    if (child.connected) child.send({ type: 'stop' });
    else child.kill('SIGTERM');
  });
}
