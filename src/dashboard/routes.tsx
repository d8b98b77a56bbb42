/** @jsxImportSource hono/jsx */
/**
 * The dashboard at /_waymark/dashboard: server-rendered pages over the same readers and commands as the
 * admin API (never the API over HTTP), one small Waymark-served script that refreshes `main`, nothing
 * from elsewhere; so it runs the same in a Worker and in Node.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { JSX } from 'hono/jsx/jsx-runtime';
import { z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { findGrant, requireServices, servicePatterns, serviceFilter } from '../api/auth.js';
import { currentSnapshot, downSchema, failoverView } from '../api/failover.js';
import { overrideSchema } from '../api/overrides.js';
import { fieldErrors, parseParam, storeProblem } from '../api/problem.js';
import { routeObserved, routeStatus } from '../api/routes.js';
import { actorOf, applied } from '../api/write.js';
import { parseDuration } from '../cli/duration.js';
import { createOverride, endOverride } from '../control/overrides.js';
import { setAutomation } from '../control/routes.js';
import { errorFields } from '../observe/log.js';
import { invalid, notFound, Problem, type FieldError } from '../problem.js';
import type { Runtime } from '../runtime.js';
import { nameSchema } from '../spec/names.js';
import { listAudit } from '../store/audit.js';
import { listEvents, loadEdgeBuckets, type EventEntry } from '../store/health.js';
import { getOverride, listOverrides, viewOverride } from '../store/overrides.js';
import { listRoutes } from '../store/routes.js';
import { listServices } from '../store/services.js';
import { clusterSeries } from './charts.js';
import { AUDIT_KIND, EVENT_KINDS, EventsPage, timeline } from './events.js';
import { CSP, Main, Page, ProblemBox } from './layout.js';
import { Overview, serviceLines } from './overview.js';
import { REFRESH_SCRIPT } from './script.js';
import { ServicePage, servicePath } from './service.js';
import {
  DASHBOARD_PATH,
  endSession,
  readSession,
  requireSession,
  sameOrigin,
  startSession,
  type DashboardEnv,
  sessionOf,
  type Session,
} from './session.js';
import { SignIn } from './sign-in.js';

/** The charts' window and resolution: 15 one-minute buckets. */
const SERIES_BUCKET_MS = 60_000;
const SERIES_BUCKETS = 15;
/** Forms hold a few fields. */
const MAX_FORM_BYTES = 16 * 1024;
const TIMELINE_LIMIT = 100;

type Ctx = Context<DashboardEnv>;

/** Answers a page, or only its `main` when the refresh script asks (`x-waymark-fragment: main`). */
async function page(c: Ctx, title: string, session: Session | null, main: JSX.Element, status = 200) {
  const headers = { 'content-security-policy': CSP, 'cache-control': 'no-store', vary: 'x-waymark-fragment' };
  const body =
    c.req.header('x-waymark-fragment') === 'main'
      ? await main.toString()
      : `<!doctype html>${await (
          <Page title={title} session={session}>
            {main}
          </Page>
        ).toString()}`;
  return c.html(body, status as 200, headers);
}

/** A refusal as a page: what went wrong, and every offending field. */
function problemPage(c: Ctx, problem: Problem, session: Session | null) {
  return page(
    c,
    problem.title,
    session,
    <Main refresh={false} now={Date.now()}>
      <h1>{problem.title}</h1>
      <ProblemBox problem={problem} />
      <p>
        <a href={DASHBOARD_PATH}>Back to the dashboard</a>
      </p>
    </Main>,
    problem.status,
  );
}

function requireOverrideScope(c: Ctx): void {
  if (!sessionOf(c).grant.scopes.includes('override'))
    throw new Problem({ code: 'forbidden', detail: 'this token lacks the "override" scope' });
}

/** A posted form's text fields. */
async function formFields(c: Ctx): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string' && k !== 'csrf') fields[k] = v;
  return fields;
}

/**
 * The override form as the API's body (`ttl` read as a duration: `10m`), checked by the API's own
 * schema; or the problem naming every offending field.
 */
function overrideInput(service: string, form: Record<string, string>) {
  const errors: FieldError[] = [];
  const ttl = parseDuration(form.ttl ?? '');
  if (!ttl.ok) errors.push({ field: 'ttl', message: ttl.error });
  const optional = (v: string | undefined) => (v ? v : undefined);
  const parsed = overrideSchema.safeParse({
    service,
    action: form.action,
    cluster: optional(form.cluster),
    region: optional(form.region),
    reason: form.reason ?? '',
    ttlSeconds: ttl.ok ? ttl.seconds : 600,
    force: form.force === 'true',
  });
  if (!parsed.success)
    errors.push(...fieldErrors(parsed.error).map((e) => (e.field === 'ttlSeconds' ? { ...e, field: 'ttl' } : e)));
  if (errors.length || !parsed.success)
    return { ok: false as const, problem: invalid('the override is not valid', errors) };
  return { ok: true as const, input: parsed.data };
}

