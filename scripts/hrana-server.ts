/**
 * A small Hrana-over-HTTP v2 (JSON) server on top of the embedded libSQL engine
 * (`libsql` npm package), for tests and `npm run dev`: a development fixture; production talks to
 * Turso or sqld.
 *
 * It lets code that uses `@libsql/client/web` (e.g. a Worker running inside
 * workerd) talk to a real libSQL database file over HTTP, the same way it would
 * talk to sqld / Turso.
 *
 * Protocol: https://github.com/tursodatabase/libsql/blob/main/docs/HTTP_V2_SPEC.md
 * and docs/HRANA_2_SPEC.md (+ HRANA_1_SPEC.md for values, batches and results).
 *
 * Notes:
 * - `@libsql/client` 0.18 (hrana-client 0.10) defaults to protocol version 2:
 *   it does not probe any version endpoint and POSTs JSON to `/v2/pipeline`.
 *   (Were it asked for version 3, it would `GET /v3-protobuf` and fall back to
 *   v2 JSON on a non-2xx answer, which is what this server gives: 404.)
 *   `GET /v2` answers 200 as the spec requires.
 * - Each stream (identified by a baton that changes on every response) owns
 *   its own `libsql` connection to the database file, so interactive
 *   transactions are isolated. Idle streams are closed after 10 s (which rolls
 *   back any open transaction).
 * - libsql calls are synchronous, so a connection waiting in SQLite's busy
 *   handler would block the whole event loop, including the very stream that
 *   holds the lock. Therefore the native busy timeout is kept short and
 *   SQLITE_BUSY is retried asynchronously (with back-off) for up to 5 s.
 *   A retry re-runs the *same* prepared statement: a statement that failed
 *   with SQLITE_BUSY stays active inside SQLite until it is reset, and would
 *   otherwise keep later autocommit writes on that connection from committing.
 * - SQLite errors are reported like sqld does: message "SQLite error: ...",
 *   code = primary result code name (e.g. "SQLITE_CONSTRAINT").
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Database from 'libsql';

export interface HranaServer {
  /** Base URL, e.g. "http://127.0.0.1:41234". */
  url: string;
  /** Count of POST /v2/pipeline requests received so far (including ones answered with 503). */
  pipelineRequests(): number;
  /** Rows the statements run so far returned. */
  rowsReturned(): number;
  /** When true, every request gets HTTP 503 (simulates the store being unreachable). */
  setUnavailable(down: boolean): void;
  close(): Promise<void>;
}

const STREAM_IDLE_TIMEOUT_MS = 10_000;
/** Native (blocking) busy timeout of each connection. */
const NATIVE_BUSY_TIMEOUT_MS = 20;
/** Total time a statement keeps being retried (asynchronously) on SQLITE_BUSY. */
const BUSY_RETRY_TIMEOUT_MS = 5_000;
const MAX_BODY_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Protocol types (JSON encoding)
// ---------------------------------------------------------------------------

type ProtoValue =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string };

interface ProtoError {
  message: string;
  code: string | null;
}

interface ProtoCol {
  name: string | null;
  decltype: string | null;
}

interface StmtResult {
  cols: ProtoCol[];
  rows: ProtoValue[][];
  affected_row_count: number;
  last_insert_rowid: string | null;
}

interface BatchResult {
  step_results: (StmtResult | null)[];
  step_errors: (ProtoError | null)[];
}

interface DescribeResult {
  params: { name: string | null }[];
  cols: { name: string; decltype: string | null }[];
  is_explain: boolean;
  is_readonly: boolean;
}

type StreamResponse =
  | { type: 'close' }
  | { type: 'execute'; result: StmtResult }
  | { type: 'batch'; result: BatchResult }
  | { type: 'sequence' }
  | { type: 'describe'; result: DescribeResult }
  | { type: 'store_sql' }
  | { type: 'close_sql' }
  | { type: 'get_autocommit'; is_autocommit: boolean };

type StreamResult = { type: 'ok'; response: StreamResponse } | { type: 'error'; error: ProtoError };

/** An error reported to the client as a Hrana `Error` (`{message, code}`). */
class HranaError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'HranaError';
  }
}

