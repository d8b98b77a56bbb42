/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Request headers Waymark answers or sets itself; a client's copy never reaches the origin. `expect`
 * is answered here (Node sends the 100 Continue; on Workers the edge does), as nginx does, so the origin
 * gets the body without waiting. The forwarding headers are rebuilt from what Waymark saw.
 */
const REPLACED = new Set([
  'host',
  'expect',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'forwarded',
  'x-request-id',
  'traceparent',
]);

/** Statuses whose responses have no body (RFC 9110 §6.4.1), so they carry no body framing headers. */
export function isBodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/** The lowercase header names a Connection header lists (they are hop-by-hop too); null when none. */
export function connectionTokens(value: string | null | undefined): Set<string> | null {
  if (!value) return null;
  return new Set(
    value
      .toLowerCase()
      .split(',')
      .map((h) => h.trim()),
  );
}

const HOP_BY_HOP_LIST: readonly string[] = [...HOP_BY_HOP];
const BODYLESS_DROPPED: readonly string[] = [...HOP_BY_HOP, 'content-length'];

/**
 * The response headers that must not reach the client: hop-by-hop ones and those the origin's
 * Connection header names (except on a 101, where `upgrade` and `connection` are the answer), and body
 * framing on a status that has no body.
 */
export function droppedResponseHeaders(status: number, connection: string | null | undefined): readonly string[] {
  if (status === 101) return [];
  const base = isBodyless(status) ? BODYLESS_DROPPED : HOP_BY_HOP_LIST;
  const named = connectionTokens(connection);
  return named ? [...base, ...named] : base;
}

export interface ForwardFacts {
  /** The address of whoever connected to Waymark (socket, or cf-connecting-ip on Workers). */
  peerIp: string | null;
  /** The client as resolved with the trusted hops (see `clientAddress`). */
  clientIp: string | null;
  /** x-forwarded-for as it goes upstream. */
  forwardedFor: string | null;
  proto: string;
  host: string;
  requestId: string;
  traceparent: string;
  /** A protocol upgrade (WebSocket): `upgrade` is kept for the origin. */
  upgrade: string | null;
}

/**
 * The headers to send upstream: the client's, less hop-by-hop headers (and those its Connection header
 * names), client-sent x-waymark-* and the headers Waymark sets itself, plus x-forwarded-*, x-real-ip,
 * forwarded (RFC 7239), x-request-id and traceparent. Nothing else is added: accept-encoding and the
 * rest pass as the client sent them.
 */
export function upstreamHeaders(
  incoming: { eachHeader(visit: (name: string, value: string) => void): void },
  named: Set<string> | null,
  facts: ForwardFacts,
): Record<string, string> {
  const out: Record<string, string> = {};
  incoming.eachHeader((name, value) => {
    if (!(HOP_BY_HOP.has(name) || REPLACED.has(name) || name.startsWith('x-waymark-') || named?.has(name)))
      out[name] = value;
  });
  if (facts.upgrade) out.upgrade = facts.upgrade;
  if (facts.forwardedFor) out['x-forwarded-for'] = facts.forwardedFor;
  out['x-forwarded-host'] = facts.host;
  out['x-forwarded-proto'] = facts.proto;
  if (facts.clientIp) {
    out['x-real-ip'] = facts.clientIp;
    out.forwarded = `for=${forwardedNode(facts.clientIp)};host=${quoteIfNeeded(facts.host)};proto=${facts.proto}`;
  }
  out['x-request-id'] = facts.requestId;
  out.traceparent = facts.traceparent;
  return out;
}

/**
 * Who the client is and the x-forwarded-for to send, Envoy's way (`xff_num_trusted_hops`): with no
 * trusted hops the client is whoever connected and a client-sent x-forwarded-for is dropped, so it
 * cannot be lied to; with n trusted proxies in front, the client is the n-th address from the right of
 * x-forwarded-for (those proxies appended what they saw), and only those n entries are kept before the
 * peer is appended. Too few entries: the peer is the client, as in Envoy.
 */
