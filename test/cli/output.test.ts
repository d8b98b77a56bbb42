import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { renderConfigResult } from '../../src/cli/commands/config.js';
import { type Output, paint, renderTable, reportFailure } from '../../src/cli/output.js';

/** An Output that keeps what it was given. */
function captured(options: { json?: boolean; color?: boolean } = {}): Output & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    json: options.json ?? false,
    color: options.color ?? false,
    errColor: options.color ?? false,
    now: () => Date.parse('2026-12-01T03:00:00Z'),
    out: (text) => void stdout.push(text),
    err: (text) => void stderr.push(text),
    stdout,
    stderr,
  };
}

const GREEN = '\u001b[32m';
const RESET_COLOR = '\u001b[39m';

describe('renderTable', () => {
  it('pads columns to the widest cell, colors not counted; right columns align right; the last is not padded', () => {
    const rows = [
      ['ew1', paint(true, 'green', 'healthy'), '100.0%', 'same-region'],
      ['as1-long', 'down', '0.0%', 'distance'],
    ];
    const lines = stripVTControlCharacters(
      renderTable(['CLUSTER', 'HEALTH', 'SHARE', 'WHY'], rows, { indent: '  ', right: [2] }),
    ).split('\n');
    expect(lines).toEqual([
      '  CLUSTER   HEALTH    SHARE  WHY',
      '  ew1       healthy  100.0%  same-region',
      '  as1-long  down       0.0%  distance',
    ]);
  });

  it('keeps minimum widths, so later rows of a tail line up with the first page', () => {
    expect(renderTable(['A', 'B'], [['x', 'y']], { minWidths: [4] })).toBe('A     B\nx     y');
  });
});

describe('renderConfigResult', () => {
  const result = {
    dryRun: true,
    version: 4,
    changes: [
      { kind: 'service' as const, service: 'blog', action: 'create' as const },
      {
        kind: 'cluster' as const,
        service: 'shop',
        name: 'eu',
        action: 'update' as const,
        fields: [
          { path: 'weight', old: 100, new: 50 },
          { path: 'zone', old: null, new: 'eu-west1-b' },
        ],
      },
      { kind: 'route' as const, service: 'shop', name: 'legacy', action: 'delete' as const },
      { kind: 'cluster' as const, service: 'shop', name: 'us', action: 'unchanged' as const },
    ],
    summary: { create: 1, update: 1, delete: 1, unchanged: 1 },
  };

  it('colors create green, update yellow, delete red on a terminal only', () => {
    const colored = renderConfigResult(result, captured({ color: true }));
    expect(colored).toContain(`${GREEN}+ service blog${RESET_COLOR}`);
    expect(colored).toContain('\u001b[33m~ cluster shop/eu\u001b[39m');
    expect(colored).toContain('\u001b[31m- route shop/legacy\u001b[39m');
    expect(renderConfigResult(result, captured())).toBe(
      [
        '+ service blog',
        '~ cluster shop/eu',
        '    weight: 100 -> 50',
        '    zone: (none) -> "eu-west1-b"',
        '- route shop/legacy',
        '1 to create, 1 to update, 1 to delete, 1 unchanged. Dry run against version 4: nothing was written.',
      ].join('\n'),
    );
  });
});

describe('reportFailure', () => {
  const problem = {
    kind: 'problem' as const,
    url: 'http://w/_waymark/api/v1/overrides',
    status: 400,
    problem: {
      type: 'urn:waymark:problem:invalid-request',
      title: 'Invalid request',
      status: 400,
      detail: 'the body does not match the schema',
      code: 'invalid-request',
      errors: [
        { field: 'ttlSeconds', message: 'Too big' },
        { field: 'labels.x', message: 'bad' },
      ],
      requestId: 'req-7',
    },
  };

  it('prints the detail, each field with the flag to change, the request id: exit 1', () => {
    const output = captured();
    expect(reportFailure(output, problem, { ttlSeconds: '--for' })).toBe(1);
    expect(output.stderr).toEqual([
      'error: Invalid request (400): the body does not match the schema',
      '  ttlSeconds (--for): Too big',
      '  labels.x: bad',
      '  request id: req-7',
    ]);
    expect(output.stdout).toEqual([]);
  });

  it('with --json also prints the problem document on stdout', () => {
    const output = captured({ json: true });
    reportFailure(output, problem);
    expect(JSON.parse(output.stdout.join('\n'))).toEqual(problem.problem);
  });

  it('an unreachable API or a foreign answer: exit 4 naming the URL', () => {
    const output = captured();
    expect(reportFailure(output, { kind: 'unreachable', url: 'http://w:1/x', reason: 'ECONNREFUSED' })).toBe(4);
    expect(
      reportFailure(output, {
        kind: 'unexpected',
        url: 'http://w/x',
        status: 502,
        body: '<html>\n bad gateway</html>',
      }),
    ).toBe(4);
    expect(output.stderr).toEqual([
      'error: cannot reach http://w:1/x: ECONNREFUSED',
      'Check WAYMARK_URL (or --url) and that Waymark is running.',
      "error: http://w/x answered 502, not as Waymark's admin API does:\n  <html> bad gateway</html>",
      "Check WAYMARK_URL (or --url): it should be Waymark's address.",
    ]);
  });
});
