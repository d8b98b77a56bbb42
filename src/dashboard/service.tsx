/** @jsxImportSource hono/jsx */
import type { failoverView } from '../api/failover.js';
import type { routeObserved, routeStatus } from '../api/routes.js';
import type { Problem } from '../problem.js';
import { healthLabel } from '../routing/availability.js';
import type { Cluster } from '../routing/types.js';
import type { OverrideView } from '../store/overrides.js';
import type { RouteConfig } from '../store/routes.js';
import { Spark, type ClusterSeries } from './charts.js';
import { Csrf, fmt, Main, ProblemBox } from './layout.js';
import { DASHBOARD_PATH, type Session } from './session.js';

type Observed = Awaited<ReturnType<typeof routeObserved>>;
type Window = Observed['primary'];

interface RouteLine {
  route: RouteConfig;
  automated: boolean;
  status: Awaited<ReturnType<typeof routeStatus>>;
  observed: Observed;
}

export interface ServicePageProps {
  session: Session;
  now: number;
  name: string;
  hosts: string[];
  clusters: Cluster[];
  matrix: Awaited<ReturnType<typeof failoverView>>;
  down: string[];
  series: ReadonlyMap<string, ClusterSeries>;
  seriesMinutes: number;
  overrides: OverrideView[];
  routes: RouteLine[];
  /** A form post's refusal, and what the form held (to fill it in again). */
  problem: Problem | null;
  form: Record<string, string>;
}

export const servicePath = (name: string) => `${DASHBOARD_PATH}/services/${encodeURIComponent(name)}`;

function whatIfHref(name: string, down: readonly string[], cluster: string): string {
  const next = down.includes(cluster) ? down.filter((d) => d !== cluster) : [...down, cluster];
  return next.length ? `${servicePath(name)}?down=${next.map(encodeURIComponent).join(',')}` : servicePath(name);
}

