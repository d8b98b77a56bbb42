import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clusterBody, serviceBody } from '../support/factories.js';
import { registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';
import {
  auditFor,
  createOverride,
  drainBody,
  entryFor,
  eventsFor,
  fromRegion,
  matrix,
  ONCALL_NAME,
  ONCALL_TOKEN,
  overrideState,
  pinBody,
  READ_TOKEN,
  servedBy,
  shopPerTest,
  TOKEN_ENV,
} from './override-support.js';

const TTL_SECONDS = 600;
const MAX_TTL_SECONDS = 7 * 24 * 3600;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const shop = shopPerTest();

function ids(views: { id: string }[]): string[] {
  return views.map((v) => v.id).sort();
}

/** Sums of every client region's shares in the matrix: each must be 100 while anything is routable. */
function shareSums(m: { regions: Record<string, { share: number }[]> }): Record<string, number> {
  return Object.fromEntries(
    Object.entries(m.regions).map(([region, entries]) => [
      region,
      Math.round(entries.reduce((a, e) => a + e.share, 0) * 10) / 10,
    ]),
  );
}

describe('overrides: happy', () => {
  it('POST drain answers 201 with the override: id, active, actor from the token, expiresAt = createdAt + ttl', async () => {
    const before = Date.now();
    const res = await shop.server.admin('POST', '/overrides', drainBody({ ttlSeconds: TTL_SECONDS }));
    const after = Date.now();
    expect(res.status, res.body).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({
      id: expect.stringMatching(UUID),
      service: 'shop',
      action: 'drain',
      cluster: 'ew1',
      region: null,
      route: null,
      value: null,
      reason: 'kernel upgrade in eu-west1',
      actor: 'admin',
      forced: false,
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      active: true,
      endedAt: null,
      endedBy: null,
      endReason: null,
    });
    const created = Date.parse(res.json.createdAt);
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(after);
    expect(Date.parse(res.json.expiresAt) - created).toBe(TTL_SECONDS * 1000);

    const row = (await shop.server.db.execute({ sql: 'select * from overrides where id = ?', args: [res.json.id] }))
      .rows[0];
    expect(row).toMatchObject({ service: 'shop', action: 'drain', cluster: 'ew1', actor: 'admin', ended_at: null });
    expect(Number(row?.expires_at) - Number(row?.created_at)).toBe(TTL_SECONDS * 1000);
  });

  it('the reason is stored trimmed', async () => {
    const o = await createOverride(shop.server, drainBody({ reason: '   disk full   ' }));
    expect(o.reason).toBe('disk full');
  });

  it('GET /overrides lists it, filtered by active and by service; GET /overrides/{id} returns it', async () => {
    expect((await shop.server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']))).status).toBe(201);
    expect(
      (
        await shop.server.admin(
          'PUT',
          '/services/blog/clusters/bl1',
          clusterBody('us-east1', shop.fleet['us-east1'].url),
        )
      ).status,
    ).toBe(201);
    const first = await createOverride(shop.server, drainBody());
    const second = await createOverride(shop.server, { ...pinBody(), service: 'blog', cluster: 'bl1' });

    const list = await shop.server.admin('GET', '/overrides');
    expect(list.status).toBe(200);
    // Two creates may share a millisecond, so the order between them is not asserted.
    expect(ids(list.json.overrides)).toEqual([first.id, second.id].sort());
    expect(list.json.overrides.find((o: { id: string }) => o.id === first.id)).toEqual(first);

    const one = await shop.server.admin('GET', `/overrides/${first.id}`);
    expect(one.status).toBe(200);
    expect(one.json).toEqual(first);

    const shopOnly = await shop.server.admin('GET', '/overrides?service=shop');
    expect(shopOnly.json.overrides.map((o: { id: string }) => o.id)).toEqual([first.id]);
    const blogOnly = await shop.server.admin('GET', '/overrides?service=blog');
    expect(blogOnly.json.overrides.map((o: { id: string }) => o.id)).toEqual([second.id]);

    expect(ids((await shop.server.admin('GET', '/overrides?active=true')).json.overrides)).toEqual(
      [first.id, second.id].sort(),
    );
    expect((await shop.server.admin('DELETE', `/overrides/${first.id}`)).status).toBe(204);

    const active = await shop.server.admin('GET', '/overrides?active=true&service=shop');
    expect(active.json.overrides).toEqual([]);
    const ended = await shop.server.admin('GET', '/overrides?active=false');
    expect(ended.json.overrides.map((o: { id: string }) => o.id)).toEqual([first.id]);
    expect(ended.json.overrides[0]).toMatchObject({
      active: false,
      endedBy: 'admin',
      endReason: 'deleted',
      endedAt: expect.any(String),
    });
    expect((await shop.server.admin('GET', `/overrides/${first.id}`)).json).toMatchObject({
      active: false,
      endReason: 'deleted',
    });
  });

  it('a drain takes effect on this instance right away, shows as drained with share 0, and DELETE brings traffic back', async () => {
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
    const o = await createOverride(shop.server, drainBody());

    expect(await servedBy(shop.server, 'eu-west1')).toBe('ue1');
    const drained = await matrix(shop.server);
    for (const region of ['eu-west1', 'us-east1', 'ap-southeast1']) {
      expect(entryFor(drained, region, 'ew1')).toMatchObject({ health: 'drained', share: 0 });
    }
    expect(shareSums(drained)).toEqual({ 'ap-southeast1': 100, 'eu-west1': 100, 'us-east1': 100 });
    expect(entryFor(drained, 'eu-west1', 'ue1').share).toBe(100);
    expect(shop.fleet['eu-west1'].served).toBe(1);

    const del = await shop.server.admin('DELETE', `/overrides/${o.id}`);
    expect(del.status, del.body).toBe(204);
    expect(del.body).toBe('');
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
    const back = await matrix(shop.server);
    expect(entryFor(back, 'eu-west1', 'ew1')).toMatchObject({ health: 'unknown', share: 100, level: 0 });
  });

  it('ending an override early may say why (?reason=), in its override-ended event; a bad reason changes nothing', async () => {
    const o = await createOverride(shop.server, drainBody());
    expectProblem(await shop.server.admin('DELETE', `/overrides/${o.id}?reason=no`), 400, 'invalid-request', [
      'query.reason',
    ]);
    expect((await shop.server.admin('GET', `/overrides/${o.id}`)).json.active).toBe(true);
    const del = await shop.server.admin('DELETE', `/overrides/${o.id}?reason=${encodeURIComponent('drill over')}`);
    expect(del.status, del.body).toBe(204);
    const events = (await shop.server.admin('GET', '/events?service=shop')).json.events as {
      kind: string;
      message: string;
    }[];
    expect(events.find((e) => e.kind === 'override-ended')?.message).toMatch(/: drill over$/);
  });

  it('a pin sends clients of its region to the pinned cluster and leaves other regions alone', async () => {
    const o = await createOverride(shop.server, pinBody());
    expect(o).toMatchObject({ action: 'pin', region: 'eu-west1', cluster: 'as1' });

    expect(await servedBy(shop.server, 'eu-west1')).toBe('as1');
    expect(await servedBy(shop.server, 'us-east1')).toBe('ue1');
    expect(await servedBy(shop.server, 'ap-southeast1')).toBe('as1');
    const m = await matrix(shop.server);
    expect(m.regions['eu-west1']?.[0]).toMatchObject({ cluster: 'as1', level: 0, levelReason: 'pin', share: 100 });
    expect(m.regions['us-east1']?.[0]).toMatchObject({
      cluster: 'ue1',
      level: 0,
      levelReason: 'same-region',
      share: 100,
    });

    expect((await shop.server.admin('DELETE', `/overrides/${o.id}`)).status).toBe(204);
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
  });

  it('a drain by region (no cluster) drains every cluster of that region', async () => {
    const o = await createOverride(shop.server, drainBody({ cluster: undefined, region: 'eu-west1' }));
    expect(o).toMatchObject({ cluster: null, region: 'eu-west1', active: true });
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ue1');
    const m = await matrix(shop.server);
    expect(entryFor(m, 'eu-west1', 'ew1')).toMatchObject({ health: 'drained', share: 0 });
    expect(entryFor(m, 'us-east1', 'ue1')).toMatchObject({ health: 'unknown', share: 100 });
  });

  it('create and end each write an audit entry and an event', async () => {
    const o = await createOverride(shop.server, drainBody());
    expect((await shop.server.admin('DELETE', `/overrides/${o.id}`)).status).toBe(204);

    const audit = await auditFor(shop.server, `overrides/${o.id}`);
    expect(audit.map((e) => [e.action, e.actor, e.target])).toEqual([
      ['override.delete', 'admin', `overrides/${o.id}`],
      ['override.create', 'admin', `overrides/${o.id}`],
    ]);
    expect(audit[1]?.before).toBeNull();
    expect(audit[1]?.after).toMatchObject({ id: o.id, action: 'drain', cluster: 'ew1', endedAt: null });
    expect(audit[0]?.after).toMatchObject({ id: o.id, endedBy: 'admin', endReason: 'deleted' });

    const events = await eventsFor(shop.server);
    expect(events.map((e) => e.kind)).toEqual(['override-ended', 'override-applied']);
    expect(events[1]).toMatchObject({ cluster: 'ew1', message: expect.stringContaining('kernel upgrade in eu-west1') });
    expect(events[1]?.message).toContain('drain shop/ew1');
    expect(events[0]?.message).toContain('ended by admin');
  });
});

describe('overrides: errors', () => {
  /** Asserts the call is refused as a problem and that nothing was written. */
  async function refused(
    call: () => Promise<import('../../scripts/http-client.js').SimpleResponse>,
    status: number,
    code: string,
    fields?: string[],
  ) {
    const before = await overrideState(shop.server.db);
    const res = await call();
    expectProblem(res, status, code, fields);
    expect(await overrideState(shop.server.db)).toEqual(before);
    return res;
  }

  it.each<[string, Record<string, unknown> | string, string[]]>([
    ['missing reason', drainBody({ reason: undefined }), ['reason']],
    ['reason too short', drainBody({ reason: 'ab' }), ['reason']],
    ['reason only short once trimmed', drainBody({ reason: '   ab   ' }), ['reason']],
    ['ttlSeconds 0', drainBody({ ttlSeconds: 0 }), ['ttlSeconds']],
    ['ttlSeconds beyond a week', drainBody({ ttlSeconds: MAX_TTL_SECONDS + 1 }), ['ttlSeconds']],
    ['ttlSeconds fractional', drainBody({ ttlSeconds: 1.5 }), ['ttlSeconds']],
    ['ttlSeconds as a string', drainBody({ ttlSeconds: '600' }), ['ttlSeconds']],
    ['missing ttlSeconds', drainBody({ ttlSeconds: undefined }), ['ttlSeconds']],
    ['unknown action', drainBody({ action: 'evict' }), ['action']],
    ['drain without cluster or region', drainBody({ cluster: undefined }), ['cluster']],
    ['pin without region', pinBody({ region: undefined }), ['region']],
    ['pin without cluster', pinBody({ cluster: undefined }), ['cluster']],
    ['pin without either', pinBody({ region: undefined, cluster: undefined }), ['cluster', 'region']],
    ['unknown key', drainBody({ bogus: true }), ['bogus']],
    ['bad service name', drainBody({ service: 'Shop!' }), ['service']],
    ['force not a boolean', drainBody({ force: 'yes' }), ['force']],
    ['body not JSON', '{"service":', ['(body)']],
  ])('%s -> 400 naming the fields, nothing written', async (_name, body, fields) => {
    await refused(() => shop.server.admin('POST', '/overrides', body), 400, 'invalid-request', fields);
  });

  it('an unknown service -> 404, nothing written', async () => {
    const res = await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ service: 'nope' })),
      404,
      'not-found',
    );
    expect(res.json.detail).toContain('nope');
  });

  it('an unknown cluster -> 400 naming cluster, nothing written', async () => {
    const res = await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: 'zz1' })),
      400,
      'invalid-request',
      ['cluster'],
    );
    expect(res.json.errors[0].message).toContain('zz1');
  });

  it('a pin to an unknown cluster -> 400 naming cluster, nothing written', async () => {
    await refused(() => shop.server.admin('POST', '/overrides', pinBody({ cluster: 'zz1' })), 400, 'invalid-request', [
      'cluster',
    ]);
  });

  it('a drain of a region with no clusters -> 400 naming region, nothing written', async () => {
    const res = await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: undefined, region: 'sa-east1' })),
      400,
      'invalid-request',
      ['region'],
    );
    expect(res.json.errors[0].message).toContain('sa-east1');
  });

  it('a drain of a cluster in a region it is not in -> 400 naming region, nothing written', async () => {
    await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: 'ew1', region: 'us-east1' })),
      400,
      'invalid-request',
      ['region'],
    );
  });

  it('an override that would strand the service -> 409 would-strand naming the clusters, nothing written; with force it is accepted', async () => {
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    await createOverride(shop.server, drainBody({ cluster: 'as1' }));

    const res = await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: 'ew1' })),
      409,
      'would-strand',
    );
    for (const c of ['as1: drained', 'ew1: drained', 'ue1: drained']) expect(res.json.detail).toContain(c);
    expect(res.json.detail).toContain('force');
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');

    await refused(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: undefined, region: 'eu-west1' })),
      409,
      'would-strand',
    );

    const forced = await createOverride(shop.server, drainBody({ cluster: 'ew1', force: true }));
    expect(forced).toMatchObject({ forced: true, active: true });
    const stranded = await fromRegion(shop.server, 'eu-west1');
    expectProblem(stranded, 503, 'no-cluster');
    expect(shop.fleet.all.reduce((n, u) => n + u.served, 0)).toBe(1);
  });

  it('GET of an unknown override -> 404', async () => {
    expectProblem(await shop.server.admin('GET', '/overrides/00000000-0000-0000-0000-000000000000'), 404, 'not-found');
  });

  it.each([
    ['?active=maybe', ['query.active']],
    ['?limit=0', ['query.limit']],
    ['?limit=1001', ['query.limit']],
    ['?service=Shop!', ['query.service']],
    ['?colour=red', ['query.colour']],
  ])('GET /overrides%s -> 400 naming the parameter', async (query, fields) => {
    expectProblem(await shop.server.admin('GET', `/overrides${query}`), 400, 'invalid-request', fields);
  });

  it('DELETE of an unknown id -> 404, nothing written', async () => {
    await refused(
      () => shop.server.admin('DELETE', '/overrides/00000000-0000-0000-0000-000000000000'),
      404,
      'not-found',
    );
  });

  it('DELETE twice -> the second is 409 already-ended and writes nothing', async () => {
    const o = await createOverride(shop.server, drainBody());
    expect((await shop.server.admin('DELETE', `/overrides/${o.id}`)).status).toBe(204);
    await refused(() => shop.server.admin('DELETE', `/overrides/${o.id}`), 409, 'already-ended');
    expect((await auditFor(shop.server, `overrides/${o.id}`)).map((e) => e.action)).toEqual([
      'override.delete',
      'override.create',
    ]);
  });
});

