import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { send, type SimpleResponse } from '../../scripts/http-client.js';
import { serviceBody } from '../support/factories.js';
import { startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});

afterEach(async () => {
  await server.close();
});

/** Polls `probe` until `done` holds, for at most `timeoutMs`; returns the last answer. */
async function pollUntil(probe: () => Promise<SimpleResponse>, done: (r: SimpleResponse) => boolean, timeoutMs = 2_000): Promise<SimpleResponse> {
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
    expect(res.json).toEqual({ status: 'ready', snapshotVersion: 0, services: 0, storeError: null });
  });

  it('ready answers 503 once a graceful stop has begun, so load balancers move on', async () => {
    server.runtime.lifecycle.draining = true;
    const res = await send(`${server.url}/_waymark/health/ready`);
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.json.code).toBe('draining');
  });

  it('ready reports the new snapshot version after a write', async () => {
    expect((await server.admin('PUT', '/services/shop', serviceBody())).status).toBe(201);
    expect((await server.admin('PUT', '/services/blog', serviceBody(['blog.example.com']))).status).toBe(201);
    const ready = () => send(`${server.url}/_waymark/health/ready`);
    const res = await pollUntil(ready, (r) => r.json?.snapshotVersion === 2);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ready', snapshotVersion: 2, services: 2, storeError: null });
  });
});
