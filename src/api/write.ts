import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { Actor, CommandResult } from '../control/command.js';
import type { Runtime } from '../runtime.js';

/** Who is writing, for the audit log. */
export function actorOf(c: Context<AppEnv>, rt: Runtime): Actor {
  return { name: c.get('actor'), requestId: c.get('requestId'), now: rt.now() };
}

/**
 * A command's value, or its refusal thrown as the problem it is. After a write that moved the revision,
 * this instance reloads before answering, so what the writer sees routes here at once; other instances
 * follow within their refresh interval.
 */
export async function applied<T>(rt: Runtime, result: CommandResult<T>): Promise<T> {
  if (!result.ok) throw result.problem;
  if (result.revision !== null) await rt.snapshots.refreshAndPublish(result.revision);
  return result.value;
}
