import { SELF } from 'cloudflare:test';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, DUBLIN, registerShop } from './support.js';

/** The admin API's service list, asked for on `host` with the admin token (WAYMARK_ADMIN_HOSTS=waymark.test,admin.test). */
function listServices(host: string): Promise<Response> {
  return SELF.fetch(`https://${host}/_waymark/api/v1/services`, {
    headers: { authorization: `Bearer ${ADMIN}` },
    cf: DUBLIN,
  } as RequestInit);
}

beforeAll(registerShop);

describe('WAYMARK_ADMIN_HOSTS inside workerd', () => {
  it('the admin API answers on an admin host, whatever the case and port', async () => {
    for (const host of ['admin.test', 'ADMIN.Test:8443']) {
      const res = await listServices(host);
      expect(res.status, host).toBe(200);
      expect(
        ((await res.json()) as { services: { name: string }[] }).services.map((s) => s.name),
        host,
      ).toContain('shop');
    }
  });

  it('on a service host the path is proxied like any request: the API never sees it', async () => {
    const res = await listServices('shop.example.com');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toBe('ew1');
    expect(await res.json()).toMatchObject({ cluster: 'ew1', path: '/_waymark/api/v1/services' });
  });

  it('on a host that is neither, the proxy answers unknown host', async () => {
    const res = await listServices('shop.test');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'unknown-host' });
  });

  it('the health checks answer on every host', async () => {
    for (const path of ['/_waymark/health/live', '/_waymark/health/ready']) {
      const res = await SELF.fetch(`https://shop.test${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.json(), path).toMatchObject({ status: expect.stringMatching(/^(live|ready)$/) });
    }
  });
});