describe('overrides: security', () => {
  async function unchanged(
    call: () => Promise<import('../../scripts/http-client.js').SimpleResponse>,
    status: number,
    code: string,
  ) {
    const before = await overrideState(shop.server.db);
    const res = await call();
    expectProblem(res, status, code);
    expect(await overrideState(shop.server.db)).toEqual(before);
    return res;
  }

  it('no token -> 401 on every route, nothing written', async () => {
    const o = await createOverride(shop.server, drainBody());
    for (const [method, path, body] of [
      ['GET', '/overrides', undefined],
      ['GET', `/overrides/${o.id}`, undefined],
      ['POST', '/overrides', drainBody({ cluster: 'as1' })],
      ['DELETE', `/overrides/${o.id}`, undefined],
    ] as const) {
      const res = await unchanged(() => shop.server.admin(method, path, body, null), 401, 'unauthorized');
      expect(res.headers['www-authenticate']).toBe('Bearer realm="waymark"');
    }
  });

  it('an unknown token -> 401, nothing written', async () => {
    await unchanged(
      () => shop.server.admin('POST', '/overrides', drainBody(), 'not-a-real-token-0123456789'),
      401,
      'unauthorized',
    );
  });

  it('a read token can GET overrides but POST and DELETE get 403 and write nothing', async () => {
    const o = await createOverride(shop.server, drainBody());
    expect(
      (await shop.server.admin('GET', '/overrides', undefined, READ_TOKEN)).json.overrides.map(
        (v: { id: string }) => v.id,
      ),
    ).toEqual([o.id]);
    expect((await shop.server.admin('GET', `/overrides/${o.id}`, undefined, READ_TOKEN)).json).toEqual(o);

    const post = await unchanged(
      () => shop.server.admin('POST', '/overrides', drainBody({ cluster: 'as1' }), READ_TOKEN),
      403,
      'forbidden',
    );
    expect(post.json.detail).toContain('override');
    await unchanged(() => shop.server.admin('DELETE', `/overrides/${o.id}`, undefined, READ_TOKEN), 403, 'forbidden');
    expect((await shop.server.admin('GET', `/overrides/${o.id}`)).json.active).toBe(true);
  });

  it('an on-call token can POST and DELETE overrides, named as the actor; it gets 403 on service and cluster writes', async () => {
    const o = await createOverride(shop.server, drainBody(), ONCALL_TOKEN);
    expect(o.actor).toBe(ONCALL_NAME);
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ue1');
    expect((await shop.server.admin('DELETE', `/overrides/${o.id}`, undefined, ONCALL_TOKEN)).status).toBe(204);
    expect((await shop.server.admin('GET', `/overrides/${o.id}`, undefined, ONCALL_TOKEN)).json).toMatchObject({
      active: false,
      endedBy: ONCALL_NAME,
    });

    const audit = await auditFor(shop.server, `overrides/${o.id}`);
    expect(audit.map((e) => [e.action, e.actor])).toEqual([
      ['override.delete', ONCALL_NAME],
      ['override.create', ONCALL_NAME],
    ]);
    expect((await eventsFor(shop.server))[0]?.message).toContain(`ended by ${ONCALL_NAME}`);

    await unchanged(
      () =>
        shop.server.admin('PUT', '/services/shop', serviceBody(['shop.example.com', 'x.example.com']), ONCALL_TOKEN),
      403,
      'forbidden',
    );
    await unchanged(
      () =>
        shop.server.admin(
          'PUT',
          '/services/shop/clusters/ew2',
          clusterBody('eu-west1', shop.fleet['eu-west1'].url),
          ONCALL_TOKEN,
        ),
      403,
      'forbidden',
    );
    await unchanged(
      () => shop.server.admin('DELETE', '/services/shop/clusters/ew1', undefined, ONCALL_TOKEN),
      403,
      'forbidden',
    );
    await unchanged(() => shop.server.admin('DELETE', '/services/shop', undefined, ONCALL_TOKEN), 403, 'forbidden');
  });

  it('the admin token can do all of it', async () => {
    expect(
      (await shop.server.admin('PUT', '/services/shop', serviceBody(['shop.example.com', 'www.shop.example.com'])))
        .status,
    ).toBe(200);
    const o = await createOverride(shop.server, pinBody());
    expect((await shop.server.admin('GET', `/overrides/${o.id}`)).status).toBe(200);
    expect((await shop.server.admin('DELETE', `/overrides/${o.id}`)).status).toBe(204);
  });
});