const eventsFilter = z.object({
  service: z.union([z.literal(''), nameSchema]).default(''),
  kind: z.enum(['', ...EVENT_KINDS, AUDIT_KIND]).default(''),
});

/** Registers the dashboard's pages and forms under /_waymark/dashboard. */
export function registerDashboard(app: Hono<AppEnv>, rt: Runtime): void {
  const { db } = rt.store;
  const dash = new Hono<DashboardEnv>();

  dash.onError(async (error, c) => {
    const session = c.get('session') ?? null;
    if (error instanceof Problem) return problemPage(c, error, session);
    const fromStore = storeProblem(error);
    if (fromStore) return problemPage(c, fromStore, session);
    rt.log.log('error', 'unhandled error', { requestId: c.get('requestId'), path: c.req.path, ...errorFields(error) });
    return problemPage(
      c,
      new Problem({ code: 'internal', detail: 'an unexpected error occurred; the request id finds it in the logs' }),
      session,
    );
  });
  dash.use(
    '*',
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: () => {
        throw new Problem({ code: 'payload-too-large', detail: `a form is at most ${MAX_FORM_BYTES} bytes` });
      },
    }),
  );

  dash.get('/app.js', (c) =>
    c.body(REFRESH_SCRIPT, 200, {
      'content-type': 'text/javascript; charset=utf-8',
      'cache-control': 'public, max-age=300',
    }),
  );

  // Signed out, the dashboard's root is the sign-in page; signed in, the overview.
  dash.get('/', async (c) => {
    const session = await readSession(c, rt.grants);
    const now = rt.now();
    if (!session)
      return page(c, 'Sign in', null, <SignIn now={now} problem={null} disabled={rt.grants.settings.length === 0} />);
    c.set('grant', session.grant);
    const allowed = serviceFilter(c);
    const snapshot = await currentSnapshot(rt);
    const active = await listOverrides(db, {
      active: { now, active: true },
      services: servicePatterns(c),
      limit: 1000,
    });
    const counts = new Map<string, number>();
    for (const o of active) counts.set(o.service, (counts.get(o.service) ?? 0) + 1);
    const visible = [...snapshot.byName.keys()].filter(allowed);
    const lastEvents = new Map<string, EventEntry>();
    await Promise.all(
      visible.map(async (service) => {
        const [last] = (await listEvents(db, { service, limit: 1 })).entries;
        if (last) lastEvents.set(service, last);
      }),
    );
    const lines = serviceLines(snapshot, allowed, counts, lastEvents, (s) => rt.outliers.ejected(s));
    return page(c, 'Services', session, <Overview lines={lines} now={now} />);
  });

  dash.post('/sign-in', async (c) => {
    const now = rt.now();
    const refuse = (problem: Problem) =>
      page(c, 'Sign in', null, <SignIn now={now} problem={problem} disabled={false} />, problem.status);
    if (!sameOrigin(c))
      return refuse(new Problem({ code: 'forbidden', detail: 'the form was posted from another site' }));
    if (rt.grants.settings.length === 0)
      return page(c, 'Sign in', null, <SignIn now={now} problem={null} disabled />, 503);
    const { token } = await formFields(c);
    const grant = token ? await findGrant(rt.grants, token.trim()) : undefined;
    if (!grant) return refuse(new Problem({ code: 'unauthorized', detail: 'the token is not valid' }));
    if (!grant.scopes.includes('read'))
      return refuse(new Problem({ code: 'forbidden', detail: 'this token lacks the "read" scope' }));
    startSession(c, (token as string).trim());
    return c.redirect(DASHBOARD_PATH, 303);
  });

  for (const path of ['/sign-out', '/events', '/services/*']) dash.use(path, requireSession(rt.grants));

  dash.post('/sign-out', (c) => {
    endSession(c);
    return c.redirect(DASHBOARD_PATH, 303);
  });

  /** The service page; after a refused form post, with the problem and the form as it was sent. */
  async function servicePage(c: Ctx, name: string, opts: { problem?: Problem; form?: Record<string, string> } = {}) {
    requireServices(c, [name]);
    const down = opts.problem ? [] : parseParam('down', c.req.query('down'), downSchema);
    const matrix = await failoverView(rt, name, down);
    const snapshot = await currentSnapshot(rt);
    const service = snapshot.byName.get(name);
    if (!service) throw notFound(`service "${name}"`);
    const now = rt.now();
    const clusters = [...service.clusters].sort((a, b) => a.name.localeCompare(b.name));
    const [buckets, active, routes] = await Promise.all([
      loadEdgeBuckets(db, name, now - SERIES_BUCKETS * SERIES_BUCKET_MS, SERIES_BUCKET_MS),
      listOverrides(db, { service: name, active: { now, active: true }, limit: 1000 }),
      listRoutes(db, name),
    ]);
    const routeLines = await Promise.all(
      routes.map(async (route) => ({
        route,
        automated: Boolean(route.mirror?.ramp || route.canary),
        status: await routeStatus(rt, route),
        observed: await routeObserved(rt, name, route.name),
      })),
    );
    const problem = opts.problem ?? null;
    return page(
      c,
      name,
      sessionOf(c),
      <ServicePage
        session={sessionOf(c)}
        now={now}
        name={name}
        hosts={service.hosts}
        clusters={clusters}
        matrix={matrix}
        down={down}
        series={clusterSeries(
          buckets,
          clusters.map((cl) => cl.name),
          now,
          SERIES_BUCKET_MS,
          SERIES_BUCKETS,
        )}
        seriesMinutes={(SERIES_BUCKETS * SERIES_BUCKET_MS) / 60_000}
        overrides={active.map((o) => viewOverride(o, now))}
        routes={routeLines}
        problem={problem}
        form={opts.form ?? {}}
      />,
      problem?.status ?? 200,
    );
  }

  /** Runs a write; a refusal shows on the service page (nothing written), success goes back to it. */
  async function write(c: Ctx, name: string, form: Record<string, string>, work: () => Promise<unknown>) {
    try {
      await work();
    } catch (error) {
      if (error instanceof Problem) return servicePage(c, name, { problem: error, form });
      throw error;
    }
    return c.redirect(servicePath(name), 303);
  }

  const serviceParam = (c: Ctx) => parseParam('service', c.req.param('service'), nameSchema);

  dash.get('/services/:service', (c) => servicePage(c, serviceParam(c)));

  dash.post('/services/:service/overrides', async (c) => {
    const name = serviceParam(c);
    requireServices(c, [name]);
    requireOverrideScope(c);
    const form = await formFields(c);
    const parsed = overrideInput(name, form);
    if (!parsed.ok) return servicePage(c, name, { problem: parsed.problem, form });
    return write(c, name, form, async () => applied(rt, await createOverride(db, actorOf(c, rt), parsed.input)));
  });

  dash.post('/services/:service/overrides/:id/end', async (c) => {
    const name = serviceParam(c);
    requireServices(c, [name]);
    requireOverrideScope(c);
    const id = c.req.param('id');
    const row = await getOverride(db, id);
    // An override's service never changes: one of another service is not this page's to end.
    if (row && row.service !== name) throw notFound(`override "${id}" of service "${name}"`);
    return write(c, name, {}, async () => applied(rt, await endOverride(db, actorOf(c, rt), id)));
  });

  dash.post('/services/:service/routes/:route/:action{pause|resume}', async (c) => {
    const name = serviceParam(c);
    requireServices(c, [name]);
    requireOverrideScope(c);
    const route = parseParam('route', c.req.param('route'), nameSchema);
    const action = c.req.param('action') === 'pause' ? 'pause' : 'resume';
    return write(c, name, {}, async () => applied(rt, await setAutomation(db, actorOf(c, rt), name, route, action)));
  });

  dash.get('/events', async (c) => {
    const filter = parseParam('query', { service: c.req.query('service'), kind: c.req.query('kind') }, eventsFilter);
    if (filter.service) requireServices(c, [filter.service]);
    const allowed = serviceFilter(c);
    const patterns = servicePatterns(c);
    const [services, events, audit] = await Promise.all([
      listServices(db),
      filter.kind === AUDIT_KIND
        ? null
        : listEvents(db, {
            limit: TIMELINE_LIMIT,
            services: patterns,
            ...(filter.service ? { service: filter.service } : {}),
            ...(filter.kind ? { kind: filter.kind } : {}),
          }),
      filter.kind && filter.kind !== AUDIT_KIND
        ? null
        : listAudit(db, { limit: TIMELINE_LIMIT, services: filter.service ? [filter.service] : patterns }),
    ]);
    return page(
      c,
      'Events and audit',
      sessionOf(c),
      <EventsPage
        now={rt.now()}
        services={services.map((s) => s.name).filter(allowed)}
        service={filter.service}
        kind={filter.kind}
        entries={timeline(events?.entries ?? [], audit?.entries ?? [], TIMELINE_LIMIT)}
      />,
    );
  });

  app.route(DASHBOARD_PATH, dash);
}
