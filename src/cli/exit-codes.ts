/**
 * What `waymark` exits with, so scripts can tell a refusal from a typo from an outage. Documented in
 * the README's CLI section; a new code is a new line here and there.
 */
export const EXIT = {
  ok: 0,
  /** The API refused: a problem document (bad input, not found, conflict, unauthorized...). */
  refused: 1,
  /** The command line is wrong: unknown flag, missing argument, bad duration, settings or file. */
  usage: 2,
  /** `waymark diff`: the document differs from the configuration in force. */
  changes: 3,
  /** The API could not be reached (connection refused, DNS, timeout) or did not answer as Waymark. */
  unreachable: 4,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
