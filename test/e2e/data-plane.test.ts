import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { clusterBody } from '../support/factories.js';
import { GZIP_BYTES, startOrigin, type Origin } from '../support/origin.js';
import { startTestServer, type TestServer } from '../support/server.js';

const HOST = 'shop.example.com';
const EU = { 'x-waymark-client-region': 'eu-west1' };

interface Raw {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One request with node:http (no decoding, no added headers beyond host/connection), body sent as given. */
function raw(
  server: TestServer,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${server.url}${path}`,
      { method: init.method ?? 'GET', headers: { host: HOST, ...EU, ...init.headers }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    if (init.headers?.expect === '100-continue') req.once('continue', () => req.end(init.body));
    else req.end(init.body);
  });
}

/** Writes bytes on a plain socket and reads the whole answer until the server closes or `ms` pass. */
function rawSocket(server: TestServer, text: string, ms = 2_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('error', reject);
  });
}

const headerNames = (seen: [string, string][]) => seen.map(([n]) => n);

/** The heap in use after a full collection (the test process holds the server, so its limiter is in it). */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

describe('the data plane on Node carries every kind of HTTP traffic faithfully', () => {
  let server: TestServer;
  let eu: Origin;
  let us: Origin;

  const start = async (env: Record<string, string> = {}, euOrigin?: (url: string) => Record<string, unknown>) => {
    eu = await startOrigin();
    us = await startOrigin();
    server = await startTestServer({ WAYMARK_TRY_TIMEOUT_MS: '1000', ...env });
    expect((await server.admin('PUT', '/services/shop', { hosts: [HOST] })).status).toBe(201);
    const ew1 = await server.admin(
      'PUT',
      '/services/shop/clusters/ew1',
      clusterBody('eu-west1', eu.url, euOrigin?.(eu.url)),
    );
    expect(ew1.status, ew1.body).toBe(201);
    expect((await server.admin('PUT', '/services/shop/clusters/ue1', clusterBody('us-east1', us.url))).status).toBe(
      201,
    );
    await server.runtime.snapshots.refresh();
  };
  afterEach(async () => {
    await server?.close();
    await Promise.all([eu?.stop(), us?.stop()]);
  });

  describe('with default settings', () => {
    beforeEach(() => start());

    it.each([
      ['a small body', 1_000],
      ['a 2 MiB body', 2 * 1024 * 1024],
    ])('Expect: 100-continue with %s reaches the origin (which gets no expect header)', async (_, size) => {
      const res = await raw(server, '/echo', {
        method: 'POST',
        headers: { expect: '100-continue', 'content-length': String(size) },
        body: Buffer.alloc(size, 7),
      });
      expect(res.status, res.body.toString()).toBe(200);
      expect(JSON.parse(res.body.toString()).bodyBytes).toBe(size);
      expect(res.headers['x-waymark-cluster']).toBe('ew1');
      expect(headerNames(eu.last().headers)).not.toContain('expect');
    });

    it('20 Expect: 100-continue POSTs eject nothing: every one is served by the nearest cluster on its first try', async () => {
      for (let i = 0; i < 20; i++) {
        const res = await raw(server, '/echo', {
          method: 'POST',
          headers: { expect: '100-continue', 'content-length': '64' },
          body: Buffer.alloc(64),
        });
        expect(res.status).toBe(200);
        expect(res.headers['x-waymark-attempts']).toBe('1');
      }
      expect(eu.seen).toHaveLength(20);
      expect(us.seen).toHaveLength(0);
      expect(server.runtime.outliers.isEjected('shop/ew1')).toBe(false);
    });

    it('gzip bytes reach the client exactly as the origin sent them, with their content-encoding and length', async () => {
      const res = await raw(server, '/gzip', { headers: { 'accept-encoding': 'gzip' } });
      expect(res.status).toBe(200);
      expect(res.headers['content-encoding']).toBe('gzip');
      expect(res.headers['content-length']).toBe(String(GZIP_BYTES.length));
      expect(res.headers['transfer-encoding']).toBeUndefined();
      expect(res.body.equals(GZIP_BYTES)).toBe(true);
    });

    it('the origin gets the client headers as sent, less hop-by-hop and x-waymark-*, plus the forwarding headers, and nothing else', async () => {
      const sent = {
        accept: 'application/json',
        'accept-encoding': 'br',
        'user-agent': 'curl/8.5.0',
        'x-custom': 'kept',
        cookie: 'a=1; b=2',
        'x-waymark-debug': '1',
        connection: 'keep-alive, x-hop',
        'x-hop': 'dropped',
        te: 'trailers',
      };
      const res = await raw(server, '/echo?q=1', { headers: sent });
      expect(res.status).toBe(200);
      const seen = Object.fromEntries(eu.last().headers);
      expect(eu.last().url).toBe('/echo?q=1');
      expect(seen['accept-encoding']).toBe('br');
      expect(seen['user-agent']).toBe('curl/8.5.0');
      expect(seen.accept).toBe('application/json');
      expect(seen.cookie).toBe('a=1; b=2');
      const added = new Set([
        'host',
        'connection',
        'x-forwarded-for',
        'x-forwarded-host',
        'x-forwarded-proto',
        'x-real-ip',
        'forwarded',
        'x-request-id',
        'traceparent',
      ]);
      const fromClient = new Set(['accept', 'accept-encoding', 'user-agent', 'x-custom', 'cookie']);
      expect(
        headerNames(eu.last().headers)
          .filter((n) => !added.has(n))
          .sort(),
      ).toEqual([...fromClient].sort());
      // undici's fetch would have added these; the dispatcher adds none.
      for (const name of [
        'accept-language',
        'sec-fetch-mode',
        'x-waymark-debug',
        'x-waymark-client-region',
        'x-hop',
        'te',
      ])
        expect(seen[name]).toBeUndefined();
    });

    it('an event stream flows as it comes: the first event arrives before the origin ends the stream', async () => {
      const first = await new Promise<{ event: string; res: IncomingMessage }>((resolve, reject) => {
        const req = httpRequest(
          `${server.url}/sse`,
          { headers: { host: HOST, ...EU, accept: 'text/event-stream' }, agent: false },
          (res) => {
            res.once('data', (chunk: Buffer) => resolve({ event: chunk.toString(), res }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(first.event).toBe('data: first\n\n');
      expect(first.res.headers['content-type']).toBe('text/event-stream');
      const rest = new Promise<string>((resolve) => {
        let text = '';
        first.res.on('data', (c: Buffer) => (text += c.toString()));
        first.res.on('end', () => resolve(text));
      });
      eu.release();
      expect(await rest).toBe('data: last\n\n');
    });

    it('a 204 carries no body headers even when the origin sent content-length', async () => {
      const res = await raw(server, '/nocontent');
      expect(res.status).toBe(204);
      expect(res.headers['content-length']).toBeUndefined();
    });

    it('forwarding headers are what Waymark saw: a client cannot lie about its address', async () => {
      await raw(server, '/echo', {
        headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-real-ip': '6.6.6.6' },
      });
      const seen = Object.fromEntries(eu.last().headers);
      expect(seen['x-forwarded-for']).toBe('127.0.0.1');
      expect(seen['x-real-ip']).toBe('127.0.0.1');
      expect(seen.forwarded).toBe('for=127.0.0.1;host=shop.example.com;proto=http');
      expect(seen['x-forwarded-host']).toBe(HOST);
    });

    it('two Host headers or an invalid one get 400; a trailing-dot host is routed; CONNECT gets 405', async () => {
      const two = await rawSocket(
        server,
        `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nHost: evil.example.com\r\nConnection: close\r\n\r\n`,
      );
      expect(two).toMatch(/^HTTP\/1\.1 400 /);
      expect(two).toContain('bad-host');
      const invalid = await rawSocket(
        server,
        'GET /echo HTTP/1.1\r\nHost: shop_example com\r\nConnection: close\r\n\r\n',
      );
      expect(invalid).toMatch(/^HTTP\/1\.1 400 /);
      const dotted = await raw(server, '/echo', { headers: { host: `${HOST}.` } });
      expect(dotted.status).toBe(200);
      expect(dotted.headers['x-waymark-cluster']).toBe('ew1');
      const tunnel = await rawSocket(server, `CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`);
      expect(tunnel).toMatch(/^HTTP\/1\.1 405 /);
      expect(tunnel).toContain('method-not-allowed');
      expect(eu.seen.filter((r) => r.method === 'CONNECT')).toHaveLength(0);
    });

    it('an upgrade to anything but WebSocket gets 400 and its connection closes (nothing left in flight for a drain)', async () => {
      const answer = await rawSocket(
        server,
        `GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`,
      );
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('unsupported-upgrade');
      expect(eu.seen).toHaveLength(0);
    });

    it('a quiet service always gets its retry: with the nearest cluster down, 10 GETs in a row are all saved by the next', async () => {
      await eu.stop();
      for (let i = 0; i < 10; i++) {
        const res = await raw(server, `/echo?i=${i}`);
        expect(res.status).toBe(200);
        expect(res.headers['x-waymark-cluster']).toBe('ue1');
      }
    });

    it('clients that go away (mid-upload, or while the origin thinks) count against no cluster', async () => {
      const consecutiveFailures = 5;
      for (let i = 0; i < consecutiveFailures * 2; i++) {
        // Declares 1 MiB, sends 10 bytes, hangs up.
        await rawSocket(
          server,
          `POST /echo HTTP/1.1\r\nHost: ${HOST}\r\nx-waymark-client-region: eu-west1\r\nContent-Length: 1048576\r\n\r\n0123456789`,
          100,
        );
        // Waits for a slow answer, hangs up first.
        await rawSocket(
          server,
          `GET /delay?ms=500 HTTP/1.1\r\nHost: ${HOST}\r\nx-waymark-client-region: eu-west1\r\n\r\n`,
          100,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(server.runtime.outliers.isEjected('shop/ew1')).toBe(false);
      expect(server.runtime.reports.take().filter((r) => r.failures > 0)).toEqual([]);
      const res = await raw(server, '/echo');
      expect(res.headers['x-waymark-cluster']).toBe('ew1');
      expect(res.headers['x-waymark-attempts']).toBe('1');
    });
  });

  describe('rate-limit keys chosen by clients', () => {
    beforeEach(() => start());

    it('10,000 distinct 8 KiB x-api-key values leave memory bounded: keys are hashed, not kept', async () => {
      const route = await server.admin('PUT', '/services/shop/routes/keyed', {
        order: 1,
        destinations: [{ subset: { version: 'v1' }, weight: 100 }],
        rateLimit: { requestsPerSecond: 1, burst: 5, key: { header: 'x-api-key' } },
      });
      expect(route.status, route.body).toBe(201);
      await server.runtime.snapshots.refresh();
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const one = (i: number) =>
        new Promise<number>((resolve, reject) => {
          const key = `${String(i).padStart(8, '0')}${'k'.repeat(8 * 1024 - 8)}`;
          const req = httpRequest(
            `${server.url}/echo`,
            { headers: { host: HOST, ...EU, 'x-api-key': key }, agent },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
      const before = heapAfterGc();
      const N = 10_000;
      for (let i = 0; i < N; i += 16) {
        const statuses = await Promise.all(Array.from({ length: Math.min(16, N - i) }, (_, j) => one(i + j)));
        expect(statuses.every((s) => s === 200)).toBe(true);
      }
      agent.destroy();
      // The test's own origin records every request it saw: forget those before weighing Waymark.
      eu.seen.length = 0;
      const grownMb = (heapAfterGc() - before) / 2 ** 20;
      // Kept as keys, the values alone would hold 10,000 x 8 KiB = 80 MiB.
      expect(grownMb).toBeLessThan(20);
    }, 60_000);
  });

  describe('timeouts that mean what they say', () => {
    beforeEach(() => start({ WAYMARK_TRY_TIMEOUT_MS: '500', WAYMARK_STREAM_IDLE_MS: '1000' }));

    it('the per-try timeout does not run while a slow client uploads 40 MiB', async () => {
      const size = 40 * 1024 * 1024;
      const chunk = Buffer.alloc(1024 * 1024, 1);
      const res = await new Promise<Raw>((resolve, reject) => {
        const req = httpRequest(
          `${server.url}/echo`,
          { method: 'POST', headers: { host: HOST, ...EU, 'content-length': String(size) }, agent: false },
          (r) => {
            const chunks: Buffer[] = [];
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
          },
        );
        req.on('error', reject);
        let sent = 0;
        // 40 chunks, 40 ms apart: about 1.6 s of upload against a 500 ms per-try timeout.
        const timer = setInterval(() => {
          req.write(chunk);
          sent += 1;
          if (sent === 40) {
            clearInterval(timer);
            req.end();
          }
        }, 40);
      });
      expect(res.status, res.body.toString()).toBe(200);
      expect(JSON.parse(res.body.toString()).bodyBytes).toBe(size);
      expect(res.headers['x-waymark-attempts']).toBe('1');
    });

    it('a body that stops flowing is ended after WAYMARK_STREAM_IDLE_MS, and the cluster is not charged a failure', async () => {
      const outcome = await new Promise<{ status: number; body: string; complete: boolean; ms: number }>(
        (resolve, reject) => {
          const started = Date.now();
          const req = httpRequest(`${server.url}/stall`, { headers: { host: HOST, ...EU }, agent: false }, (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('close', () =>
              resolve({ status: res.statusCode ?? 0, body, complete: res.complete, ms: Date.now() - started }),
            );
          });
          req.on('error', () => undefined);
          req.setTimeout(5_000, () => reject(new Error('the stalled body was never ended')));
          req.end();
        },
      );
      expect(outcome.status).toBe(200);
      expect(outcome.body).toBe('first');
      expect(outcome.complete).toBe(false);
      expect(outcome.ms).toBeGreaterThanOrEqual(900);
      expect(outcome.ms).toBeLessThan(4_000);
      expect(server.runtime.outliers.isEjected('shop/ew1')).toBe(false);
    });

    it("a route's timeoutMs bounds the whole exchange, body included", async () => {
      const route = await server.admin('PUT', '/services/shop/routes/bounded', {
        order: 1,
        match: { path: { prefix: '/drip' } },
        destinations: [{ subset: { version: 'v1' }, weight: 100 }],
        timeoutMs: 600,
      });
      expect(route.status, route.body).toBe(201);
      await server.runtime.snapshots.refresh();
      const outcome = await new Promise<{ status: number; complete: boolean; ms: number }>((resolve) => {
        const started = Date.now();
        const req = httpRequest(`${server.url}/drip`, { headers: { host: HOST, ...EU }, agent: false }, (res) => {
          res.resume();
          res.on('close', () =>
            resolve({ status: res.statusCode ?? 0, complete: res.complete, ms: Date.now() - started }),
          );
        });
        req.on('error', () => undefined);
        req.end();
      });
      expect(outcome.status).toBe(200);
      expect(outcome.complete).toBe(false);
      expect(outcome.ms).toBeGreaterThanOrEqual(550);
      expect(outcome.ms).toBeLessThan(3_000);
    });
  });

  describe('origins with a base path and a Host of their own', () => {
    beforeEach(() => start({}, (url) => ({ origin: `${url}/shop/`, originHost: 'api.internal' })));

    it('the base path prefixes every proxied path and the origin sees originHost; x-forwarded-host keeps the client host', async () => {
      const res = await raw(server, '/items?id=1');
      expect(res.status).toBe(200);
      expect(eu.last().url).toBe('/shop/items?id=1');
      const seen = Object.fromEntries(eu.last().headers);
      expect(seen.host).toBe('api.internal');
      expect(seen['x-forwarded-host']).toBe(HOST);
    });
  });

  describe('behind trusted proxies (WAYMARK_TRUSTED_HOPS=1)', () => {
    beforeEach(() => start({ WAYMARK_TRUSTED_HOPS: '1' }));

    it("the client is the last address the trusted proxy appended; entries before it are the client's own and dropped", async () => {
      await raw(server, '/echo', { headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.1' } });
      const seen = Object.fromEntries(eu.last().headers);
      expect(seen['x-real-ip']).toBe('203.0.113.1');
      expect(seen['x-forwarded-for']).toBe('203.0.113.1, 127.0.0.1');
      expect(seen.forwarded).toBe('for=203.0.113.1;host=shop.example.com;proto=http');
    });
  });

  describe('WebSocket', () => {
    beforeEach(() => start());

    const open = (headers: Record<string, string> = EU) =>
      new Promise<{ ws: WebSocket; response: IncomingMessage }>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers: { host: HOST, ...headers } });
        ws.once('upgrade', (response) => ws.once('open', () => resolve({ ws, response })));
        ws.once('unexpected-response', (_req, res) =>
          reject(
            Object.assign(new Error(`handshake answered ${res.statusCode}`), {
              status: res.statusCode,
              headers: res.headers,
            }),
          ),
        );
        ws.once('error', reject);
      });
    const echo = (ws: WebSocket, text: string) =>
      new Promise<string>((resolve) => {
        ws.once('message', (data) => resolve(String(data)));
        ws.send(text);
      });
    const closed = (ws: WebSocket) =>
      new Promise<void>((resolve) =>
        ws.readyState === WebSocket.CLOSED ? resolve() : ws.once('close', () => resolve()),
      );

    it('echoes through Waymark, both ways, until the client closes', async () => {
      const { ws, response } = await open();
      expect(response.headers['x-waymark-cluster']).toBe('ew1');
      expect(await echo(ws, 'hello')).toBe('hello');
      expect(await echo(ws, 'x'.repeat(100_000))).toHaveLength(100_000);
      ws.close();
      await closed(ws);
      const handshake = Object.fromEntries(eu.last().headers);
      expect(handshake.upgrade).toBe('websocket');
      expect(handshake['sec-websocket-key']).toBeDefined();
    });

    it('fails over to the next cluster while the handshake has not succeeded', async () => {
      eu.refuseUpgrade = true;
      const { ws, response } = await open();
      expect(response.headers['x-waymark-cluster']).toBe('ue1');
      expect(response.headers['x-waymark-attempts']).toBe('2');
      expect(await echo(ws, 'again')).toBe('again');
      ws.close();
      await closed(ws);
    });

    it('a cluster that is down is skipped the same way', async () => {
      await eu.stop();
      const { ws, response } = await open();
      expect(response.headers['x-waymark-cluster']).toBe('ue1');
      ws.close();
      await closed(ws);
    });

    it('maxConcurrent counts open sockets', async () => {
      const route = await server.admin('PUT', '/services/shop/routes/ws', {
        order: 1,
        destinations: [{ subset: { version: 'v1' }, weight: 100 }],
        maxConcurrent: 1,
      });
      expect(route.status, route.body).toBe(201);
      await server.runtime.snapshots.refresh();
      const first = await open();
      await expect(open()).rejects.toMatchObject({ status: 503 });
      first.ws.close();
      await closed(first.ws);
      await new Promise((r) => setTimeout(r, 50));
      const again = await open();
      expect(await echo(again.ws, 'ok')).toBe('ok');
      again.ws.close();
      await closed(again.ws);
    });
  });
});
