import { SELF } from 'cloudflare:test';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, ctl, DUBLIN, origins, registerShop } from './support.js';

/**
 * What crosses the worker inside workerd on the way to the origin and back: Expect, compressed bodies,
 * the headers the origin sees, bodyless answers, and which hosts and methods are taken. "shop"
 * (support.ts) serves the header and body checks through ew1 (nearest to Dublin); service "echo"
 * (echo.example.com) has one cluster on the echo origin (`/gzip` answers gzip bytes, `/no-content` 204)
 * and route `limited` (x-policy: limited) holding one request at a time.
 */
const ECHO_HOST = 'echo.example.com';
const CLIENT_IP = '203.0.113.7';

interface Served {
  served: number;
  lastRequest: { method: string; path: string; headers: Record<string, string>; body: string } | null;
}

const servedByEw1 = async () => ((await ctl('/served/ew1')) as Served).lastRequest!;
const echoSaw = async () =>
  ((await ctl('/echo')) as { lastRequest: { path: string; headers: Record<string, string> } | null }).lastRequest!;

function post(path: string, headers: Record<string, string>, body: BodyInit): Promise<Response> {
  return SELF.fetch(`https://shop.example.com${path}`, { method: 'POST', headers, body, cf: DUBLIN } as RequestInit);
}

function base64(bytes: ArrayBuffer): string {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)));
}

async function gunzip(bytes: ArrayBuffer): Promise<string> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Response(stream).text();
}

beforeAll(async () => {
  await registerShop();
  expect((await admin('PUT', '/services/echo', { hosts: [ECHO_HOST] })).status).toBeLessThan(300);
  const cluster = await admin('PUT', '/services/echo/clusters/echo', {
    region: 'eu-west1',
    latitude: 50.4,
    longitude: 3.8,
    origin: origins.echo,
  });
  expect(cluster.status, await cluster.text()).toBeLessThan(300);
  const route = await admin('PUT', '/services/echo/routes/limited', {
    order: 10,
    match: { headers: { 'x-policy': { exact: 'limited' } } },
    maxConcurrent: 1,
  });
  expect(route.status, await route.text()).toBeLessThan(300);
});

afterAll(async () => {
  expect((await admin('DELETE', '/services/echo')).status).toBe(204);
});

describe('Expect: 100-continue', () => {
  it('a small body reaches the origin, which gets no expect header', async () => {
    const res = await post('/continue', { expect: '100-continue', 'content-type': 'text/plain' }, 'small body');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ cluster: 'ew1', method: 'POST', body: 'small body' });
    const seen = await servedByEw1();
    expect(seen).toMatchObject({ path: '/continue', body: 'small body' });
    expect(seen.headers.expect).toBeUndefined();
  });

  it('a 2 MiB body (streamed: above the retry buffer) reaches the origin whole, without expect', async () => {
    const size = 2 * 1024 * 1024;
    const body = new Uint8Array(size).fill(0x61);
    const res = await post(
      '/continue-large',
      { expect: '100-continue', 'content-type': 'application/octet-stream' },
      body,
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as { body: string }).body.length).toBe(size);
    const seen = await servedByEw1();
    expect(seen.path).toBe('/continue-large');
    expect(seen.body.length).toBe(size);
    expect(seen.headers.expect).toBeUndefined();
  });
});

