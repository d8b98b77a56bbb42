/**
 * `npm run screenshots`: the dashboard's pages at 1280x800 into docs/ (overview, service, events), from
 * the demo fleet behind a Node server, with a quarter hour of edge reports and a drill's overrides so the
 * pages show what they are for. Uses Debian's chromium (installed when missing).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/observe/log.js';
import { startNodeServer } from '../src/node/server.js';
import { insertEdgeReports } from '../src/store/health.js';
import { launchChromium } from './chromium.js';
import { seedDemo, startDemoFleet } from './demo-fleet.js';
import { send } from './http-client.js';
import { ReportBuffer } from '../src/observe/edge-reports.js';

const TOKEN = 'screenshots-admin-token-0123456789';
const OUT = 'docs';
const MINUTE_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'waymark-screens-'));
const fleet = await startDemoFleet();
const server = await startNodeServer({
  env: {
    WAYMARK_DATABASE_URL: `file:${join(dir, 'waymark.db')}`,
    WAYMARK_ADMIN_TOKEN: TOKEN,
    WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
    WAYMARK_SYNC_INTERVAL_MS: '0',
    PORT: '0',
  },
  log: silentLogger,
});
const api = async (method: string, path: string, body?: unknown) => {
  const res = await send(`${server.url}/_waymark/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.body}`);
  return res.json;
};

try {
  await seedDemo(server.url, TOKEN, fleet);
  await api('PUT', '/services/shop', { hosts: ['shop.localhost'], subsets: { v1: { version: 'v1' } } });
  await api('PUT', '/services/shop/routes/api', {
    order: 10,
    match: { path: { prefix: '/api' } },
    destinations: [{ subset: 'v1', weight: 100 }],
    mirror: { subset: { version: 'v1' }, percent: 10, ramp: { step: 10, max: 100, minSamples: 50 } },
  });
  await api('POST', '/sync');
  // A quarter hour of what the edges saw: steady traffic, as1 slower, and a burst of errors at ew1.
  const now = Date.now();
  const { db } = server.runtime.store;
  for (let m = 14; m >= 0; m--) {
    const wave = 1 + 0.3 * Math.sin(m / 2);
    const rows = [
      { cluster: 'ue1', requests: Math.round(900 * wave), failures: 2, latencyMsSum: 900 * wave * 38 },
      {
        cluster: 'ew1',
        requests: Math.round(700 * wave),
        failures: m >= 4 && m <= 6 ? 60 : 1,
        latencyMsSum: 700 * wave * (m >= 4 && m <= 6 ? 95 : 42),
      },
      { cluster: 'as1', requests: Math.round(400 * wave), failures: 0, latencyMsSum: 400 * wave * 71 },
    ];
    // Latencies spread around each row's mean (0.5x to 2x), as the edges' buckets would hold them.
    const buffer = new ReportBuffer(() => now, MINUTE_MS);
    for (const r of rows)
      for (let i = 0; i < r.requests; i++)
        buffer.record(
          'shop',
          r.cluster,
          null,
          i >= r.failures,
          (r.latencyMsSum / r.requests) * (0.5 + (1.5 * ((i * 7919) % 100)) / 100),
        );
    await insertEdgeReports(db, 'screenshots', now - m * MINUTE_MS, buffer.take());
  }
  for (const region of ['us-east1', 'eu-west1', 'ap-southeast1'])
    await send(`${server.url}/api/cart`, { host: 'shop.localhost', headers: { 'x-waymark-client-region': region } });
  await api('POST', '/overrides', {
    service: 'shop',
    cluster: 'ew1',
    action: 'drain',
    reason: 'eu-west1 error burst after deploy 412',
    ttlSeconds: 1800,
  });
  const { id } = (await api('POST', '/overrides', {
    service: 'shop',
    region: 'ap-southeast1',
    cluster: 'as1',
    action: 'pin',
    reason: 'drill: keep ap clients local',
    ttlSeconds: 600,
  })) as { id: string };
  await api('DELETE', `/overrides/${id}?reason=drill%20over`);
  await api('POST', '/services/shop/routes/api/pause');

  mkdirSync(OUT, { recursive: true });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const base = `${server.url}/_waymark/dashboard`;
    await page.goto(base);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(base), page.click('#sign-in button')]);
    await page.screenshot({ path: `${OUT}/dashboard-overview.png` });
    await page.goto(`${base}/services/shop`);
    await page.screenshot({ path: `${OUT}/dashboard-service.png` });
    await page.goto(`${base}/events`);
    await page.screenshot({ path: `${OUT}/dashboard-events.png` });
  } finally {
    await browser.close();
  }
  console.log(`wrote ${OUT}/dashboard-overview.png, ${OUT}/dashboard-service.png, ${OUT}/dashboard-events.png`);
} finally {
  await server.close();
  await fleet.stop();
  rmSync(dir, { recursive: true, force: true });
}
