import { and, desc, eq, gt, isNull, or, sql, type SQL, type SQLWrapper } from 'drizzle-orm';
import { SCOPES, type Scope } from '../spec/token.js';
import type { Reader } from './reader.js';
import { apiTokens } from './schema.js';

export type TokenRow = typeof apiTokens.$inferSelect;

/** A stored key as the API shows it: never the key, never its hash. */
export interface TokenView {
  id: string;
  name: string;
  scopes: Scope[];
  /** Service patterns the key is limited to; null: every service. */
  services: string[] | null;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  /** Neither revoked nor expired at the time of the answer. */
  active: boolean;
}

/** The scopes a row grants: only those Waymark knows, whatever the column holds. */
export function rowScopes(row: Pick<TokenRow, 'scopes'>): Scope[] {
  return SCOPES.filter((s) => row.scopes.includes(s));
}

export function viewToken(row: TokenRow, now: number): TokenView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    id: row.id,
    name: row.name,
    scopes: rowScopes(row),
    services: row.services ?? null,
    createdAt: new Date(row.createdAt).toISOString(),
    createdBy: row.createdBy,
    expiresAt: iso(row.expiresAt),
    revokedAt: iso(row.revokedAt),
    active: isActive(row, now),
  };
}

function isActive(row: Pick<TokenRow, 'revokedAt' | 'expiresAt'>, now: number): boolean {
  return row.revokedAt === null && (row.expiresAt === null || row.expiresAt > now);
}

/** Condition: a key neither revoked nor expired at `now`. */
function activeAt(now: number): SQL | undefined {
  return and(isNull(apiTokens.revokedAt), or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now)));
}

/** Every stored key, newest first (a team has tens of them, not thousands); made in the same millisecond, by rowid. */
export async function listTokens(db: Reader): Promise<TokenRow[]> {
  return db.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), sql`rowid desc`);
}

export async function getToken(db: Reader, id: string): Promise<TokenRow | null> {
  const rows = await db.select().from(apiTokens).where(eq(apiTokens.id, id));
  return rows[0] ?? null;
}

/**
 * The key whose SHA-256 (hex) is `hash`, if it is neither revoked nor expired at `now`. Read from the
 * store on every call: a revocation anywhere holds at once for every instance.
 */
export async function findActiveToken(db: Reader, hash: string, now: number): Promise<TokenRow | null> {
  const rows = await db
    .select()
    .from(apiTokens)
    .where(and(eq(apiTokens.hash, hash), activeAt(now)));
  return rows[0] ?? null;
}

/** The active keys named `name` (a name names one active key, so the audit log is unambiguous). */
export async function activeTokensNamed(db: Reader, name: string, now: number): Promise<TokenRow[]> {
  return db
    .select()
    .from(apiTokens)
    .where(and(eq(apiTokens.name, name), activeAt(now)));
}

/**
 * Condition: the service named by `column` matches one of `patterns` (`*` any characters, as
 * `serviceMatcher` in spec/token.ts: service names hold no other GLOB character). Null patterns: no
 * condition; a NULL service matches none.
 */
export function serviceIn(column: SQLWrapper, patterns: readonly string[] | null): SQL | undefined {
  if (patterns === null) return undefined;
  if (patterns.length === 0) return sql`0`;
  return sql`(${sql.join(
    patterns.map((p) => sql`${column} glob ${p}`),
    sql` or `,
  )})`;
}
