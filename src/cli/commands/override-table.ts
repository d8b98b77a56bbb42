import type { OverrideView } from '../../store/overrides.js';
import { formatFromNow, formatTime, type Output, paint, renderTable } from '../output.js';

/** Override ids are UUIDs; this many characters tell them apart in a table (`waymark end` takes a prefix). */
export const SHORT_ID_CHARS = 8;

/** What an override acts on, in words: `cluster ew1 for clients in eu-west1`, `route api at 20`. */
export function overrideTarget(o: Pick<OverrideView, 'cluster' | 'region' | 'route' | 'value'>): string {
  if (o.route) return `route ${o.route}${o.value !== null ? ` at ${o.value}` : ''}`;
  if (o.cluster && o.region) return `cluster ${o.cluster} for clients in ${o.region}`;
  if (o.cluster) return `cluster ${o.cluster}`;
  if (o.region) return `region ${o.region}`;
  return 'whole service';
}

/** In force until when, or how it ended. */
function overrideState(o: OverrideView, output: Output): string {
  if (o.active) return paint(output.color, 'yellow', `active, ends ${formatFromNow(o.expiresAt, output.now())}`);
  if (o.endReason === 'expired') return `expired ${formatTime(o.endedAt)}`;
  return `ended ${formatTime(o.endedAt)} by ${o.endedBy ?? '?'}`;
}

/** Overrides as a table, newest first, as the API lists them. */
export function renderOverrides(overrides: OverrideView[], output: Output, indent = ''): string {
  return renderTable(
    ['ID', 'SERVICE', 'ACTION', 'TARGET', 'STATE', 'BY', 'REASON'],
    overrides.map((o) => [
      o.id.slice(0, SHORT_ID_CHARS),
      o.service,
      o.forced ? `${o.action} (forced)` : o.action,
      overrideTarget(o),
      overrideState(o, output),
      o.actor,
      o.reason,
    ]),
    { indent },
  );
}
