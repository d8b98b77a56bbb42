import type { MiddlewareHandler } from 'hono';
import { timingSafeEqual } from 'hono/utils/buffer';
import type { AppEnv } from '../app-env.js';
import { Problem } from '../problem.js';

export type Scope = 'read' | 'write' | 'override';

/** A bearer token and what it may do; `name` is who the audit log says acted. */
export interface TokenGrant {
  name: string;
  token: string;
  scopes: readonly Scope[];
}

/**
 * Guards the admin API: no token configured answers 503 (the API is off, and says why); a missing or
 * unknown token 401; a token without `scope` 403. On success `actor` names the token's owner.
 */
export function requireScope(grants: readonly TokenGrant[], scope: Scope): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (grants.length === 0) {
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
    c.set('actor', grant.name);
    await next();
  };
}

async function findGrant(grants: readonly TokenGrant[], token: string): Promise<TokenGrant | undefined> {
  let found: TokenGrant | undefined;
  // Compare against every grant so the time taken does not say which one matched.
  for (const grant of grants) if ((await timingSafeEqual(grant.token, token)) && !found) found = grant;
  return found;
}
