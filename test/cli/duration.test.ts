import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/cli/duration.js';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['30s', 30],
    ['10m', 600],
    ['2h', 7_200],
    ['1d', 86_400],
    ['7d', 604_800],
    ['1h30m', 5_400],
    ['1d12h', 129_600],
    ['2m5s', 125],
    [' 90m ', 5_400],
    ['0h10m', 600],
  ];
  it.each(valid)('%s is %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toEqual({ ok: true, seconds });
  });

  const invalid: [string, string][] = [
    ['10', 'has no unit'],
    ['10x', 'is not a duration'],
    ['1.5h', 'is not a duration'],
    ['-5m', 'is not a duration'],
    ['10M', 'is not a duration'],
    ['30m1h', 'is not a duration'],
    ['1h1h', 'is not a duration'],
    ['', 'is not a duration'],
    ['0s', 'no time at all'],
    ['99999999999999999d', 'too long'],
  ];
  it.each(invalid)('%j is refused (%s), naming the forms it takes', (text, why) => {
    const result = parseDuration(text);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toContain(why);
    if (why !== 'too long') expect(result.error).toContain('30s, 10m, 2h, 1d');
  });
});

describe('formatDuration', () => {
  const cases: [number, string][] = [
    [0, '0s'],
    [45, '45s'],
    [600, '10m'],
    [598, '9m 58s'],
    [3_600, '1h'],
    [7_199, '1h 59m'],
    [86_400 + 3_600 * 2 + 5, '1d 2h'],
    [86_400 + 60, '1d'],
    [-5, '0s'],
    [59.6, '1m'],
  ];
  it.each(cases)('%d seconds is %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