describe('compression', () => {
  it("a gzip answer keeps content-encoding and the origin's bytes; the client's accept-encoding reaches the origin", async () => {
    const raw = await SELF.fetch(`https://${ECHO_HOST}/gzip`, {
      headers: { 'accept-encoding': 'gzip' },
      cf: DUBLIN,
      encodeResponseBody: 'manual',
    } as RequestInit);
    expect(raw.status).toBe(200);
    expect(raw.headers.get('x-waymark-cluster')).toBe('echo');
    expect(raw.headers.get('content-encoding')).toBe('gzip');
    expect((await echoSaw()).headers['accept-encoding']).toBe('gzip');
    const bytes = await raw.arrayBuffer();
    expect(base64(bytes)).toBe(origins.gzipBase64);
    expect(await gunzip(bytes)).toBe(origins.gzipText);
  });

  it('a client that lets the runtime decode reads the text, with content-encoding: gzip kept', async () => {
    const res = await SELF.fetch(`https://${ECHO_HOST}/gzip`, {
      headers: { 'accept-encoding': 'gzip' },
      cf: DUBLIN,
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toBe(origins.gzipText);
  });
});

describe('bodyless answers', () => {
  // A bodyless answer ends the exchange at once: its slot must come back without a body to watch.
  it('a 204 on a maxConcurrent: 1 route gives its slot back and carries no content-length', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await SELF.fetch(`https://${ECHO_HOST}/no-content`, {
        headers: { 'x-policy': 'limited' },
        cf: DUBLIN,
      } as RequestInit);
      expect(res.headers.get('x-waymark-overflow')).toBeNull();
      expect(res.status).toBe(204);
      expect(res.headers.get('x-waymark-route')).toBe('limited');
      expect(res.headers.get('content-length')).toBeNull();
    }
  });
});

describe('the headers the origin sees', () => {
  it("passes the client's own headers unchanged and rebuilds the forwarding ones from cf-connecting-ip", async () => {
    const sent = {
      'cf-connecting-ip': CLIENT_IP,
      'x-custom': 'kept as sent',
      'x-waymark-cluster': 'as1',
      'x-waymark-anything': 'dropped',
      forwarded: 'for=6.6.6.6;host=evil.example;proto=http',
      'x-real-ip': '6.6.6.6',
      'x-forwarded-for': '6.6.6.6, 7.7.7.7',
    };
    const res = await SELF.fetch('https://shop.example.com/headers', { headers: sent, cf: DUBLIN } as RequestInit);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const seen = (await servedByEw1()).headers;
    expect(seen['x-custom']).toBe('kept as sent');
    expect(seen['accept-language']).toBeUndefined();
    expect(Object.keys(seen).filter((h) => h.startsWith('x-waymark-'))).toEqual([]);
    expect(seen['x-forwarded-for']).toBe(CLIENT_IP);
    expect(seen['x-real-ip']).toBe(CLIENT_IP);
    expect(seen.forwarded).toBe(`for=${CLIENT_IP};host=shop.example.com;proto=https`);
    expect(seen['x-forwarded-host']).toBe('shop.example.com');
    expect(seen['x-forwarded-proto']).toBe('https');
  });

  it('without cf-connecting-ip, client-sent forwarding headers are dropped, not passed on', async () => {
    const sent = {
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example',
    };
    const res = await SELF.fetch('https://shop.example.com/no-peer', { headers: sent, cf: DUBLIN } as RequestInit);
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const seen = (await servedByEw1()).headers;
    expect(seen.forwarded).toBeUndefined();
    expect(seen['x-real-ip']).toBeUndefined();
    expect(seen['x-forwarded-for']).toBeUndefined();
    expect(seen['x-forwarded-host']).toBe('shop.example.com');
  });
});

describe('hosts and methods', () => {
  it('a host with a trailing dot is routed to its service', async () => {
    const res = await SELF.fetch('https://shop.example.com./fqdn', { cf: DUBLIN } as RequestInit);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-waymark-cluster')).toBe('ew1');
    expect(await res.json()).toMatchObject({ cluster: 'ew1', path: '/fqdn' });
  });

  // workerd's Request (and so SELF.fetch) throws "TypeError: Invalid HTTP method string: CONNECT" before
  // the worker runs, as the Fetch standard forbids CONNECT: the 405 is only reachable on Node here.
  it.skip('CONNECT is refused with 405', async () => {
    const res = await SELF.fetch('https://shop.example.com/', { method: 'CONNECT', cf: DUBLIN } as RequestInit);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('GET');
    expect(await res.json()).toMatchObject({ code: 'method-not-allowed' });
  });
});
