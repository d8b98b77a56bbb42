import type { Scope } from './spec/token.js';

/** What the request's bearer token may do, set by `requireScope` (src/api/auth.ts). */
export interface Grant {
  /** Who the audit log says acted: a settings token's name, or `key:<name>` for a stored key. */
  actor: string;
  scopes: readonly Scope[];
  /** Service patterns the token is limited to (`*` matches any characters); null: every service. */
  services: readonly string[] | null;
  /** The stored key's id; null for a token from the settings. */
  keyId: string | null;
}

/** Hono's per-request variables, shared by every part of the app. */
export interface AppEnv {
  Variables: {
    requestId: string;
    actor: string;
    grant: Grant;
  };
}
