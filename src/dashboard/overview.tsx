/** @jsxImportSource hono/jsx */
import { availability } from '../routing/availability.js';
import type { Snapshot } from '../routing/types.js';
import type { EventEntry } from '../store/health.js';
import { Main } from './layout.js';
import { DASHBOARD_PATH } from './session.js';

/** One line of the overview. */
export interface ServiceLine {
  name: string;
  hosts: string[];
  healthy: number;
  clusters: number;
  activeOverrides: number;
  lastEvent: EventEntry | null;
}

/** Every service the token may see, from the routing table the edges use, with its overrides and last event. */
export function serviceLines(
  snapshot: Snapshot,
  allowed: (service: string) => boolean,
  overridesByService: ReadonlyMap<string, number>,
  lastEvents: ReadonlyMap<string, EventEntry>,
  ejected: (service: string) => readonly string[],
): ServiceLine[] {
  return [...snapshot.byName.values()]
    .filter((s) => allowed(s.name))
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((s) => {
      const out = new Set(ejected(s.name));
      return {
        name: s.name,
        hosts: s.hosts,
        healthy: s.clusters.filter((c) => availability(c, { ejectedHere: (x) => out.has(x.name) }) === 'healthy')
          .length,
        clusters: s.clusters.length,
        activeOverrides: overridesByService.get(s.name) ?? 0,
        lastEvent: lastEvents.get(s.name) ?? null,
      };
    });
}

export function Overview(props: { lines: ServiceLine[]; now: number }) {
  return (
    <Main refresh now={props.now}>
      <h1>Services</h1>
      {props.lines.length === 0 ? (
        <p class="muted">No service this token may see. Add one with the admin API or the CLI.</p>
      ) : (
        <table id="services">
          <thead>
            <tr>
              <th>service</th>
              <th>hosts</th>
              <th>clusters healthy</th>
              <th>active overrides</th>
              <th>last event</th>
            </tr>
          </thead>
          <tbody>
            {props.lines.map((l) => (
              <tr data-service={l.name}>
                <td>
                  <a href={`${DASHBOARD_PATH}/services/${encodeURIComponent(l.name)}`}>
                    <strong>{l.name}</strong>
                  </a>
                </td>
                <td>
                  {l.hosts.map((h) => (
                    <>
                      <code>{h}</code>{' '}
                    </>
                  ))}
                </td>
                <td class="health">
                  <span
                    class={`pill ${l.healthy === l.clusters ? 'healthy' : l.healthy === 0 ? 'unhealthy' : 'drained'}`}
                  >
                    {l.healthy}/{l.clusters}
                  </span>
                </td>
                <td class="num overrides">{l.activeOverrides}</td>
                <td class="small">
                  {l.lastEvent ? (
                    <>
                      <span class="muted">{l.lastEvent.at.replace('T', ' ').slice(0, 19)}</span>{' '}
                      <code>{l.lastEvent.kind}</code> {l.lastEvent.message}
                    </>
                  ) : (
                    <span class="muted">none yet</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Main>
  );
}