function protoError(message: string): HranaError {
  return new HranaError(message, 'PROTO_ERROR');
}

// ---------------------------------------------------------------------------
// JSON validation helpers
// ---------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectObject(v: unknown, what: string): JsonObject {
  if (!isObject(v)) throw protoError(`Expected ${what} to be an object`);
  return v;
}

function expectArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw protoError(`Expected ${what} to be an array`);
  return v;
}

function optArray(v: unknown, what: string): unknown[] {
  return v === undefined || v === null ? [] : expectArray(v, what);
}

function expectString(v: unknown, what: string): string {
  if (typeof v !== 'string') throw protoError(`Expected ${what} to be a string`);
  return v;
}

function expectInt32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -2147483648 || v > 2147483647) {
    throw protoError(`Expected ${what} to be a 32-bit integer`);
  }
  return v;
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

type SqlValue = null | bigint | number | string | Buffer;

const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

function decodeValue(v: unknown): SqlValue {
  const obj = expectObject(v, 'value');
  switch (obj.type) {
    case 'null':
      return null;
    case 'integer': {
      const raw = obj.value;
      let int: bigint;
      if (typeof raw === 'string' && /^[+-]?\d+$/.test(raw.trim())) {
        int = BigInt(raw.trim());
      } else if (typeof raw === 'number' && Number.isSafeInteger(raw)) {
        int = BigInt(raw);
      } else {
        throw protoError('Expected the value of an integer to be a string with a decimal integer');
      }
      if (int < MIN_INT64 || int > MAX_INT64) throw protoError('Integer value is out of the 64-bit range');
      return int;
    }
    case 'float': {
      const raw = obj.value;
      if (typeof raw !== 'number') throw protoError('Expected the value of a float to be a number');
      return raw;
    }
    case 'text':
      return expectString(obj.value, 'the value of a text');
    case 'blob': {
      const b64 = expectString(obj.base64, 'the base64 of a blob');
      return Buffer.from(b64, 'base64');
    }
    default:
      throw protoError(`Unknown type of value: ${JSON.stringify(obj.type)}`);
  }
}

function encodeValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { type: 'null' };
  if (typeof v === 'bigint') return { type: 'integer', value: v.toString() };
  if (typeof v === 'number') {
    // With safeIntegers(true), SQLite INTEGERs come back as bigint, so a number is a REAL.
    if (!Number.isFinite(v)) {
      throw new HranaError(`Cannot encode non-finite float ${v} in JSON`, 'VALUE_NOT_REPRESENTABLE');
    }
    return { type: 'float', value: v };
  }
  if (typeof v === 'string') return { type: 'text', value: v };
  if (v instanceof Uint8Array) {
    return { type: 'blob', base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  }
  if (v instanceof ArrayBuffer) return { type: 'blob', base64: Buffer.from(v).toString('base64') };
  throw new HranaError(`Cannot encode value of type ${typeof v}`, 'INTERNAL');
}

// ---------------------------------------------------------------------------
// A minimal SQL scanner: statement boundaries and parameters
// ---------------------------------------------------------------------------

interface SqlStatementInfo {
  /** Offset of the first token of the statement. */
  start: number;
  /** Offset just after the statement (after its terminating `;`, or the end of the text). */
  end: number;
  /** True if there is no statement (only whitespace, comments and `;`). */
  empty: boolean;
  /** Parameter names by index (`paramNames[0]` is parameter 1); null for `?` and unused indexes. */
  paramNames: (string | null)[];
  /** First keyword (upper-case), e.g. "SELECT". */
  firstWord: string | null;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

function isIdStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c >= 128;
}

/** SQLite's IdChar(): alphanumerics, `_`, `$` and anything non-ASCII. */
function isIdChar(c: number): boolean {
  return isIdStart(c) || isDigit(c) || c === 36;
}

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v';
}

/**
 * Scans the first statement of `sql` starting at `from`, following SQLite's
 * tokenizer closely enough to find the terminating `;` (strings, quoted
 * identifiers, comments and `CREATE TRIGGER ... BEGIN ... END` bodies are
 * skipped, like `sqlite3_complete()` does) and to number the parameters the
 * way `sqlite3_bind_parameter_index()` does.
 */
