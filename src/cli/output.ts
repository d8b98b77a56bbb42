import { stripVTControlCharacters } from 'node:util';
import type { ApiFailure } from './client.js';
import { formatDuration } from './duration.js';
import { EXIT, type ExitCode } from './exit-codes.js';

/** Where a command writes, and how: JSON for scripts, or text for people, colored on a terminal only. */
export interface Output {
  json: boolean;
  /** Color on stdout. */
  color: boolean;
  /** Color on stderr. */
  errColor: boolean;
  now: () => number;
  /** One or more lines to stdout (a newline is added). */
  out: (text: string) => void;
  /** One or more lines to stderr (a newline is added). */
  err: (text: string) => void;
}

/**
 * The process's output. Colors only when stdout is a terminal and `NO_COLOR` is unset (no-color.org):
 * a pipe, a file or a CI log gets plain text.
 */
export function processOutput(json: boolean): Output {
  return {
    json,
    color: process.stdout.isTTY === true && !process.env.NO_COLOR,
    errColor: process.stderr.isTTY === true && !process.env.NO_COLOR,
    now: Date.now,
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
  };
}

type Style = 'green' | 'yellow' | 'red' | 'dim' | 'bold';
const SGR: Record<Style, [number, number]> = {
  green: [32, 39],
  yellow: [33, 39],
  red: [31, 39],
  dim: [2, 22],
  bold: [1, 22],
};

/** `text` in `style` when color is on; as is otherwise. */
export function paint(on: boolean, style: Style, text: string): string {
  if (!on) return text;
  const [open, close] = SGR[style];
  return `\u001b[${open}m${text}\u001b[${close}m`;
}

function visibleLength(text: string): number {
  return stripVTControlCharacters(text).length;
}

/**
 * Rows under a header, columns padded to their widest cell (colors do not count) or `minWidths`, two
 * spaces apart, numbers (the `right` columns) aligned right; the last column is not padded. `indent`
 * prefixes every line.
 */
export function renderTable(
  headers: string[],
  rows: string[][],
  options: { indent?: string; minWidths?: number[]; right?: number[] } = {},
): string {
  const { indent = '', minWidths = [], right = [] } = options;
  const widths = headers.map((h, i) =>
    Math.max(minWidths[i] ?? 0, visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    indent +
    cells
      .map((cell, i) => {
        const pad = ' '.repeat((widths[i] ?? 0) - visibleLength(cell));
        if (right.includes(i)) return pad + cell;
        return i === cells.length - 1 ? cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** Any JSON value, indented, for `--json`. */
export function printJson(output: Output, value: unknown): void {
  output.out(JSON.stringify(value, null, 2));
}

/** `2026-12-01T03:04:05.678Z` as `2026-12-01 03:04:05Z`: UTC, to the second. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** How far `iso` is from now: `in 9m 58s`, `3m ago`. */
export function formatFromNow(iso: string, now: number): string {
  const seconds = (Date.parse(iso) - now) / 1000;
  return seconds >= 0 ? `in ${formatDuration(seconds)}` : `${formatDuration(-seconds)} ago`;
}

/**
 * How the API's field names map to the command's flags and arguments (`ttlSeconds` is `--for`), so a
 * refusal names what to change on the command line.
 */
export type FieldHints = Record<string, string>;

/**
 * Tells why a call failed (on stderr; with `--json` the problem document also goes to stdout) and
 * answers the exit code: 1 when the API refused, 4 when it could not be reached or did not answer as
 * Waymark does.
 */
export function reportFailure(output: Output, failure: ApiFailure, hints: FieldHints = {}): ExitCode {
  const red = (text: string) => paint(output.errColor, 'red', text);
  switch (failure.kind) {
    case 'unreachable':
      output.err(`${red('error:')} cannot reach ${failure.url}: ${failure.reason}`);
      output.err('Check WAYMARK_URL (or --url) and that Waymark is running.');
      return EXIT.unreachable;
    case 'unexpected':
      output.err(
        `${red('error:')} ${failure.url} answered ${failure.status}, not as Waymark's admin API does` +
          (failure.body.trim() ? `:\n  ${failure.body.trim().replace(/\s+/g, ' ')}` : ''),
      );
      output.err("Check WAYMARK_URL (or --url): it should be Waymark's address.");
      return EXIT.unreachable;
    case 'problem': {
      const p = failure.problem;
      if (output.json) printJson(output, p);
      const title = p.title ?? 'refused';
      output.err(`${red('error:')} ${title} (${failure.status}): ${p.detail ?? 'no detail given'}`);
      for (const e of p.errors ?? []) {
        const hint = hints[e.field];
        output.err(`  ${paint(output.errColor, 'bold', e.field)}${hint ? ` (${hint})` : ''}: ${e.message}`);
      }
      if (p.requestId) output.err(paint(output.errColor, 'dim', `  request id: ${p.requestId}`));
      return EXIT.refused;
    }
  }
}

/** A usage error (bad flag, unreadable file...): said on stderr, exit 2. */
export function usageError(output: Output, message: string): ExitCode {
  output.err(`${paint(output.errColor, 'red', 'error:')} ${message}`);
  return EXIT.usage;
}
