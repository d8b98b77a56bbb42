import { createClient } from '@libsql/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send, type SimpleResponse } from '../../scripts/http-client.js';
import { createApp } from '../../src/app.js';
import type { Logger } from '../../src/observe/log.js';
import { fetchTransport } from '../../src/proxy/fetch-transport.js';
import { createRuntime } from '../../src/runtime.js';
import { parseSettings } from '../../src/settings.js';
import { storeFromClient } from '../../src/store/client.js';
import { serviceBody } from '../support/factories.js';
import { instrumentedClient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await server.close();
});

/** Polls `probe` until `done` holds, for at most `timeoutMs`; returns the last answer. */
async function pollUntil(
  probe: () => Promise<SimpleResponse>,
  done: (r: SimpleResponse) => boolean,
  timeoutMs = 2_000,
): Promise<SimpleResponse> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!done(last) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    last = await probe();
  }
  return last;
}

describe('health', () => {
  it('live answers 200 without a token', async () => {
    const res = await send(`${server.url}/_waymark/health/live`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'live' });
  });

  it('ready answers 200 with the loaded snapshot version', async () => {
    const res = await send(`${server.url}/_waymark/health/ready`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ready',
      degraded: false,
      snapshotVersion: 0,
      services: 0,
      partial: false,
      storeUnreachableSince: null,
    });
  });

  it('ready answers 503 once a graceful stop has begun, so load balancers move on', async () => {
    server.runtime.lifecycle.draining = true;
    const res = await send(`${server.url}/_waymark/health/ready`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.json.code).toBe('draining');
  });

  it('ready with the store unreachable: still ready on the last snapshot, says since when, never the error', async () => {
    server.setStoreDown(true);
    await server.runtime.snapshots.refresh();
    const failedAt = server.runtime.snapshots.lastError?.at as number;
    expect(server.runtime.snapshots.lastError?.message).toContain('connection refused');
    const res = await send(`${server.url}/_waymark/health/ready`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ready',
      degraded: false,
      snapshotVersion: 0,
      services: 0,
      partial: false,
      storeUnreachableSince: new Date(failedAt).toISOString(),
    });
    expect(res.body).not.toMatch(/refused|select|revision|libsql|failed query/i);
  });

  it('ready before any snapshot loaded: 503 saying the store is unreachable since when; the error goes to the log only', async () => {
    const lines: { message: string; fields: Record<string, unknown> }[] = [];
    const log: Logger = { log: (_level, message, fields = {}) => void lines.push({ message, fields }) };
    const failing = instrumentedClient(createClient({ url: ':memory:' }));
    failing.setDown(true);
    const NOW = Date.UTC(2026, 11, 1, 9, 30);
    const rt = createRuntime({
      settings: parseSettings({}),
      store: storeFromClient(failing.client),
      transport: fetchTransport,
      log,
      now: () => NOW,
    });
    try {
      const res = await createApp(rt).request('/_waymark/health/ready');
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const body = (await res.json()) as { code: string; detail: string };
      expect(body.code).toBe('not-ready');
      expect(body.detail).toBe(
        'the routing table is not loaded: the store is unreachable since 2026-12-01T09:30:00.000Z',
      );
      expect(JSON.stringify(body)).not.toMatch(/refused|select|revision|libsql|failed query/i);
      expect(lines.map((l) => `${l.message}: ${String(l.fields.error)}`).join('\n')).toMatch(
        /snapshot refresh failed.*select.*connection refused/is,
      );
    } finally {
      failing.client.close();
    }
  });

  it('ready reports the new snapshot version after a write', async () => {
    expect((await server.admin('PUT', '/services/shop', serviceBody())).status).toBe(201);
    expect((await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']))).status).toBe(201);
    const ready = () => send(`${server.url}/_waymark/health/ready`);
    const res = await pollUntil(ready, (r) => r.json?.snapshotVersion === 2);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ready',
      degraded: false,
      snapshotVersion: 2,
      services: 2,
      partial: false,
      storeUnreachableSince: null,
    });
  });
});
