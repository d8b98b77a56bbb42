import { RE2JS } from 're2js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { compileMatch, compileRegex, queryParam, type RequestView } from '../../src/routing/match.js';
import type { RouteMatch } from '../../src/routing/types.js';

/** A request view over plain data; `reads` counts header lookups so tests can see what was evaluated. */
function view(
  init: { method?: string; path?: string; query?: string; headers?: Record<string, string> } = {},
): RequestView & { reads: string[] } {
  const headers = new Headers(init.headers ?? {});
  const reads: string[] = [];
  return {
    method: init.method ?? 'GET',
    path: init.path ?? '/',
    query: init.query ?? '',
    header: (name) => {
      reads.push(name);
      return headers.get(name);
    },
    reads,
  };
}

const matches = (match: RouteMatch, req: Parameters<typeof view>[0]) => compileMatch(match).test(view(req));

describe('compileMatch: path', () => {
  it.each<[string, RouteMatch, Parameters<typeof view>[0], boolean]>([
    ['exact matches the same path', { path: { exact: '/api/items' } }, { path: '/api/items' }, true],
    ['exact does not match a longer path', { path: { exact: '/api/items' } }, { path: '/api/items/1' }, false],
    ['exact does not match a trailing slash', { path: { exact: '/api/items' } }, { path: '/api/items/' }, false],
    ['exact is case-sensitive', { path: { exact: '/api/items' } }, { path: '/API/items' }, false],
    [
      'exact ignores the query (matched separately)',
      { path: { exact: '/api/items' } },
      { path: '/api/items', query: 'id=1' },
      true,
    ],
    ['prefix matches the prefix itself', { path: { prefix: '/api' } }, { path: '/api' }, true],
    ['prefix matches below it', { path: { prefix: '/api' } }, { path: '/api/items/1' }, true],
    ['prefix is a string prefix (Envoy semantics)', { path: { prefix: '/api' } }, { path: '/apiary' }, true],
    ['prefix does not match elsewhere', { path: { prefix: '/api' } }, { path: '/v1/api' }, false],
    ['regex matches the whole path', { path: { regex: '/items/[0-9]+' } }, { path: '/items/42' }, true],
    ['regex is anchored at the end', { path: { regex: '/items/[0-9]+' } }, { path: '/items/42/reviews' }, false],
    ['regex is anchored at the start', { path: { regex: '/items/[0-9]+' } }, { path: '/v2/items/42' }, false],
    ['regex alternation is anchored as a whole', { path: { regex: '/a|/b' } }, { path: '/b/c' }, false],
    ['regex alternation matches either branch', { path: { regex: '/a|/b' } }, { path: '/b' }, true],
    ['no path condition matches any path', {}, { path: '/anything' }, true],
  ])('%s', (_name, match, req, expected) => {
    expect(matches(match, req)).toBe(expected);
  });
});

describe('compileMatch: methods', () => {
  it.each<[string, string, boolean]>([
    ['GET', 'GET', true],
    ['POST', 'POST', true],
    ['PUT', 'PUT', false],
    ['DELETE', 'DELETE', false],
  ])('methods [GET, POST] and %s', (_name, method, expected) => {
    expect(matches({ methods: ['GET', 'POST'] }, { method })).toBe(expected);
  });
});

