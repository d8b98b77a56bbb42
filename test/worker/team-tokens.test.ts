import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { admin, BASE } from './support.js';

/** A call with a bearer token other than the admin's. */
function withKey(method: string, path: string, key: string, body?: unknown): Promise<Response> {
  return SELF.fetch(`${BASE}/_waymark/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('team keys inside workerd (Web Crypto, the store over HTTP)', () => {
  it('a key is made, works, is limited to its services, and is refused once revoked', async () => {
    const name = `workerd-${crypto.randomUUID().slice(0, 8)}`;
    const res = await admin('POST', '/tokens', { name, scopes: ['read'], services: ['shop'] });
    expect(res.status).toBe(201);
    const { id, key } = (await res.json()) as { id: string; key: string };
    expect(key).toMatch(/^wmk_[A-Za-z0-9_-]{43}$/);
    expect((await withKey('GET', '/services', key)).status).toBe(200);
    expect((await withKey('GET', '/services/blog', key)).status).toBe(403);
    expect((await admin('DELETE', `/tokens/${id}`)).status).toBe(204);
    expect((await withKey('GET', '/services', key)).status).toBe(401);
  });
});
