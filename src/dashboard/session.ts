import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { timingSafeEqual } from 'hono/utils/buffer';
import type { AppEnv, Grant } from '../app-env.js';
import { findGrant, type Grants } from '../api/auth.js';
import { Problem } from '../problem.js';

/** Where the dashboard lives; the session cookie is scoped to Waymark's own paths. */
export const DASHBOARD_PATH = '/_waymark/dashboard';
const COOKIE_PATH = '/_waymark';
const COOKIE = 'waymark_session';
/** A session lasts a working day; the token's own expiry or revocation ends it sooner (checked per request). */
const SESSION_MAX_AGE_S = 12 * 3600;
const CSRF_PURPOSE = 'waymark-dashboard-csrf';

/** The dashboard's per-request variables: the admin API's, and the session. */
export interface DashboardEnv {
  Variables: AppEnv['Variables'] & { session?: Session };
}

/** The signed-in session of a request behind `requireSession`. */
export function sessionOf(c: Context<DashboardEnv>): Session {
  const session = c.get('session');
  // A handler that asks must sit behind requireSession: without it nobody is signed in.
  if (!session) throw new Error(`${c.req.method} ${c.req.path} reads the session without requireSession`);
  return session;
}

/** A signed-in browser: the token it signed in with (looked up on every request) and its session nonce. */
export interface Session {
  token: string;
  nonce: string;
  grant: Grant;
  /** The value every form of this session carries in its `csrf` field. */
  csrf: string;
}

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** The session's CSRF token: an HMAC of its nonce under its bearer token, so only this session can make it. */
async function csrfFor(token: string, nonce: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(token),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  );
  return base64url(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(`${CSRF_PURPOSE}:${nonce}`)));
}

/** Starts a session: the token in an HttpOnly, SameSite=Strict cookie for /_waymark (Secure over https). */
export function startSession(c: Context, token: string): void {
  const nonce = base64url(crypto.getRandomValues(new Uint8Array(16)));
  setCookie(c, COOKIE, `${nonce}.${token}`, {
    path: COOKIE_PATH,
    httpOnly: true,
    sameSite: 'Strict',
    secure: new URL(c.req.url).protocol === 'https:',
    maxAge: SESSION_MAX_AGE_S,
  });
}

export function endSession(c: Context): void {
  deleteCookie(c, COOKIE, { path: COOKIE_PATH, secure: new URL(c.req.url).protocol === 'https:' });
}

/** The request's session, if its cookie holds a token that is still valid (a revoked key ends it at once). */
export async function readSession(c: Context, grants: Grants): Promise<Session | null> {
  if (grants.settings.length === 0) return null;
  const value = getCookie(c, COOKIE);
  const dot = value?.indexOf('.') ?? -1;
  if (!value || dot <= 0) return null;
  const nonce = value.slice(0, dot);
  const token = value.slice(dot + 1);
  const grant = await findGrant(grants, token);
  if (!grant?.scopes.includes('read')) return null;
  return { token, nonce, grant, csrf: await csrfFor(token, nonce) };
}

/**
 * Refuses a form post from another site: an `Origin` (or `Sec-Fetch-Site`) that is not this host's.
 * Browsers send `Origin` with every POST; SameSite=Strict already keeps the cookie off cross-site posts.
 */
export function sameOrigin(c: Context): boolean {
  if (c.req.header('sec-fetch-site') === 'cross-site') return false;
  const origin = c.req.header('origin');
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === new URL(c.req.url).host;
  } catch {
    return false;
  }
}

/**
 * Guards the signed-in pages: no valid session sends a GET to the sign-in page and refuses anything
 * else (401); a POST must come from this origin and carry the session's CSRF token (403). Sets the
 * same `grant` and `actor` the admin API's guard sets, so the API's service checks and commands apply.
 */
export function requireSession(grants: Grants): MiddlewareHandler<DashboardEnv> {
  return async (c, next) => {
    const session = await readSession(c, grants);
    if (!session) {
      if (c.req.method === 'GET') return c.redirect(DASHBOARD_PATH, 303);
      throw new Problem({ code: 'unauthorized', detail: 'sign in to the dashboard first' });
    }
    if (c.req.method === 'POST') {
      if (!sameOrigin(c)) throw new Problem({ code: 'forbidden', detail: 'the form was posted from another site' });
      const form = await c.req.parseBody();
      const sent = typeof form.csrf === 'string' ? form.csrf : '';
      if (!(await timingSafeEqual(sent, session.csrf)))
        throw new Problem({ code: 'forbidden', detail: 'the form lacks this session’s CSRF token; reload the page' });
    }
    c.set('session', session);
    c.set('grant', session.grant);
    c.set('actor', session.grant.actor);
    await next();
  };
}
