import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../scripts/chromium.js';
import { registerFleet, startFleet, type Fleet } from '../support/fleet.js';
import { startTestServer, type TestServer } from '../support/server.js';

const READ_TOKEN = 'dashboard-read-token-0123456789';
const ONCALL_TOKEN = 'dashboard-oncall-token-012345678';

let server: TestServer;
let fleet: Fleet;
let browser: Browser;
let base: string;

beforeAll(async () => {
  [server, fleet, browser] = await Promise.all([
    startTestServer({
      WAYMARK_READ_TOKENS: `viewer:${READ_TOKEN}`,
      WAYMARK_ONCALL_TOKENS: `oncall:${ONCALL_TOKEN}`,
    }),
    startFleet(),
    launchChromium(),
  ]);
  await registerFleet(server, fleet);
  base = `${server.url}/_waymark/dashboard`;
  // Traffic the edges observe, for the charts.
  for (const region of ['us-east1', 'eu-west1']) {
    for (let i = 0; i < 5; i++)
      await server.request('shop.example.com', '/', { headers: { 'x-waymark-client-region': region } });
  }
  await server.runtime.flushReports();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([server?.close(), fleet?.stop()]);
});

/** A fresh browser context signed in with `token`. */
async function signedIn(token: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  await page.goto(base);
  await page.fill('#token', token);
  await Promise.all([page.waitForURL(base), page.click('#sign-in button')]);
  return { context, page };
}

/** The share a client region's traffic sends to a cluster, as the grid shows it. */
function share(page: Page, region: string, cluster: string): Promise<string | null> {
  return page.getAttribute(`#matrix tr[data-region="${region}"] td[data-cluster="${cluster}"]`, 'data-share');
}

