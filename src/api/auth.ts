/*
 * What handlers call once `requireScope` has let a request in (stable: other route files depend on them):
 *
 *   requireServices(c: Context<AppEnv>, services: Iterable<string>): void
 *     throws 403 `forbidden` naming the first service the request's token may not touch.
 *   serviceFilter(c: Context<AppEnv>): (service: string) => boolean
 *     whether the token may see or touch a service: for filtering lists (true for every service when unrestricted).
 *   servicePatterns(c: Context<AppEnv>): readonly string[] | null
 *     the token's service patterns for a store query (`serviceIn` in store/tokens.ts); null: unrestricted.
 *   requireUnrestricted(c: Context<AppEnv>, what: string): void
 *     throws 403 `forbidden` unless the token may touch every service (settings tokens, keys without `services`).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import type { AppEnv, Grant } from '../app-env.js';
import { KEY_PREFIX, keyHash } from '../control/tokens.js';
import { Problem } from '../problem.js';
import { serviceMatcher, type Scope } from '../spec/token.js';
import { rowScopes, type TokenRow } from '../store/tokens.js';

/** A bearer token from the settings and what it may do; `name` is who the audit log says acted. */
export interface TokenGrant {
  name: string;
  token: string;
  scopes: readonly Scope[];
}

/** Who may use the admin API: the settings' tokens, and the keys kept in the store. */
export interface Grants {
  settings: readonly TokenGrant[];
  /** The stored key with this SHA-256 (hex), if neither revoked nor expired now; read from the store each time. */
  findKey: (hash: string) => Promise<TokenRow | null>;
}

/**
 * Guards the admin API: no settings token configured answers 503 (the API is off, and says why); a
 * missing, unknown, expired or revoked token 401; a token without `scope` 403. A settings token is
 * compared in constant time; a key (`wmk_...`) is hashed and looked up in the store on every request,
 * so a revocation holds at once on every instance (the proxy never does this). On success `grant` says
 * what the token may do and `actor` names it.
 */
export function requireScope(grants: Grants, scope: Scope): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (grants.settings.length === 0) {
      throw new Problem({ code: 'admin-disabled', detail: 'no admin token is configured: set WAYMARK_ADMIN_TOKEN' });
    }
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const grant = match ? await findGrant(grants, match[1] as string) : undefined;
    if (!grant) {
      throw new Problem({
        code: 'unauthorized',
        detail: match ? 'the bearer token is not valid' : 'an Authorization: Bearer token is required',
        headers: {
          'www-authenticate': 'Bearer realm="waymark"',
        },
      });
    }
    if (!grant.scopes.includes(scope)) {
      throw new Problem({ code: 'forbidden', detail: `this token lacks the "${scope}" scope` });
    }
    c.set('grant', grant);
    c.set('actor', grant.actor);
    await next();
  };
}

/**
 * What a bearer token may do: a settings token (compared in constant time) or an active stored key;
 * undefined for anything else. The admin API's guard and the dashboard's sign-in both decide with it.
 */
export async function findGrant(grants: Grants, token: string): Promise<Grant | undefined> {
  let found: TokenGrant | undefined;
  // Compare against every grant so the time taken does not say which one matched.
  for (const grant of grants.settings) if ((await timingSafeEqual(grant.token, token)) && !found) found = grant;
  if (found) return { actor: found.name, scopes: found.scopes, services: null, keyId: null };
  // Looked up by hash: how long the lookup takes can only say something about the hash, never the key.
  if (!token.startsWith(KEY_PREFIX)) return undefined;
  const row = await grants.findKey(await keyHash(token));
  return row ? { actor: `key:${row.name}`, scopes: rowScopes(row), services: row.services, keyId: row.id } : undefined;
}

function grantOf(c: Context<AppEnv>): Grant {
  const grant = c.get('grant');
  // A handler that asks must sit behind requireScope: without it nothing is known, so nothing is allowed.
  if (!grant) throw new Error(`${c.req.method} ${c.req.path} checks services without requireScope`);
  return grant;
}

/** Whether the request's token may see or touch `service` (every service for an unrestricted token). */
export function serviceFilter(c: Context<AppEnv>): (service: string) => boolean {
  return serviceMatcher(grantOf(c).services);
}

/** The request's service patterns, for a store query; null when the token may touch every service. */
export function servicePatterns(c: Context<AppEnv>): readonly string[] | null {
  return grantOf(c).services;
}

/** Throws 403 naming the first of `services` the request's token may not touch. */
export function requireServices(c: Context<AppEnv>, services: Iterable<string>): void {
  const grant = grantOf(c);
  const allowed = serviceMatcher(grant.services);
  for (const service of services) {
    if (!allowed(service)) {
      throw new Problem({
        code: 'forbidden',
        detail: `${grant.actor} may not touch service "${service}": it is limited to ${grant.services?.join(', ')}`,
      });
    }
  }
}

/** Throws 403 unless the request's token may touch every service; `what` says what needs it. */
export function requireUnrestricted(c: Context<AppEnv>, what: string): void {
  const grant = grantOf(c);
  if (grant.services !== null) {
    throw new Problem({
      code: 'forbidden',
      detail: `${what} needs a token for every service; ${grant.actor} is limited to ${grant.services.join(', ')}`,
    });
  }
}
