import { createExecutionContext, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Logger, LogLevel } from '../../src/observe/log.js';
import { createWorker } from '../../src/worker.js';

/** A logger that keeps its lines, in place of the console one. */
function keeping(): Logger & { lines: { level: LogLevel; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: LogLevel; message: string; fields: Record<string, unknown> }[] = [];
  return { lines, log: (level, message, fields = {}) => void lines.push({ level, message, fields }) };
}

describe('createWorker: the log lines go to the logger it is given', () => {
  it('settings that do not parse: 503 misconfigured, and the reason goes to the logger', async () => {
    const log = keeping();
    const ctx = createExecutionContext();
    const res = await createWorker({ log }).fetch(
      new Request('https://shop.example.com/'),
      { ...env, WAYMARK_DATABASE_URL: 'ftp://nowhere' },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'misconfigured' });
    expect(log.lines.map((l) => `${l.level} ${l.message}`)).toEqual([
      'error waymark is misconfigured; answering 503 to all traffic',
    ]);
    expect(String(log.lines[0]?.fields.reason)).toContain('WAYMARK_DATABASE_URL');
  });

  it("the runtime's lines too: a store that cannot be reached is logged, not printed", async () => {
    const log = keeping();
    const ctx = createExecutionContext();
    // Port 9 (discard) on 127.0.0.1: nothing listens, the connection is refused.
    const res = await createWorker({ log }).fetch(
      new Request('https://shop.example.com/'),
      { ...env, WAYMARK_DATABASE_URL: 'http://127.0.0.1:9' },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'not-ready' });
    expect(log.lines.map((l) => `${l.level} ${l.message}`)).toContain(
      'error snapshot refresh failed; serving the last good snapshot',
    );
  });
});
