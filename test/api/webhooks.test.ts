import { createHmac } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { eventually, registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { type Received, type Receiver, startReceiver } from '../support/receiver.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';

const ALERTS = { backoffMs: 20, timeoutMs: 2_000, maxAttempts: 3 };

let fleet: Fleet;
let server: TestServer;
let receiver: Receiver;

beforeAll(async () => {
  fleet = await startFleet();
});
afterAll(async () => {
  await fleet.stop();
});
beforeEach(async () => {
  for (const u of fleet.all) u.healthy = true;
  server = await startTestServer({ WAYMARK_READ_TOKENS: 'viewer:test-read-token-0123456789' }, { alerts: ALERTS });
  receiver = await startReceiver();
});
afterEach(async () => {
  await server.runtime.alerts.idle();
  await server.close();
  await receiver.stop();
});

const READ_TOKEN = 'test-read-token-0123456789';

async function createHook(body: Record<string, unknown>, token?: string) {
  const res = await server.admin('POST', '/webhooks', { url: receiver.url, events: ['*'], ...body }, token);
  expect(res.status, res.body).toBe(201);
  return res.json as { id: string; secret: string; services: string[] | null; events: string[] };
}

async function count(table: string): Promise<number> {
  return Number((await server.db.execute(`select count(*) as n from ${table}`)).rows[0]?.n);
}

async function deliveries(id: string) {
  const res = await server.admin('GET', `/webhooks/${id}/deliveries`);
  expect(res.status, res.body).toBe(200);
  return (res.json as { deliveries: Record<string, unknown>[] }).deliveries;
}

/** Verifies a delivery as a receiver would: HMAC-SHA256 of `<timestamp>.<body>` with the secret. */
function verified(r: Received, secret: string): boolean {
  const timestamp = r.headers['x-waymark-timestamp'] as string;
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`;
  return r.headers['x-waymark-signature'] === expected;
}

async function sync() {
  const res = await server.admin('POST', '/sync');
  expect(res.status, res.body).toBe(200);
}

describe('webhooks: happy', () => {
  it('creates (secret shown once), lists, reads, deletes, each write audited', async () => {
    const hook = await createHook({ events: ['cluster-state', 'shares'], services: ['shop'], description: 'on-call' });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(hook).toMatchObject({ events: ['cluster-state', 'shares'], services: ['shop'], url: receiver.url });

    const list = await server.admin('GET', '/webhooks', undefined, READ_TOKEN);
    expect(list.status).toBe(200);
    expect(list.json.webhooks).toEqual([expect.objectContaining({ id: hook.id, description: 'on-call' })]);
    const one = await server.admin('GET', `/webhooks/${hook.id}`);
    expect(one.json).toMatchObject({ id: hook.id, createdBy: 'admin' });
    expect(one.json.secret).toBeUndefined();

    expect((await server.admin('DELETE', `/webhooks/${hook.id}`)).status).toBe(204);
    expectProblem(await server.admin('GET', `/webhooks/${hook.id}`), 404, 'not-found');
    const audit = await server.admin('GET', `/audit?target=webhooks/${hook.id}`);
    expect((audit.json.entries as { action: string }[]).map((e) => e.action)).toEqual([
      'webhook.delete',
      'webhook.create',
    ]);
    expect(JSON.stringify(audit.json)).not.toContain(hook.secret);
  });

  it('a sync that moves a cluster sends a signed cluster-state alert with a Slack text, once per event', async () => {
    await registerFleet(server, fleet);
    await sync(); // new clusters: unknown -> healthy
    const hook = await createHook({ events: ['cluster-state'], secret: 'a-secret-of-my-own-0123' });
    fleet['eu-west1'].healthy = false;
    await sync();
    await sync(); // unhealthyThreshold 2
    await eventually(() => receiver.received.length > 0);
    await server.runtime.alerts.idle();
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received as [Received];
    expect(verified(got, 'a-secret-of-my-own-0123')).toBe(true);
    expect(verified(got, 'another-secret-0123456')).toBe(false);
    expect(got.headers['x-waymark-event']).toBe('cluster-state');
    expect(got.json).toMatchObject({
      kind: 'cluster-state',
      service: 'shop',
      cluster: 'ew1',
      id: expect.stringMatching(/^event-\d+$/),
      at: expect.stringMatching(/Z$/),
      detail: expect.objectContaining({ from: 'healthy', to: 'unhealthy' }),
    });
    expect(got.json.text).toMatch(/^:red_circle: shop\/ew1 healthy -> unhealthy: /);
    const log = await deliveries(hook.id);
    expect(log).toEqual([expect.objectContaining({ status: 'delivered', attempts: 1, responseStatus: 200 })]);

    // Another instance on the same store dispatching at the same time sends nothing twice.
    const other = await startTestServer({ WAYMARK_DATABASE_URL: `file:${server.dir}/waymark.db` }, { alerts: ALERTS });
    try {
      fleet['eu-west1'].healthy = true;
      await sync();
      await sync(); // healthyThreshold 2
      await Promise.all([server.runtime.alerts.dispatch(), other.runtime.alerts.dispatch()]);
      await Promise.all([server.runtime.alerts.idle(), other.runtime.alerts.idle()]);
      const ids = receiver.received.map((r) => r.json.id);
      expect(ids).toHaveLength(2);
      expect(new Set(ids).size).toBe(2);
      expect(receiver.received[1]?.json.text).toMatch(/^:large_green_circle: shop\/ew1 unhealthy -> healthy/);
    } finally {
      await other.runtime.alerts.idle();
      await other.close();
    }
  });

  it('a receiver answering 500 then 200 gets it again after a backoff: the log shows 2 attempts', async () => {
    await registerFleet(server, fleet);
    const hook = await createHook({ events: ['override-applied'] });
    receiver.script.push(500);
    const override = await server.admin('POST', '/overrides', {
      service: 'shop',
      cluster: 'ew1',
      action: 'drain',
      reason: 'bad deploy',
      ttlSeconds: 600,
    });
    expect(override.status, override.body).toBe(201);
    await sync();
    await eventually(async () => (await deliveries(hook.id))[0]?.status === 'delivered');
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received[0]?.body).toBe(receiver.received[1]?.body);
    expect(receiver.received[0]?.json).toMatchObject({ kind: 'override-applied', service: 'shop' });
    expect((await deliveries(hook.id))[0]).toMatchObject({ attempts: 2, responseStatus: 200, lastError: null });
  });

  it('a 4xx other than 408/429 is not tried again; attempts stop at maxAttempts', async () => {
    await registerFleet(server, fleet);
    const hook = await createHook({ events: ['override-applied'] });
    receiver.script.push(404);
    await server.admin('POST', '/overrides', {
      service: 'shop',
      cluster: 'ew1',
      action: 'drain',
      reason: 'first',
      ttlSeconds: 600,
    });
    await server.runtime.alerts.dispatch();
    expect((await deliveries(hook.id))[0]).toMatchObject({ status: 'failed', attempts: 1, responseStatus: 404 });
    receiver.script.push(503, 503, 503);
    await server.admin('POST', '/overrides', {
      service: 'shop',
      cluster: 'ue1',
      action: 'drain',
      reason: 'second',
      ttlSeconds: 600,
    });
    await server.runtime.alerts.dispatch();
    expect((await deliveries(hook.id))[0]).toMatchObject({
      status: 'failed',
      attempts: 3,
      responseStatus: 503,
      lastError: 'the receiver answered 503',
    });
    expect(receiver.received).toHaveLength(4);
  });

  it('POST /sync does not wait for a receiver that hangs', async () => {
    await registerFleet(server, fleet);
    await createHook({ events: ['override-applied'] });
    receiver.script.push('hold');
    await server.admin('POST', '/overrides', {
      service: 'shop',
      cluster: 'ew1',
      action: 'drain',
      reason: 'bad deploy',
      ttlSeconds: 600,
    });
    await sync();
    await eventually(() => receiver.received.length === 1);
    // The delivery is still open at the receiver: a sync now answers anyway, quickly.
    const started = performance.now();
    await sync();
    expect(performance.now() - started).toBeLessThan(1_000);
    receiver.release();
    await server.runtime.alerts.idle();
  });

  it('POST /webhooks/{id}/test sends a test alert now and answers how it went', async () => {
    const hook = await createHook({});
    const sent = await server.admin('POST', `/webhooks/${hook.id}/test`);
    expect(sent.status, sent.body).toBe(200);
    expect(sent.json).toMatchObject({ kind: 'test', status: 'delivered', attempts: 1, responseStatus: 200 });
    expect(receiver.received[0]?.json).toMatchObject({ kind: 'test', text: expect.stringMatching(/^:wave: /) });
    expect(verified(receiver.received[0] as Received, hook.secret)).toBe(true);

    receiver.script.push(410);
    const refused = await server.admin('POST', `/webhooks/${hook.id}/test`);
    expect(refused.json).toMatchObject({ status: 'failed', attempts: 1, responseStatus: 410 });
    expect((await deliveries(hook.id)).map((d) => d.status)).toEqual(['failed', 'delivered']);
  });

  it('store-unreachable goes out once per outage per instance, store-recovered when it answers again', async () => {
    const hook = await createHook({ events: ['store-unreachable', 'store-recovered'] });
    await server.runtime.alerts.dispatch(); // this instance knows its webhooks
    const outage = async () => {
      server.setStoreDown(true);
      for (let i = 0; i < 3; i++) await server.runtime.snapshots.refresh();
      await server.runtime.alerts.idle();
      server.setStoreDown(false);
      await server.runtime.snapshots.refresh();
      await server.runtime.alerts.dispatch();
      await server.runtime.alerts.idle();
    };
    await outage();
    expect(receiver.received.map((r) => r.json.kind)).toEqual(['store-unreachable', 'store-recovered']);
    expect(receiver.received[0]?.json.text).toMatch(/^:rotating_light: instance .* cannot reach the store/);
    await outage();
    expect(receiver.received.map((r) => r.json.kind)).toEqual([
      'store-unreachable',
      'store-recovered',
      'store-unreachable',
      'store-recovered',
    ]);
    await server.runtime.alerts.dispatch();
    // Sent while the store was down, logged once it answered.
    expect((await deliveries(hook.id)).filter((d) => d.kind === 'store-unreachable')).toHaveLength(2);
  });
});

describe('webhooks: errors', () => {
  it('bad bodies: 400 naming every field, nothing written', async () => {
    const auditBefore = await count('audit_log');
    expectProblem(
      await server.admin('POST', '/webhooks', { url: 'ftp://x.example', events: ['nope'], extra: 1 }),
      400,
      'invalid-request',
      ['url', 'events.0', 'extra'],
    );
    expectProblem(
      await server.admin('POST', '/webhooks', { url: 'http://127.0.0.1:6000/hook', events: [], secret: 'short' }),
      400,
      'invalid-request',
      ['url', 'events', 'secret'],
    );
    expectProblem(
      await server.admin('POST', '/webhooks', { url: receiver.url, events: ['*'], services: ['Shop!'] }),
      400,
      'invalid-request',
      ['services.0'],
    );
    expectProblem(await server.admin('POST', '/webhooks', '{"url":'), 400, 'invalid-request', ['(body)']);
    expect(await count('webhooks')).toBe(0);
    expect(await count('audit_log')).toBe(auditBefore);
    expectProblem(await server.admin('DELETE', '/webhooks/nope'), 404, 'not-found');
    expectProblem(await server.admin('POST', '/webhooks/nope/test'), 404, 'not-found');
    expectProblem(await server.admin('GET', '/webhooks/nope/deliveries?limit=0'), 400, 'invalid-request', [
      'query.limit',
    ]);
  });
});

describe('webhooks: security', () => {
  it('no token 401; a read token reads but cannot manage', async () => {
    expectProblem(await server.admin('GET', '/webhooks', undefined, null), 401, 'unauthorized');
    expectProblem(
      await server.admin('POST', '/webhooks', { url: receiver.url, events: ['*'] }, READ_TOKEN),
      403,
      'forbidden',
    );
    const hook = await createHook({});
    expectProblem(await server.admin('DELETE', `/webhooks/${hook.id}`, undefined, READ_TOKEN), 403, 'forbidden');
    expectProblem(await server.admin('POST', `/webhooks/${hook.id}/test`, undefined, READ_TOKEN), 403, 'forbidden');
    expect(await count('webhooks')).toBe(1);
  });

  it('a key limited to some services manages only webhooks limited to those', async () => {
    const made = await server.admin('POST', '/tokens', { name: 'pay', scopes: ['read', 'write'], services: ['pay-*'] });
    expect(made.status, made.body).toBe(201);
    const key = made.json.key as string;
    const everything = await createHook({ description: 'ops' });

    const post = (body: Record<string, unknown>) =>
      server.admin('POST', '/webhooks', { url: receiver.url, events: ['*'], ...body }, key);
    expectProblem(await post({}), 403, 'forbidden', ['services']);
    expectProblem(await post({ services: ['shop'] }), 403, 'forbidden', ['services']);
    expectProblem(await post({ services: ['pay-*', 'p*'] }), 403, 'forbidden', ['services']);
    expect(await count('webhooks')).toBe(1);
    const mine = await createHook({ services: ['pay-eu', 'pay-us-*'] }, key);

    const list = await server.admin('GET', '/webhooks', undefined, key);
    expect((list.json.webhooks as { id: string }[]).map((w) => w.id)).toEqual([mine.id]);
    expectProblem(await server.admin('GET', `/webhooks/${everything.id}`, undefined, key), 403, 'forbidden');
    expectProblem(await server.admin('DELETE', `/webhooks/${everything.id}`, undefined, key), 403, 'forbidden');
    expectProblem(await server.admin('POST', `/webhooks/${everything.id}/test`, undefined, key), 403, 'forbidden');
    expectProblem(await server.admin('GET', `/webhooks/${everything.id}/deliveries`, undefined, key), 403, 'forbidden');
    expect((await server.admin('DELETE', `/webhooks/${mine.id}`, undefined, key)).status).toBe(204);
    expect(await count('webhooks')).toBe(1);
  });
});
