import { RE2JS, RE2JSException } from 're2js';
import type { RouteMatch, StringMatch } from './types.js';

/** What route matching may read of a request. */
export interface RequestView {
  method: string;
  /** The path, without the query. */
  path: string;
  /** The raw query, without "?" ("" when none). */
  query: string;
  header(name: string): string | null;
}

/** One compiled condition of a route's match: a test, and words for explain. */
interface Condition {
  describe: string;
  test(req: RequestView): boolean;
  /** Relative cost, to test cheap conditions first. */
  cost: number;
}

/** A route's match, compiled once per snapshot: regexes are built here, never per request. */
export interface CompiledMatch {
  conditions: Condition[];
  /**
   * A literal every matching path starts with (from an exact, prefix or regex path match), checked
   * inline before any condition runs; null when the match does not constrain the path that way.
   */
  pathGate: string | null;
  /** A header every matching request carries (the match tests one), checked inline; null: none. */
  headerGate: string | null;
  test(req: RequestView): boolean;
}

/**
 * Compiles a route's match into conditions ordered cheapest first (method, path, headers, query), so a
 * request that does not match usually fails on a string comparison before any regex runs.
 */
export function compileMatch(match: RouteMatch): CompiledMatch {
  const conditions: Condition[] = [];
  if (match.methods?.length) {
    const methods = new Set(match.methods);
    conditions.push({
      describe: `method is ${match.methods.join(' or ')}`,
      test: (req) => methods.has(req.method),
      cost: 0,
    });
  }
  if (match.path) conditions.push(stringCondition('path', match.path, (req) => req.path, 1));
  for (const [name, m] of Object.entries(match.headers ?? {}))
    conditions.push(stringCondition(`header ${name}`, m, (req) => req.header(name), 2));
  for (const [name, m] of Object.entries(match.query ?? {}))
    conditions.push(stringCondition(`query ${name}`, m, (req) => queryParam(req.query, name), 4));
  conditions.sort((a, b) => a.cost - b.cost);
  const n = conditions.length;
  const pathGate = match.path
    ? 'exact' in match.path
      ? match.path.exact
      : 'prefix' in match.path
        ? match.path.prefix
        : literalPrefix(match.path.regex)
    : null;
  return {
    conditions,
    pathGate: pathGate || null,
    headerGate: Object.keys(match.headers ?? {})[0] ?? null,
    test(req) {
      if (pathGate && !req.path.startsWith(pathGate)) return false;
      for (let i = 0; i < n; i++) if (!(conditions[i] as Condition).test(req)) return false;
      return true;
    },
  };
}

/**
 * The literal text every match of an (anchored) regex starts with, or "" when there is none to rely on:
 * characters up to the first metacharacter, less the last one when a quantifier follows it; nothing
 * when the pattern has an alternation anywhere. Walks code points, not UTF-16 units: RE2 applies a
 * quantifier to a whole code point, so `/a😀?` may match "/a" and must gate on "/a" alone.
 */
function literalPrefix(regex: string): string {
  if (regex.includes('|')) return '';
  const out: string[] = [];
  for (const ch of regex.startsWith('^') ? regex.slice(1) : regex) {
    if ('\\^$.|?*+()[]{}'.includes(ch)) return ('?*{'.includes(ch) ? out.slice(0, -1) : out).join('');
    out.push(ch);
  }
  return out.join('');
}

/** A route regex ready for full matches, or why RE2 refuses it (a message that continues the field name). */
export type CompiledRegex = { ok: true; regex: RE2JS } | { ok: false; error: string };

/** Constructs that other dialects (JavaScript, PCRE) have and RE2 leaves out, to say why a pattern is refused. */
const NOT_IN_RE2 = /\\[1-9]|\(\?<?[=!]/;

/**
 * Compiles a route regex the way Envoy's `safe_regex` and Istio's `StringMatch.regex` read it: RE2
 * syntax (https://github.com/google/re2/wiki/Syntax), matched in time linear in the input, so no
 * pattern and no client value can make matching backtrack. The one rule for admin validation, the
 * Istio import and the compiled match. Match with `regex.matches(value)`: RE2 full match, the whole
 * value must match, as Envoy anchors safe_regex.
 */
export function compileRegex(source: string): CompiledRegex {
  try {
    return { ok: true, regex: RE2JS.compile(source) };
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    const why = error.message.replace(/^error parsing regexp: /, '');
    const hint = NOT_IN_RE2.test(source) ? ' (RE2 has no backreferences or lookarounds)' : '';
    return { ok: false, error: `is not supported by the RE2 syntax: ${why}${hint}` };
  }
}

function stringCondition(
  what: string,
  m: StringMatch,
  read: (req: RequestView) => string | null,
  cost: number,
): Condition {
  if ('exact' in m) {
    const value = m.exact;
    return { describe: `${what} is "${value}"`, test: (req) => read(req) === value, cost };
  }
  if ('prefix' in m) {
    const value = m.prefix;
    return { describe: `${what} starts with "${value}"`, test: (req) => read(req)?.startsWith(value) ?? false, cost };
  }
  if ('regex' in m) {
    const compiled = compileRegex(m.regex);
    // The admin API and the import refuse what RE2 cannot take; a route stored before they did
    // matches nothing rather than failing the whole snapshot.
    if (!compiled.ok)
      return {
        describe: `${what} matches /${m.regex}/, which ${compiled.error} (it matches nothing)`,
        test: () => false,
        cost,
      };
    const re = compiled.regex;
    return {
      describe: `${what} matches /${m.regex}/`,
      test: (req) => {
        const value = read(req);
        return value !== null && re.matches(value);
      },
      cost: cost + 1,
    };
  }
  return { describe: `${what} is present`, test: (req) => read(req) !== null, cost };
}

/** One query parameter's first value, decoded; null when absent. Parsed only for routes that ask. */
export function queryParam(query: string, name: string): string | null {
  if (query === '') return null;
  return new URLSearchParams(query).get(name);
}
