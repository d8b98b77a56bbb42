export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/**
 * One JSON object per line on the console (what Workers Logs and log shippers read best), for lines at
 * `minimum` or above (WAYMARK_LOG_LEVEL; `silent` prints nothing).
 */
export function consoleLogger(minimum: LogLevel | 'silent' = 'info'): Logger {
  if (minimum === 'silent') return silentLogger;
  return {
    log(level, message, fields) {
      if (RANK[level] < RANK[minimum]) return;
      const line = JSON.stringify({ level, message, ...fields, at: new Date().toISOString() });
      if (level === 'error' || level === 'warn') console.error(line);
      else console.log(line);
    },
  };
}

/** For tests and benchmarks: keeps nothing, prints nothing. */
export const silentLogger: Logger = { log() {} };

export function errorFields(error: unknown): Record<string, unknown> {
  return error instanceof Error ? { error: describeError(error), stack: error.stack } : { error: String(error) };
}

/** An error's message followed by its causes' (drizzle wraps the driver's error in "Failed query: ..."). */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': caused by: ');
}