describe('the dashboard in a real browser', () => {
  it('signs in, shows the grid, drains from the form, ends the override and filters events', async () => {
    const { context, page } = await signedIn(ONCALL_TOKEN);
    const cookie = (await context.cookies()).find((c) => c.name === 'waymark_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/_waymark', secure: false });

    // Overview: the service, its hosts, clusters healthy/total, no override.
    const row = page.locator('#services tr[data-service="shop"]');
    await expect.poll(() => row.textContent()).toContain('shop.example.com');
    expect(await row.locator('.health').textContent()).toBe('3/3');
    expect(await row.locator('.overrides').textContent()).toBe('0');

    // Service page: the grid, charts fed by edge reports.
    await page.click('a[href$="/services/shop"]');
    expect(Number(await share(page, 'eu-west1', 'ew1'))).toBe(100);
    expect(
      await page
        .locator('#charts tr[data-cluster="ew1"] svg polyline, #charts tr[data-cluster="ew1"] svg circle')
        .count(),
    ).toBeGreaterThan(0);

    // What-if: ew1 down moves eu-west1's traffic elsewhere without writing anything.
    await page.click('a[data-whatif="ew1"]');
    expect(page.url()).toContain('?down=ew1');
    expect(Number(await share(page, 'eu-west1', 'ew1'))).toBe(0);
    expect(await page.textContent('#whatif')).toContain('ew1');
    await page.click('#whatif a');

    // Bad input: the problem and its fields; nothing written.
    await page.selectOption('#override-form select[name="cluster"]', 'ew1');
    await page.fill('#override-form input[name="reason"]', 'x');
    await page.fill('#override-form input[name="ttl"]', '10');
    await page.click('#override-form button');
    const problem = page.locator('.problem');
    expect(await problem.getAttribute('data-code')).toBe('invalid-request');
    expect(await problem.textContent()).toMatch(/ttl.*no unit/s);
    expect(await problem.textContent()).toContain('reason');
    expect(await page.inputValue('#override-form input[name="reason"]')).toBe('x');
    expect((await server.admin('GET', '/overrides?active=true')).json).toEqual({ overrides: [] });

    // Drain ew1 for 10 minutes: the grid changes, the override is listed and audited with the actor.
    await page.fill('#override-form input[name="reason"]', 'bad deploy in eu');
    await page.fill('#override-form input[name="ttl"]', '10m');
    await Promise.all([page.waitForURL(`${base}/services/shop`), page.click('#override-form button')]);
    expect(Number(await share(page, 'eu-west1', 'ew1'))).toBe(0);
    expect(await page.textContent('#matrix th[data-cluster="ew1"]')).toContain('drained');
    const listed = page.locator('#overrides tr[data-override]');
    expect(await listed.count()).toBe(1);
    expect(await listed.textContent()).toContain('bad deploy in eu');
    const active = (
      (await server.admin('GET', '/overrides?active=true')).json as {
        overrides: { actor: string; expiresAt: string; createdAt: string }[];
      }
    ).overrides;
    expect(active).toHaveLength(1);
    expect(active[0]?.actor).toBe('oncall');
    expect(Date.parse(active[0]?.expiresAt ?? '') - Date.parse(active[0]?.createdAt ?? '')).toBe(600_000);

    // End it: the grid comes back.
    await Promise.all([page.waitForURL(`${base}/services/shop`), page.click('#overrides button')]);
    expect(await page.locator('#no-overrides').count()).toBe(1);
    expect(Number(await share(page, 'eu-west1', 'ew1'))).toBe(100);

    // Events and audit: filter by kind, then by service.
    await page.click('header a[href$="/events"]');
    await page.selectOption('#filter select[name="kind"]', 'override-ended');
    await Promise.all([page.waitForURL(/kind=override-ended/), page.click('#filter button')]);
    const kinds = await page
      .locator('#timeline tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
    expect(kinds).toEqual(['override-ended']);
    expect(await page.textContent('#timeline')).toContain('figures');
    await page.selectOption('#filter select[name="kind"]', 'audit');
    await Promise.all([page.waitForURL(/kind=audit/), page.click('#filter button')]);
    const actions = await page
      .locator('#timeline tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-action')));
    expect(actions.slice(0, 2)).toEqual(['override.delete', 'override.create']);
    await context.close();
  });

  it('refreshes main by itself without a full reload', async () => {
    const { context, page } = await signedIn(READ_TOKEN);
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 1;
    });
    const before = await page.getAttribute('main', 'data-rendered-at');
    expect(
      (
        await server.admin('POST', '/overrides', {
          service: 'shop',
          cluster: 'as1',
          action: 'drain',
          reason: 'refresh test',
          ttlSeconds: 60,
        })
      ).status,
    ).toBe(201);
    await expect
      .poll(() => page.locator('#services tr[data-service="shop"] .overrides').textContent(), { timeout: 8_000 })
      .toBe('1');
    expect(await page.getAttribute('main', 'data-rendered-at')).not.toBe(before);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(1);
    const { overrides } = (await server.admin('GET', '/overrides?active=true')).json as { overrides: { id: string }[] };
    for (const o of overrides) expect((await server.admin('DELETE', `/overrides/${o.id}`)).status).toBe(204);
    await context.close();
  });

  it('refuses a wrong token, offers a read-only token no form, and refuses a post without the CSRF token', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(base);
    await page.fill('#token', 'not-a-token-at-all');
    const refused = await Promise.all([page.waitForResponse(`${base}/sign-in`), page.click('#sign-in button')]);
    expect(refused[0].status()).toBe(401);
    expect(await page.textContent('.problem')).toContain('not valid');
    expect(await context.cookies()).toEqual([]);
    await context.close();

    const viewer = await signedIn(READ_TOKEN);
    await viewer.page.goto(`${base}/services/shop`);
    expect(await viewer.page.locator('#matrix').count()).toBe(1);
    expect(await viewer.page.locator('#override-form').count()).toBe(0);
    // Posting anyway is refused for want of the scope, and writes nothing.
    const posted = await viewer.page.evaluate(async (url) => {
      const csrf = (
        globalThis as unknown as { document: { querySelector(s: string): { value: string } } }
      ).document.querySelector('input[name="csrf"]').value;
      const body = new URLSearchParams({ csrf, action: 'drain', cluster: 'ew1', reason: 'no scope', ttl: '10m' });
      return (await fetch(url, { method: 'POST', body })).status;
    }, `${base}/services/shop/overrides`);
    expect(posted).toBe(403);
    await viewer.context.close();

    const oncall = await signedIn(ONCALL_TOKEN);
    await oncall.page.goto(`${base}/services/shop`);
    const withoutCsrf = await oncall.page.evaluate(async (url) => {
      const body = new URLSearchParams({ action: 'drain', cluster: 'ew1', reason: 'csrf test', ttl: '10m' });
      const res = await fetch(url, { method: 'POST', body });
      return { status: res.status, text: await res.text() };
    }, `${base}/services/shop/overrides`);
    expect(withoutCsrf.status).toBe(403);
    expect(withoutCsrf.text).toContain('CSRF');
    // A cross-site form (another origin, even with the right token in the field) is refused too.
    const crossSite = await fetch(`${base}/services/shop/overrides`, {
      method: 'POST',
      headers: {
        origin: 'https://evil.example',
        cookie: (await oncall.context.cookies()).map((c) => `${c.name}=${c.value}`).join('; '),
      },
      body: new URLSearchParams({ action: 'drain', cluster: 'ew1', reason: 'csrf test', ttl: '10m' }),
    });
    expect(crossSite.status).toBe(403);
    expect(((await server.admin('GET', '/overrides?active=true')).json as { overrides: unknown[] }).overrides).toEqual(
      [],
    );

    // Sign out ends the session.
    await Promise.all([oncall.page.waitForURL(base), oncall.page.click('header form button')]);
    expect(await oncall.page.locator('#sign-in').count()).toBe(1);
    await oncall.context.close();
  });
});
