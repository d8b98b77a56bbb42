import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSettings, SettingsError } from '../../src/settings.js';
import { clusterBody, serviceBody } from '../support/factories.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../support/server.js';
import { expectProblem } from './api-support.js';
import { ONCALL_NAME, ONCALL_TOKEN, overrideState, READ_NAME, READ_TOKEN, TOKEN_ENV } from './override-support.js';

const VARIABLES = ['WAYMARK_READ_TOKENS', 'WAYMARK_ONCALL_TOKENS'] as const;

/** The SettingsError parseSettings throws for `env`, asserting it throws one. */
function settingsError(env: Record<string, string>): string {
  try {
    parseSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as Error).message;
  }
  throw new Error(`parseSettings accepted ${JSON.stringify(env)}`);
}

describe('token settings: happy', () => {
  it.each(VARIABLES)('%s parses "name:token" pairs, trimming around commas', (variable) => {
    const settings = parseSettings({ [variable]: ' alice:alice-token-0123456789 , ci.bot_2-x:ci-token-0123456789ab ' });
    expect(settings[variable]).toEqual([
      { name: 'alice', token: 'alice-token-0123456789' },
      { name: 'ci.bot_2-x', token: 'ci-token-0123456789ab' },
    ]);
  });

  it.each(VARIABLES)('%s: a token may itself contain ":" (only the first separates the name)', (variable) => {
    expect(parseSettings({ [variable]: 'ops:abc:def:0123456789xyz' })[variable]).toEqual([
      { name: 'ops', token: 'abc:def:0123456789xyz' },
    ]);
  });

  it.each(VARIABLES)('%s unset or empty means no tokens', (variable) => {
    expect(parseSettings({})[variable]).toEqual([]);
    expect(parseSettings({ [variable]: '' })[variable]).toEqual([]);
  });

  it('a token of exactly 16 characters is accepted', () => {
    expect(parseSettings({ WAYMARK_READ_TOKENS: 'a:0123456789abcdef' }).WAYMARK_READ_TOKENS).toEqual([
      { name: 'a', token: '0123456789abcdef' },
    ]);
  });
});

describe('token settings: errors', () => {
  const SECRET = 's3cr3tXY';
  const BAD: [string, string][] = [
    ['a token shorter than 16 characters', `viewer:${SECRET}`],
    ['a token of 15 characters', 'viewer:0123456789abcde'],
    ['no colon', 'viewer-0123456789abcdef'],
    ['an empty name', ':0123456789abcdef0'],
    ['a name with a space', 'the viewer:0123456789abcdef'],
    ['a name starting with a dash', '-viewer:0123456789abcdef'],
    ['a good pair then a bad one', 'viewer:0123456789abcdef,broken'],
    ['an empty token', 'viewer:'],
  ];

  for (const variable of VARIABLES) {
    it.each(BAD)(`${variable} with %s fails naming the variable`, (_name, value) => {
      const message = settingsError({ [variable]: value });
      expect(message).toContain(`${variable}:`);
      expect(message).toContain('name:token');
      const other = VARIABLES.find((v) => v !== variable) as string;
      expect(message).not.toContain(other);
    });
  }

  it('the message never echoes the token', () => {
    expect(settingsError({ WAYMARK_ONCALL_TOKENS: `pager:${SECRET}` })).not.toContain(SECRET);
  });

  it('both variables bad: both are named', () => {
    const message = settingsError({ WAYMARK_READ_TOKENS: 'x', WAYMARK_ONCALL_TOKENS: 'y:short' });
    for (const variable of VARIABLES) expect(message).toContain(`${variable}:`);
  });

  // KNOWN BUG (src/settings.ts, tokenList): the token is everything after the first ":" untrimmed, so
  // "viewer: <token>" stores a token starting with a space (and "a b c" tokens are accepted). requireScope
  // (src/api/auth.ts) only reads `Bearer (\S+)`, so such a token can never authenticate: the setting is
  // accepted at start and the credential is silently dead. Expected: trimmed, or refused naming the variable.
  it.each(VARIABLES)('%s: a token with whitespace is trimmed or refused, never stored unusable', (variable) => {
    let parsed: { name: string; token: string }[] | null = null;
    try {
      parsed = parseSettings({ [variable]: 'viewer: read-token-0123456789' })[variable];
    } catch (error) {
      expect((error as Error).message).toContain(`${variable}:`);
    }
    if (parsed) expect(parsed).toEqual([{ name: 'viewer', token: 'read-token-0123456789' }]);
    expect(settingsError({ [variable]: 'viewer:read token 0123456789' })).toContain(`${variable}:`);
  });
});

