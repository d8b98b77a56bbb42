import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { probeCluster } from '../../src/health/probe.js';
import { undiciTransport, type UndiciTransport } from '../../src/node/undici-transport.js';
import type { HealthCheck } from '../../src/spec/cluster.js';

const check: HealthCheck = {
  path: '/health/ready',
  expectedStatuses: ['2xx'],
  timeoutMs: 2_000,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
};

let upstream: Upstream;
let transport: UndiciTransport;

beforeAll(async () => {
  upstream = await startUpstream('ew1', 'eu-west1');
  transport = undiciTransport({ streamIdleMs: 10_000 });
});

afterAll(async () => {
  await upstream.stop();
  await transport.close();
});

beforeEach(() => {
  upstream.mode = 'ok';
  upstream.healthy = true;
  upstream.lastRequest = null;
});

describe('probeCluster against a real upstream', () => {
  it('asks origin + basePath + health check path, and judges the answer found there', async () => {
    const passing = await probeCluster(
      transport,
      { origin: upstream.url, basePath: '/shop', originHost: null },
      check,
      Date.now,
    );
    expect(upstream.lastRequest).toMatchObject({ method: 'GET', path: '/shop/health/ready' });
    expect(passing).toMatchObject({ ok: true, status: 200, error: null });

    // The upstream's own /health/ready stays healthy: only the base path's endpoint fails.
    upstream.mode = 'fail';
    const failing = await probeCluster(
      transport,
      { origin: upstream.url, basePath: '/shop', originHost: null },
      check,
      Date.now,
    );
    expect(failing).toMatchObject({ ok: false, status: 503, error: 'unexpected status 503' });
  });

  it('without a base path asks origin + health check path', async () => {
    upstream.mode = 'fail';
    expect(
      await probeCluster(transport, { origin: upstream.url, basePath: '', originHost: null }, check, Date.now),
    ).toMatchObject({ ok: true, status: 200 });
    upstream.healthy = false;
    expect(
      await probeCluster(transport, { origin: upstream.url, basePath: '', originHost: null }, check, Date.now),
    ).toMatchObject({ ok: false, status: 503 });
    expect(upstream.lastRequest).toBeNull();
  });
});

describe("probeCluster on Node sends the cluster's originHost", () => {
  it('the origin sees originHost as Host, as proxied requests do', async () => {
    await probeCluster(
      transport,
      { origin: upstream.url, basePath: '', originHost: 'api.internal' },
      { ...check, path: '/probe-host' },
      Date.now,
    );
    expect(upstream.lastRequest?.headers.host).toBe('api.internal');
  });

  it('a probe that gets no answer in time says so', async () => {
    upstream.mode = 'hang';
    const result = await probeCluster(
      transport,
      { origin: upstream.url, basePath: '', originHost: null },
      { ...check, path: '/slow', timeoutMs: 200 },
      Date.now,
    );
    expect(result).toMatchObject({ ok: false, status: null, error: 'timed out after 200 ms' });
  });
});
