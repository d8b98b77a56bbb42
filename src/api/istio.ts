import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { importIstio } from '../control/istio-import.js';
import { invalid, Problem } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { requireScope, serviceFilter } from './auth.js';
import { parseParam } from './problem.js';
import { actorOf, applied } from './write.js';
/** Istio YAML for a handful of services is kilobytes; anything this big is a mistake, refused unread. */
const MAX_IMPORT_BYTES = 1_000_000;

export const dryRunSchema = z
  .enum(['true', 'false'])
  .optional()
  .transform((v) => v === 'true');

/**
 * `POST /import/istio[?dryRun=true]`: the YAML to `importIstio` (src/control/istio-import.ts says what it
 * does); whatever Waymark cannot honour is listed in `warnings`.
 */
export function registerIstioRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.post('/import/istio', requireScope(rt.grants, 'write'), async (c) => {
    const dryRun = parseParam('dryRun', c.req.query('dryRun'), dryRunSchema);
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > MAX_IMPORT_BYTES) throw tooLarge();
    // Decoded as UTF-8 whatever the content type says (application/yaml is not text to workerd).
    const yaml = new TextDecoder().decode(await c.req.arrayBuffer());
    if (yaml.length > MAX_IMPORT_BYTES) throw tooLarge();
    if (yaml.trim() === '') {
      throw invalid('the body is empty', [
        { field: '(body)', message: 'must be YAML: VirtualService and DestinationRule documents separated by "---"' },
      ]);
    }
    return c.json(
      await applied(rt, await importIstio(rt.store.db, actorOf(c, rt), { yaml, dryRun, allowed: serviceFilter(c) })),
    );
  });
}

function tooLarge(): Problem {
  return new Problem({
    code: 'payload-too-large',
    detail: `the body is over ${MAX_IMPORT_BYTES} bytes; import fewer resources at a time`,
  });
}