function scanStatement(sql: string, from = 0): SqlStatementInfo {
  const n = sql.length;
  const tokens: string[] = [];
  const names = new Map<number, string>();
  const namedIndex = new Map<string, number>();
  let nVar = 0;
  let inTrigger = false;
  let start = -1;
  let i = from;

  const finish = (end: number): SqlStatementInfo => {
    const paramNames: (string | null)[] = [];
    for (let k = 1; k <= nVar; k++) paramNames.push(names.get(k) ?? null);
    return {
      start: start < 0 ? end : start,
      end,
      empty: tokens.length === 0,
      paramNames,
      firstWord: tokens[0] !== undefined && /^[A-Z_]/.test(tokens[0]) ? tokens[0] : null,
    };
  };
  const push = (token: string, at: number) => {
    if (start < 0) start = at;
    tokens.push(token);
  };

  while (i < n) {
    const ch = sql[i]!;
    const c = sql.charCodeAt(i);
    if (isSpace(ch)) {
      i++;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i + 2);
      i = nl < 0 ? n : nl + 1;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
    } else if (ch === "'" || ch === '"' || ch === '`') {
      const at = i;
      i++;
      while (i < n) {
        if (sql[i] === ch) {
          if (sql[i + 1] === ch) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      push(ch === "'" ? '<string>' : '<id>', at);
    } else if (ch === '[') {
      const close = sql.indexOf(']', i + 1);
      push('<id>', i);
      i = close < 0 ? n : close + 1;
    } else if (ch === ';') {
      i++;
      if (tokens.length === 0) continue; // empty statement
      if (!inTrigger) return finish(i);
      const k = tokens.length;
      if (tokens[k - 1] === 'END' && tokens[k - 2] === ';') return finish(i);
      tokens.push(';');
    } else if (ch === '?') {
      let j = i + 1;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      if (j === i + 1) {
        nVar++;
      } else {
        const text = sql.slice(i, j);
        const idx = Number.parseInt(text.slice(1), 10);
        if (idx > nVar) nVar = idx;
        if (!names.has(idx)) names.set(idx, text);
      }
      push('?', i);
      i = j;
    } else if (ch === ':' || ch === '@' || ch === '$' || ch === '#') {
      let j = i + 1;
      let len = 0;
      while (j < n) {
        const cj = sql.charCodeAt(j);
        if (isIdChar(cj)) {
          len++;
          j++;
        } else if (sql[j] === '(' && len > 0) {
          j++;
          while (j < n && !isSpace(sql[j]) && sql[j] !== ')') j++;
          if (sql[j] === ')') j++;
          break;
        } else if (sql[j] === ':' && sql[j + 1] === ':') {
          j += 2;
        } else {
          break;
        }
      }
      if (len > 0) {
        const name = sql.slice(i, j);
        if (!namedIndex.has(name)) {
          nVar++;
          namedIndex.set(name, nVar);
          names.set(nVar, name);
        }
        push('<var>', i);
        i = j;
      } else {
        push(ch, i);
        i++;
      }
    } else if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && isIdChar(sql.charCodeAt(j))) j++;
      const word = sql.slice(i, j).toUpperCase();
      push(word, i);
      i = j;
      if (word === 'TRIGGER' && !inTrigger) {
        let s = 0;
        if (tokens[0] === 'EXPLAIN') s = tokens[1] === 'QUERY' && tokens[2] === 'PLAN' ? 3 : 1;
        if (tokens[s] === 'CREATE') {
          const next = tokens[s + 1];
          if (tokens.length === s + 2 || (tokens.length === s + 3 && (next === 'TEMP' || next === 'TEMPORARY'))) {
            inTrigger = true;
          }
        }
      }
    } else if (isDigit(c) || (ch === '.' && isDigit(sql.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n && (isIdChar(sql.charCodeAt(j)) || sql[j] === '.')) j++;
      push('<number>', i);
      i = j;
    } else {
      push(ch, i);
      i++;
    }
  }
  return finish(n);
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const SQLITE_PRIMARY_CODES: Record<number, string> = {
  1: 'SQLITE_ERROR',
  2: 'SQLITE_INTERNAL',
  3: 'SQLITE_PERM',
  4: 'SQLITE_ABORT',
  5: 'SQLITE_BUSY',
  6: 'SQLITE_LOCKED',
  7: 'SQLITE_NOMEM',
  8: 'SQLITE_READONLY',
  9: 'SQLITE_INTERRUPT',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  12: 'SQLITE_NOTFOUND',
  13: 'SQLITE_FULL',
  14: 'SQLITE_CANTOPEN',
  15: 'SQLITE_PROTOCOL',
  16: 'SQLITE_EMPTY',
  17: 'SQLITE_SCHEMA',
  18: 'SQLITE_TOOBIG',
  19: 'SQLITE_CONSTRAINT',
  20: 'SQLITE_MISMATCH',
  21: 'SQLITE_MISUSE',
  22: 'SQLITE_NOLFS',
  23: 'SQLITE_AUTH',
  24: 'SQLITE_FORMAT',
  25: 'SQLITE_RANGE',
  26: 'SQLITE_NOTADB',
  27: 'SQLITE_NOTICE',
  28: 'SQLITE_WARNING',
};

function sqliteErrorInfo(e: unknown): { code: string; extendedCode: string; message: string } | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  const rawCode = (e as { rawCode?: unknown }).rawCode;
  const primary =
    (typeof rawCode === 'number' ? SQLITE_PRIMARY_CODES[rawCode & 0xff] : undefined) ??
    /^SQLITE_[A-Z]+/.exec(code)?.[0] ??
    code;
  return { code: primary, extendedCode: code, message: e.message };
}

