import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { admin, BASE, control, DUBLIN, get, registerShop, TOKYO } from './support.js';

beforeAll(registerShop);

describe('the worker inside workerd', () => {
  it('routes a client by request.cf location to the nearest region', async () => {
    const dublin = await get('/hello', DUBLIN);
    expect(dublin.status).toBe(200);
    expect(dublin.headers.get('x-waymark-cluster')).toBe('ew1');
    expect(await dublin.json()).toMatchObject({ cluster: 'ew1', path: '/hello' });
    const tokyo = await get('/hello', TOKYO);
    expect(tokyo.headers.get('x-waymark-cluster')).toBe('as1');
  });

  it('client-sent x-waymark-* headers do not steer routing', async () => {
    const res = await get('/', DUBLIN, {
      'x-waymark-client-region': 'ap-southeast1',
      'x-waymark-client-location': '1.35,103.8',
    });
    expect(res.headers.get('x-waymark-cluster')).toBe('ew1');
    const served = (await (await fetch(`${control}/served/ew1`)).json()) as {
      lastRequest: { headers: Record<string, string> };
    };
    expect(served.lastRequest.headers['x-waymark-client-region']).toBeUndefined();
  });

  it('makes zero store queries per proxied request at steady state', async () => {
    await get('/warm', DUBLIN);
    const count = async () =>
      ((await (await fetch(`${control}/store-requests`)).json()) as { requests: number }).requests;
    const before = await count();
    for (let i = 0; i < 20; i++) expect((await get(`/n/${i}`, DUBLIN)).status).toBe(200);
    expect(await count()).toBe(before);
  });

  it('store unreachable: traffic keeps flowing on the last good snapshot', async () => {
    await fetch(`${control}/store-down`);
    try {
      for (let i = 0; i < 5; i++) {
        const res = await get('/', TOKYO);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-waymark-cluster')).toBe('as1');
      }
      const write = await admin('PUT', '/services/other', { hosts: ['other.example.com'] });
      expect(write.status).toBe(503);
      expect(await write.clone().json()).toMatchObject({ code: 'store-unavailable' });
      expect(write.headers.get('content-type')).toBe('application/problem+json');
    } finally {
      await fetch(`${control}/store-up`);
    }
  });

  it('fails over to the next-nearest cluster inside the same request', async () => {
    await fetch(`${control}/stop/ew1`);
    try {
      const res = await get('/failover', DUBLIN);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-waymark-cluster')).toBe('ue1');
      expect(res.headers.get('x-waymark-attempts')).toBe('2');
    } finally {
      await fetch(`${control}/start/ew1`);
    }
  });

  it('answers problems for an unknown host and guards the admin API', async () => {
    const unknown = await SELF.fetch('https://nope.example.com/', { cf: DUBLIN } as RequestInit);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toBe('application/problem+json');
    const noToken = await SELF.fetch(`${BASE}/_waymark/api/v1/services`);
    expect(noToken.status).toBe(401);
    const ready = await SELF.fetch(`${BASE}/_waymark/health/ready`);
    expect(ready.status).toBe(200);
  });
});

describe('the scheduled handler', () => {
  it('runs inside workerd and checks the store for a new revision', async () => {
    const { createExecutionContext, createScheduledController, waitOnExecutionContext, env } = await import(
      'cloudflare:test'
    );
    const worker = (await import('./entry.js')).default;
    const count = async () =>
      ((await (await fetch(`${control}/store-requests`)).json()) as { requests: number }).requests;
    const before = await count();
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '* * * * *' }), env, ctx);
    await waitOnExecutionContext(ctx);
    expect(await count()).toBeGreaterThan(before);
  });
});
