/**
 * workerd's own log records that a green run must not print. vitest-pool-workers starts workerd with
 * `verbose: true` and writes each of its structured log records straight to process.stdout or stderr
 * (`handleStructuredLogs`, with an ignore list of its own): the pool's `miniflare` option only reaches the
 * test worker, not Miniflare's shared `log`/`handleStructuredLogs`, and the records are not console
 * calls, so vitest's `onConsoleLog` and `silent` never see them. What is dropped here is workerd
 * narrating events the tests cause on purpose, one record per write:
 * - a WebSocket whose peer went away: the pool's own runner socket at the end of each file, and the
 *   WebSocket tests' sockets closed without a close frame;
 * - a connection refused by an upstream a test stopped, and the "Network connection lost" rejection
 *   workerd reports for it even though the fetch that failed was awaited and caught.
 * Everything else (vitest's report and failures, console output, any other workerd record) passes.
 */
const WORKERD_NOISE: readonly RegExp[] = [
  /^exception = workerd\/api\/web-socket\.c\+\+:\d+: disconnected: WebSocket peer disconnected\n/,
  /^exception = kj\/async-io-unix\.c\+\+:\d+: disconnected: connect\(\): Connection refused\n/,
  /^uncaught exception; source = Uncaught \(in promise\); stack = Error: Network connection lost\.\n/,
  /^uncaught exception; exception = \S+: disconnected: jsg\.Error: Network connection lost\.\n/,
];

export function isWorkerdNoise(chunk: unknown): boolean {
  return typeof chunk === 'string' && WORKERD_NOISE.some((pattern) => pattern.test(chunk));
}

/** Drops workerd's noise records from this process's stdout and stderr, for the rest of the run. */
export function quietWorkerd(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (isWorkerdNoise(chunk)) {
        // Keep write()'s contract: a callback, if any, still runs.
        const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
        callback?.();
        return true;
      }
      return write(chunk, ...rest);
    }) as typeof stream.write;
  }
}
