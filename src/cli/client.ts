import type { CliSettings } from './settings.js';

/** A call that has not answered in this long is given up: the operator is told which URL hung. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How much of an answer that is not Waymark's (a load balancer's HTML page...) is shown. */
const UNEXPECTED_BODY_CHARS = 300;

/** The admin API's error answer (RFC 9457), as src/problem.ts renders it. */
interface ProblemDocument {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  code?: string;
  errors?: { field: string; message: string }[];
  requestId?: string;
}

export type ApiFailure =
  /** The API answered with a problem document: it refused. */
  | { kind: 'problem'; url: string; status: number; problem: ProblemDocument }
  /** Nothing answered: refused connection, unknown host, timeout. */
  | { kind: 'unreachable'; url: string; reason: string }
  /** Something answered, but not as the admin API does (a proxy's error page, a wrong URL). */
  | { kind: 'unexpected'; url: string; status: number; body: string };

interface ApiAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export type ApiResult<T> = { ok: true; data: T; answer: ApiAnswer } | { ok: false; failure: ApiFailure };

interface ApiRequest {
  method?: string;
  /** Under the API's base: `/services`, `/overrides/123`. */
  path: string;
  /** Undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (YAML documents). */
  body?: { text: string; contentType: string };
  accept?: string;
  headers?: Record<string, string>;
}

export interface ApiClient {
  /** The answer's body parsed as JSON (null for 204). */
  json<T>(request: ApiRequest): Promise<ApiResult<T>>;
  /** The answer's body as text (an exported YAML document). */
  text(request: ApiRequest): Promise<ApiResult<string>>;
  /** The full URL of a request, for messages. */
  urlOf(request: Pick<ApiRequest, 'path' | 'query'>): string;
}

/** The admin API over fetch, with the bearer token; failures are values, never thrown. */
export function createApiClient(settings: CliSettings, userAgent: string): ApiClient {
  const urlOf = ({ path, query = {} }: Pick<ApiRequest, 'path' | 'query'>): string => {
    const url = new URL(`${settings.apiUrl}${path}`);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    return url.toString();
  };

  const call = async (request: ApiRequest): Promise<ApiResult<string>> => {
    const url = urlOf(request);
    const headers: Record<string, string> = {
      authorization: `Bearer ${settings.token}`,
      accept: request.accept ?? 'application/json',
      'user-agent': userAgent,
      ...request.headers,
    };
    let body: string | undefined;
    if (request.json !== undefined) {
      body = JSON.stringify(request.json);
      headers['content-type'] = 'application/json';
    } else if (request.body) {
      body = request.body.text;
      headers['content-type'] = request.body.contentType;
    }
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: request.method ?? 'GET',
        headers,
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      text = await response.text();
    } catch (error) {
      return { ok: false, failure: { kind: 'unreachable', url, reason: networkReason(error) } };
    }
    const answer = { status: response.status, headers: response.headers, text };
    if (response.ok) return { ok: true, data: text, answer };
    const problem = problemOf(response.headers.get('content-type'), text);
    if (problem) return { ok: false, failure: { kind: 'problem', url, status: response.status, problem } };
    return {
      ok: false,
      failure: { kind: 'unexpected', url, status: response.status, body: text.slice(0, UNEXPECTED_BODY_CHARS) },
    };
  };

  return {
    urlOf,
    text: call,
    json: async <T>(request: ApiRequest): Promise<ApiResult<T>> => {
      const result = await call(request);
      if (!result.ok) return result;
      const { answer } = result;
      if (answer.status === 204 || answer.text === '') return { ok: true, data: null as T, answer };
      try {
        return { ok: true, data: JSON.parse(answer.text) as T, answer };
      } catch {
        const body = answer.text.slice(0, UNEXPECTED_BODY_CHARS);
        return { ok: false, failure: { kind: 'unexpected', url: urlOf(request), status: answer.status, body } };
      }
    },
  };
}

/** A problem document when the answer is one (by its type, or JSON with Waymark's members). */
function problemOf(contentType: string | null, text: string): ProblemDocument | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null) return null;
  const isProblem = (contentType ?? '').includes('application/problem+json') || 'detail' in parsed;
  return isProblem ? (parsed as ProblemDocument) : null;
}

/** fetch's "fetch failed" says nothing: the cause (ECONNREFUSED, ENOTFOUND, timeout) does. */
function networkReason(error: unknown): string {
  if (error instanceof DOMException && error.name === 'TimeoutError')
    return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  if (error instanceof Error) {
    const cause = error.cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return typeof code === 'string' && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
    }
    return error.message;
  }
  return String(error);
}