function Grid(props: ServicePageProps) {
  const { matrix, clusters, down, name } = props;
  const ejected = new Set(matrix.ejectedHere);
  const regions = Object.keys(matrix.regions);
  return (
    <table class="grid" id="matrix">
      <thead>
        <tr>
          <th>client region</th>
          {clusters.map((c) => {
            const label = healthLabel(c, { down: new Set(down), ejectedHere: (x) => ejected.has(x.name) });
            return (
              <th class="cl" data-cluster={c.name}>
                <div>
                  <strong>{c.name}</strong> <span class="muted small">{c.region}</span>
                </div>
                <span class={`pill ${label}`}>{label}</span>
                {ejected.has(c.name) ? <span class="pill ejected">ejected here</span> : ''}
                <div>
                  <a class="toggle" href={whatIfHref(name, down, c.name)} data-whatif={c.name}>
                    {down.includes(c.name) ? 'undo what-if' : 'what if down?'}
                  </a>
                </div>
              </th>
            );
          })}
          <th>region health</th>
        </tr>
      </thead>
      <tbody>
        {regions.map((region) => {
          const entries = matrix.regions[region] ?? [];
          const summary = matrix.summary[region];
          return (
            <tr data-region={region}>
              <th>{region}</th>
              {clusters.map((c) => {
                const e = entries.find((x) => x.cluster === c.name);
                if (!e)
                  return (
                    <td class="cell off" data-cluster={c.name}>
                      –
                    </td>
                  );
                return (
                  <td class={`cell${e.share === 0 ? ' off' : ''}`} data-cluster={c.name} data-share={e.share}>
                    <div class="share">{e.share}%</div>
                    <div class="small muted" title={e.reason}>
                      level {e.level} · {e.levelReason}
                    </div>
                    <span class={`pill ${e.health}`}>{e.health}</span>
                  </td>
                );
              })}
              <td class="small">
                {summary ? (
                  <>
                    {summary.totalHealth}%{summary.panic ? <span class="pill unhealthy">panic</span> : ''}
                    {summary.closed ? <span class="pill unhealthy">closed</span> : ''}
                  </>
                ) : (
                  ''
                )}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Charts(props: ServicePageProps) {
  return (
    <table id="charts">
      <thead>
        <tr>
          <th>cluster</th>
          <th>requests (edge-observed)</th>
          <th>error rate</th>
          <th>p95 latency</th>
        </tr>
      </thead>
      <tbody>
        {props.clusters.map((c) => {
          const s = props.series.get(c.name);
          if (!s) return '';
          return (
            <tr data-cluster={c.name}>
              <td>{c.name}</td>
              <td>
                <Spark values={s.rate} label={`${c.name} requests per second`} format={fmt.rate} />
              </td>
              <td>
                <Spark values={s.errorRate} label={`${c.name} error rate`} format={fmt.percent} />
              </td>
              <td>
                <Spark values={s.latencyMs} label={`${c.name} p95 latency`} format={fmt.ms} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function Overrides(props: ServicePageProps) {
  const { session, name } = props;
  const canOverride = session.grant.scopes.includes('override');
  return (
    <>
      {props.overrides.length === 0 ? (
        <p class="muted" id="no-overrides">
          No active override.
        </p>
      ) : (
        <table id="overrides">
          <thead>
            <tr>
              <th>action</th>
              <th>target</th>
              <th>reason</th>
              <th>by</th>
              <th>until</th>
              {canOverride ? <th /> : ''}
            </tr>
          </thead>
          <tbody>
            {props.overrides.map((o) => (
              <tr data-override={o.id}>
                <td>
                  <code>{o.action}</code>
                  {o.forced ? <span class="pill unhealthy">forced</span> : ''}
                </td>
                <td>
                  {[
                    o.cluster && `cluster ${o.cluster}`,
                    o.region && `region ${o.region}`,
                    o.route && `route ${o.route}`,
                    o.value !== null && `value ${o.value}`,
                  ]
                    .filter(Boolean)
                    .join(', ') || 'the service'}
                </td>
                <td>{o.reason}</td>
                <td>{o.actor}</td>
                <td class="small">{o.expiresAt.replace('T', ' ').slice(0, 19)}</td>
                {canOverride ? (
                  <td>
                    <form method="post" action={`${servicePath(name)}/overrides/${encodeURIComponent(o.id)}/end`}>
                      <Csrf session={session} />
                      <button class="secondary" type="submit">
                        End
                      </button>
                    </form>
                  </td>
                ) : (
                  ''
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canOverride ? <OverrideForm {...props} /> : ''}
    </>
  );
}

function OverrideForm(props: ServicePageProps) {
  const { form, clusters, matrix } = props;
  const regions = [...new Set([...clusters.map((c) => c.region), ...Object.keys(matrix.regions)])].sort();
  const option = (field: string, value: string, text: string) => (
    <option value={value} selected={(form[field] ?? '') === value}>
      {text}
    </option>
  );
  return (
    <form class="card" id="override-form" method="post" action={`${servicePath(props.name)}/overrides`}>
      <Csrf session={props.session} />
      <label>
        action
        <select name="action">
          {option('action', 'drain', 'drain')}
          {option('action', 'pin', 'pin')}
        </select>
      </label>
      <label>
        cluster
        <select name="cluster">
          {option('cluster', '', '(none)')}
          {clusters.map((c) => option('cluster', c.name, c.name))}
        </select>
      </label>
      <label>
        region
        <select name="region">
          {option('region', '', '(none)')}
          {regions.map((r) => option('region', r, r))}
        </select>
      </label>
      <label>
        reason
        <input name="reason" value={form.reason ?? ''} placeholder="bad deploy" size={28} />
      </label>
      <label>
        for (TTL)
        <input name="ttl" value={form.ttl ?? '10m'} size={6} />
      </label>
      <label>
        force
        <input type="checkbox" name="force" value="true" checked={form.force === 'true'} />
      </label>
      <button type="submit">Apply override</button>
    </form>
  );
}

function windowText(w: Window): string {
  if (!w.requests) return 'no requests';
  const parts = [`${w.requests} req`];
  if (w.errorRate !== null) parts.push(`${fmt.percent(w.errorRate)} errors`);
  if (w.p95Ms !== null) parts.push(`p95 ≤ ${w.p95Ms} ms`);
  return parts.join(' · ');
}

function Routes(props: ServicePageProps) {
  const { session, name } = props;
  const canOverride = session.grant.scopes.includes('override');
  if (props.routes.length === 0)
    return <p class="muted">No route: every request takes the service's failover order.</p>;
  return (
    <table id="routes">
      <thead>
        <tr>
          <th>route</th>
          <th>mirror %</th>
          <th>canary weight</th>
          <th>phase</th>
          <th>primary (15 min)</th>
          <th>mirror / canary (15 min)</th>
          {canOverride ? <th /> : ''}
        </tr>
      </thead>
      <tbody>
        {props.routes.map(({ route, automated, status, observed }) => (
          <tr data-route={route.name}>
            <td>
              <strong>{route.name}</strong> <span class="muted small">order {route.order}</span>
            </td>
            <td class="num">{status.mirrorPercent}</td>
            <td class="num">{status.canaryWeight}</td>
            <td>
              {status.phase ?? <span class="muted">not automated</span>}{' '}
              {status.paused ? <span class="pill drained">paused</span> : ''}
              {status.heldBy.length ? <span class="pill drained">held</span> : ''}
            </td>
            <td class="small">{windowText(observed.primary)}</td>
            <td class="small">
              {route.mirror ? <div>mirror: {windowText(observed.mirror)}</div> : ''}
              {route.canary ? <div>canary: {windowText(observed.canary)}</div> : ''}
            </td>
            {canOverride ? (
              <td>
                {automated ? (
                  <form
                    method="post"
                    action={`${servicePath(name)}/routes/${encodeURIComponent(route.name)}/${status.paused ? 'resume' : 'pause'}`}
                  >
                    <Csrf session={session} />
                    <button class="secondary" type="submit">
                      {status.paused ? 'Resume' : 'Pause'}
                    </button>
                  </form>
                ) : (
                  ''
                )}
              </td>
            ) : (
              ''
            )}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function ServicePage(props: ServicePageProps) {
  return (
    <Main refresh={props.problem === null} now={props.now}>
      <h1>
        {props.name}{' '}
        <span class="muted small">
          {props.hosts.map((h) => (
            <>
              <code>{h}</code>{' '}
            </>
          ))}
        </span>
      </h1>
      <ProblemBox problem={props.problem} />
      <h2>Failover matrix</h2>
      {props.down.length ? (
        <div class="whatif" id="whatif">
          What if <strong>{props.down.join(', ')}</strong> {props.down.length > 1 ? 'were' : 'was'} down: nothing is
          changed. <a href={servicePath(props.name)}>Back to now</a>
        </div>
      ) : (
        ''
      )}
      <Grid {...props} />
      <p class="small muted">
        Share of each client region's traffic per cluster, as the edges compute it (snapshot{' '}
        {props.matrix.snapshotVersion}).
      </p>
      <h2>Last {props.seriesMinutes} minutes, as the edges saw it</h2>
      <Charts {...props} />
      <h2>Active overrides</h2>
      <Overrides {...props} />
      <h2>Routes</h2>
      <Routes {...props} />
    </Main>
  );
}