function toProtoError(e: unknown): ProtoError {
  if (e instanceof HranaError) return { message: e.message, code: e.code };
  const sqlite = sqliteErrorInfo(e);
  // sqld reports SQLite failures as "SQLite error: <message>" with the primary result code.
  if (sqlite) return { message: `SQLite error: ${sqlite.message}`, code: sqlite.code };
  const message = e instanceof Error ? e.message : String(e);
  return { message, code: 'INTERNAL' };
}

function isBusy(e: unknown): boolean {
  return sqliteErrorInfo(e)?.code === 'SQLITE_BUSY';
}

function isRetryableBusy(e: unknown): boolean {
  const info = sqliteErrorInfo(e);
  // SQLITE_BUSY_SNAPSHOT cannot succeed by waiting: the transaction's snapshot is stale.
  return info !== undefined && info.code === 'SQLITE_BUSY' && info.extendedCode !== 'SQLITE_BUSY_SNAPSHOT';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

type LibsqlDatabase = Database.Database;
type LibsqlStatement = Database.Statement;

class Stream {
  db: LibsqlDatabase;
  readonly sqls = new Map<number, string>();
  /** The last statement this stream ran and when (ms since the epoch): GET /_debug/streams lists them. */
  lastSql = '';
  lastAt = 0;
  closed = false;
  /**
   * A statement that failed with SQLITE_BUSY and was given up on stays "active"
   * inside SQLite (libsql offers no way to reset it), and an active write
   * statement keeps later autocommit writes on the same connection from ever
   * committing. Such a connection is replaced as soon as it is in autocommit mode.
   */
  private tainted = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private totalChangesStmt!: LibsqlStatement;
  private changesStmt!: LibsqlStatement;

  constructor(
    private readonly dbPath: string,
    /** Told how many rows each statement returned (what a hosted store bills as rows read, roughly). */
    private readonly onRows: (count: number) => void = () => undefined,
  ) {
    this.db = this.open();
  }

  private open(): LibsqlDatabase {
    const db = new Database(this.dbPath);
    try {
      db.exec(`PRAGMA busy_timeout = ${NATIVE_BUSY_TIMEOUT_MS}`);
      db.exec('PRAGMA synchronous = NORMAL');
      this.totalChangesStmt = db.prepare('SELECT total_changes()').raw(true).safeIntegers(true);
      this.changesStmt = db.prepare('SELECT changes(), last_insert_rowid()').raw(true).safeIntegers(true);
    } catch (e) {
      db.close();
      throw e;
    }
    return db;
  }

  /** Replaces a tainted connection once that loses nothing (no transaction is open). */
  private healConnection(): void {
    if (!this.tainted || this.db.inTransaction) return;
    try {
      this.db.close();
    } catch {
      // ignore: the connection lingers until the stuck statement is garbage-collected
    }
    this.tainted = false;
    this.db = this.open();
  }

  ensureOpen(): void {
    if (this.closed) throw new HranaError('The stream has been closed', 'STREAM_CLOSED');
  }

  get inTransaction(): boolean {
    this.ensureOpen(); // reading inTransaction on a closed connection aborts the process
    return this.db.inTransaction;
  }

  stopIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  startIdleTimer(onExpire: () => void): void {
    this.stopIdleTimer();
    this.idleTimer = setTimeout(onExpire, STREAM_IDLE_TIMEOUT_MS);
    this.idleTimer.unref();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopIdleTimer();
    this.sqls.clear();
    try {
      // ROLLBACK first: close() fails while a stuck statement is active (see `tainted`), and the connection
      // would then linger with its transaction, holding the write lock until the statement is collected.
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } catch {
      // ignore: close() below is the last resort
    }
    try {
      this.db.close(); // rolls back an open transaction
    } catch {
      // ignore
    }
  }

  private totalChanges(): bigint {
    const row = this.totalChangesStmt.get([]) as unknown[];
    return row[0] as bigint;
  }

  /** Executes one statement, retrying it while the database is busy. */
  async execute(sql: string, args: SqlValue[], wantRows: boolean): Promise<StmtResult> {
    this.lastSql = sql.slice(0, 200);
    this.lastAt = Date.now();
    const stmt = await this.withBusyRetry(() => {
      this.healConnection();
      const prepared = this.db.prepare(sql);
      prepared.safeIntegers(true);
      return prepared;
    });
    const db = this.db;
    // Retrying must reuse the same statement: running it again resets it.
    return this.withBusyRetry(() => {
      if (this.db !== db) throw new HranaError('The connection was reset', 'STREAM_RESET');
      const before = this.totalChanges();
      let cols: ProtoCol[] = [];
      let rows: ProtoValue[][] = [];
      if (stmt.reader) {
        stmt.raw(true);
        cols = stmt.columns().map((c) => ({ name: c.name, decltype: c.type ?? null }));
        const all = stmt.all(args) as unknown[][];
        if (wantRows) rows = all.map((row) => row.map(encodeValue));
        this.onRows(all.length);
      } else {
        stmt.run(args);
      }
      const after = this.totalChanges();
      const [changes, lastInsertRowid] = this.changesStmt.get([]) as [bigint, bigint];
      return {
        cols,
        rows,
        affected_row_count: after !== before ? Number(changes) : 0,
        last_insert_rowid: lastInsertRowid.toString(),
      };
    });
  }

  /** Retries `fn` while it fails with SQLITE_BUSY, without blocking the event loop. */
  async withBusyRetry<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + BUSY_RETRY_TIMEOUT_MS;
    let delay = 2;
    for (;;) {
      this.ensureOpen();
      try {
        return fn();
      } catch (e) {
        if (!isBusy(e)) throw e;
        if (this.tainted || !isRetryableBusy(e) || Date.now() >= deadline) {
          this.tainted = true;
          this.healConnection();
          throw e;
        }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 50);
    }
  }
}