describe('token scopes: security', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(TOKEN_ENV);
    expect((await server.admin('PUT', '/services/shop', serviceBody())).status).toBe(201);
    expect(
      (await server.admin('PUT', '/services/shop/clusters/ew1', clusterBody('eu-west1', 'https://ew1.shop.internal')))
        .status,
    ).toBe(201);
  });

  afterAll(async () => {
    await server.close();
  });

  const override = {
    service: 'shop',
    action: 'pin',
    region: 'eu-west1',
    cluster: 'ew1',
    reason: 'scope test',
    ttlSeconds: 60,
  };
  const WRONG_SCOPE: [string, string, string, string, unknown, string][] = [
    [READ_NAME, READ_TOKEN, 'PUT', '/services/shop', serviceBody(['shop.example.com', 'b.example.com']), 'write'],
    [READ_NAME, READ_TOKEN, 'DELETE', '/services/shop', undefined, 'write'],
    [
      READ_NAME,
      READ_TOKEN,
      'PUT',
      '/services/shop/clusters/ew2',
      clusterBody('eu-west1', 'https://ew1.shop.internal'),
      'write',
    ],
    [READ_NAME, READ_TOKEN, 'DELETE', '/services/shop/clusters/ew1', undefined, 'write'],
    [READ_NAME, READ_TOKEN, 'POST', '/overrides', override, 'override'],
    [READ_NAME, READ_TOKEN, 'DELETE', '/overrides/00000000-0000-0000-0000-000000000000', undefined, 'override'],
    [READ_NAME, READ_TOKEN, 'POST', '/sync', undefined, 'override'],
    [ONCALL_NAME, ONCALL_TOKEN, 'PUT', '/services/shop', serviceBody(['shop.example.com', 'b.example.com']), 'write'],
    [ONCALL_NAME, ONCALL_TOKEN, 'DELETE', '/services/shop', undefined, 'write'],
    [
      ONCALL_NAME,
      ONCALL_TOKEN,
      'PUT',
      '/services/shop/clusters/ew2',
      clusterBody('eu-west1', 'https://ew1.shop.internal'),
      'write',
    ],
    [ONCALL_NAME, ONCALL_TOKEN, 'DELETE', '/services/shop/clusters/ew1', undefined, 'write'],
  ];

  it.each(WRONG_SCOPE)(
    '%s token: %s %s -> 403 forbidden problem naming scope, nothing written',
    async (_name, token, method, path, body, scope) => {
      const before = await overrideState(server.db);
      const res = await server.admin(method, path, body, token);
      expectProblem(res, 403, 'forbidden');
      expect(res.json.detail).toContain(`"${scope}"`);
      expect(res.headers['www-authenticate']).toBeUndefined();
      expect(await overrideState(server.db)).toEqual(before);
    },
  );

  it.each([
    ['read', READ_TOKEN],
    ['on-call', ONCALL_TOKEN],
    ['admin', ADMIN_TOKEN],
  ])('a %s token may read every resource', async (_kind, token) => {
    for (const path of [
      '/services',
      '/services/shop',
      '/services/shop/clusters',
      '/services/shop/failover',
      '/overrides',
      '/events',
      '/audit',
    ]) {
      const res = await server.admin('GET', path, undefined, token);
      expect(res.status, `${path}: ${res.body}`).toBe(200);
    }
  });

  it('a token is matched exactly: a prefix or a different case of a valid token is 401', async () => {
    expectProblem(await server.admin('GET', '/services', undefined, READ_TOKEN.slice(0, -1)), 401, 'unauthorized');
    expectProblem(await server.admin('GET', '/services', undefined, `${READ_TOKEN}x`), 401, 'unauthorized');
    expectProblem(await server.admin('GET', '/services', undefined, READ_TOKEN.toUpperCase()), 401, 'unauthorized');
    expectProblem(await server.admin('GET', '/services', undefined, `${READ_NAME}:${READ_TOKEN}`), 401, 'unauthorized');
  });
});
