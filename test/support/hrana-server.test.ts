import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, LibsqlError, type Client } from '@libsql/client/web';
import { createClient as createFileClient } from '@libsql/client';
import { drizzle } from 'drizzle-orm/libsql';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { eq } from 'drizzle-orm';
import { startHranaServer, type HranaServer } from '../../scripts/hrana-server.js';

let dir: string;
let dbPath: string;
let server: HranaServer;
let client: Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'waymark-hrana-'));
  dbPath = join(dir, 'test.db');
  server = await startHranaServer({ dbPath });
  client = createClient({ url: server.url });
  await client.execute('CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
});

afterAll(async () => {
  client?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Raw Hrana-over-HTTP pipeline call. */
async function pipeline(baton: string | null, requests: unknown[]) {
  const resp = await fetch(`${server.url}/v2/pipeline`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ baton, requests }),
  });
  return { status: resp.status, body: (await resp.json()) as any };
}

describe('hrana server with @libsql/client/web', () => {
  it('answers the v2 version check', async () => {
    expect((await fetch(`${server.url}/v2`)).status).toBe(200);
    expect((await fetch(`${server.url}/v3-protobuf`)).status).toBe(404);
  });

  it('executes with positional args and returns typed values', async () => {
    await client.execute('CREATE TABLE vals (id INTEGER PRIMARY KEY, i INTEGER, f REAL, s TEXT, b BLOB, n)');
    const ins = await client.execute({
      sql: 'INSERT INTO vals (i, f, s, b, n) VALUES (?, ?, ?, ?, ?)',
      args: [42, 2.5, 'héllo', new Uint8Array([0, 1, 254, 255]), null],
    });
    expect(ins.rowsAffected).toBe(1);
    expect(ins.lastInsertRowid).toBe(1n);

    const rs = await client.execute({
      sql: 'SELECT i, f, s, b, n, typeof(i) AS ti, typeof(f) AS tf FROM vals WHERE id = ?',
      args: [1],
    });
    expect(rs.columns).toEqual(['i', 'f', 's', 'b', 'n', 'ti', 'tf']);
    expect(rs.columnTypes.slice(0, 4)).toEqual(['INTEGER', 'REAL', 'TEXT', 'BLOB']);
    expect(rs.rowsAffected).toBe(0);
    const row = rs.rows[0]!;
    expect(row.i).toBe(42);
    expect(row.f).toBe(2.5);
    expect(row.s).toBe('héllo');
    expect(row.b).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(row.b as ArrayBuffer)]).toEqual([0, 1, 254, 255]);
    expect(row.n).toBeNull();
    expect(row.ti).toBe('integer');
    expect(row.tf).toBe('real');
    // A JS number is sent as a Hrana float, like sqld binds it.
    expect((await client.execute({ sql: 'SELECT typeof(?) AS t', args: [7] })).rows[0]!.t).toBe('real');
  });

  it('round-trips 64-bit integers exactly', async () => {
    const big = createClient({ url: server.url, intMode: 'bigint' });
    try {
      const rs = await big.execute({
        sql: 'SELECT ? AS a, ? AS b, 9223372036854775807 AS c',
        args: [9007199254740993n, -9223372036854775808n],
      });
      expect(rs.rows[0]!.a).toBe(9007199254740993n);
      expect(rs.rows[0]!.b).toBe(-9223372036854775808n);
      expect(rs.rows[0]!.c).toBe(9223372036854775807n);
    } finally {
      big.close();
    }
  });

  it('executes with named args (with and without prefixes)', async () => {
    const rs = await client.execute({
      sql: 'SELECT :a AS a, @b AS b, $c AS c, :a + 1 AS a1',
      args: { a: 5, '@b': 'x', $c: null },
    });
    expect(rs.rows[0]).toMatchObject({ a: 5, b: 'x', c: null, a1: 6 });

    await client.execute({ sql: 'INSERT INTO kv (k, v) VALUES (:k, :v)', args: { k: 'named', v: 1 } });
    const got = await client.execute({ sql: 'SELECT v FROM kv WHERE k = $k', args: { k: 'named' } });
    expect(got.rows[0]!.v).toBe(1);
  });

  it('reports statement errors as libsql errors, not HTTP failures', async () => {
    await expect(client.execute('SELEC 1')).rejects.toMatchObject({ code: 'SQLITE_ERROR' });
    const err = await client
      .execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['named', 2] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibsqlError);
    expect((err as LibsqlError).code).toBe('SQLITE_CONSTRAINT');
    expect((err as LibsqlError).message).toMatch(/UNIQUE constraint failed: kv\.k/);
  });

  it('runs a write batch atomically', async () => {
    const ok = await client.batch(
      [
        { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['b1', 1] },
        { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['b2', 2] },
        "SELECT k, v FROM kv WHERE k LIKE 'b%' ORDER BY k",
      ],
      'write',
    );
    expect(ok).toHaveLength(3);
    expect(ok[0]!.rowsAffected).toBe(1);
    expect(ok[2]!.rows.map((r) => r.k)).toEqual(['b1', 'b2']);

    await expect(
      client.batch(
        [
          { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['b3', 3] },
          { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['b1', 9] }, // duplicate key
        ],
        'write',
      ),
    ).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT' });
    const after = await client.execute("SELECT k, v FROM kv WHERE k LIKE 'b%' ORDER BY k");
    expect(after.rows.map((r) => [r.k, r.v])).toEqual([
      ['b1', 1],
      ['b2', 2],
    ]);
  });

  it('commits an interactive transaction', async () => {
    const tx = await client.transaction('write');
    await tx.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['t1', 1] });
    const inside = await tx.execute("SELECT v FROM kv WHERE k = 't1'");
    expect(inside.rows).toHaveLength(1);
    // Not visible to other streams before commit.
    expect((await client.execute("SELECT v FROM kv WHERE k = 't1'")).rows).toHaveLength(0);
    await tx.execute({ sql: 'UPDATE kv SET v = v + 10 WHERE k = ?', args: ['t1'] });
    await tx.commit();
    expect((await client.execute("SELECT v FROM kv WHERE k = 't1'")).rows[0]!.v).toBe(11);
  });

  it('rolls back an interactive transaction', async () => {
    const tx = await client.transaction('write');
    await tx.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['t2', 2] });
    await tx.batch([
      { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['t3', 3] },
      { sql: 'UPDATE kv SET v = 0 WHERE k = ?', args: ['t1'] },
    ]);
    await tx.rollback();
    expect((await client.execute("SELECT k FROM kv WHERE k IN ('t2', 't3')")).rows).toHaveLength(0);
    expect((await client.execute("SELECT v FROM kv WHERE k = 't1'")).rows[0]!.v).toBe(11);
  });

  it('lets a concurrent writer wait for an open write transaction instead of failing', async () => {
    const tx = await client.transaction('write');
    await tx.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['w1', 1] });
    const concurrent = client.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['w2', 2] });
    await new Promise((r) => setTimeout(r, 150));
    await tx.commit(); // the server keeps serving the transaction's stream while the other one waits
    await concurrent;
    expect((await client.execute("SELECT k FROM kv WHERE k IN ('w1', 'w2') ORDER BY k")).rows.map((r) => r.k)).toEqual([
      'w1',
      'w2',
    ]);
  });

  it('works with drizzle transactions and selects', async () => {
    await client.execute(
      'CREATE TABLE services (name TEXT PRIMARY KEY, weight INTEGER NOT NULL DEFAULT 100, created_at INTEGER NOT NULL)',
    );
    const services = sqliteTable('services', {
      name: text('name').primaryKey(),
      weight: integer('weight').notNull().default(100),
      createdAt: integer('created_at').notNull(),
    });
    const db = drizzle(client);

    const inserted = await db.transaction(async (tx) => {
      await tx.insert(services).values({ name: 'api', createdAt: 1 });
      await tx.insert(services).values({ name: 'web', weight: 50, createdAt: 2 });
      await tx.update(services).set({ weight: 75 }).where(eq(services.name, 'web'));
      return (await tx.select().from(services)).length;
    });
    expect(inserted).toBe(2);

    await expect(
      db.transaction(async (tx) => {
        await tx.insert(services).values({ name: 'doomed', createdAt: 3 });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');

    const rows = await db.select().from(services).orderBy(services.name);
    expect(rows).toEqual([
      { name: 'api', weight: 100, createdAt: 1 },
      { name: 'web', weight: 75, createdAt: 2 },
    ]);
  });

  it('counts pipeline requests and the rows their statements return', async () => {
    const rows = server.rowsReturned();
    await client.batch(['SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3', 'SELECT 4'], 'read');
    expect(server.rowsReturned()).toBe(rows + 4);
    const before = server.pipelineRequests();
    await client.execute('SELECT 1');
    expect(server.pipelineRequests()).toBe(before + 1); // execute + close go in one request
    await client.batch(['SELECT 1', 'SELECT 2'], 'read');
    expect(server.pipelineRequests()).toBe(before + 2);
  });

  it('simulates the store being unavailable', async () => {
    server.setUnavailable(true);
    try {
      const err = await client.execute('SELECT 1').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LibsqlError);
      expect((err as LibsqlError).code).toBe('SERVER_ERROR');
      expect((err as LibsqlError).message).toMatch(/503/);
      expect((await fetch(`${server.url}/v2`)).status).toBe(503);
    } finally {
      server.setUnavailable(false);
    }
    expect((await client.execute('SELECT 1 AS one')).rows[0]!.one).toBe(1);
  });

  it('writes are visible to a local file: client on the same database', async () => {
    await client.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['from-http', 123] });
    const local = createFileClient({ url: `file:${dbPath}` });
    try {
      const rs = await local.execute("SELECT v FROM kv WHERE k = 'from-http'");
      expect(rs.rows[0]!.v).toBe(123);
      expect((await local.execute('PRAGMA journal_mode')).rows[0]![0]).toBe('wal');
      await local.execute({ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', args: ['from-file', 7] });
    } finally {
      local.close();
    }
    expect((await client.execute("SELECT v FROM kv WHERE k = 'from-file'")).rows[0]!.v).toBe(7);
  });
});

