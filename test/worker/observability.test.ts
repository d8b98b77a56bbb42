import { createExecutionContext, env, SELF, waitOnExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observe/log.js';
import { createWorker } from '../../src/worker.js';
import { ADMIN, BASE } from './support.js';

/** The Worker as deployed, but with the access log's lines and sample draw in the test's hands. */
async function oneRequest(
  draw: number,
  bindings: Record<string, unknown> = {},
): Promise<{ status: number; lines: string[] }> {
  const lines: string[] = [];
  const worker = createWorker({
    log: silentLogger,
    accessLog: (batch) => lines.push(...batch),
    sampleRandom: () => draw,
  });
  const ctx = createExecutionContext();
  const res = await worker.fetch(new Request('https://nobody.example.test/x?q=1'), { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, lines };
}

describe('observability on Workers', () => {
  it('/_waymark/metrics answers 404 and points at Analytics Engine', async () => {
    const res = await SELF.fetch(`${BASE}/_waymark/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toContain('WAYMARK_ANALYTICS');
  });

  it('the access log keeps 1 request in 100 by default, written through waitUntil after the response', async () => {
    const kept = await oneRequest(0.005);
    expect(kept.status).toBe(404);
    expect(kept.lines).toHaveLength(1);
    expect(JSON.parse(kept.lines[0] as string)).toMatchObject({
      host: 'nobody.example.test',
      path: '/x',
      status: 404,
      service: null,
      attempts: 0,
    });
    expect((await oneRequest(0.02)).lines).toEqual([]);
    expect((await oneRequest(0.5, { WAYMARK_ACCESS_LOG_SAMPLE: '1' })).lines).toHaveLength(1);
  });

  it("with Miniflare's Analytics Engine binding: one data point per request", async () => {
    const points: unknown[] = [];
    // The real binding (Miniflare accepts writes but offers no way to read them back), watched on its way.
    const dataset = env.WAYMARK_ANALYTICS;
    expect(typeof dataset.writeDataPoint).toBe('function');
    const watched = {
      writeDataPoint: (point: AnalyticsEngineDataPoint) => {
        points.push(point);
        dataset.writeDataPoint(point);
      },
    };
    const { status } = await oneRequest(0.5, { WAYMARK_ANALYTICS: watched });
    expect(status).toBe(404);
    expect(points).toEqual([
      { blobs: ['-', '-', '-', '-', '4xx'], doubles: [expect.any(Number), 0, 404], indexes: ['-'] },
    ]);
    // The real binding alone: the request is served as usual.
    expect((await oneRequest(0.5, { WAYMARK_ANALYTICS: dataset })).status).toBe(404);
  });

  it('a binding that is not a dataset is a misconfiguration naming WAYMARK_ANALYTICS', async () => {
    const worker = createWorker({ log: silentLogger });
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request(`${BASE}/_waymark/health/ready`),
      { ...env, WAYMARK_ANALYTICS: 'nope' },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).toContain('WAYMARK_ANALYTICS');
  });
});
