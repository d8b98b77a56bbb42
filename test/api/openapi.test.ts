import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_BASE_PATH, buildOpenApiDocument, ENDPOINTS, type Endpoint } from '../../src/api/openapi.js';
import { createApp } from '../../src/app.js';
import { send, type SimpleResponse } from '../../scripts/http-client.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const doc = buildOpenApiDocument();

/** `GET /services/{service}`: what the document lists. */
function documentedRoutes(): string[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`),
  );
}

/** The admin API's routes as the app registers them, Hono's `:param` (and `:param{regex}`) as `{param}`. */
function registeredRoutes(): string[] {
  const app = createApp(server.runtime);
  const routes = app.routes
    .filter((r) => r.method !== 'ALL' && r.path.startsWith(`${API_BASE_PATH}/`))
    .map((r) => `${r.method} ${r.path.slice(API_BASE_PATH.length).replace(/:(\w+)(\{[^}]*\})?/g, '{$1}')}`);
  return [...new Set(routes)];
}

describe('OpenAPI document: completeness', () => {
  it('documents every admin route the app registers', () => {
    const documented = new Set(documentedRoutes());
    expect(registeredRoutes().filter((r) => !documented.has(r))).toEqual([]);
  });

  it('documents no route the app does not register', () => {
    const registered = new Set(registeredRoutes());
    expect(documentedRoutes().filter((r) => !registered.has(r))).toEqual([]);
  });

  it('the comparison sees the routes (a sanity check on how routes are read)', () => {
    expect(registeredRoutes()).toContain('PUT /services/{service}/clusters/{cluster}');
    expect(registeredRoutes().length).toBeGreaterThan(30);
  });

  it('registers the reference page', () => {
    const app = createApp(server.runtime);
    expect(app.routes.some((r) => r.method === 'GET' && r.path === '/_waymark/docs')).toBe(true);
  });
});

describe('OpenAPI document: structure', () => {
  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('the validator refuses a broken document (so the test above can fail)', async () => {
    const broken = structuredClone(doc) as unknown as { paths: Record<string, { get?: { responses: unknown } }> };
    (broken.paths['/services']?.get as { responses: unknown }).responses = 'none';
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });

  it('gives every guarded operation a bearer requirement with its scope, and x-waymark-scope', () => {
    for (const endpoint of ENDPOINTS) {
      const op = doc.paths[endpoint.path]?.[endpoint.method];
      expect(op?.['x-waymark-scope'], endpoint.id).toBe(endpoint.scope);
      expect(op?.security, endpoint.id).toEqual(endpoint.scope ? [{ bearer: [endpoint.scope] }] : []);
      if (endpoint.scope) expect(op?.responses['401']?.['x-waymark-problem-codes']).toEqual(['unauthorized']);
    }
  });

  it('lists problems under their status as application/problem+json, each code once', () => {
    for (const endpoint of ENDPOINTS) {
      const op = doc.paths[endpoint.path]?.[endpoint.method];
      const codes: string[] = [];
      for (const [status, response] of Object.entries(op?.responses ?? {})) {
        if (Number(status) < 400) continue;
        expect(Object.keys(response.content ?? {}), endpoint.id).toEqual(['application/problem+json']);
        codes.push(...(response['x-waymark-problem-codes'] ?? []));
      }
      expect(codes, endpoint.id).toContain('internal');
      expect(new Set(codes).size, endpoint.id).toBe(codes.length);
    }
  });

  it('names a path parameter for every {param} of every path', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      const named = (path.match(/\{(\w+)\}/g) ?? []).map((p) => p.slice(1, -1));
      for (const op of Object.values(item)) {
        const params = (op.parameters ?? []).filter((p) => p.in === 'path');
        expect(params.map((p) => p.name)).toEqual(named);
        expect(params.every((p) => p.required)).toBe(true);
      }
    }
  });

  it('every example parses with the schema it illustrates', () => {
    for (const endpoint of ENDPOINTS) {
      if (endpoint.body?.example !== undefined)
        expect(endpoint.body.schema.safeParse(endpoint.body.example).error, endpoint.id).toBeUndefined();
      for (const fields of [endpoint.params, endpoint.query, endpoint.headers])
        for (const [name, field] of Object.entries(fields ?? {}))
          if (field.example !== undefined)
            // On the wire a parameter is text.
            expect(field.schema.safeParse(String(field.example)).error, `${endpoint.id} ${name}`).toBeUndefined();
    }
  });
});

/** A 400 from a handler's schema (parseBody, parseParam, the config document): not a refusal of what it asks. */
function schemaRefusal(res: SimpleResponse): boolean {
  return (
    res.status === 400 &&
    res.json?.code === 'invalid-request' &&
    /does not match|is not valid/.test(String(res.json?.detail))
  );
}

/** The example request of an endpoint: its path with example params, every example query param, its example body. */
function exampleRequest(endpoint: Endpoint): { path: string; headers: Record<string, string>; body?: string } {
  const path = endpoint.path.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(String(endpoint.params?.[name]?.example ?? 'x')),
  );
  const query = new URLSearchParams();
  for (const [name, field] of Object.entries(endpoint.query ?? {}))
    if (field.example !== undefined) query.set(name, String(field.example));
  const example = endpoint.body?.example;
  return {
    path: query.size ? `${path}?${query}` : path,
    // An If-Match example would only meet a 412 here: the handlers' schemas are what this checks.
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(example === undefined ? {} : { body: typeof example === 'string' ? example : JSON.stringify(example) }),
  };
}

describe('OpenAPI document: the handlers take what it documents', () => {
  // The registry mirrors some schemas the handlers keep private (src/api/openapi.ts says which): every
  // documented example goes through the real handler, in registry order (the service, then its cluster...).
  it('no handler refuses a documented example on its schema', async () => {
    const refused: string[] = [];
    for (const endpoint of ENDPOINTS) {
      if (endpoint.method === 'delete' || (!endpoint.query && !endpoint.body)) continue;
      const request = exampleRequest(endpoint);
      const res = await send(`${server.url}${API_BASE_PATH}${request.path}`, {
        method: endpoint.method.toUpperCase(),
        headers: request.headers,
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      if (schemaRefusal(res)) refused.push(`${endpoint.id}: ${res.body}`);
    }
    expect(refused).toEqual([]);
  });

  it('a query parameter the handler does not know is seen as a schema refusal (so the test above can fail)', async () => {
    const res = await server.admin('GET', '/overrides?bogus=1');
    expect(schemaRefusal(res)).toBe(true);
  });
});

describe('GET /_waymark/api/v1/openapi.json', () => {
  it('answers the OpenAPI 3.1 document as JSON, without a token', async () => {
    const res = await server.admin('GET', '/openapi.json', undefined, null);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json.openapi).toMatch(/^3\.1\.\d+$/);
    expect(res.json).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});

describe('GET /_waymark/docs', () => {
  let res: SimpleResponse;
  beforeAll(async () => {
    res = await send(`${server.url}/_waymark/docs`, {});
  });

  it('answers HTML without a token', () => {
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/^<!doctype html>/i);
  });

  it('shows every documented path with its method, scope and problem codes', () => {
    for (const endpoint of ENDPOINTS) {
      const section = new RegExp(`<section class="op" id="op-${endpoint.id}">([\\s\\S]*?)</section>`).exec(res.body);
      expect(section, endpoint.id).not.toBeNull();
      const html = section?.[1] ?? '';
      expect(html, endpoint.id).toContain(endpoint.path);
      expect(html, endpoint.id).toContain(`>${endpoint.method}</span>`);
      expect(html, endpoint.id).toContain(endpoint.scope ? `scope <code>${endpoint.scope}</code>` : 'no token needed');
      expect(html, endpoint.id).toContain('<code>internal</code>');
    }
    for (const path of Object.keys(doc.paths)) expect(res.body).toContain(path);
  });

  it('links each endpoint from the index', () => {
    for (const endpoint of ENDPOINTS) expect(res.body).toContain(`<a class="ep" href="#op-${endpoint.id}"`);
  });

  it('renders body fields as a table (a nested route field, its bounds)', () => {
    const putRoute = /<section class="op" id="op-putRoute">([\s\S]*?)<\/section>/.exec(res.body)?.[1] ?? '';
    expect(putRoute).toContain('perTryTimeoutMs');
    expect(putRoute).toContain('max 120000');
  });

  it('loads nothing from elsewhere and runs no script', () => {
    expect(res.body).not.toMatch(/<script/i);
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
  });
});
