import type { Context } from 'hono';
import type { z } from 'zod';
import { invalid, Problem, renderProblem, type FieldError } from '../problem.js';
import { storeErrorCode } from '../store/errors.js';

/** Renders a problem; the request id lets an operator find the matching log line. */
export function problemResponse(c: Context, problem: Problem): Response {
  const rendered = renderProblem(problem, c.get('requestId'));
  return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
}

/**
 * A store failure as a problem: a constraint the store enforces (say, a host taken by a concurrent
 * write) is a 409; anything else from libSQL means the store cannot be used right now (503).
 * Null when the error did not come from the store.
 */
export function storeProblem(error: unknown): Problem | null {
  const code = storeErrorCode(error);
  if (code === null) return null;
  if (code.startsWith('SQLITE_CONSTRAINT')) {
    return new Problem({
      code: 'conflict',
      detail: 'the change conflicts with a concurrent one; read the current state and retry',
    });
  }
  return new Problem({
    code: 'store-unavailable',
    detail: 'the configuration store cannot be reached; nothing was changed, retry shortly',
    headers: { 'retry-after': '5' },
  });
}

/** zod issues as field errors, paths prefixed with where the input came from (`body`, `query`...). */
export function fieldErrors(error: z.ZodError, prefix?: string): FieldError[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p !== undefined && p !== '').join('.');
    const unknownKeys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    // A record key that fails its schema: say what the key schema expects, not zod's "Invalid key in record".
    const message = issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    return unknownKeys.length
      ? { field: unknownKeys.map((k) => (path ? `${path}.${k}` : k)).join(', '), message }
      : { field: path || '(root)', message };
  });
}

/** Parses a JSON body against a schema, or throws a 400 problem naming every offending field. */
export async function parseBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let json: unknown;
  try {
    json = JSON.parse(await c.req.text());
  } catch {
    throw invalid('the body is not valid JSON', [{ field: '(body)', message: 'must be a JSON document' }]);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw invalid('the body does not match the schema', fieldErrors(parsed.error));
  return parsed.data;
}

/** Validates a path or query parameter, or throws a 400 problem naming it. */
export function parseParam<T extends z.ZodType>(name: string, value: unknown, schema: T): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`the ${name} is not valid`, fieldErrors(parsed.error, name));
  return parsed.data;
}