// ---------------------------------------------------------------------------
// Request handling
// ---------------------------------------------------------------------------

function resolveSql(stream: Stream, obj: JsonObject): string {
  const sql = obj.sql;
  const sqlId = obj.sql_id;
  const hasSql = sql !== undefined && sql !== null;
  const hasSqlId = sqlId !== undefined && sqlId !== null;
  if (hasSql && hasSqlId) throw protoError('Only one of `sql` and `sql_id` may be given');
  if (hasSql) return expectString(sql, 'sql');
  if (hasSqlId) {
    const id = expectInt32(sqlId, 'sql_id');
    const text = stream.sqls.get(id);
    if (text === undefined) throw new HranaError(`SQL text with id ${id} was not found`, 'SQL_NOT_FOUND');
    return text;
  }
  throw protoError('One of `sql` and `sql_id` must be given');
}

/** Scans `sql` and checks it holds exactly one statement. */
function singleStatement(sql: string): SqlStatementInfo {
  const info = scanStatement(sql);
  if (info.empty) throw new HranaError('SQL string does not contain any statement', 'SQL_NO_STATEMENT');
  if (!scanStatement(sql, info.end).empty) {
    throw new HranaError('SQL string contains more than one statement', 'SQL_MANY_STATEMENTS');
  }
  return info;
}