describe('overrides: happy (expiry, on a fixed clock)', () => {
  let clocked: TestServer;
  let clockedFleet: Fleet;
  let clock = 1_800_000_000_000;

  beforeEach(async () => {
    clockedFleet = await startFleet();
    clocked = await startTestServer({ ...TOKEN_ENV, WAYMARK_TRY_TIMEOUT_MS: '1000' }, { now: () => clock });
    await registerFleet(clocked, clockedFleet);
  });

  afterEach(async () => {
    await clocked.close();
    await clockedFleet.stop();
  });

  it('at expiresAt an override reads as inactive, cannot be deleted, and the sync records its end', async () => {
    const o = await createOverride(clocked, drainBody({ ttlSeconds: 60 }));
    expect(o.expiresAt).toBe(new Date(clock + 60_000).toISOString());
    expect(await servedBy(clocked, 'eu-west1')).toBe('ue1');

    clock += 60_000;
    expect((await clocked.admin('GET', `/overrides/${o.id}`)).json).toMatchObject({
      active: false,
      endedAt: new Date(clock).toISOString(),
      endedBy: 'expiry',
      endReason: 'expired',
    });
    expect((await clocked.admin('GET', '/overrides?active=true')).json.overrides).toEqual([]);
    expectProblem(await clocked.admin('DELETE', `/overrides/${o.id}`), 409, 'already-ended');
    await clocked.runtime.snapshots.refresh();
    expect(await servedBy(clocked, 'eu-west1')).toBe('ew1');

    const summary = await clocked.admin('POST', '/sync');
    expect(summary.status, summary.body).toBe(200);
    expect(summary.json.overridesExpired).toEqual([`${o.id} (drain shop/ew1)`]);
    expect((await auditFor(clocked, `overrides/${o.id}`)).map((e) => [e.action, e.actor])).toEqual([
      ['override.expire', 'health-sync'],
      ['override.create', 'admin'],
    ]);
    expect((await eventsFor(clocked)).some((e) => e.kind === 'override-expired' && e.cluster === 'ew1')).toBe(true);
    expect((await clocked.admin('GET', `/overrides/${o.id}`)).json).toMatchObject({
      active: false,
      endReason: 'expired',
    });
  });

  // KNOWN BUG (src/store/snapshot-cache.ts, SnapshotCache.get): when an override in the snapshot has
  // expired (now >= validUntil) the reload is handed to the background and the request is still routed
  // with the expired override; the API already answers active: false for it at that moment.
  it('the first request at expiresAt is no longer routed by the expired drain', async () => {
    await createOverride(clocked, drainBody({ ttlSeconds: 60 }));
    expect(await servedBy(clocked, 'eu-west1')).toBe('ue1');
    clock += 60_000;
    expect(await servedBy(clocked, 'eu-west1')).toBe('ew1');
  });
});

