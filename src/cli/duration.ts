const SECONDS_PER = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
type Unit = keyof typeof SECONDS_PER;
const UNITS = Object.keys(SECONDS_PER) as Unit[];

/** `2h`, `10m`, `1h30m`, `1d12h`: whole numbers, units largest first, each at most once. */
const DURATION = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

const FORMS = 'a whole number with a unit: 30s, 10m, 2h, 1d (or combined, largest first: 1h30m)';

export type DurationResult = { ok: true; seconds: number } | { ok: false; error: string };

/**
 * Reads a duration as people type it on call (`30s`, `10m`, `2h`, `1d`, `1h30m`) into seconds. A bare
 * number is refused rather than guessed (seconds? minutes?), as are fractions (`1.5h`: say `90m`).
 */
export function parseDuration(text: string): DurationResult {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { ok: false, error: `"${text}" has no unit; give ${FORMS}` };
  const match = DURATION.exec(trimmed);
  if (!trimmed || !match) return { ok: false, error: `"${text}" is not a duration; give ${FORMS}` };
  const seconds = UNITS.reduce((sum, unit, i) => sum + Number(match[i + 1] ?? 0) * SECONDS_PER[unit], 0);
  if (seconds <= 0) return { ok: false, error: `"${text}" is no time at all; give ${FORMS}` };
  if (!Number.isSafeInteger(seconds)) return { ok: false, error: `"${text}" is too long` };
  return { ok: true, seconds };
}

/** Seconds as the two largest units that are not zero: `1d 2h`, `9m 58s`, `45s`. */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  const parts: string[] = [];
  for (const unit of UNITS) {
    const n = Math.floor(rest / SECONDS_PER[unit]);
    rest -= n * SECONDS_PER[unit];
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`);
  }
  const shown = parts.slice(0, 2).filter((p, i) => i === 0 || !p.startsWith('0'));
  return shown.length ? shown.join(' ') : '0s';
}