function bindArgs(stmtObj: JsonObject, info: SqlStatementInfo): SqlValue[] {
  const args = optArray(stmtObj.args, 'args').map(decodeValue);
  const namedRaw = optArray(stmtObj.named_args, 'named_args');
  if (namedRaw.length === 0) return args;

  const named = new Map<string, SqlValue>();
  for (const item of namedRaw) {
    const obj = expectObject(item, 'named argument');
    named.set(expectString(obj.name, 'name of a named argument'), decodeValue(obj.value));
  }
  // Positional arguments first; a named argument takes precedence (HRANA_1_SPEC).
  const bound: SqlValue[] = Array.from({ length: Math.max(info.paramNames.length, args.length) }, (_, k) =>
    k < args.length ? args[k]! : null,
  );
  info.paramNames.forEach((name, k) => {
    if (name === null) return;
    // The client may give the name with or without its prefix (`:`, `@`, `$`).
    const value = named.has(name) ? named.get(name) : named.get(name.slice(1));
    if (value !== undefined) bound[k] = value;
  });
  return bound;
}

async function executeStmt(stream: Stream, stmtRaw: unknown): Promise<StmtResult> {
  const stmtObj = expectObject(stmtRaw, 'stmt');
  const sql = resolveSql(stream, stmtObj);
  const info = singleStatement(sql);
  const args = bindArgs(stmtObj, info);
  const wantRowsRaw = stmtObj.want_rows;
  const wantRows = wantRowsRaw === undefined || wantRowsRaw === null ? true : wantRowsRaw === true;
  const text = sql.slice(info.start);
  return stream.execute(text, args, wantRows);
}

type StepOutcome = 'ok' | 'error' | 'skipped';

function validateCond(cond: unknown, stepIndex: number): void {
  const obj = expectObject(cond, 'batch condition');
  switch (obj.type) {
    case 'ok':
    case 'error': {
      const step = expectInt32(obj.step, 'step of a batch condition');
      if (step < 0 || step >= stepIndex) {
        throw new HranaError(
          `Batch condition of step ${stepIndex} refers to step ${step}, which is not an earlier step`,
          'BATCH_COND_BAD_STEP',
        );
      }
      return;
    }
    case 'not':
      validateCond(obj.cond, stepIndex);
      return;
    case 'and':
    case 'or':
      for (const c of expectArray(obj.conds, 'conds of a batch condition')) validateCond(c, stepIndex);
      return;
    case 'is_autocommit':
      return;
    default:
      throw protoError(`Unknown type of batch condition: ${JSON.stringify(obj.type)}`);
  }
}

function evalCond(cond: JsonObject, outcomes: StepOutcome[], stream: Stream): boolean {
  switch (cond.type) {
    case 'ok':
      return outcomes[cond.step as number] === 'ok';
    case 'error':
      return outcomes[cond.step as number] === 'error';
    case 'not':
      return !evalCond(cond.cond as JsonObject, outcomes, stream);
    case 'and':
      return (cond.conds as JsonObject[]).every((c) => evalCond(c, outcomes, stream));
    case 'or':
      return (cond.conds as JsonObject[]).some((c) => evalCond(c, outcomes, stream));
    case 'is_autocommit':
      return !stream.inTransaction;
    default:
      throw protoError('Unknown type of batch condition');
  }
}

