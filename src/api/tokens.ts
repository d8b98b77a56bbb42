import type { Hono } from 'hono';
import type { AppEnv } from '../app-env.js';
import { createToken, revokeToken } from '../control/tokens.js';
import { notFound, Problem } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { tokenCreateSchema } from '../spec/token.js';
import { getToken, listTokens, viewToken } from '../store/tokens.js';
import { requireScope, requireUnrestricted } from './auth.js';
import { parseBody } from './problem.js';
import { actorOf, applied } from './write.js';

/**
 * `/tokens`: the team's keys kept in the store (hashed). Creating one answers its key, once; revoking
 * one holds at once. Only a token for every service manages keys (one limited to some services would
 * otherwise see, or mint, keys for the others); a key is never given a scope its creator lacks.
 */
export function registerTokenRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.get('/tokens', requireScope(rt.grants, 'read'), async (c) => {
    requireUnrestricted(c, 'listing keys');
    const now = rt.now();
    return c.json({ tokens: (await listTokens(db)).map((row) => viewToken(row, now)) });
  });

  api.get('/tokens/:id', requireScope(rt.grants, 'read'), async (c) => {
    requireUnrestricted(c, 'reading a key');
    const row = await getToken(db, c.req.param('id'));
    if (!row) throw notFound(`key "${c.req.param('id')}"`);
    return c.json(viewToken(row, rt.now()));
  });

  api.post('/tokens', requireScope(rt.grants, 'write'), async (c) => {
    requireUnrestricted(c, 'creating a key');
    const body = await parseBody(c, tokenCreateSchema);
    const mine = c.get('grant').scopes;
    const beyond = body.scopes.filter((s) => !mine.includes(s));
    if (beyond.length) {
      throw new Problem({
        code: 'forbidden',
        detail: `${c.get('actor')} cannot give a key scopes it lacks: ${beyond.join(', ')}`,
        errors: [{ field: 'scopes', message: `${beyond.join(', ')}: not a scope of the creating token` }],
      });
    }
    const { row, key } = await applied(rt, await createToken(db, actorOf(c, rt), body));
    return c.json({ ...viewToken(row, rt.now()), key }, 201);
  });

  api.delete('/tokens/:id', requireScope(rt.grants, 'write'), async (c) => {
    requireUnrestricted(c, 'revoking a key');
    await applied(rt, await revokeToken(db, actorOf(c, rt), c.req.param('id')));
    return c.body(null, 204);
  });
}
