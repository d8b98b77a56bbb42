import { describe, expect, it } from 'vitest';
import {
  clientAddress,
  connectionTokens,
  droppedResponseHeaders,
  nextTraceparent,
  requestHost,
  upstreamHeaders,
  type ForwardFacts,
} from '../../src/proxy/headers.js';

const facts: ForwardFacts = {
  peerIp: '198.51.100.7',
  clientIp: '198.51.100.7',
  forwardedFor: '198.51.100.7',
  proto: 'https',
  host: 'shop.example.com',
  requestId: 'rid-1',
  traceparent: '00-aa-bb-01',
  upgrade: null,
};

const headersOf = (init: Record<string, string>) => {
  const headers = new Headers(init);
  return Object.assign(headers, {
    eachHeader: (visit: (name: string, value: string) => void) => headers.forEach((value, name) => visit(name, value)),
  });
};

describe('upstreamHeaders', () => {
  it('drops hop-by-hop headers, those Connection names, expect, and client x-waymark-* and forwarding headers', () => {
    const incoming = headersOf({
      connection: 'close, X-Private',
      'x-private': '1',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      upgrade: 'h2c',
      expect: '100-continue',
      'proxy-authorization': 'Basic x',
      'x-waymark-cluster': 'ew1',
      'x-waymark-client-region': 'eu-west1',
      forwarded: 'for=6.6.6.6',
      'x-real-ip': '6.6.6.6',
      'x-forwarded-for': '6.6.6.6',
      host: 'evil.example.com',
      accept: 'text/html',
      'accept-encoding': 'br, zstd',
    });
    const out = upstreamHeaders(incoming, connectionTokens(incoming.get('connection')), facts);
    expect(Object.keys(out).sort()).toEqual([
      'accept',
      'accept-encoding',
      'forwarded',
      'traceparent',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-real-ip',
      'x-request-id',
    ]);
    expect(out['accept-encoding']).toBe('br, zstd');
    expect(out['x-forwarded-host']).toBe('shop.example.com');
    expect(out['x-forwarded-proto']).toBe('https');
    expect(out['x-forwarded-for']).toBe('198.51.100.7');
    expect(out['x-real-ip']).toBe('198.51.100.7');
    expect(out.forwarded).toBe('for=198.51.100.7;host=shop.example.com;proto=https');
  });

  it('keeps upgrade only for an upgrade Waymark proxies (WebSocket)', () => {
    const incoming = headersOf({ upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'k' });
    const out = upstreamHeaders(incoming, connectionTokens('Upgrade'), { ...facts, upgrade: 'websocket' });
    expect(out.upgrade).toBe('websocket');
    expect(out['sec-websocket-key']).toBe('k');
    expect(out.connection).toBeUndefined();
  });

  it('RFC 7239: an IPv6 client is bracketed and quoted', () => {
    const out = upstreamHeaders(headersOf({}), null, {
      ...facts,
      clientIp: '2001:db8::1',
      forwardedFor: '2001:db8::1',
    });
    expect(out.forwarded).toBe('for="[2001:db8::1]";host=shop.example.com;proto=https');
  });

  it('without a known client address there is no x-forwarded-for, x-real-ip or forwarded', () => {
    const out = upstreamHeaders(headersOf({}), null, { ...facts, peerIp: null, clientIp: null, forwardedFor: null });
    expect(out['x-forwarded-for']).toBeUndefined();
    expect(out['x-real-ip']).toBeUndefined();
    expect(out.forwarded).toBeUndefined();
  });
});

// Envoy's xff_num_trusted_hops (docs: config_http_conn_man_headers_x-forwarded-for, "Example 6"-style
// cases): the client is the n-th address from the right of the incoming x-forwarded-for.
describe('clientAddress', () => {
  it.each<[string | null, number, string, string]>([
    // incoming x-forwarded-for, trusted hops, client, x-forwarded-for sent upstream (peer 10.0.0.9)
    [null, 0, '10.0.0.9', '10.0.0.9'],
    ['6.6.6.6', 0, '10.0.0.9', '10.0.0.9'],
    ['6.6.6.6, 203.0.113.1', 0, '10.0.0.9', '10.0.0.9'],
    ['6.6.6.6, 203.0.113.1', 1, '203.0.113.1', '203.0.113.1, 10.0.0.9'],
    ['192.0.2.10, 203.0.113.1', 2, '192.0.2.10', '192.0.2.10, 203.0.113.1, 10.0.0.9'],
    ['203.0.113.1', 2, '10.0.0.9', '10.0.0.9'],
    [null, 1, '10.0.0.9', '10.0.0.9'],
  ])('x-forwarded-for %o with %i trusted hops: client %s, upstream gets %o', (xff, hops, client, sent) => {
    expect(clientAddress(xff, '10.0.0.9', hops)).toEqual({ clientIp: client, forwardedFor: sent });
  });
});

describe('requestHost', () => {
  it.each<[string[], string | null]>([
    [['shop.example.com'], 'shop.example.com'],
    [['shop.example.com:8080'], 'shop.example.com:8080'],
    [['shop.example.com.'], 'shop.example.com.'],
    [['[2001:db8::1]:443'], '[2001:db8::1]:443'],
    [[], null],
    [['a.example.com', 'b.example.com'], null],
    [['shop.example.com, evil.example.com'], null],
    [['shop example.com'], null],
    [['shop.example.com/path'], null],
    [['-bad.example.com'], null],
    [[`${'a'.repeat(300)}.com`], null],
  ])('%o -> %o', (values, host) => {
    const r = requestHost(values);
    expect(r.ok ? r.host : null).toBe(host);
  });
});

describe('droppedResponseHeaders', () => {
  it('drops hop-by-hop headers and those Connection names; keeps them on a 101', () => {
    expect(droppedResponseHeaders(200, 'close, x-hop')).toEqual(
      expect.arrayContaining(['connection', 'transfer-encoding', 'upgrade', 'x-hop']),
    );
    expect(droppedResponseHeaders(200, null)).not.toContain('content-length');
    expect(droppedResponseHeaders(101, 'upgrade')).toEqual([]);
  });

  it.each([100, 103, 204, 304])('a %i carries no body framing', (status) => {
    expect(droppedResponseHeaders(status, null)).toEqual(
      expect.arrayContaining(['content-length', 'transfer-encoding']),
    );
  });
});

describe('nextTraceparent', () => {
  it('keeps trace id and flags, replaces the span id', () => {
    const next = nextTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(next).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(next).not.toContain('00f067aa0ba902b7');
  });

  it.each([
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  ])('starts a new trace for %o', (incoming) => {
    const next = nextTraceparent(incoming);
    expect(next).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(next).not.toContain('4bf92f3577b34da6a3ce929d0e0e4736');
  });
});
