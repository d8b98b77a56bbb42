import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';
import { overrideState } from './override-support.js';

/**
 * A route's read-only automation status, pause/resume, and overrides that hold a route's mirror
 * percent or canary weight: defaults, auth, refusals, validation (nothing written when refused).
 */

const READ_TOKEN = 'read-token-0123456789abcdef';
const ONCALL_TOKEN = 'oncall-token-0123456789abcdef';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer({
    WAYMARK_READ_TOKENS: `viewer:${READ_TOKEN}`,
    WAYMARK_ONCALL_TOKENS: `pager:${ONCALL_TOKEN}`,
  });
  expect((await server.admin('PUT', '/services/shop', serviceBody(['shop.example.com']))).status).toBe(201);
  for (const [name, version] of [
    ['ew1', 'v1'],
    ['ew2', 'v2'],
    ['shadow', 'shadow'],
  ] as const) {
    const res = await server.admin(
      'PUT',
      `/services/shop/clusters/${name}`,
      clusterBody('eu-west1', `https://${name}.shop.internal`, { labels: { version } }),
    );
    expect(res.status, res.body).toBe(201);
  }
  await putRoute('ramped', {
    order: 1,
    match: { path: { prefix: '/r' } },
    destinations: [{ subset: { version: 'v1' } }],
    mirror: { subset: { version: 'shadow' }, percent: 5, ramp: { step: 5, max: 50, minSamples: 20 } },
  });
  await putRoute('canaried', {
    order: 2,
    match: { path: { prefix: '/c' } },
    destinations: [{ subset: { version: 'v1' } }],
    canary: { subset: { version: 'v2' }, stepWeight: 10, maxWeight: 50, minSamples: 20 },
  });
  await putRoute('mirrored', {
    order: 3,
    match: { path: { prefix: '/m' } },
    destinations: [{ subset: { version: 'v1' } }],
    mirror: { subset: { version: 'shadow' }, percent: 30 },
  });
  await putRoute('plain', { order: 4, destinations: [{ subset: { version: 'v1' } }] });
});

afterEach(async () => {
  await server.close();
});

async function putRoute(name: string, body: Record<string, unknown>): Promise<void> {
  const res = await server.admin('PUT', `/services/shop/routes/${name}`, body);
  expect(res.status, res.body).toBeLessThan(300);
}

async function status(route: string) {
  const res = await server.admin('GET', `/services/shop/routes/${route}`);
  expect(res.status, res.body).toBe(200);
  return res.json.status as {
    mirrorPercent: number | null;
    canaryWeight: number | null;
    phase: string | null;
    paused: boolean;
    heldBy: { override: string; action: string; value: number | null; expiresAt: string }[];
  };
}

/** overrideState plus the route state table: what a refused call must leave as it was. */
async function written() {
  const rows = await server.db.execute('select * from route_state order by service, route');
  return { ...(await overrideState(server.db)), routeState: rows.rows.map((r) => ({ ...r })) };
}

const EMPTY_WINDOW = { requests: 0, errorRate: null, meanMs: null, p50Ms: null, p95Ms: null };

describe('route status: defaults before any sync', () => {
  it('a mirror ramp starts at its configured percent, ramping, not paused, held by nothing', async () => {
    const res = await server.admin('GET', '/services/shop/routes/ramped');
    expect(res.status).toBe(200);
    expect(res.json.status).toEqual({
      mirrorPercent: 5,
      canaryWeight: null,
      phase: 'ramping',
      paused: false,
      heldBy: [],
    });
    expect(res.json.observed).toEqual({
      windowMinutes: 15,
      primary: EMPTY_WINDOW,
      mirror: EMPTY_WINDOW,
      canary: EMPTY_WINDOW,
    });
    // The ramp's defaults are filled in.
    expect(res.json.mirror.ramp).toEqual({
      step: 5,
      max: 50,
      minSamples: 20,
      maxErrorRateDelta: 0.01,
      maxLatencyRatio: 1.5,
    });
  });

  it('a canary starts at stepWeight', async () => {
    expect(await status('canaried')).toEqual({
      mirrorPercent: null,
      canaryWeight: 10,
      phase: 'ramping',
      paused: false,
      heldBy: [],
    });
  });

  it('a route without automation shows its fixed mirror percent (or null) and no phase', async () => {
    expect(await status('mirrored')).toEqual({
      mirrorPercent: 30,
      canaryWeight: null,
      phase: null,
      paused: false,
      heldBy: [],
    });
    expect(await status('plain')).toEqual({
      mirrorPercent: null,
      canaryWeight: null,
      phase: null,
      paused: false,
      heldBy: [],
    });
  });

  it('nothing is stored for a route until automation or an operator moves it', async () => {
    const rows = await server.db.execute('select count(*) as n from route_state');
    expect(Number(rows.rows[0]?.n)).toBe(0);
  });

  it('a read token can read the status', async () => {
    const res = await server.admin('GET', '/services/shop/routes/ramped', undefined, READ_TOKEN);
    expect(res.status).toBe(200);
    expect(res.json.status.phase).toBe('ramping');
  });

  it('status is read-only: a PUT carrying it is refused (400, field status) and nothing is written', async () => {
    const before = await written();
    const res = await server.admin('PUT', '/services/shop/routes/ramped', {
      order: 1,
      destinations: [{ subset: { version: 'v1' } }],
      mirror: { subset: { version: 'shadow' }, percent: 5, ramp: { step: 5 } },
      status: { mirrorPercent: 100, canaryWeight: null, phase: 'complete', paused: false },
    });
    expectProblem(res, 400, 'invalid-request', ['status']);
    expect(await written()).toEqual(before);
  });
});

