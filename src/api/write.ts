import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Runtime } from '../runtime.js';
import type { Actor } from '../store/queries.js';

/** Who is writing, for the audit log. */
export function actorOf(c: Context<AppEnv>, rt: Runtime): Actor {
  return { name: c.get('actor'), requestId: c.get('requestId'), now: rt.now() };
}

/**
 * After a write, this instance reloads before answering, so what the writer sees routes here at once;
 * other instances follow within their refresh interval.
 */
export async function changed(rt: Runtime): Promise<void> {
  await rt.snapshots.refresh();
}
