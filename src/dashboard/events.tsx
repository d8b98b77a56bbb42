/** @jsxImportSource hono/jsx */
import type { AuditEntry } from '../store/audit.js';
import type { EventEntry } from '../store/health.js';
import { Main } from './layout.js';
import { DASHBOARD_PATH } from './session.js';

/** The kinds of events the health sync and the commands record (README, `GET /events`). */
export const EVENT_KINDS = [
  'cluster-state',
  'shares',
  'override-applied',
  'override-ended',
  'override-expired',
  'mirror-ramp',
  'canary',
  'latency-order',
  'route-pause',
  'route-resume',
] as const;

/** The kind filter's value for audit entries only. */
export const AUDIT_KIND = 'audit';

/** One line of the timeline: an event (what changed and why) or an audit entry (who wrote what). */
export type TimelineEntry = { source: 'event'; entry: EventEntry } | { source: 'audit'; entry: AuditEntry };

/** Events and audit entries merged, newest first. */
export function timeline(events: readonly EventEntry[], audit: readonly AuditEntry[], limit: number): TimelineEntry[] {
  const all: TimelineEntry[] = [
    ...events.map((entry) => ({ source: 'event' as const, entry })),
    ...audit.map((entry) => ({ source: 'audit' as const, entry })),
  ];
  return all.sort((a, b) => b.entry.at.localeCompare(a.entry.at)).slice(0, limit);
}

function Figures(props: { value: unknown }) {
  if (props.value === null || props.value === undefined) return '';
  return (
    <details>
      <summary>figures</summary>
      <pre>{JSON.stringify(props.value, null, 2)}</pre>
    </details>
  );
}

export function EventsPage(props: {
  now: number;
  services: string[];
  service: string;
  kind: string;
  entries: TimelineEntry[];
}) {
  const { service, kind } = props;
  return (
    <Main refresh now={props.now}>
      <h1>Events and audit</h1>
      <form class="card" id="filter" method="get" action={`${DASHBOARD_PATH}/events`}>
        <label>
          service
          <select name="service">
            <option value="" selected={service === ''}>
              every service
            </option>
            {props.services.map((s) => (
              <option value={s} selected={service === s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          kind
          <select name="kind">
            <option value="" selected={kind === ''}>
              every kind
            </option>
            {EVENT_KINDS.map((k) => (
              <option value={k} selected={kind === k}>
                {k}
              </option>
            ))}
            <option value={AUDIT_KIND} selected={kind === AUDIT_KIND}>
              audit entries (writes)
            </option>
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <h2>Newest first</h2>
      {props.entries.length === 0 ? (
        <p class="muted" id="no-entries">
          Nothing recorded{service ? ` for ${service}` : ''}
          {kind ? ` of kind ${kind}` : ''} yet.
        </p>
      ) : (
        <table id="timeline">
          <thead>
            <tr>
              <th>at (UTC)</th>
              <th>kind</th>
              <th>service</th>
              <th>what</th>
            </tr>
          </thead>
          <tbody>
            {props.entries.map((t) =>
              t.source === 'event' ? (
                <tr data-kind={t.entry.kind} data-service={t.entry.service}>
                  <td class="small">{t.entry.at.replace('T', ' ').slice(0, 19)}</td>
                  <td>
                    <code>{t.entry.kind}</code>
                  </td>
                  <td>
                    {t.entry.service}
                    {t.entry.cluster ? <span class="muted small"> / {t.entry.cluster}</span> : ''}
                  </td>
                  <td>
                    {t.entry.message}
                    <Figures value={t.entry.detail} />
                  </td>
                </tr>
              ) : (
                <tr data-kind={AUDIT_KIND} data-action={t.entry.action}>
                  <td class="small">{t.entry.at.replace('T', ' ').slice(0, 19)}</td>
                  <td>
                    <span class="pill">audit</span> <code>{t.entry.action}</code>
                  </td>
                  <td class="small">{t.entry.target}</td>
                  <td>
                    by <strong>{t.entry.actor}</strong>
                    {t.entry.requestId ? <span class="muted small"> (request {t.entry.requestId})</span> : ''}
                    <Figures value={{ before: t.entry.before, after: t.entry.after }} />
                  </td>
                </tr>
              ),
            )}
          </tbody>
        </table>
      )}
    </Main>
  );
}