describe('pause / resume', () => {
  it('pause stops automation for the route (status paused, audit and event); resume clears it', async () => {
    const paused = await server.admin('POST', '/services/shop/routes/ramped/pause');
    expect(paused.status, paused.body).toBe(200);
    expect(paused.json.status).toEqual({
      mirrorPercent: 5,
      canaryWeight: null,
      phase: 'ramping',
      paused: true,
      heldBy: [],
    });
    expect(await status('ramped')).toMatchObject({ paused: true, mirrorPercent: 5 });

    const audit = await server.db.execute(
      "select action, target, actor from audit_log where action like 'route.%' order by id",
    );
    expect(audit.rows.map((r) => ({ ...r }))).toContainEqual({
      action: 'route.pause',
      target: 'services/shop/routes/ramped',
      actor: 'admin',
    });
    const events = (await server.admin('GET', '/events?service=shop')).json.events as {
      kind: string;
      message: string;
    }[];
    expect(events.find((e) => e.kind === 'route-pause')?.message).toContain('route ramped paused by admin');

    const resumed = await server.admin('POST', '/services/shop/routes/ramped/resume');
    expect(resumed.status, resumed.body).toBe(200);
    expect(resumed.json.status).toEqual({
      mirrorPercent: 5,
      canaryWeight: null,
      phase: 'ramping',
      paused: false,
      heldBy: [],
    });
    expect(await status('ramped')).toMatchObject({ paused: false });
    const after = (await server.admin('GET', '/events?service=shop')).json.events as { kind: string }[];
    expect(after.some((e) => e.kind === 'route-resume')).toBe(true);
  });

  it('pause works for a canary route too', async () => {
    const res = await server.admin('POST', '/services/shop/routes/canaried/pause');
    expect(res.status, res.body).toBe(200);
    expect(res.json.status).toMatchObject({ canaryWeight: 10, paused: true });
  });

  it('an on-call token (override scope) may pause and resume', async () => {
    expect((await server.admin('POST', '/services/shop/routes/ramped/pause', undefined, ONCALL_TOKEN)).status).toBe(
      200,
    );
    const audit = await server.db.execute("select actor from audit_log where action = 'route.pause'");
    expect(audit.rows[0]?.actor).toBe('pager');
    expect((await server.admin('POST', '/services/shop/routes/ramped/resume', undefined, ONCALL_TOKEN)).status).toBe(
      200,
    );
  });

  it.each(['pause', 'resume'])('%s with a read token is 403 and changes nothing', async (action) => {
    const before = await written();
    expectProblem(
      await server.admin('POST', `/services/shop/routes/ramped/${action}`, undefined, READ_TOKEN),
      403,
      'forbidden',
    );
    expect(await written()).toEqual(before);
    expect((await status('ramped')).paused).toBe(false);
  });

  it.each(['pause', 'resume'])('%s without a token is 401', async (action) => {
    const before = await written();
    expectProblem(
      await server.admin('POST', `/services/shop/routes/ramped/${action}`, undefined, null),
      401,
      'unauthorized',
    );
    expect(await written()).toEqual(before);
  });

  it.each([
    ['pause', 'mirrored'],
    ['resume', 'mirrored'],
    ['pause', 'plain'],
    ['resume', 'plain'],
  ])('%s of a route with no automation (%s) is 409 not-automated, nothing written', async (action, route) => {
    const before = await written();
    const res = await server.admin('POST', `/services/shop/routes/${route}/${action}`);
    expectProblem(res, 409, 'not-automated');
    expect(res.json.detail).toContain(route);
    expect(await written()).toEqual(before);
  });

  it.each(['pause', 'resume'])('%s of an unknown route or service is 404', async (action) => {
    const before = await written();
    expectProblem(await server.admin('POST', `/services/shop/routes/nope/${action}`), 404, 'not-found');
    expectProblem(await server.admin('POST', `/services/nope/routes/ramped/${action}`), 404, 'not-found');
    expect(await written()).toEqual(before);
  });

  it('resume restarts a halted mirror ramp at its first percent', async () => {
    await server.db.execute(
      "insert into route_state (service, route, mirror_percent, canary_weight, phase, paused, sample_bookmark, updated_at) values ('shop', 'ramped', 0, null, 'halted', 0, 7, 1)",
    );
    expect(await status('ramped')).toMatchObject({ mirrorPercent: 0, phase: 'halted' });
    const res = await server.admin('POST', '/services/shop/routes/ramped/resume');
    expect(res.status, res.body).toBe(200);
    expect(res.json.status).toMatchObject({ mirrorPercent: 5, phase: 'ramping', paused: false });
    expect(await status('ramped')).toMatchObject({ mirrorPercent: 5, phase: 'ramping', paused: false });
  });

  it('resume restarts a rolled-back canary at stepWeight', async () => {
    await server.db.execute(
      "insert into route_state (service, route, mirror_percent, canary_weight, phase, paused, sample_bookmark, updated_at) values ('shop', 'canaried', null, 0, 'rolled-back', 0, 7, 1)",
    );
    const res = await server.admin('POST', '/services/shop/routes/canaried/resume');
    expect(res.status, res.body).toBe(200);
    expect(res.json.status).toMatchObject({ canaryWeight: 10, phase: 'ramping', paused: false });
  });

  it('resume of a promoted canary is 409 already-promoted, nothing written', async () => {
    await server.db.execute(
      "insert into route_state (service, route, mirror_percent, canary_weight, phase, paused, sample_bookmark, updated_at) values ('shop', 'canaried', null, 100, 'promoted', 0, 7, 1)",
    );
    const before = await written();
    expectProblem(await server.admin('POST', '/services/shop/routes/canaried/resume'), 409, 'already-promoted');
    expect(await written()).toEqual(before);
  });
});

