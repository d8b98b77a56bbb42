import { SELF } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { ADMIN, BASE, registerShop } from './support.js';

describe('the dashboard inside workerd', () => {
  it('answers the sign-in page, signs in, and renders the overview', async () => {
    const signIn = await SELF.fetch(`${BASE}/_waymark/dashboard`);
    expect(signIn.status).toBe(200);
    expect(signIn.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await signIn.text()).toContain('id="sign-in"');

    await registerShop();
    const posted = await SELF.fetch(`${BASE}/_waymark/dashboard/sign-in`, {
      method: 'POST',
      headers: { origin: BASE },
      body: new URLSearchParams({ token: ADMIN }),
      redirect: 'manual',
    });
    expect(posted.status).toBe(303);
    const cookie = posted.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/_waymark/);
    expect(cookie).toMatch(/Secure/);

    const overview = await SELF.fetch(`${BASE}/_waymark/dashboard`, {
      headers: { cookie: cookie.split(';')[0] as string },
    });
    expect(overview.status).toBe(200);
    const html = await overview.text();
    expect(html).toContain('data-service="shop"');
    expect(html).toContain('shop.example.com');

    const script = await SELF.fetch(`${BASE}/_waymark/dashboard/app.js`);
    expect(script.headers.get('content-type')).toContain('javascript');
  });
});