describe('compileMatch: headers and query', () => {
  it.each<[string, RouteMatch, Parameters<typeof view>[0], boolean]>([
    ['header exact', { headers: { 'x-env': { exact: 'canary' } } }, { headers: { 'x-env': 'canary' } }, true],
    [
      'header exact, other value',
      { headers: { 'x-env': { exact: 'canary' } } },
      { headers: { 'x-env': 'canary2' } },
      false,
    ],
    ['header exact, absent', { headers: { 'x-env': { exact: 'canary' } } }, {}, false],
    [
      'header exact with an empty value matches only a present, empty header',
      { headers: { 'x-env': { exact: '' } } },
      {},
      false,
    ],
    [
      'header prefix',
      { headers: { 'user-agent': { prefix: 'Mozilla/' } } },
      { headers: { 'user-agent': 'Mozilla/5.0 (X11)' } },
      true,
    ],
    [
      'header prefix, other value',
      { headers: { 'user-agent': { prefix: 'Mozilla/' } } },
      { headers: { 'user-agent': 'curl/8' } },
      false,
    ],
    ['header prefix, absent', { headers: { 'user-agent': { prefix: 'Mozilla/' } } }, {}, false],
    [
      'header regex (anchored)',
      { headers: { 'x-user': { regex: 'u-[0-9]{3}' } } },
      { headers: { 'x-user': 'u-123' } },
      true,
    ],
    [
      'header regex does not match a substring',
      { headers: { 'x-user': { regex: 'u-[0-9]{3}' } } },
      { headers: { 'x-user': 'xu-1234' } },
      false,
    ],
    ['header regex, absent', { headers: { 'x-user': { regex: '.*' } } }, {}, false],
    [
      'header regex .* matches an empty, present header',
      { headers: { 'x-user': { regex: '.*' } } },
      { headers: { 'x-user': '' } },
      true,
    ],
    ['header present', { headers: { 'x-debug': { present: true } } }, { headers: { 'x-debug': '0' } }, true],
    ['header present, absent', { headers: { 'x-debug': { present: true } } }, {}, false],
    [
      'header names are looked up case-insensitively',
      { headers: { 'x-env': { exact: 'canary' } } },
      { headers: { 'X-Env': 'canary' } },
      true,
    ],
    [
      'every header must match',
      { headers: { 'x-a': { exact: '1' }, 'x-b': { exact: '2' } } },
      { headers: { 'x-a': '1', 'x-b': '3' } },
      false,
    ],
    ['query exact', { query: { v: { exact: '2' } } }, { query: 'a=1&v=2' }, true],
    ['query exact, other value', { query: { v: { exact: '2' } } }, { query: 'v=22' }, false],
    ['query exact, absent', { query: { v: { exact: '2' } } }, { query: '' }, false],
    ['query values are decoded', { query: { q: { exact: 'a b' } } }, { query: 'q=a%20b' }, true],
    ['query prefix', { query: { lang: { prefix: 'en' } } }, { query: 'lang=en-GB' }, true],
    ['query regex (anchored)', { query: { id: { regex: '[0-9]+' } } }, { query: 'id=12a' }, false],
    ['query regex', { query: { id: { regex: '[0-9]+' } } }, { query: 'id=12' }, true],
    ['query present with an empty value', { query: { debug: { present: true } } }, { query: 'debug' }, true],
    ['query present, absent', { query: { debug: { present: true } } }, { query: 'x=1' }, false],
    [
      'the first value of a repeated parameter is matched',
      { query: { v: { exact: '1' } } },
      { query: 'v=1&v=2' },
      true,
    ],
    [
      'all conditions together',
      {
        methods: ['GET'],
        path: { prefix: '/api' },
        headers: { 'x-env': { exact: 'canary' } },
        query: { v: { exact: '2' } },
      },
      { method: 'GET', path: '/api/x', headers: { 'x-env': 'canary' }, query: 'v=2' },
      true,
    ],
    [
      'all conditions but one',
      {
        methods: ['GET'],
        path: { prefix: '/api' },
        headers: { 'x-env': { exact: 'canary' } },
        query: { v: { exact: '2' } },
      },
      { method: 'GET', path: '/api/x', headers: { 'x-env': 'canary' }, query: 'v=3' },
      false,
    ],
    ['an empty match takes every request', {}, { method: 'DELETE', path: '/x', query: 'a=1' }, true],
  ])('%s', (_name, match, req, expected) => {
    expect(matches(match, req)).toBe(expected);
  });

  it('queryParam answers null for an empty query and for a missing name', () => {
    expect(queryParam('', 'a')).toBeNull();
    expect(queryParam('b=1', 'a')).toBeNull();
    expect(queryParam('a=1&a=2', 'a')).toBe('1');
  });
});

describe('compileMatch: cost order', () => {
  const match: RouteMatch = {
    query: { q: { regex: 'x+' }, v: { exact: '2' } },
    headers: { 'x-user': { regex: 'u-.*' }, 'x-env': { exact: 'canary' } },
    path: { prefix: '/api' },
    methods: ['GET'],
  };

  it('orders conditions cheapest first: method, path, header strings, header regexes, query strings, query regexes', () => {
    expect(compileMatch(match).conditions.map((c) => c.describe)).toEqual([
      'method is GET',
      'path starts with "/api"',
      'header x-env is "canary"',
      'header x-user matches /u-.*/',
      'query v is "2"',
      'query q matches /x+/',
    ]);
  });

  it('a request that fails on its method reads no header', () => {
    const req = view({
      method: 'POST',
      path: '/api',
      headers: { 'x-env': 'canary', 'x-user': 'u-1' },
      query: 'v=2&q=x',
    });
    expect(compileMatch(match).test(req)).toBe(false);
    expect(req.reads).toEqual([]);
  });

  it('a request that fails on a header string never reaches the header regex', () => {
    const req = view({ method: 'GET', path: '/api', headers: { 'x-env': 'prod', 'x-user': 'u-1' } });
    expect(compileMatch(match).test(req)).toBe(false);
    expect(req.reads).toEqual(['x-env']);
  });

  it('a matching request is tested on every condition once', () => {
    const req = view({
      method: 'GET',
      path: '/api',
      headers: { 'x-env': 'canary', 'x-user': 'u-1' },
      query: 'v=2&q=xx',
    });
    expect(compileMatch(match).test(req)).toBe(true);
    expect(req.reads).toEqual(['x-env', 'x-user']);
  });
});

