import { afterResponse, type MirrorRecord, type RequestObserver, type RequestRecord } from './observer.js';

/** OTLP span kinds (opentelemetry-proto trace.proto `SpanKind`). */
const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
/** OTLP status codes: unset, ok, error. */
const STATUS_ERROR = 2;
/** Spans held for export at most; past it new spans are dropped (and counted). */
const MAX_QUEUED_SPANS = 4_096;
/** Spans sent in one export request at most. */
const MAX_BATCH_SPANS = 512;
/** How long an export may take before it is given up. */
const EXPORT_TIMEOUT_MS = 10_000;

type AttributeValue = { stringValue: string } | { intValue: string } | { boolValue: boolean };

/** One span in OTLP/HTTP JSON (ids hex, times unix nanoseconds as strings). */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: AttributeValue }[];
  status?: { code: number; message?: string };
}

export interface SpanExporterOptions {
  /** The collector's OTLP/HTTP traces URL (`http://collector:4318/v1/traces`). */
  endpoint: string;
  /** Export when this many ms passed since the last export (0: after every request, Workers' way). */
  flushEveryMs: number;
  now: () => number;
  /** Spans dropped (queue full, export refused): counted in waymark_trace_spans_dropped_total. */
  onDrop: (spans: number) => void;
  /** The `service.name` resource attribute. */
  serviceName?: string;
  fetch?: typeof fetch;
}

/**
 * Spans queued in memory and exported in batches in the background as OTLP/HTTP JSON: a bounded queue
 * (drops on overflow, counted), one export in flight at a time.
 */
export class SpanExporter implements RequestObserver {
  #queue: OtlpSpan[] = [];
  #lastExportAt: number;
  #inflight: Promise<void> | null = null;

  constructor(private readonly options: SpanExporterOptions) {
    this.#lastExportAt = options.now();
  }

  get queued(): number {
    return this.#queue.length;
  }

  requestFinished(r: RequestRecord, background: (work: Promise<unknown>) => void): void {
    if (!r.trace?.sampled) return;
    this.#add(requestSpans(r), background);
  }

  mirrorFinished(m: MirrorRecord, background: (work: Promise<unknown>) => void): void {
    if (!m.trace) return;
    this.#add([mirrorSpan(m)], background);
  }

  #add(spans: OtlpSpan[], background: (work: Promise<unknown>) => void): void {
    const room = MAX_QUEUED_SPANS - this.#queue.length;
    if (room < spans.length) this.options.onDrop(spans.length - Math.max(room, 0));
    for (let i = 0; i < Math.min(room, spans.length); i++) this.#queue.push(spans[i] as OtlpSpan);
    if (this.due()) background(afterResponse().then(() => this.flush()));
  }

  /** Time to export: spans are waiting and the interval passed, or a batch is full. */
  due(): boolean {
    const n = this.#queue.length;
    return (
      n > 0 &&
      (n >= MAX_BATCH_SPANS || this.options.now() - this.#lastExportAt >= this.options.flushEveryMs) &&
      this.#inflight === null
    );
  }

  /** Exports everything queued, a batch at a time; never throws (failed batches are dropped and counted). */
  flush(): Promise<void> {
    this.#inflight ??= this.#flush().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #flush(): Promise<void> {
    this.#lastExportAt = this.options.now();
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH_SPANS);
      const ok = await this.#send(batch);
      if (!ok) this.options.onDrop(batch.length);
    }
  }

  async #send(spans: OtlpSpan[]): Promise<boolean> {
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [attribute('service.name', this.options.serviceName ?? 'waymark')] },
          scopeSpans: [{ scope: { name: 'waymark' }, spans }],
        },
      ],
    };
    try {
      const res = await (this.options.fetch ?? fetch)(this.options.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(EXPORT_TIMEOUT_MS),
      });
      await res.body?.cancel();
      return res.ok;
    } catch {
      return false;
    }
  }
}

