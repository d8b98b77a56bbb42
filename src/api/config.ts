import type { Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { applyConfig, rollbackConfig } from '../control/config.js';
import { invalid, notFound, Problem } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { type ConfigDocument, configDocumentSchema } from '../spec/config.js';
import { configAt, listConfigVersions, readConfig } from '../store/config.js';
import { requireScope, requireServices, serviceFilter, servicePatterns } from './auth.js';
import { fieldErrors, parseBody, parseParam } from './problem.js';
import { actorOf, applied } from './write.js';

/** A config document of thousands of services is a few MiB; past this it is refused unread. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;

const flag = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

export const applyQuerySchema = z.strictObject({
  dryRun: flag,
  prune: flag,
  message: z.string().trim().min(1).max(500).optional(),
});

/** `If-Match: 12` or `If-Match: "12"` (the ETag GET /config answers). */
export const ifMatchSchema = z
  .string()
  .regex(/^\s*"?\d+"?\s*$/, 'must be a configuration version, as GET /config answers it in ETag')
  .transform((v) => Number(v.replace(/[\s"]/g, '')))
  .optional();

export const versionSchema = z.coerce.number().int().min(0);
export const limitSchema = z.coerce.number().int().min(1).max(1_000).default(100);

export const rollbackSchema = z.strictObject({
  version: z.number().int().min(0),
  reason: z.string().trim().min(3, 'say why, in a few words').max(500),
});

/**
 * The configuration as one document: `POST /config` (diff, and apply unless `dryRun`), `GET /config`
 * (export, YAML or JSON), `GET /config/versions[/{n}]`, `POST /config/rollback`.
 */
export function registerConfigRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;

  api.post(
    '/config',
    requireScope(rt.grants, 'write'),
    bodyLimit({
      maxSize: MAX_CONFIG_BYTES,
      onError: () => {
        throw new Problem({
          code: 'payload-too-large',
          detail: `the document is over ${MAX_CONFIG_BYTES} bytes`,
          // Answered before the body is read: the connection cannot carry another request after it.
          headers: { connection: 'close' },
        });
      },
    }),
    async (c) => {
      const query = parseParam('query', c.req.query(), applyQuerySchema);
      const ifMatch = parseParam('If-Match', c.req.header('if-match'), ifMatchSchema);
      const document = await parseDocument(c);
      // A key for some services: a document naming another is refused whole; the others are outside its apply.
      requireServices(
        c,
        document.services.map((s) => s.name),
      );
      const result = await applied(
        rt,
        await applyConfig(db, actorOf(c, rt), {
          document,
          prune: query.prune,
          dryRun: query.dryRun,
          ifMatch: ifMatch ?? null,
          ...(query.message ? { message: query.message } : {}),
          ...restriction(c),
        }),
      );
      c.header('etag', `"${result.version}"`);
      return c.json(result);
    },
  );

  api.get('/config', requireScope(rt.grants, 'read'), async (c) => {
    const { version, document } = await readConfig(db);
    c.header('etag', `"${version}"`);
    return respondDocument(c, visible(c, document));
  });

  api.get('/config/versions', requireScope(rt.grants, 'read'), async (c) => {
    const limit = parseParam('limit', c.req.query('limit'), limitSchema);
    return c.json({ versions: await listConfigVersions(db, limit, servicePatterns(c)) });
  });

  api.get('/config/versions/:version', requireScope(rt.grants, 'read'), async (c) => {
    const version = parseParam('version', c.req.param('version'), versionSchema);
    const document = await configAt(db, version);
    if (!document) throw notFound(`configuration version ${version}`);
    c.header('etag', `"${version}"`);
    return respondDocument(c, visible(c, document));
  });

  api.post('/config/rollback', requireScope(rt.grants, 'write'), async (c) => {
    const body = await parseBody(c, rollbackSchema);
    const result = await rollbackConfig(db, actorOf(c, rt), { ...body, ...restriction(c) });
    if (!result) throw notFound(`configuration version ${body.version}`);
    return c.json(await applied(rt, result));
  });
}

/** For a key limited to some services: what its applies and rollbacks may touch. */
function restriction(c: Context<AppEnv>): { allowed?: (service: string) => boolean } {
  return servicePatterns(c) === null ? {} : { allowed: serviceFilter(c) };
}

/** The document as the request's token may see it: only its services. */
function visible(c: Context<AppEnv>, document: ConfigDocument): ConfigDocument {
  const allowed = serviceFilter(c);
  return { ...document, services: document.services.filter((s) => allowed(s.name)) };
}

/** The body as a config document: YAML or JSON (JSON is YAML), validated against the one schema. */
async function parseDocument(c: Context<AppEnv>): Promise<ConfigDocument> {
  // Decoded as UTF-8 whatever the content type says (application/yaml is not text to workerd).
  const text = new TextDecoder().decode(await c.req.arrayBuffer());
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    throw invalid('the body is not YAML or JSON', [
      { field: '(body)', message: error instanceof Error ? (error.message.split('\n')[0] ?? '') : 'unreadable' },
    ]);
  }
  const parsed = configDocumentSchema.safeParse(raw ?? null);
  if (!parsed.success) throw invalid('the document does not match the config schema', fieldErrors(parsed.error));
  return parsed.data;
}

/** YAML when the client asks for it (`Accept: application/yaml`), JSON otherwise. */
function respondDocument(c: Context<AppEnv>, document: ConfigDocument): Response {
  const accept = c.req.header('accept') ?? '';
  if (/\b(application|text)\/(x-)?yaml\b/.test(accept))
    return c.body(toYaml(document), 200, { 'content-type': 'application/yaml; charset=utf-8' });
  return c.json(document);
}
