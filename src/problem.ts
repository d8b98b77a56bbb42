/**
 * Every expected failure Waymark answers with, as an RFC 9457 problem document. The codes are a closed
 * set, each with its status and title (in the manner of Unkey's `ErrorCode` / `codeToStatus`): a new
 * kind of failure gets a line here, so clients can rely on `code`. The proxy, the admin API and the
 * control commands all use this module; it imports nothing of theirs.
 */
const CODES = {
  // The client's request.
  'invalid-request': [400, 'Invalid request'],
  'bad-host': [400, 'Bad Host header'],
  'client-gone': [400, 'Client went away'],
  unsendable: [400, 'Request cannot be forwarded'],
  'unsupported-upgrade': [400, 'Unsupported upgrade'],
  unauthorized: [401, 'Unauthorized'],
  forbidden: [403, 'Forbidden'],
  'not-found': [404, 'Not found'],
  'unknown-host': [404, 'Unknown host'],
  'method-not-allowed': [405, 'Method not allowed'],
  'payload-too-large': [413, 'Payload too large'],
  'rate-limited': [429, 'Too many requests'],
  // The state of the configuration: the request is fine, what it asks conflicts with what is there.
  conflict: [409, 'Conflict'],
  'host-taken': [409, 'Host already in use'],
  'would-strand': [409, 'Override refused'],
  'conflicting-override': [409, 'Conflicting override'],
  'already-ended': [409, 'Override already ended'],
  'not-automated': [409, 'Nothing to automate'],
  'already-promoted': [409, 'Canary already promoted'],
  'already-revoked': [409, 'Key already revoked'],
  'precondition-failed': [412, 'Precondition failed'],
  // Waymark or the clusters behind it.
  internal: [500, 'Internal error'],
  'fault-injected': [500, 'Fault injected'],
  'upstream-connect-failure': [502, 'Upstream failed'],
  'upstream-reset': [502, 'Upstream failed'],
  'upstream-timeout': [504, 'Upstream failed'],
  'upstream-deadline': [504, 'Upstream failed'],
  'no-cluster': [503, 'No usable cluster'],
  overflow: [503, 'Over the concurrency limit'],
  'not-ready': [503, 'Not ready'],
  draining: [503, 'Draining'],
  'admin-disabled': [503, 'Admin API disabled'],
  'store-unavailable': [503, 'Store unavailable'],
  misconfigured: [503, 'Misconfigured'],
} as const satisfies Record<string, readonly [number, string]>;

export type ProblemCode = keyof typeof CODES;

/** One offending input: a dotted path (`hosts.0`, `latitude`, `service`) and what is wrong with it. */
export interface FieldError {
  field: string;
  message: string;
}

export interface ProblemOptions {
  code: ProblemCode;
  detail: string;
  /** Every offending field, for `invalid-request` and the conflicts a field causes. */
  errors?: FieldError[];
  headers?: Record<string, string>;
  /** Only where the status is configured rather than implied (an injected fault's abort status). */
  status?: number;
}

/** An expected failure with its HTTP status; rendered as application/problem+json (RFC 9457). */
export class Problem extends Error {
  override readonly name = 'Problem';
  readonly code: ProblemCode;
  readonly status: number;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(options: ProblemOptions) {
    super(options.detail);
    const [status, title] = CODES[options.code];
    this.code = options.code;
    this.status = options.status ?? status;
    this.title = title;
    this.detail = options.detail;
    this.errors = options.errors;
    this.headers = options.headers;
  }
}

export function invalid(detail: string, errors: FieldError[]): Problem {
  return new Problem({ code: 'invalid-request', detail, errors });
}

export function notFound(what: string): Problem {
  return new Problem({ code: 'not-found', detail: `${what} does not exist` });
}

const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const NULL_BODY_STATUSES = new Set<number>([101, 204, 205, 304]);

/** A problem as an HTTP answer (RFC 9457), for any writer: Hono's context, a Node response, a Response. */
export function renderProblem(
  problem: Problem,
  requestId: string | undefined,
): { status: number; headers: Record<string, string>; body: string | null } {
  // Some statuses cannot carry a body (an injected fault may ask for one): send the headers alone.
  if (NULL_BODY_STATUSES.has(problem.status))
    return {
      status: problem.status,
      headers: { ...(requestId ? { 'x-request-id': requestId } : {}), ...problem.headers },
      body: null,
    };
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
    headers: {
      'content-type': PROBLEM_CONTENT_TYPE,
      ...(requestId ? { 'x-request-id': requestId } : {}),
      ...problem.headers,
    },
    body: JSON.stringify(body),
  };
}
