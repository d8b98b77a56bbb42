import { createExecutionContext, createScheduledController, env, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/observe/log.js';
import { createWorker } from '../../src/worker.js';
import { BASE, DUBLIN } from './support.js';

/** A value that must never reach a client, whichever variable it is put in. */
const SECRET_VALUE = 'do-not-leak-this-0123';

interface Line {
  level: string;
  message: string;
  fields: Record<string, unknown> | undefined;
}

/** A worker built with `bindings`, its log lines, and a way to send it requests. */
function workerWith(bindings: Record<string, unknown>) {
  const lines: Line[] = [];
  const log: Logger = { log: (level, message, fields) => lines.push({ level, message, fields }) };
  const worker = createWorker({ log });
  const send = async (url: string): Promise<Response> => {
    const ctx = createExecutionContext();
    const res = await worker.fetch(new Request(url, { cf: DUBLIN } as RequestInit), bindings, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };
  return { worker, lines, send };
}

/** The problem document of a misconfigured answer, checked for what every such answer must be. */
async function misconfigured(res: Response): Promise<{ detail: string; code: string; errors?: { field: string }[] }> {
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const text = await res.text();
  expect(text).not.toContain(SECRET_VALUE);
  expect(text).not.toContain('file:');
  const body = JSON.parse(text) as { detail: string; code: string; title: string; errors?: { field: string }[] };
  expect(body).toMatchObject({ code: 'misconfigured', title: 'Misconfigured', status: 503 });
  return body;
}

describe('a misconfigured Worker fails safe', () => {
  const cases: { name: string; bindings: Record<string, unknown>; variables: string[] }[] = [
    { name: 'no WAYMARK_DATABASE_URL', bindings: {}, variables: ['WAYMARK_DATABASE_URL'] },
    {
      name: 'a file: WAYMARK_DATABASE_URL',
      bindings: { WAYMARK_DATABASE_URL: 'file:.waymark/waymark.db' },
      variables: ['WAYMARK_DATABASE_URL'],
    },
    {
      name: 'invalid settings',
      bindings: {
        WAYMARK_DATABASE_URL: env.WAYMARK_DATABASE_URL,
        WAYMARK_ADMIN_TOKEN: 'short',
        WAYMARK_MAX_ATTEMPTS: SECRET_VALUE,
      },
      variables: ['WAYMARK_ADMIN_TOKEN', 'WAYMARK_MAX_ATTEMPTS'],
    },
    {
      name: 'WAYMARK_SNAPSHOTS bound to something other than a KV namespace',
      bindings: { ...env, WAYMARK_SNAPSHOTS: SECRET_VALUE },
      variables: ['WAYMARK_SNAPSHOTS'],
    },
  ];

  for (const { name, bindings, variables } of cases) {
    it(`${name}: public traffic gets a generic 503, ready names ${variables.join(', ')}, the log says why`, async () => {
      const { send, lines } = workerWith(bindings);

      const publicAnswer = await misconfigured(await send('https://shop.example.com/anything'));
      for (const variable of [...variables, 'WAYMARK_']) expect(publicAnswer.detail).not.toContain(variable);
      const admin = await misconfigured(await send(`${BASE}/_waymark/api/v1/services`));
      expect(admin.detail).toBe(publicAnswer.detail);

      const ready = await misconfigured(await send(`${BASE}/_waymark/health/ready`));
      for (const variable of variables) expect(ready.detail).toContain(variable);
      expect(ready.errors?.map((e) => e.field).sort()).toEqual([...variables].sort());

      // Logged once for the isolate, naming every variable, not once per request.
      const errors = lines.filter((l) => l.level === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]?.fields?.variables).toEqual(expect.arrayContaining(variables));
      for (const variable of variables) expect(String(errors[0]?.fields?.reason)).toContain(variable);
      expect(JSON.stringify(errors)).not.toContain(SECRET_VALUE);
    });
  }

  it('the Cron Trigger does nothing and does not throw', async () => {
    const { worker, lines } = workerWith({});
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '* * * * *' }), {}, ctx);
    await waitOnExecutionContext(ctx);
    expect(lines.map((l) => l.message)).toEqual(['waymark is misconfigured; answering 503 to all traffic']);
  });

  it('a well-configured Worker built the same way serves (the cases above fail for their settings alone)', async () => {
    const { send, lines } = workerWith(env);
    const ready = await send(`${BASE}/_waymark/health/ready`);
    expect(ready.status).toBe(200);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});
