import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { probeCluster } from '../../src/health/probe.js';
import type { HealthCheck } from '../../src/store/schema.js';

const check: HealthCheck = { path: '/health/ready', expectedStatuses: ['2xx'], timeoutMs: 2_000, healthyThreshold: 2, unhealthyThreshold: 2 };

let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream('ew1', 'eu-west1');
});

afterAll(async () => {
  await upstream.stop();
});

beforeEach(() => {
  upstream.mode = 'ok';
  upstream.healthy = true;
  upstream.lastRequest = null;
});

describe('probeCluster against a real upstream', () => {
  it('asks origin + basePath + health check path, and judges the answer found there', async () => {
    const passing = await probeCluster({ origin: upstream.url, basePath: '/shop' }, check, Date.now);
    expect(upstream.lastRequest).toMatchObject({ method: 'GET', path: '/shop/health/ready' });
    expect(passing).toMatchObject({ ok: true, status: 200, error: null });

    // The upstream's own /health/ready stays healthy: only the base path's endpoint fails.
    upstream.mode = 'fail';
    const failing = await probeCluster({ origin: upstream.url, basePath: '/shop' }, check, Date.now);
    expect(failing).toMatchObject({ ok: false, status: 503, error: 'unexpected status 503' });
  });

  it('without a base path asks origin + health check path', async () => {
    upstream.mode = 'fail';
    expect(await probeCluster({ origin: upstream.url, basePath: '' }, check, Date.now)).toMatchObject({ ok: true, status: 200 });
    upstream.healthy = false;
    expect(await probeCluster({ origin: upstream.url, basePath: '' }, check, Date.now)).toMatchObject({ ok: false, status: 503 });
    expect(upstream.lastRequest).toBeNull();
  });
});