describe('hrana server protocol details', () => {
  it('keeps a stream across requests with fresh batons and closes it', async () => {
    const first = await pipeline(null, [
      { type: 'execute', stmt: { sql: 'BEGIN' } },
      { type: 'get_autocommit' },
      { type: 'store_sql', sql_id: 1, sql: 'INSERT INTO kv (k, v) VALUES (?, ?)' },
    ]);
    expect(first.status).toBe(200);
    expect(first.body.base_url).toBeNull();
    expect(first.body.results.map((r: any) => r.type)).toEqual(['ok', 'ok', 'ok']);
    expect(first.body.results[1].response).toEqual({ type: 'get_autocommit', is_autocommit: false });
    const baton1 = first.body.baton as string;
    expect(typeof baton1).toBe('string');

    const second = await pipeline(baton1, [
      {
        type: 'execute',
        stmt: {
          sql_id: 1,
          args: [
            { type: 'text', value: 'p1' },
            { type: 'integer', value: '5' },
          ],
          want_rows: false,
        },
      },
      { type: 'store_sql', sql_id: 1, sql: 'SELECT 1' }, // id in use -> error
      { type: 'close_sql', sql_id: 1 },
      { type: 'execute', stmt: { sql_id: 1 } }, // closed -> error
      { type: 'execute', stmt: { sql: 'COMMIT' } },
      { type: 'get_autocommit' },
    ]);
    const r = second.body.results;
    expect(r[0]).toEqual({
      type: 'ok',
      response: {
        type: 'execute',
        result: { cols: [], rows: [], affected_row_count: 1, last_insert_rowid: expect.any(String) },
      },
    });
    expect(r[1].type).toBe('error');
    expect(r[2]).toEqual({ type: 'ok', response: { type: 'close_sql' } });
    expect(r[3].type).toBe('error');
    expect(r[3].error.message).toMatch(/not found/);
    expect(r[4].type).toBe('ok');
    expect(r[5].response.is_autocommit).toBe(true);
    const baton2 = second.body.baton as string;
    expect(baton2).not.toBe(baton1);

    // A used baton is no longer valid.
    const stale = await pipeline(baton1, [{ type: 'get_autocommit' }]);
    expect(stale.status).toBe(400);
    expect(stale.body.message).toMatch(/baton/);

    const closing = await pipeline(baton2, [
      { type: 'execute', stmt: { sql: "SELECT v FROM kv WHERE k = 'p1'" } },
      { type: 'close' },
      { type: 'execute', stmt: { sql: 'SELECT 1' } },
    ]);
    expect(closing.body.baton).toBeNull();
    expect(closing.body.results[0].response.result.rows).toEqual([[{ type: 'integer', value: '5' }]]);
    expect(closing.body.results[0].response.result.cols).toEqual([{ name: 'v', decltype: 'INTEGER' }]);
    expect(closing.body.results[1]).toEqual({ type: 'ok', response: { type: 'close' } });
    expect(closing.body.results[2].type).toBe('error');
  });

  it('evaluates batch conditions', async () => {
    const { body } = await pipeline(null, [
      {
        type: 'batch',
        batch: {
          steps: [
            { stmt: { sql: 'SELECT 1' } },
            { stmt: { sql: 'SELECT nope' } },
            { condition: { type: 'ok', step: 1 }, stmt: { sql: "SELECT 'skipped'" } },
            { condition: { type: 'error', step: 1 }, stmt: { sql: "SELECT 'ran'" } },
            {
              condition: {
                type: 'and',
                conds: [
                  { type: 'ok', step: 0 },
                  { type: 'not', cond: { type: 'ok', step: 2 } },
                  { type: 'or', conds: [{ type: 'error', step: 0 }, { type: 'is_autocommit' }] },
                ],
              },
              stmt: { sql: 'SELECT ?', args: [{ type: 'float', value: 1.5 }] },
            },
          ],
        },
      },
      { type: 'batch', batch: { steps: [{ condition: { type: 'ok', step: 0 }, stmt: { sql: 'SELECT 1' } }] } },
      { type: 'close' },
    ]);
    const batch = body.results[0].response.result;
    expect(batch.step_results.map((x: unknown) => x !== null)).toEqual([true, false, false, true, true]);
    expect(batch.step_errors.map((x: unknown) => x !== null)).toEqual([false, true, false, false, false]);
    expect(batch.step_errors[1].code).toBe('SQLITE_ERROR');
    expect(batch.step_results[3].rows).toEqual([[{ type: 'text', value: 'ran' }]]);
    expect(batch.step_results[4].rows).toEqual([[{ type: 'float', value: 1.5 }]]);
    // A condition that refers to the step itself is rejected.
    expect(body.results[1].type).toBe('error');
  });

  it('supports sequence, describe, blobs, named args and statement checks', async () => {
    const { body } = await pipeline(null, [
      {
        type: 'sequence',
        sql: "CREATE TABLE seq (a INTEGER, b BLOB); -- comment; with semicolon\nINSERT INTO seq VALUES (1, x'00ff');\n CREATE TRIGGER seq_t AFTER INSERT ON seq BEGIN UPDATE seq SET a = CASE WHEN new.a > 1 THEN new.a * 10 ELSE new.a END WHERE rowid = new.rowid; END;",
      },
      { type: 'execute', stmt: { sql: 'INSERT INTO seq VALUES (2, ?)', args: [{ type: 'blob', base64: 'AQID' }] } },
      { type: 'execute', stmt: { sql: 'SELECT a, b FROM seq ORDER BY a' } },
      {
        type: 'execute',
        stmt: {
          sql: "SELECT ?2 AS two, :x AS x, ?1 AS one, ':y;' AS lit",
          args: [
            { type: 'integer', value: '1' },
            { type: 'integer', value: '2' },
          ],
          named_args: [{ name: ':x', value: { type: 'text', value: 'ex' } }],
        },
      },
      { type: 'describe', sql: 'SELECT a AS alpha, :p FROM seq WHERE b = ?' },
      { type: 'describe', sql: 'INSERT INTO seq (a) VALUES (1)' },
      { type: 'execute', stmt: { sql: 'SELECT 1; SELECT 2' } },
      { type: 'execute', stmt: { sql: '  -- nothing\n' } },
      { type: 'execute', stmt: { sql: 'SELECT 1;  -- trailing\n' } },
      { type: 'close' },
    ]);
    const r = body.results;
    expect(r[0]).toEqual({ type: 'ok', response: { type: 'sequence' } });
    expect(r[1].response.result.affected_row_count).toBe(1);
    expect(r[2].response.result.rows).toEqual([
      [
        { type: 'integer', value: '1' },
        { type: 'blob', base64: 'AP8=' },
      ],
      [
        { type: 'integer', value: '20' },
        { type: 'blob', base64: 'AQID' },
      ],
    ]);
    expect(r[3].response.result.rows).toEqual([
      [
        { type: 'integer', value: '2' },
        { type: 'text', value: 'ex' },
        { type: 'integer', value: '1' },
        { type: 'text', value: ':y;' },
      ],
    ]);
    expect(r[4].response.result).toEqual({
      params: [{ name: ':p' }, { name: null }],
      cols: [
        { name: 'alpha', decltype: 'INTEGER' },
        { name: ':p', decltype: null },
      ],
      is_explain: false,
      is_readonly: true,
    });
    expect(r[5].response.result.is_readonly).toBe(false);
    expect(r[6].error.code).toBe('SQL_MANY_STATEMENTS');
    expect(r[7].error.code).toBe('SQL_NO_STATEMENT');
    expect(r[8].type).toBe('ok');
  });

  it('gives up on SQLITE_BUSY after the busy timeout and keeps the stream usable', async () => {
    const holder = await pipeline(null, [
      { type: 'execute', stmt: { sql: 'BEGIN IMMEDIATE' } },
      { type: 'execute', stmt: { sql: "INSERT INTO kv (k, v) VALUES ('held', 1)" } },
    ]);
    expect(holder.body.results.map((r: any) => r.type)).toEqual(['ok', 'ok']);

    const started = Date.now();
    const blocked = await pipeline(null, [
      { type: 'execute', stmt: { sql: "INSERT INTO kv (k, v) VALUES ('x1', 1)" } },
    ]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
    expect(blocked.body.results[0].error.code).toBe('SQLITE_BUSY');

    const released = await pipeline(holder.body.baton, [
      { type: 'execute', stmt: { sql: 'COMMIT' } },
      { type: 'close' },
    ]);
    expect(released.body.results[0].type).toBe('ok');

    // The stream that timed out still works, and its autocommit writes really commit.
    const retry = await pipeline(blocked.body.baton, [
      { type: 'execute', stmt: { sql: "INSERT INTO kv (k, v) VALUES ('x2', 2)" } },
      { type: 'get_autocommit' },
    ]);
    expect(retry.body.results[0].type).toBe('ok');
    expect(retry.body.results[1].response.is_autocommit).toBe(true);
    expect(
      (await client.execute("SELECT k FROM kv WHERE k IN ('held', 'x1', 'x2') ORDER BY k")).rows.map((r) => r.k),
    ).toEqual(['held', 'x2']);
    await pipeline(retry.body.baton, [{ type: 'close' }]);
  }, 15_000);

  it('rejects malformed requests with HTTP 400 and unknown paths with 404', async () => {
    const bad = await fetch(`${server.url}/v2/pipeline`, { method: 'POST', body: '{' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/json');
    expect((await fetch(`${server.url}/v3/pipeline`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});
