import type { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { explainDecision } from '../routing/explain.js';
import { normalizeHost } from '../routing/decide.js';
import { parseGeoPoint } from '../routing/geo.js';
import type { Runtime } from '../runtime.js';
import { requireScope, requireServices } from './auth.js';
import { parseBody } from './problem.js';
import { currentSnapshot } from './failover.js';
import { regionSchema, zoneSchema } from '../spec/names.js';

/** RFC 9110 §5.5 field-value: visible ASCII, space, tab and obs-text (0x80-0xFF); `new Headers` throws past Latin-1. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export const explainSchema = z.strictObject({
  host: z.string().min(1).max(300),
  method: z
    .string()
    .regex(/^[A-Za-z]+$/, 'must be an HTTP method')
    .transform((m) => m.toUpperCase())
    .default('GET'),
  path: z.string().startsWith('/', 'must start with "/" (a query may follow)').max(8192).default('/'),
  headers: z
    .record(
      z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,256}$/, 'must be a header name'),
      z
        .string()
        .max(8192)
        .regex(HEADER_VALUE, 'must be a header value: Latin-1 text without line breaks or control characters'),
    )
    .default({}),
  clientRegion: regionSchema.optional(),
  clientZone: zoneSchema.optional(),
  clientLocation: z
    .union([z.strictObject({ lat: z.number().min(-90).max(90), lon: z.number().min(-180).max(180) }), z.string()])
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || typeof v === 'object') return v;
      const point = parseGeoPoint(v);
      if (!point) ctx.addIssue({ code: 'custom', message: 'must be "lat,lon" or {"lat": ..., "lon": ...}' });
      return point ?? undefined;
    }),
  requestId: z.string().min(1).max(128).optional(),
});

/**
 * `POST /explain` with a described request: the decision the edges would make, step by step (route
 * matched and why, destination, candidate clusters with levels, shares and health, faults, mirror).
 */
export function registerExplainRoutes(api: Hono<AppEnv>, rt: Runtime): void {
  api.post('/explain', requireScope(rt.grants, 'read'), async (c) => {
    const body = await parseBody(c, explainSchema);
    const headers = new Headers(body.headers);
    const q = body.path.indexOf('?');
    const snapshot = await currentSnapshot(rt);
    const owner = snapshot.byHost.get(normalizeHost(body.host));
    if (owner) requireServices(c, [owner.name]);
    const explanation = explainDecision(
      snapshot,
      {
        host: body.host,
        clientRegion: body.clientRegion,
        clientLocation: body.clientLocation,
        clientZone: body.clientZone,
        clientZoneSource: body.clientZone !== undefined ? 'header' : undefined,
        request: {
          method: body.method,
          path: q < 0 ? body.path : body.path.slice(0, q),
          query: q < 0 ? '' : body.path.slice(q + 1),
          header: (name) => headers.get(name),
        },
        sampleKey: body.requestId ?? c.get('requestId'),
      },
      rt.settings.WAYMARK_MAX_ATTEMPTS,
      rt.outliers,
    );
    return c.json({ ...explanation, snapshotVersion: snapshot.version });
  });
}