async function executeBatch(stream: Stream, batchRaw: unknown): Promise<BatchResult> {
  const batch = expectObject(batchRaw, 'batch');
  const steps = expectArray(batch.steps, 'steps').map((s, i) => {
    const step = expectObject(s, 'batch step');
    const condition = step.condition;
    if (condition !== undefined && condition !== null) validateCond(condition, i);
    expectObject(step.stmt, 'stmt of a batch step');
    return step;
  });

  const result: BatchResult = { step_results: [], step_errors: [] };
  const outcomes: StepOutcome[] = [];
  for (const step of steps) {
    const condition = step.condition;
    const enabled =
      condition === undefined || condition === null || evalCond(condition as JsonObject, outcomes, stream);
    if (!enabled) {
      result.step_results.push(null);
      result.step_errors.push(null);
      outcomes.push('skipped');
      continue;
    }
    try {
      result.step_results.push(await executeStmt(stream, step.stmt));
      result.step_errors.push(null);
      outcomes.push('ok');
    } catch (e) {
      result.step_results.push(null);
      result.step_errors.push(toProtoError(e));
      outcomes.push('error');
    }
  }
  return result;
}

async function executeSequence(stream: Stream, sql: string): Promise<void> {
  let pos = 0;
  while (pos < sql.length) {
    const info = scanStatement(sql, pos);
    pos = info.end;
    if (info.empty) continue;
    const text = sql.slice(info.start, info.end);
    await stream.execute(text, [], false);
  }
}

const TRANSACTION_CONTROL = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);

function describe(stream: Stream, sql: string): DescribeResult {
  stream.ensureOpen();
  const info = singleStatement(sql);
  const text = sql.slice(info.start);
  const stmt = stream.db.prepare(text);
  const cols = stmt.columns().map((c) => ({ name: c.name, decltype: c.type ?? null }));
  const isExplain = info.firstWord === 'EXPLAIN';
  let isReadonly = true;
  if (!isExplain && !TRANSACTION_CONTROL.has(info.firstWord ?? '')) {
    // Approximates sqlite3_stmt_readonly(): the program opens a write transaction.
    const program = stream.db.prepare(`EXPLAIN ${text}`).raw(true).all([]) as unknown[][];
    isReadonly = !program.some((op) => op[1] === 'Transaction' && Number(op[3]) !== 0);
  }
  return {
    params: info.paramNames.map((name) => ({ name })),
    cols,
    is_explain: isExplain,
    is_readonly: isReadonly,
  };
}

async function handleStreamRequest(stream: Stream, reqRaw: unknown): Promise<StreamResponse> {
  const req = expectObject(reqRaw, 'request');
  switch (req.type) {
    case 'close':
      stream.close();
      return { type: 'close' };
    case 'execute':
      return { type: 'execute', result: await executeStmt(stream, req.stmt) };
    case 'batch':
      return { type: 'batch', result: await executeBatch(stream, req.batch) };
    case 'sequence':
      await executeSequence(stream, resolveSql(stream, req));
      return { type: 'sequence' };
    case 'describe': {
      const sql = resolveSql(stream, req);
      return { type: 'describe', result: await stream.withBusyRetry(() => describe(stream, sql)) };
    }
    case 'store_sql': {
      const id = expectInt32(req.sql_id, 'sql_id');
      const sql = expectString(req.sql, 'sql');
      if (stream.sqls.has(id)) throw new HranaError(`SQL text with id ${id} already exists`, 'SQL_STORE_ID_EXISTS');
      stream.sqls.set(id, sql);
      return { type: 'store_sql' };
    }
    case 'close_sql':
      stream.sqls.delete(expectInt32(req.sql_id, 'sql_id'));
      return { type: 'close_sql' };
    case 'get_autocommit':
      return { type: 'get_autocommit', is_autocommit: !stream.inTransaction };
    default:
      throw protoError(`Unknown type of stream request: ${JSON.stringify(req.type)}`);
  }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  // The client only decodes error bodies whose content-type is exactly "application/json".
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'Request body is too large', 'PROTO_ERROR');
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

