import type { Client } from '@libsql/client';
import { expect } from 'vitest';
import type { SimpleResponse } from '../../scripts/http-client.js';

export interface DbState {
  services: number;
  service_hosts: number;
  clusters: number;
  audit_log: number;
  revision: number;
}

/** Row counts of every table an admin write touches, and the revision: what "changed nothing" compares. */
export async function dbState(db: Client): Promise<DbState> {
  const count = async (table: string) => Number((await db.execute(`select count(*) as n from ${table}`)).rows[0]?.n);
  const rev = await db.execute('select version from revision where id = 1');
  return {
    services: await count('services'),
    service_hosts: await count('service_hosts'),
    clusters: await count('clusters'),
    audit_log: await count('audit_log'),
    revision: Number(rev.rows[0]?.version ?? 0),
  };
}

/**
 * Asserts an RFC 9457 problem response: status, content type, every member Waymark promises, the request
 * id echoed in the header, and (when given) exactly the offending fields, in any order.
 */
export function expectProblem(res: SimpleResponse, status: number, code: string, fields?: string[]): void {
  const summary = `${res.status} ${res.body}`;
  expect(res.status, summary).toBe(status);
  expect(res.headers['content-type'], summary).toBe('application/problem+json');
  expect(res.json, summary).toMatchObject({
    type: `urn:waymark:problem:${code}`,
    title: expect.stringMatching(/\S/),
    status,
    detail: expect.stringMatching(/\S/),
    code,
    requestId: expect.stringMatching(/\S/),
  });
  expect(res.headers['x-request-id'], summary).toBe(res.json.requestId);
  if (fields) {
    expect(Array.isArray(res.json.errors), summary).toBe(true);
    const named = (res.json.errors as { field: string; message: string }[]).map((e) => e.field);
    expect([...named].sort(), summary).toEqual([...fields].sort());
    for (const e of res.json.errors as { message: unknown }[])
      expect(e.message, summary).toEqual(expect.stringMatching(/\S/));
  }
}
