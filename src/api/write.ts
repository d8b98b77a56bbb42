import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { inBackground, type Runtime } from '../runtime.js';
import type { Actor } from '../store/queries.js';

/** Who is writing, for the audit log. */
export function actorOf(c: Context<AppEnv>, rt: Runtime): Actor {
  return { name: c.get('actor'), requestId: c.get('requestId'), now: rt.now() };
}

/** After a write, this instance reloads at once; other instances follow within the refresh interval. */
export function changed(c: Context<AppEnv>, rt: Runtime): void {
  inBackground(c, rt.snapshots.refresh());
}