export function clientAddress(
  xff: string | null,
  peerIp: string | null,
  trustedHops: number,
): { clientIp: string | null; forwardedFor: string | null } {
  if (trustedHops === 0 || !xff) return { clientIp: peerIp, forwardedFor: peerIp };
  const entries = xff
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length < trustedHops) return { clientIp: peerIp, forwardedFor: peerIp };
  const trusted = entries.slice(entries.length - trustedHops);
  return { clientIp: trusted[0] ?? peerIp, forwardedFor: [...trusted, ...(peerIp ? [peerIp] : [])].join(', ') };
}

/** RFC 7239 §6: an IPv6 node is bracketed and quoted. */
function forwardedNode(ip: string): string {
  return ip.includes(':') ? `"[${ip}]"` : ip;
}

function quoteIfNeeded(value: string): string {
  return /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/** A Host header value: a DNS name or IP literal with an optional port (RFC 9110 §7.2, RFC 3986 §3.2.2). */
const HOST_VALUE =
  /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i;

/**
 * The host a request is for, or why it cannot be routed (answered 400): none, several (request
 * smuggling and cache poisoning hide behind a second Host), or not a host. A trailing dot (`shop.test.`,
 * the fully qualified form) names the same host.
 */
export function requestHost(values: readonly string[]): { ok: true; host: string } | { ok: false; detail: string } {
  if (values.length === 0) return { ok: false, detail: 'the request has no Host header' };
  if (values.length > 1) return { ok: false, detail: 'the request has more than one Host header' };
  const value = (values[0] as string).trim();
  if (value.length > 261 || !HOST_VALUE.test(value))
    return { ok: false, detail: 'the Host header is not a valid host' };
  return { ok: true, host: value };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C Trace Context: continue the client's trace with a new span id for this hop, keeping trace id and
 * flags; start a new trace (not sampled) when the client sent none or an invalid one.
 */
export function nextTraceparent(incoming: string | null | undefined): string {
  return continueTrace(incoming, false).traceparent;
}

/** This hop's place in a trace: what goes upstream, and the ids the spans need. */
export interface HopTrace {
  /** The traceparent sent upstream: its span id is the first try's (client) span. */
  traceparent: string;
  traceId: string;
  /** The span id in `traceparent`. */
  spanId: string;
  /** The client's span id; null when this hop starts the trace. */
  parentSpanId: string | null;
  /** The sampled flag sent upstream. */
  sampled: boolean;
}

/**
 * `nextTraceparent` with its parts: the client's trace continued (its sampled flag kept), or a new one
 * whose sampled flag is `sampleNew`.
 */
export function continueTrace(incoming: string | null | undefined, sampleNew: boolean): HopTrace {
  const m = incoming && incoming.length <= 64 ? TRACEPARENT.exec(incoming.trim().toLowerCase()) : null;
  const traceId = m?.[2];
  const valid = m && m[1] !== 'ff' && traceId && !/^0+$/.test(traceId) && !/^0+$/.test(m[3] ?? '');
  if (valid) {
    const spanId = randomHex().slice(0, 16);
    const flags = m[4] as string;
    return {
      traceparent: `00-${traceId}-${spanId}-${flags}`,
      traceId,
      spanId,
      parentSpanId: m[3] as string,
      // Bit 0 of the flags is `sampled` (W3C Trace Context §3.2.2.5).
      sampled: (Number.parseInt(flags, 16) & 1) === 1,
    };
  }
  // 48 random digits from two UUIDs: a 32-digit trace id and a 16-digit span id.
  const digits = randomHex() + randomHex();
  const newTrace = digits.slice(0, 32);
  const spanId = digits.slice(32, 48);
  return {
    traceparent: `00-${newTrace}-${spanId}-${sampleNew ? '01' : '00'}`,
    traceId: newTrace,
    spanId,
    parentSpanId: null,
    sampled: sampleNew,
  };
}

/** A new random span id (16 lowercase hex digits). */
export function newSpanId(): string {
  return randomHex().slice(0, 16);
}

/** 30 random lowercase hex digits from randomUUID: cheaper than getRandomValues per call. */
function randomHex(): string {
  const uuid = crypto.randomUUID();
  // Skip the UUID's fixed version digit (index 14 of the 32) and variant digit (index 19) so every digit is random.
  return uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(15, 18) + uuid.slice(20, 23) + uuid.slice(24);
}
