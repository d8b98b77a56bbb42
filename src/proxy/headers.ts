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
 * Headers the proxy sets itself; a client's copy is replaced, not passed on. accept-encoding is left to
 * the runtime's fetch, which decodes what it asked for (a client's `zstd` could not be decoded).
 */
const REPLACED = new Set(['host', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'traceparent', 'accept-encoding']);

export interface ForwardFacts {
  /** The client's address as this runtime sees it; null when unknown. */
  clientIp: string | null;
  proto: string;
  host: string;
  requestId: string;
  traceparent: string;
}

/**
 * The headers to send upstream: the client's, less hop-by-hop headers (and those its Connection header
 * names) and any client-sent x-waymark-* header, plus x-forwarded-*, x-request-id and traceparent.
 */
export function upstreamHeaders(incoming: Headers, facts: ForwardFacts): Headers {
  const named = incoming.get('connection');
  const dropped = named ? new Set(named.toLowerCase().split(',').map((h) => h.trim())) : null;
  const out = new Headers();
  for (const [name, value] of incoming) {
    if (HOP_BY_HOP.has(name) || REPLACED.has(name) || name.startsWith('x-waymark-') || dropped?.has(name)) continue;
    out.append(name, value);
  }
  const priorFor = incoming.get('x-forwarded-for');
  const forwardedFor = [priorFor, facts.clientIp].filter(Boolean).join(', ');
  if (forwardedFor) out.set('x-forwarded-for', forwardedFor);
  out.set('x-forwarded-host', facts.host);
  out.set('x-forwarded-proto', facts.proto);
  out.set('x-request-id', facts.requestId);
  out.set('traceparent', facts.traceparent);
  return out;
}

/**
 * The upstream's response headers for the client: less hop-by-hop headers, and less content-encoding and
 * content-length when the runtime's fetch already decoded the body.
 */
export function downstreamHeaders(upstream: Headers): Headers {
  const out = new Headers(upstream);
  const named = upstream.get('connection');
  if (named) for (const h of named.split(',')) out.delete(h.trim());
  for (const h of HOP_BY_HOP) out.delete(h);
  if (out.has('content-encoding')) {
    out.delete('content-encoding');
    out.delete('content-length');
  }
  return out;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * W3C Trace Context: continue the client's trace with a new span id for this hop, keeping trace id and
 * flags; start a new trace (not sampled) when the client sent none or an invalid one.
 */
export function nextTraceparent(incoming: string | null | undefined): string {
  const m = incoming ? TRACEPARENT.exec(incoming.trim().toLowerCase()) : null;
  const traceId = m?.[2];
  const valid = m && m[1] !== 'ff' && traceId && !/^0+$/.test(traceId) && !/^0+$/.test(m[3] ?? '');
  if (valid) return `00-${traceId}-${randomHex(16)}-${m[4]}`;
  return `00-${randomHex(16)}${randomHex(16)}-${randomHex(16)}-00`;
}

/** Random lowercase hex (up to 30 digits), from randomUUID: cheaper than getRandomValues per call. */
function randomHex(digits: number): string {
  const uuid = crypto.randomUUID();
  // Skip the UUID's fixed version digit (index 14 of the 32) so every digit is random.
  const hex = uuid.slice(0, 8) + uuid.slice(9, 13) + uuid.slice(15, 18) + uuid.slice(19, 23) + uuid.slice(24);
  return hex.slice(0, digits);
}
