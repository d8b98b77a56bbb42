import { SELF } from 'cloudflare:test';
import { expect, inject } from 'vitest';

export const ADMIN = 'workerd-admin-token-0123456789';
export const BASE = 'https://waymark.test';
export const upstreams = inject('upstreams');
export const control = inject('controlUrl');
export const origins = inject('origins');

export const DUBLIN = { latitude: '53.35', longitude: '-6.26', colo: 'DUB', country: 'IE' };
export const TOKYO = { latitude: '35.68', longitude: '139.69', colo: 'NRT', country: 'JP' };

const REGIONS = {
  ue1: { region: 'us-east1', latitude: 33.2, longitude: -80.0 },
  ew1: { region: 'eu-west1', latitude: 50.4, longitude: 3.8 },
  as1: { region: 'ap-southeast1', latitude: 1.35, longitude: 103.8 },
} as const;

export function admin(method: string, path: string, body?: unknown): Promise<Response> {
  return SELF.fetch(`${BASE}/_waymark/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A request for shop.example.com from a client whose request.cf is `cf`. */
export function get(path: string, cf: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`https://shop.example.com${path}`, { headers, cf } as RequestInit);
}

/** Polls `check` until true, for at most `ms` (work that ends after the response: a mirror, a socket's close). */
export async function eventually(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Tells the global setup (in Node) to act on an upstream or the store. */
export async function ctl(path: string): Promise<unknown> {
  return (await fetch(`${control}${path}`)).json();
}

/** Service "shop" with one cluster per region, pointing at the global setup's upstreams. */
export async function registerShop(): Promise<void> {
  expect((await admin('PUT', '/services/shop', { hosts: ['shop.example.com'] })).status).toBeLessThan(300);
  for (const [name, r] of Object.entries(REGIONS)) {
    const res = await admin('PUT', `/services/shop/clusters/${name}`, {
      ...r,
      origin: upstreams[name],
      healthCheck: { path: '/health/ready' },
    });
    expect(res.status).toBeLessThan(300);
  }
}