describe('overrides: errors (conflicting pins)', () => {
  // KNOWN BUG (src/routing/compile.ts, compileService: `overrides.find(... pin && region)` takes the
  // oldest pin; src/api/overrides.ts POST does not refuse a second pin for the same region): the second
  // pin is accepted with 201 but never applies. Expected: either it is refused (409) or the newest pin wins.
  it('a second pin for the same client region is refused or takes effect, never accepted and ignored', async () => {
    await createOverride(shop.server, pinBody({ cluster: 'ue1' }));
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ue1');
    const before = await overrideState(shop.server.db);
    const res = await shop.server.admin('POST', '/overrides', pinBody({ cluster: 'as1' }));
    if (res.status === 201) {
      expect(await servedBy(shop.server, 'eu-west1')).toBe('as1');
      expect((await matrix(shop.server)).regions['eu-west1']?.[0]).toMatchObject({
        cluster: 'as1',
        levelReason: 'pin',
        share: 100,
      });
    } else {
      expectProblem(res, 409, res.json?.code);
      expect(await overrideState(shop.server.db)).toEqual(before);
    }
  });
});

describe('overrides: errors (a configuration change cannot strand what drains spared)', () => {
  // Found by the chaos suite (chaos/scenarios/4-concurrent-operators.ts): a drain is checked for stranding
  // when it is made, and deleting the cluster it spared afterwards left the service only drained clusters.
  it('DELETE of the last cluster not drained -> 409 would-strand, nothing written; once the drains end it goes', async () => {
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    const as1 = await createOverride(shop.server, drainBody({ cluster: 'as1' }));
    const before = await overrideState(shop.server.db);
    const clustersBefore = await shop.server.admin('GET', '/services/shop/clusters');

    const res = await shop.server.admin('DELETE', '/services/shop/clusters/ew1');
    expectProblem(res, 409, 'would-strand');
    expect(res.json.detail).toContain('ew1');
    expect(await overrideState(shop.server.db)).toEqual(before);
    expect((await shop.server.admin('GET', '/services/shop/clusters')).json).toEqual(clustersBefore.json);
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');

    expect((await shop.server.admin('DELETE', `/overrides/${as1.id}`)).status).toBe(204);
    expect((await shop.server.admin('DELETE', '/services/shop/clusters/ew1')).status).toBe(204);
    expect(await servedBy(shop.server, 'eu-west1')).toBe('as1');
  });

  it('a config apply pruning the last cluster not drained -> 409 would-strand, the whole apply refused', async () => {
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    await createOverride(shop.server, drainBody({ cluster: undefined, region: 'ap-southeast1' }));
    const exported = await shop.server.admin('GET', '/config');
    const document = structuredClone(exported.json);
    document.services[0].clusters = document.services[0].clusters.filter((c: { name: string }) => c.name !== 'ew1');

    const res = await shop.server.admin('POST', '/config?prune=true', document);
    expectProblem(res, 409, 'would-strand');
    expect((await shop.server.admin('GET', '/config')).json).toEqual(exported.json);
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
  });

  it('moving the last cluster not drained into a drained region -> 409 would-strand', async () => {
    await createOverride(shop.server, drainBody({ cluster: undefined, region: 'us-east1' }));
    await createOverride(shop.server, drainBody({ cluster: 'as1' }));
    const moved = clusterBody('eu-west1', shop.fleet['eu-west1'].url, { region: 'us-east1' });

    const res = await shop.server.admin('PUT', '/services/shop/clusters/ew1', moved);
    expectProblem(res, 409, 'would-strand');
    expect(await servedBy(shop.server, 'eu-west1')).toBe('ew1');
  });

  it('DELETE of the cluster a forced drain took out, leaving only clusters drained without force -> 409 would-strand', async () => {
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    await createOverride(shop.server, drainBody({ cluster: 'as1' }));
    await createOverride(shop.server, drainBody({ cluster: 'ew1', force: true }));

    // The forced drain ends with its cluster: nothing would say the service is stranded on purpose.
    expectProblem(await shop.server.admin('DELETE', '/services/shop/clusters/ew1'), 409, 'would-strand');
  });

  it('a forced drain does not excuse a delete that leaves only clusters drained without force (it may end first)', async () => {
    const ew2 = clusterBody('eu-west1', shop.fleet['eu-west1'].url);
    expect((await shop.server.admin('PUT', '/services/shop/clusters/ew2', ew2)).status).toBe(201);
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    await createOverride(shop.server, drainBody({ cluster: 'as1' }));
    await createOverride(shop.server, drainBody({ cluster: 'ew1' }));
    await createOverride(shop.server, drainBody({ cluster: undefined, region: 'eu-west1', force: true }));

    expectProblem(await shop.server.admin('DELETE', '/services/shop/clusters/ew2'), 409, 'would-strand');
  });

  it('a service a forced drain stranded, or one losing its last cluster, is not refused', async () => {
    await createOverride(shop.server, drainBody({ cluster: 'ue1' }));
    await createOverride(shop.server, drainBody({ cluster: 'as1' }));
    await createOverride(shop.server, drainBody({ cluster: 'ew1', force: true }));
    expect((await shop.server.admin('DELETE', '/services/shop/clusters/ue1')).status).toBe(204);
    expect((await shop.server.admin('DELETE', '/services/shop/clusters/as1')).status).toBe(204);
    expect((await shop.server.admin('DELETE', '/services/shop/clusters/ew1')).status).toBe(204);
  });
});
