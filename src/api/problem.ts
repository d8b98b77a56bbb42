import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

/** One offending input: a dotted path (`hosts.0`, `latitude`, `service`) and what is wrong with it. */
export interface FieldError {
  field: string;
  message: string;
}

/** An expected failure with an HTTP status; rendered as application/problem+json (RFC 9457). */
export class Problem extends Error {
  override readonly name = 'Problem';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    readonly title: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const NULL_BODY_STATUSES = new Set<number>([101, 204, 205, 304]);

/** A problem as an HTTP answer (RFC 9457), for any writer: Hono's context, a Node response, a Response. */
export function renderProblem(problem: Problem, requestId: string | undefined): { status: number; headers: Record<string, string>; body: string | null } {
  // Some statuses cannot carry a body (an injected fault may ask for one): send the headers alone.
  if (NULL_BODY_STATUSES.has(problem.status)) return { status: problem.status, headers: { ...(requestId ? { 'x-request-id': requestId } : {}), ...problem.headers }, body: null };
  const body = {
    type: `urn:waymark:problem:${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId,
    ...(problem.errors ? { errors: problem.errors } : {}),
  };
  return {
    status: problem.status,
    headers: { 'content-type': PROBLEM_CONTENT_TYPE, ...(requestId ? { 'x-request-id': requestId } : {}), ...problem.headers },
    body: JSON.stringify(body),
  };
}

/** Renders a problem; the request id lets an operator find the matching log line. */
export function problemResponse(c: Context, problem: Problem): Response {
  const rendered = renderProblem(problem, c.get('requestId'));
  return rendered.body === null ? c.body(null, problem.status, rendered.headers) : c.body(rendered.body, problem.status, rendered.headers);
}

export function invalid(detail: string, errors: FieldError[]): Problem {
  return new Problem(400, 'invalid-request', 'Invalid request', detail, errors);
}

export function notFound(what: string): Problem {
  return new Problem(404, 'not-found', 'Not found', `${what} does not exist`);
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
    return new Problem(409, 'conflict', 'Conflict', 'the change conflicts with a concurrent one; read the current state and retry');
  }
  return new Problem(503, 'store-unavailable', 'Store unavailable', 'the configuration store cannot be reached; nothing was changed, retry shortly', undefined, {
    'retry-after': '5',
  });
}

/** Whether the store refused a write for breaking a constraint (unique key, foreign key). */
export function isConstraintError(error: unknown): boolean {
  return storeErrorCode(error)?.startsWith('SQLITE_CONSTRAINT') ?? false;
}

/** The libSQL error code somewhere in the cause chain (drizzle wraps driver errors); null if none. */
function storeErrorCode(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (e.name === 'LibsqlError' || code.startsWith('SQLITE_'))) return code;
  }
  return null;
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
