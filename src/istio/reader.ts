import type { FieldError } from '../problem.js';

/** A YAML mapping as plain data. */
export type Obj = Record<string, unknown>;

export function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Where a value sits: the Istio object that holds it (`VirtualService reviews`) and a path inside its spec. */
export class Loc {
  constructor(
    readonly owner: string,
    readonly path = '',
  ) {}

  /** How errors and warnings name it: `VirtualService reviews: http[0].route[1]`. */
  get field(): string {
    return this.path ? `${this.owner}: ${this.path}` : this.owner;
  }

  key(name: string): Loc {
    return new Loc(this.owner, this.path ? `${this.path}.${name}` : name);
  }

  index(i: number): Loc {
    return new Loc(this.owner, `${this.path}[${i}]`);
  }
}

/**
 * What an import found wrong (errors: nothing is written) and what it cannot honour (warnings), each
 * stamped with `position` (the Istio object being read) so they can be listed in document order.
 */
export class Report {
  private readonly errorList: { position: number; error: FieldError }[] = [];
  private readonly warningList: { position: number; text: string }[] = [];
  /** The document-order position of the object being read now. */
  position = 0;

  error(at: Loc, message: string): void {
    this.errorList.push({ position: this.position, error: { field: at.field, message } });
  }

  /** An error about a field named outright (a Waymark route field, say). */
  fail(field: string, message: string): void {
    this.errorList.push({ position: this.position, error: { field, message } });
  }

  /** `message` continues the field's name: "is not supported: ...". */
  warn(at: Loc, message: string): void {
    this.warningList.push({ position: this.position, text: `${at.field} ${message}` });
  }

  get errors(): FieldError[] {
    return inOrder(this.errorList).map((e) => e.error);
  }

  get warnings(): string[] {
    return inOrder(this.warningList).map((w) => w.text);
  }
}

function inOrder<T extends { position: number }>(items: T[]): T[] {
  return [...items].sort((a, b) => a.position - b.position);
}

/** camelCase -> snake_case: protobuf JSON (and so Istio) accepts a field's proto name too. */
function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/([a-z])([0-9])/g, '$1_$2');
}

/**
 * Reads one Istio mapping field by field, checking types, and remembers what was read so that every
 * field left over can be named in a warning: nothing in the YAML is dropped silently.
 */
export class Fields {
  private readonly used = new Set<string>();

  constructor(
    readonly value: Obj,
    readonly at: Loc,
    readonly report: Report,
  ) {}

  /** The value of `name` (or of its snake_case spelling); null counts as absent, as in protobuf JSON. */
  raw(name: string): unknown {
    for (const key of [name, snake(name)]) {
      if (Object.hasOwn(this.value, key)) {
        this.used.add(key);
        return this.value[key] ?? undefined;
      }
    }
    return undefined;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.value, name) || Object.hasOwn(this.value, snake(name));
  }

  str(name: string, required = false): string | undefined {
    const v = this.raw(name);
    if (v === undefined) {
      if (required) this.report.error(this.at.key(name), 'is required');
      return undefined;
    }
    if (typeof v === 'string') return v;
    this.report.error(this.at.key(name), 'must be a string');
    return undefined;
  }

  num(name: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    return checkNumber(v, this.at.key(name), this.report, opts);
  }

  bool(name: string): boolean | undefined {
    const v = this.raw(name);
    if (v === undefined || typeof v === 'boolean') return v;
    this.report.error(this.at.key(name), 'must be true or false');
    return undefined;
  }

  obj(name: string, required = false): Fields | undefined {
    const v = this.raw(name);
    const at = this.at.key(name);
    if (v === undefined) {
      if (required) this.report.error(at, 'is required');
      return undefined;
    }
    if (isObj(v)) return new Fields(v, at, this.report);
    this.report.error(at, 'must be a mapping');
    return undefined;
  }

  list(name: string, required = false): { value: unknown; at: Loc }[] | undefined {
    const v = this.raw(name);
    const at = this.at.key(name);
    if (v === undefined) {
      if (required) this.report.error(at, 'is required');
      return undefined;
    }
    if (Array.isArray(v)) return v.map((value, i) => ({ value, at: at.index(i) }));
    this.report.error(at, 'must be a list');
    return undefined;
  }

  /** A mapping whose keys are data (header names, labels), not fields. */
  entries(name: string): { key: string; value: unknown; at: Loc }[] | undefined {
    const v = this.raw(name);
    const at = this.at.key(name);
    if (v === undefined) return undefined;
    if (isObj(v)) return Object.entries(v).map(([key, value]) => ({ key, value, at: at.key(key) }));
    this.report.error(at, 'must be a mapping');
    return undefined;
  }

  /** A duration field ("10s", "500ms", "1m30s", "1.5s") in milliseconds. */
  duration(name: string): number | undefined {
    const v = this.raw(name);
    if (v === undefined) return undefined;
    const ms = typeof v === 'string' ? durationMs(v) : null;
    if (ms === null) {
      this.report.error(this.at.key(name), 'must be a duration like "10s", "500ms" or "1m"');
      return undefined;
    }
    return ms;
  }

  /** Marks fields as read without using them (their meaning is covered by a warning already given). */
  consume(...names: string[]): void {
    for (const name of names) this.raw(name);
  }

  /**
   * Warns about every field not read: "is not supported", with `why` for fields Istio defines and
   * Waymark has no equivalent for.
   */
  rest(why: Readonly<Record<string, string>> = {}): void {
    for (const key of Object.keys(this.value)) {
      if (this.used.has(key)) continue;
      const reason = why[key] ?? why[camel(key)];
      this.report.warn(this.at.key(key), reason ? `is not supported: ${reason}` : 'is not supported');
    }
  }
}

function camel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

export function asFields(value: unknown, at: Loc, report: Report): Fields | undefined {
  if (isObj(value)) return new Fields(value, at, report);
  report.error(at, 'must be a mapping');
  return undefined;
}

export function checkNumber(
  v: unknown,
  at: Loc,
  report: Report,
  opts: { int?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    report.error(at, 'must be a number');
    return undefined;
  }
  if (opts.int && !Number.isInteger(v)) {
    report.error(at, 'must be a whole number');
    return undefined;
  }
  if (opts.min !== undefined && v < opts.min) {
    report.error(at, `must be at least ${opts.min}`);
    return undefined;
  }
  if (opts.max !== undefined && v > opts.max) {
    report.error(at, `must be at most ${opts.max}`);
    return undefined;
  }
  return v;
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 0.000_001,
};

/**
 * Istio's durations: Go's `time.ParseDuration` syntax ("1h", "1m30s", "500ms") as its CRDs accept,
 * which includes protobuf JSON's "1.5s". Rounded to whole milliseconds; null when not a duration.
 */
export function durationMs(text: string): number | null {
  if (text === '0') return 0;
  // µ written as \u00b5: one non-ASCII character in the bundle makes V8 keep the whole worker's source as
  // two-byte text (4 MB of every isolate's heap instead of 1).
  if (!/^(?:(?:\d+(?:\.\d*)?|\.\d+)(?:h|ms|m|s|us|\u00b5s|ns))+$/.test(text)) return null;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|\u00b5s|ns)/g)) {
    total += Number(amount) * (DURATION_UNIT_MS[unit as string] ?? 0);
  }
  return Math.round(total);
}