describe('overrides holding a route value', () => {
  const hold = (extra: Record<string, unknown>) => ({
    service: 'shop',
    reason: 'hold while we look',
    ttlSeconds: 600,
    ...extra,
  });

  it.each<[string, Record<string, unknown>, string[]]>([
    ['mirror-percent without route', { action: 'mirror-percent', value: 10 }, ['route']],
    ['mirror-percent without value', { action: 'mirror-percent', route: 'ramped' }, ['value']],
    ['mirror-percent without route or value', { action: 'mirror-percent' }, ['route', 'value']],
    ['canary-weight without route', { action: 'canary-weight', value: 10 }, ['route']],
    ['canary-weight without value', { action: 'canary-weight', route: 'canaried' }, ['value']],
    ['canary-weight without route or value', { action: 'canary-weight' }, ['route', 'value']],
    ['a value above 100', { action: 'mirror-percent', route: 'ramped', value: 101 }, ['value']],
    ['a negative value', { action: 'canary-weight', route: 'canaried', value: -1 }, ['value']],
    ['a value that is not a number', { action: 'mirror-percent', route: 'ramped', value: '10' }, ['value']],
    ['freeze with a value', { action: 'freeze', value: 10 }, ['value']],
    ['drain with a route', { action: 'drain', cluster: 'ew1', route: 'ramped' }, ['route']],
    [
      'mirror-percent on a route without a mirror',
      { action: 'mirror-percent', route: 'canaried', value: 10 },
      ['route'],
    ],
    ['mirror-percent on a route with nothing', { action: 'mirror-percent', route: 'plain', value: 10 }, ['route']],
    ['canary-weight on a route without a canary', { action: 'canary-weight', route: 'ramped', value: 10 }, ['route']],
    [
      'canary-weight on a route with only a fixed mirror',
      { action: 'canary-weight', route: 'mirrored', value: 10 },
      ['route'],
    ],
    ['mirror-percent on an unknown route', { action: 'mirror-percent', route: 'nope', value: 10 }, ['route']],
    ['freeze of an unknown route', { action: 'freeze', route: 'nope' }, ['route']],
  ])('%s: 400 naming %j, nothing written', async (_name, extra, fields) => {
    const before = await written();
    const res = await server.admin('POST', '/overrides', hold(extra));
    expectProblem(res, 400, 'invalid-request', fields);
    expect(await written()).toEqual(before);
  });

  it('the messages say what is wrong', async () => {
    const missing = await server.admin('POST', '/overrides', hold({ action: 'mirror-percent' }));
    const messages = Object.fromEntries(
      (missing.json.errors as { field: string; message: string }[]).map((e) => [e.field, e.message]),
    );
    expect(messages.route).toContain('names the route');
    expect(messages.value).toContain('value');
    const noMirror = await server.admin(
      'POST',
      '/overrides',
      hold({ action: 'mirror-percent', route: 'canaried', value: 10 }),
    );
    expect(noMirror.json.errors[0].message).toContain('has no mirror');
    const noCanary = await server.admin(
      'POST',
      '/overrides',
      hold({ action: 'canary-weight', route: 'ramped', value: 10 }),
    );
    expect(noCanary.json.errors[0].message).toContain('has no canary');
  });

  it('a valid mirror-percent override is taken (201) and the status shows the held value and what holds it', async () => {
    const res = await server.admin(
      'POST',
      '/overrides',
      hold({ action: 'mirror-percent', route: 'ramped', value: 40 }),
    );
    expect(res.status, res.body).toBe(201);
    expect(res.json).toMatchObject({ action: 'mirror-percent', route: 'ramped', value: 40, active: true });
    const s = await status('ramped');
    expect(s).toMatchObject({ mirrorPercent: 40, phase: 'ramping', paused: false });
    expect(s.heldBy).toEqual([
      { override: res.json.id, action: 'mirror-percent', value: 40, expiresAt: res.json.expiresAt },
    ]);
    // Other routes are not held by it.
    expect((await status('canaried')).heldBy).toEqual([]);
  });

  it('a mirror-percent override may hold a fixed (non-ramped) mirror too, and 0 is a value', async () => {
    const res = await server.admin(
      'POST',
      '/overrides',
      hold({ action: 'mirror-percent', route: 'mirrored', value: 0 }),
    );
    expect(res.status, res.body).toBe(201);
    // The edges mirror 0% of this route now (compileRoute applies the hold to any mirror), so the
    // status should say 0 and name the override, as it does for a ramped mirror.
    expect(await status('mirrored')).toEqual({
      mirrorPercent: 0,
      canaryWeight: null,
      phase: null,
      paused: false,
      heldBy: [{ override: res.json.id, action: 'mirror-percent', value: 0, expiresAt: res.json.expiresAt }],
    });
  });

  it('a valid canary-weight override shows in the status', async () => {
    const res = await server.admin(
      'POST',
      '/overrides',
      hold({ action: 'canary-weight', route: 'canaried', value: 0 }),
    );
    expect(res.status, res.body).toBe(201);
    expect(await status('canaried')).toMatchObject({
      canaryWeight: 0,
      heldBy: [{ action: 'canary-weight', value: 0 }],
    });
  });

  it('a service-wide freeze holds every automated route; a route freeze only its route', async () => {
    const all = await server.admin('POST', '/overrides', hold({ action: 'freeze' }));
    expect(all.status, all.body).toBe(201);
    expect((await status('ramped')).heldBy).toEqual([
      expect.objectContaining({ override: all.json.id, action: 'freeze', value: null }),
    ]);
    expect((await status('canaried')).heldBy).toEqual([
      expect.objectContaining({ override: all.json.id, action: 'freeze' }),
    ]);
    expect((await server.admin('DELETE', `/overrides/${all.json.id}`)).status).toBe(204);
    expect((await status('ramped')).heldBy).toEqual([]);

    const one = await server.admin('POST', '/overrides', hold({ action: 'freeze', route: 'canaried' }));
    expect(one.status, one.body).toBe(201);
    expect((await status('canaried')).heldBy).toEqual([
      expect.objectContaining({ override: one.json.id, action: 'freeze' }),
    ]);
    expect((await status('ramped')).heldBy).toEqual([]);
  });

  it('holding overrides need the override scope: read token 403, nothing written', async () => {
    const before = await written();
    expectProblem(
      await server.admin(
        'POST',
        '/overrides',
        hold({ action: 'mirror-percent', route: 'ramped', value: 10 }),
        READ_TOKEN,
      ),
      403,
      'forbidden',
    );
    expect(await written()).toEqual(before);
  });
});
