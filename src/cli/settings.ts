/** Where the admin API lives under Waymark's address. */
const API_PREFIX = '/_waymark/api/v1';

/** What the CLI needs to call the admin API: from the flags, else the environment. */
export interface CliSettings {
  /** The admin API's base, ending in `/_waymark/api/v1`. */
  apiUrl: string;
  token: string;
}

export type SettingsResult = { ok: true; settings: CliSettings } | { ok: false; errors: string[] };

/**
 * The URL and token from `--url` / `--token` (they win) or `WAYMARK_URL` / `WAYMARK_TOKEN`; each
 * problem names both the variable and the flag. The URL may be Waymark's address or the API's base.
 * Checked by hand rather than with zod: the CLI starts once per command, and importing zod through tsx
 * takes a third of that start for two strings.
 */
export function resolveSettings(
  flags: { url?: string | undefined; token?: string | undefined },
  env: Record<string, string | undefined>,
): SettingsResult {
  const errors: string[] = [];
  const url = (flags.url ?? env.WAYMARK_URL ?? '').trim();
  const token = (flags.token ?? env.WAYMARK_TOKEN ?? '').trim();
  let parsed: URL | null = null;
  if (!url)
    errors.push('WAYMARK_URL (or --url) is not set: give Waymark\'s address, e.g. "https://waymark.example.com"');
  else {
    parsed = parseUrl(url);
    if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search || parsed.hash)
      errors.push(`WAYMARK_URL (or --url) must be an http(s) URL like "https://waymark.example.com", not "${url}"`);
  }
  if (!token) errors.push('WAYMARK_TOKEN (or --token) is not set: give an admin API token (read, on-call or admin)');
  if (errors.length || !parsed) return { ok: false, errors };
  const base = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '');
  return { ok: true, settings: { apiUrl: base.endsWith(API_PREFIX) ? base : `${base}${API_PREFIX}`, token } };
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