describe('compileMatch: regexes are RE2 full matches', () => {
  // Each row also holds for a JavaScript RegExp anchored as ^(?:...)$ unless it says RE2: those rows fail
  // on the old engine (JavaScript has no POSIX classes, \Q...\E, \pL, \z or (?i)).
  it.each<[string, string, string, boolean]>([
    ['anchored at the start', 'b+', 'abb', false],
    ['anchored at the end', 'a+', 'aab', false],
    ['the whole value', 'a+b', 'aab', true],
    ['the empty pattern matches only the empty value', '', '', true],
    ['the empty pattern does not match a value', '', 'a', false],
    ['alternation is anchored as a whole, not per branch', 'ab|cd', 'abcd', false],
    ['alternation: the second branch alone', 'ab|cd', 'cd', true],
    ['alternation: a branch that is a prefix of the value', 'a|ab', 'ab', true],
    ['a class', '[0-9a-f]{4}', '0b1f', true],
    ['a negated class stops at "/"', '/u/[^/]+', '/u/1/2', false],
    ['\\d is ASCII digits', '\\d+', '123', true],
    ['explicit ^ and $ change nothing', '^v[12]$', 'v2', true],
    ['RE2: a POSIX class', '[[:digit:]]+', '42', true],
    ['RE2: a POSIX class refuses letters', '[[:digit:]]+', '4a', false],
    ['RE2: \\Q...\\E quotes metacharacters', '\\Qa.b\\E', 'a.b', true],
    ['RE2: \\Q...\\E, so . is a dot', '\\Qa.b\\E', 'axb', false],
    ['RE2: a Unicode class \\pL', '\\pL+', 'caf\u00e9', true],
    ['RE2: the (?i) flag', '(?i)canary', 'CaNaRy', true],
    ['RE2: \\z is the end of the text', 'a+\\z', 'aa', true],
  ])('%s: /%s/ on %j is %s', (_name, regex, value, expected) => {
    expect(matches({ headers: { 'x-v': { regex } } }, { headers: { 'x-v': value } })).toBe(expected);
    expect(matches({ query: { v: { regex } } }, { query: new URLSearchParams({ v: value }).toString() })).toBe(
      expected,
    );
  });

  it('a nested quantifier (a+)+b on 30 "a"s and "!" is false at once: no backtracking', { timeout: 2000 }, () => {
    // A backtracking engine takes 2^30 steps here (seconds), past this test's timeout.
    const evil = `${'a'.repeat(30)}!`;
    expect(matches({ headers: { 'x-evil': { regex: '(a+)+b' } } }, { headers: { 'x-evil': evil } })).toBe(false);
    expect(matches({ path: { regex: '/(a+)+b' } }, { path: `/${evil}` })).toBe(false);
    expect(matches({ query: { q: { regex: '(a|aa)+b' } } }, { query: `q=${evil}` })).toBe(false);
  });

  it('a stored regex RE2 refuses matches nothing and says why, and the snapshot still compiles', () => {
    const compiled = compileMatch({ headers: { 'x-a': { regex: '(a)\\1' } } });
    expect(compiled.test(view({ headers: { 'x-a': 'aa' } }))).toBe(false);
    expect(compiled.conditions.map((c) => c.describe)).toEqual([
      'header x-a matches /(a)\\1/, which is not supported by the RE2 syntax: invalid escape sequence: `\\1` (RE2 has no backreferences or lookarounds) (it matches nothing)',
    ]);
  });
});

describe('compileRegex: the one rule for what a route regex may be', () => {
  it.each<[string, RegExp]>([
    [
      '(a)\\1',
      /^is not supported by the RE2 syntax: invalid escape sequence: `\\1` \(RE2 has no backreferences or lookarounds\)$/,
    ],
    ['(?=x)x', /invalid or unsupported Perl syntax: `\(\?=`.*no backreferences or lookarounds/],
    ['a(?!b)', /invalid or unsupported Perl syntax: `\(\?!`.*no backreferences or lookarounds/],
    ['(?<=a)b', /^is not supported by the RE2 syntax: .*no backreferences or lookarounds/],
    ['(unclosed', /^is not supported by the RE2 syntax: missing closing \): `\(unclosed`$/],
    ['[', /missing closing \]/],
    ['a**', /invalid nested repetition operator/],
    ['a{1001}', /invalid repeat count/],
  ])('refuses %s, saying why', (source, message) => {
    const compiled = compileRegex(source);
    expect(compiled.ok).toBe(false);
    if (!compiled.ok) expect(compiled.error).toMatch(message);
  });

  it.each(['/items/[0-9]+', '(a+)+b', '.*', '', '(?P<id>[a-z]+)', '(?i)x', '[[:alpha:]]', '\\pL', 'x{y}'])(
    'accepts %j',
    (source) => {
      expect(compileRegex(source).ok).toBe(true);
    },
  );
});

