import { describe, expect, it } from 'vitest';
import { nextTraceparent, upstreamHeaders } from '../../src/proxy/headers.js';

const facts = { clientIp: '198.51.100.7', proto: 'https', host: 'shop.example.com', requestId: 'rid-1', traceparent: '00-aa-bb-01' };

describe('upstreamHeaders', () => {
  it('drops hop-by-hop headers, those Connection names, and client x-waymark-* headers', () => {
    const out = upstreamHeaders(
      new Headers({
        connection: 'close, X-Private',
        'x-private': '1',
        'keep-alive': 'timeout=5',
        te: 'trailers',
        upgrade: 'h2c',
        'proxy-authorization': 'Basic x',
        'x-waymark-cluster': 'ew1',
        'x-waymark-client-region': 'eu-west1',
        host: 'evil.example.com',
        accept: 'text/html',
      }),
      facts,
    );
    expect([...out.keys()].sort()).toEqual(['accept', 'traceparent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id']);
    expect(out.get('x-forwarded-host')).toBe('shop.example.com');
    expect(out.get('x-forwarded-proto')).toBe('https');
  });

  it('appends the client to x-forwarded-for', () => {
    expect(upstreamHeaders(new Headers({ 'x-forwarded-for': '203.0.113.1' }), facts).get('x-forwarded-for')).toBe('203.0.113.1, 198.51.100.7');
    expect(upstreamHeaders(new Headers(), { ...facts, clientIp: null }).has('x-forwarded-for')).toBe(false);
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