export async function startHranaServer(opts: { dbPath: string; port?: number }): Promise<HranaServer> {
  const { dbPath } = opts;

  // WAL is persistent in the file; set it once so streams can read while one writes.
  {
    const setup = new Database(dbPath);
    try {
      setup.exec(`PRAGMA busy_timeout = ${BUSY_RETRY_TIMEOUT_MS}`);
      setup.exec('PRAGMA journal_mode = WAL');
    } finally {
      setup.close();
    }
  }

  const streams = new Map<string, Stream>(); // baton -> stream
  const expiredBatons = new Set<string>();
  const openStreams = new Set<Stream>();
  let pipelineCount = 0;
  let rowsReturned = 0;
  let unavailable = false;
  let closed = false;

  const newBaton = () => randomBytes(24).toString('base64url');

  async function handlePipeline(body: unknown): Promise<unknown> {
    if (!isObject(body)) throw new HttpError(400, 'Expected the request body to be a JSON object', 'PROTO_ERROR');
    const requests = body.requests;
    if (!Array.isArray(requests)) throw new HttpError(400, 'Expected `requests` to be an array', 'PROTO_ERROR');
    const baton = body.baton;

    let stream: Stream;
    if (baton === undefined || baton === null) {
      try {
        stream = new Stream(dbPath, (n) => {
          rowsReturned += n;
        });
      } catch (e) {
        throw new HttpError(500, `Could not open the database: ${toProtoError(e).message}`, 'INTERNAL');
      }
      openStreams.add(stream);
    } else {
      if (typeof baton !== 'string') throw new HttpError(400, 'Expected `baton` to be a string', 'PROTO_ERROR');
      const found = streams.get(baton);
      if (found === undefined) {
        if (expiredBatons.has(baton)) {
          throw new HttpError(400, 'The stream has expired due to inactivity', 'STREAM_EXPIRED');
        }
        throw new HttpError(400, 'Received an invalid baton', 'BATON_INVALID');
      }
      streams.delete(baton); // every baton is single-use
      stream = found;
    }
    stream.stopIdleTimer();

    const results: StreamResult[] = [];
    for (const request of requests) {
      try {
        if (stream.closed) throw new HranaError('The stream has already been closed', 'STREAM_CLOSED');
        results.push({ type: 'ok', response: await handleStreamRequest(stream, request) });
      } catch (e) {
        results.push({ type: 'error', error: toProtoError(e) });
      }
    }

    let responseBaton: string | null = null;
    if (stream.closed || closed) {
      stream.close();
      openStreams.delete(stream);
    } else {
      const next = newBaton();
      responseBaton = next;
      streams.set(next, stream);
      stream.startIdleTimer(() => {
        streams.delete(next);
        expiredBatons.add(next);
        if (expiredBatons.size > 10_000) expiredBatons.clear();
        openStreams.delete(stream);
        stream.close();
      });
    }
    return { baton: responseBaton, base_url: null, results };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    if (method === 'POST' && path === '/v2/pipeline') pipelineCount++;

    if (unavailable || closed) {
      req.resume();
      sendText(res, 503, 'Service Unavailable');
      return;
    }

    if (method === 'GET' && path === '/_debug/streams') {
      // Which streams are open, in a transaction or not, and what each ran last: what holds a lock.
      req.resume();
      const list = [...openStreams].map((st) => ({
        closed: st.closed,
        inTransaction: st.closed ? false : st.inTransaction,
        lastSql: st.lastSql,
        idleMs: Date.now() - st.lastAt,
      }));
      sendJson(res, 200, list);
      return;
    }
    if ((method === 'GET' || method === 'HEAD') && (path === '/' || path === '/health' || path === '/v2')) {
      req.resume();
      sendText(res, 200, '');
      return;
    }
    if (method === 'POST' && path === '/v2/pipeline') {
      let body: unknown;
      const raw = await readBody(req);
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new HttpError(400, 'The request body is not valid JSON', 'PROTO_ERROR');
      }
      sendJson(res, 200, await handlePipeline(body));
      return;
    }
    // Anything else, including the v3 / v3-protobuf version probes: not supported,
    // so a probing client falls back to v2 JSON.
    req.resume();
    sendText(res, 404, 'Not Found');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) sendJson(res, e.status, { message: e.message, code: e.code });
      else sendJson(res, 500, { message: e instanceof Error ? e.message : String(e), code: 'INTERNAL' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    pipelineRequests: () => pipelineCount,
    rowsReturned: () => rowsReturned,
    setUnavailable: (down: boolean) => {
      unavailable = down;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      const done = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      for (const stream of openStreams) stream.close();
      openStreams.clear();
      streams.clear();
      await done;
    },
  };
}