describe('compileMatch: regexes are compiled once, never as a JavaScript RegExp', () => {
  const Original = globalThis.RegExp;
  afterEach(() => {
    globalThis.RegExp = Original;
    vi.restoreAllMocks();
  });

  /** Replaces the global RegExp with a proxy that counts constructions (with or without `new`). */
  function countRegExps(): () => number {
    let n = 0;
    globalThis.RegExp = new Proxy(Original, {
      construct(target, args, newTarget) {
        n += 1;
        return Reflect.construct(target, args, newTarget);
      },
      apply(target, thisArg, args) {
        n += 1;
        return Reflect.apply(target, thisArg, args);
      },
    });
    return () => n;
  }

  it('compiles one RE2 regex per regex condition at compile time, none per request, and builds no RegExp at all', () => {
    const count = countRegExps();
    const compiles = vi.spyOn(RE2JS, 'compile');
    const compiled = compileMatch({
      path: { regex: '/items/[0-9]+' },
      headers: { 'x-user': { regex: 'u-[0-9]+' } },
      query: { id: { regex: '[a-z]+' } },
    });
    expect(compiles.mock.calls.map((c) => c[0])).toEqual(['/items/[0-9]+', 'u-[0-9]+', '[a-z]+']);
    for (let i = 0; i < 100; i++) {
      compiled.test(view({ path: `/items/${i}`, headers: { 'x-user': `u-${i}` }, query: `id=abc` }));
      compiled.test(view({ path: `/nope/${i}` }));
    }
    expect(compiled.test(view({ path: '/items/1', headers: { 'x-user': 'u-1' }, query: 'id=abc' }))).toBe(true);
    expect(compiles).toHaveBeenCalledTimes(3);
    expect(count()).toBe(0);
  });

  it('compiles nothing for exact, prefix and present conditions', () => {
    const count = countRegExps();
    const compiles = vi.spyOn(RE2JS, 'compile');
    const compiled = compileMatch({
      path: { prefix: '/a' },
      headers: { 'x-a': { exact: '1' }, 'x-b': { present: true } },
      query: { q: { prefix: 'z' } },
    });
    compiled.test(view({ path: '/a', headers: { 'x-a': '1', 'x-b': '' }, query: 'q=zz' }));
    expect(compiles).not.toHaveBeenCalled();
    expect(count()).toBe(0);
  });
});

describe('compileMatch: the path gate never changes what matches', () => {
  it.each<[RouteMatch['path'], string | null]>([
    [{ exact: '/api/items' }, '/api/items'],
    [{ prefix: '/api' }, '/api'],
    [{ regex: '/items/[0-9]+' }, '/items/'],
    [{ regex: '/items?' }, '/item'],
    [{ regex: '/ab*' }, '/a'],
    [{ regex: '/ab{2}' }, '/a'],
    [{ regex: '/ab+' }, '/ab'],
    [{ regex: '/a|/b' }, null],
    [{ regex: '(/v1)?/items' }, null],
    [{ regex: '^/abc' }, '/abc'],
    [{ regex: '/a\\.b' }, '/a'],
    [{ regex: '/a\u{1F600}?' }, '/a'],
    [{ regex: '/\u{1F600}+x' }, '/\u{1F600}'],
  ])('%j gates on %j', (path, gate) => {
    expect(compileMatch({ path }).pathGate).toBe(gate);
  });

  const regexes = [
    '/items/[0-9]+',
    '/items?',
    '/ab*c',
    '/ab{0,2}c',
    '/ab+',
    '/a|/b',
    '(/v1)?/items',
    '/a\\.b',
    '/x{y}',
    '/v[12]/.*',
    '/caf\u00e9s?',
    '/(?:a|b)c',
    '/a.?',
    '/a\u{1F600}?b',
  ];
  const paths = [
    '/',
    '/a',
    '/ab',
    '/abc',
    '/ac',
    '/abbc',
    '/abbb',
    '/b',
    '/a.b',
    '/axb',
    '/items',
    '/item',
    '/items/',
    '/items/12',
    '/v1/items',
    '/x{y}',
    '/xy',
    '/v1/x',
    '/v3/x',
    '/caf\u00e9',
    '/caf\u00e9s',
    '/ac',
    '/bc',
    '/cc',
    '/a',
    '/aa',
    '/aaa',
    '/a\u{1F600}b',
  ];

  it.each(regexes)('regex %s agrees with an RE2 full match without the gate on every sample path', (regex) => {
    const compiled = compileMatch({ path: { regex } });
    const reference = RE2JS.compile(regex);
    for (const path of paths)
      expect(compiled.test(view({ path })), `${regex} on ${path}`).toBe(reference.matches(path));
  });
});
