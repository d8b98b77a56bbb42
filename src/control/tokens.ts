import { and, eq, isNull } from 'drizzle-orm';
import { invalid, notFound, Problem } from '../problem.js';
import type { TokenCreate } from '../spec/token.js';
import type { Db } from '../store/client.js';
import { apiTokens } from '../store/schema.js';
import { activeTokensNamed, getToken, viewToken, type TokenRow } from '../store/tokens.js';
import { done, refuse, runCommand, type Actor, type CommandResult } from './command.js';

/** What every key starts with: says what it is in a leaked log or a secret scanner's findings. */
export const KEY_PREFIX = 'wmk_';

/** 256 bits: a key cannot be guessed, so a fast hash (SHA-256) is enough to keep it (no salt, no KDF). */
const KEY_BYTES = 32;

/** A new secret: `wmk_` and 32 random bytes, base64url (RFC 4648 §5), from the Web Crypto API (Node and workerd). */
function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(KEY_BYTES));
  const base64 = btoa(String.fromCharCode(...bytes));
  return KEY_PREFIX + base64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** How a key is kept and looked up: SHA-256 of its UTF-8 bytes, lowercase hex. */
export async function keyHash(key: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(key));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Creates a key: only its hash is stored; the key itself is in the answer and nowhere else. Its expiry
 * must be in the future, and its name must not be another active key's (the audit log names keys).
 * Audited as `token.create` on `tokens/<id>`, without the key or its hash.
 */
export async function createToken(
  db: Db,
  actor: Actor,
  input: TokenCreate,
): Promise<CommandResult<{ row: TokenRow; key: string }>> {
  const key = newKey();
  const hash = await keyHash(key);
  return runCommand(db, actor, async (c) => {
    const { now } = c.actor;
    if (input.expiresAt !== null && input.expiresAt <= now) {
      return refuse(
        invalid('the key would be expired already', [
          { field: 'expiresAt', message: `must be in the future (now is ${new Date(now).toISOString()})` },
        ]),
      );
    }
    if ((await activeTokensNamed(c.tx, input.name, now)).length) {
      return refuse(
        new Problem({
          code: 'conflict',
          detail: `an active key is already named "${input.name}": revoke it first, or choose another name`,
          errors: [{ field: 'name', message: 'is the name of an active key' }],
        }),
      );
    }
    const row: TokenRow = {
      id: crypto.randomUUID(),
      name: input.name,
      hash,
      scopes: input.scopes,
      services: input.services,
      createdAt: now,
      createdBy: c.actor.name,
      expiresAt: input.expiresAt,
      revokedAt: null,
    };
    await c.tx.insert(apiTokens).values(row);
    await c.audit({ action: 'token.create', target: `tokens/${row.id}`, before: null, after: viewToken(row, now) });
    return done({ row, key }, false);
  });
}

/** Revokes a key at once (every instance reads keys from the store); 409 when it was revoked already. */
export function revokeToken(db: Db, actor: Actor, id: string): Promise<CommandResult<TokenRow>> {
  return runCommand(db, actor, async (c) => {
    const { now } = c.actor;
    const row = await getToken(c.tx, id);
    if (!row) return refuse(notFound(`key "${id}"`));
    if (row.revokedAt !== null) {
      return refuse(
        new Problem({
          code: 'already-revoked',
          detail: `key "${id}" was revoked at ${new Date(row.revokedAt).toISOString()}`,
        }),
      );
    }
    const revoked: TokenRow = { ...row, revokedAt: now };
    await c.tx
      .update(apiTokens)
      .set({ revokedAt: now })
      .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)));
    await c.audit({
      action: 'token.revoke',
      target: `tokens/${id}`,
      before: viewToken(row, now),
      after: viewToken(revoked, now),
    });
    return done(revoked, false);
  });
}
