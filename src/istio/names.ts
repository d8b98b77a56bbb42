import { nameSchema } from '../spec/names.js';
import type { Loc, Report } from './reader.js';

const NAME_MAX = 63;

/** A host's short name: its first DNS label (`reviews.prod.svc.cluster.local` -> `reviews`). */
export function shortName(host: string): string {
  return (host.split('.')[0] ?? '').toLowerCase();
}

/** The Waymark service an Istio host stands for, or null (with an error) when its short name cannot be one. */
export function serviceOf(host: string, at: Loc, report: Report): string | null {
  const name = shortName(host);
  if (nameSchema.safeParse(name).success) return name;
  report.error(
    at,
    `"${host}" gives no Waymark service name: its first label "${name}" must be 1-63 lowercase letters, digits or dashes`,
  );
  return null;
}

/**
 * Anything as a Waymark name (`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`), leaving room for `suffix`:
 * lowercased, runs of other characters become one dash, trimmed to length. Empty when nothing is left.
 */
export function toName(raw: string, suffix = ''): string {
  const base = raw
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, NAME_MAX - suffix.length)
    .replace(/-+$/, '');
  return base ? `${base}${suffix}` : '';
}
