import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../../src/cli/settings.js';

describe('resolveSettings', () => {
  const env = { WAYMARK_URL: 'https://waymark.example.com', WAYMARK_TOKEN: 'env-token' };

  it('takes the environment, appends the API prefix once, and lets flags win', () => {
    expect(resolveSettings({}, env)).toEqual({
      ok: true,
      settings: { apiUrl: 'https://waymark.example.com/_waymark/api/v1', token: 'env-token' },
    });
    expect(resolveSettings({ url: 'http://127.0.0.1:8787/', token: 'flag-token' }, env)).toEqual({
      ok: true,
      settings: { apiUrl: 'http://127.0.0.1:8787/_waymark/api/v1', token: 'flag-token' },
    });
    const withPrefix = resolveSettings({}, { ...env, WAYMARK_URL: 'https://w.example.com/edge/_waymark/api/v1/' });
    expect(withPrefix.ok && withPrefix.settings.apiUrl).toBe('https://w.example.com/edge/_waymark/api/v1');
  });

  it('names the variable and the flag of every missing or bad setting', () => {
    expect(resolveSettings({}, {})).toEqual({
      ok: false,
      errors: [
        expect.stringMatching(/^WAYMARK_URL \(or --url\) is not set/),
        expect.stringMatching(/^WAYMARK_TOKEN \(or --token\) is not set/),
      ],
    });
    for (const url of ['waymark.example.com', 'ftp://waymark.example.com', 'https://w.example.com/?x=1'])
      expect(resolveSettings({}, { ...env, WAYMARK_URL: url })).toEqual({
        ok: false,
        errors: [`WAYMARK_URL (or --url) must be an http(s) URL like "https://waymark.example.com", not "${url}"`],
      });
    expect(resolveSettings({ token: '  ' }, env)).toMatchObject({
      ok: false,
      errors: [expect.stringContaining('WAYMARK_TOKEN')],
    });
  });
});