/** A request's spans: the server span, and a client span per try (its child). */
function requestSpans(r: RequestRecord): OtlpSpan[] {
  const trace = r.trace;
  if (!trace) return [];
  const common = [
    ...(r.service ? [attribute('waymark.service', r.service)] : []),
    ...(r.route ? [attribute('waymark.route', r.route)] : []),
  ];
  const server: OtlpSpan = {
    traceId: trace.traceId,
    spanId: trace.spanId,
    ...(trace.parentSpanId ? { parentSpanId: trace.parentSpanId } : {}),
    name: r.method,
    kind: SPAN_KIND_SERVER,
    startTimeUnixNano: nanos(r.startedAt),
    endTimeUnixNano: nanos(r.startedAt + r.durationMs),
    attributes: [
      attribute('http.request.method', r.method),
      intAttribute('http.response.status_code', r.status),
      ...(r.host ? [attribute('server.address', r.host)] : []),
      attribute('url.path', r.path),
      attribute('waymark.request_id', r.requestId),
      ...common,
      ...(r.cluster ? [attribute('waymark.cluster', r.cluster)] : []),
      ...(r.clientRegion ? [attribute('waymark.client_region', r.clientRegion)] : []),
      intAttribute('waymark.attempts', r.attempts.length),
    ],
    ...(r.status >= 500 ? { status: { code: STATUS_ERROR } } : {}),
  };
  const clients = r.attempts.flatMap((a, i): OtlpSpan[] =>
    a.spanId
      ? [
          {
            traceId: trace.traceId,
            spanId: a.spanId,
            parentSpanId: trace.spanId,
            name: r.method,
            kind: SPAN_KIND_CLIENT,
            startTimeUnixNano: nanos(a.at),
            endTimeUnixNano: nanos(a.at + a.ms),
            attributes: [
              attribute('http.request.method', r.method),
              ...(a.status !== undefined ? [intAttribute('http.response.status_code', a.status)] : []),
              attribute('server.address', a.cluster.originHost ?? hostOf(a.cluster.origin)),
              attribute('url.path', r.path),
              ...common,
              attribute('waymark.cluster', a.cluster.name),
              attribute('waymark.outcome', a.outcome),
              intAttribute('http.request.resend_count', i),
            ],
            ...((a.status ?? 500) >= 500 ? { status: { code: STATUS_ERROR, message: a.outcome } } : {}),
          },
        ]
      : [],
  );
  return [server, ...clients];
}

/** A mirrored copy's span: a client span, child of the request's server span. */
function mirrorSpan(m: MirrorRecord): OtlpSpan {
  const trace = m.trace as NonNullable<MirrorRecord['trace']>;
  return {
    traceId: trace.traceId,
    spanId: trace.spanId,
    parentSpanId: trace.parentSpanId,
    name: `${m.method} mirror`,
    kind: SPAN_KIND_CLIENT,
    startTimeUnixNano: nanos(m.startedAt),
    endTimeUnixNano: nanos(m.startedAt + m.durationMs),
    attributes: [
      attribute('http.request.method', m.method),
      ...(m.status !== null ? [intAttribute('http.response.status_code', m.status)] : []),
      attribute('url.path', m.path),
      attribute('waymark.service', m.service),
      attribute('waymark.route', m.route),
      attribute('waymark.cluster', m.cluster),
      { key: 'waymark.mirror', value: { boolValue: true } },
    ],
    ...(m.ok ? {} : { status: { code: STATUS_ERROR } }),
  };
}

function attribute(key: string, value: string): { key: string; value: AttributeValue } {
  return { key, value: { stringValue: value } };
}

function intAttribute(key: string, value: number): { key: string; value: AttributeValue } {
  return { key, value: { intValue: String(value) } };
}

/** Milliseconds since the epoch as OTLP's nanoseconds (a string: past 2^53). */
function nanos(ms: number): string {
  const whole = Math.floor(ms);
  const fraction = Math.round((ms - whole) * 1e6);
  return `${whole}${String(fraction).padStart(6, '0')}`;
}

function hostOf(origin: string): string {
  const start = origin.indexOf('://') + 3;
  return origin.slice(start);
}
