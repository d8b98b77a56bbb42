import type { Context } from 'hono';
import { AlertDispatcher, DEFAULT_ALERT_OPTIONS, type AlertOptions } from './alerts/dispatcher.js';
import type { Grants, TokenGrant } from './api/auth.js';
import type { ProbeTransport } from './health/probe.js';
import { runHealthSync, type SyncSummary } from './health/sync.js';
import { ReportBuffer } from './observe/edge-reports.js';
import { ProxyMetrics } from './observe/metrics.js';
import { fanOut, type RequestObserver } from './observe/observer.js';
import { RouteSampleBuffer } from './observe/route-samples.js';
import { ConcurrencyLimiter, RateLimiter, RetryBudget } from './proxy/limits.js';
import { consoleLogger, errorFields, type Logger } from './observe/log.js';
import { OutlierDetector } from './routing/outlier.js';
import type { RandomSource } from './routing/types.js';
import type { Settings } from './settings.js';
import type { Store } from './store/client.js';
import { insertEdgeReports } from './store/health.js';
import { insertRouteSamples } from './store/routes.js';
import { findActiveToken } from './store/tokens.js';
import { snapshotPipeline, type SnapshotArchive, type SnapshotCache } from './store/snapshots.js';

/** Everything the app needs, built once per process or isolate by an entry file. */
export interface Runtime {
  settings: Settings;
  store: Store;
  snapshots: SnapshotCache;
  /** Who may use the admin API: the settings' tokens, and the keys in the store. */
  grants: Grants;
  now: () => number;
  random: RandomSource;
  log: Logger;
  /** Set once a graceful stop has begun: ready answers 503 so load balancers move on. */
  lifecycle: { draining: boolean };
  /** Names this isolate or process in edge reports. */
  instanceId: string;
  outliers: OutlierDetector;
  reports: ReportBuffer;
  routeSamples: RouteSampleBuffer;
  retryBudget: RetryBudget;
  concurrency: ConcurrencyLimiter;
  rateLimiter: RateLimiter;
  /** This process's or isolate's Prometheus counters (src/observe/metrics.ts). */
  metrics: ProxyMetrics;
  /** The proxy's one hook: the metrics, then the entry's observers (access log, traces, Analytics Engine). */
  observer: RequestObserver;
  /** Writes pending edge reports to the store (single-flight; failures keep them for the next try). */
  flushReports: () => Promise<void>;
  /**
   * Runs the health sync once (single-flight here; across instances the sync lease decides, and the
   * others skip), then reloads this instance's snapshot. `everyMs`: skip when a sync started anywhere
   * less than that long ago (Node's timers); 0, the default, only skips while another one is running.
   */
  runSync: (options?: { requestId?: string; everyMs?: number }) => Promise<SyncSummary>;
  /** Workers cap simultaneous outbound connections at 6; Node takes the setting as is. */
  probeConcurrency: number;
  /** Delivers alerts to the webhooks: after each sync (never inside it), and the store's outages. */
  alerts: AlertDispatcher;
}

export interface RuntimeParts {
  settings: Settings;
  store: Store;
  now?: () => number;
  random?: RandomSource;
  log?: Logger;
  /** At most this many probes at once whatever the settings say (6 on Workers). */
  maxProbeConcurrency?: number;
  /** How the health sync reaches origins: the runtime's transport (undici on Node, fetch on Workers). */
  transport: ProbeTransport;
  /** Where snapshot sources are kept outside the store (a file on Node, KV on Workers); none by default. */
  archive?: SnapshotArchive;
  /** Keep every loaded source in the archive (a process's own file) rather than only what writers publish. */
  archiveEveryLoad?: boolean;
  /** A cold start over a store with more services than this reads them as requests need them (see PipelineOptions). */
  partialAbove?: number;
  /** What else watches finished requests besides the metrics (access log, trace export, Analytics Engine). */
  observers?: (metrics: ProxyMetrics) => RequestObserver[];
  /** How alerts are delivered (attempts, backoff, timeout); tests shorten them. */
  alerts?: Partial<AlertOptions>;
}

/** A scheduled sync may start this fraction of the interval after the last one anywhere. */
const SYNC_INTERVAL_SLACK = 0.9;

export function createRuntime(parts: RuntimeParts): Runtime {
  const now = parts.now ?? Date.now;
  const log = parts.log ?? consoleLogger(parts.settings.WAYMARK_LOG_LEVEL);
  const { db } = parts.store;
  const outliers = new OutlierDetector(now);
  const metrics = new ProxyMetrics();
  const instanceId = crypto.randomUUID();
  const snapshots = snapshotPipeline(db, {
    now,
    refreshMs: parts.settings.WAYMARK_SNAPSHOT_REFRESH_MS,
    onError: (error) => {
      metrics.storeErrors.inc([]);
      log.log('error', 'snapshot refresh failed; serving the last good snapshot', errorFields(error));
      void alerts.storeFailed();
    },
    onLoad: (snapshot) => outliers.retain(snapshot),
    ...(parts.archive ? { archive: parts.archive, archiveEveryLoad: parts.archiveEveryLoad ?? false } : {}),
    ...(parts.partialAbove !== undefined ? { partialAbove: parts.partialAbove } : {}),
  });
  const alerts = new AlertDispatcher({
    db,
    now,
    log,
    instanceId,
    storeError: () => snapshots.lastError,
    options: { ...DEFAULT_ALERT_OPTIONS, ...parts.alerts },
  });
  const reports = new ReportBuffer(now, parts.settings.WAYMARK_REPORT_FLUSH_MS);
  const probeConcurrency = Math.min(
    parts.settings.WAYMARK_PROBE_CONCURRENCY,
    parts.maxProbeConcurrency ?? Number.POSITIVE_INFINITY,
  );
  const routeSamples = new RouteSampleBuffer();
  const flushReports = singleFlight(async () => {
    const rows = reports.take();
    const samples = routeSamples.take();
    try {
      await Promise.all([
        insertEdgeReports(db, instanceId, now(), rows),
        insertRouteSamples(db, instanceId, now(), samples),
      ]);
    } catch (error) {
      reports.restore(rows);
      routeSamples.restore(samples);
      metrics.storeErrors.inc([]);
      log.log('warn', 'edge report flush failed; keeping them for the next flush', errorFields(error));
    }
  });
  let syncing: Promise<SyncSummary> | null = null;
  const runSync: Runtime['runSync'] = (options = {}) => {
    syncing ??= runHealthSync({
      db,
      snapshots,
      now,
      log,
      probeConcurrency,
      transport: parts.transport,
      holder: instanceId,
      // Timers drift: a run may come a little early and still count as the next interval's.
      minIntervalMs: Math.floor((options.everyMs ?? 0) * SYNC_INTERVAL_SLACK),
      retention: {
        days: parts.settings.WAYMARK_RETENTION_DAYS,
        auditDays: parts.settings.WAYMARK_AUDIT_RETENTION_DAYS,
      },
      ...(options.requestId ? { requestId: options.requestId } : {}),
    })
      .then(async (summary) => {
        await (summary.skipped || !summary.revisionBumped ? snapshots.refresh() : snapshots.refreshAndPublish());
        return summary;
      })
      .finally(() => {
        syncing = null;
        // After the sync has committed its events, and never in its time: the answer does not wait for it.
        void alerts.dispatch();
      });
    return syncing;
  };
  return {
    settings: parts.settings,
    store: parts.store,
    snapshots,
    grants: { settings: tokenGrants(parts.settings), findKey: (hash) => findActiveToken(db, hash, now()) },
    now,
    random: parts.random ?? Math.random,
    log,
    lifecycle: { draining: false },
    instanceId,
    outliers,
    reports,
    routeSamples,
    retryBudget: new RetryBudget(),
    concurrency: new ConcurrencyLimiter(),
    rateLimiter: new RateLimiter(now),
    metrics,
    observer: fanOut([metrics, ...(parts.observers?.(metrics) ?? [])]),
    flushReports,
    runSync,
    probeConcurrency,
    alerts,
  };
}

function singleFlight(work: () => Promise<void>): () => Promise<void> {
  let inflight: Promise<void> | null = null;
  return () => {
    inflight ??= work().finally(() => {
      inflight = null;
    });
    return inflight;
  };
}

/** The admin token may do anything; read tokens only read; on-call tokens read and manage overrides. */
function tokenGrants(settings: Settings): TokenGrant[] {
  const grants: TokenGrant[] = [];
  if (settings.WAYMARK_ADMIN_TOKEN)
    grants.push({ name: 'admin', token: settings.WAYMARK_ADMIN_TOKEN, scopes: ['read', 'write', 'override'] });
  for (const g of settings.WAYMARK_READ_TOKENS) grants.push({ ...g, scopes: ['read'] });
  for (const g of settings.WAYMARK_ONCALL_TOKENS) grants.push({ ...g, scopes: ['read', 'override'] });
  return grants;
}

/** Runs work after the response: waitUntil on Workers; in Node the event loop keeps it alive. */
export function inBackground(c: Context, work: Promise<unknown>): void {
  const settled = work.catch(() => undefined);
  try {
    c.executionCtx.waitUntil(settled);
  } catch {
    // No ExecutionContext outside Workers: nothing more to do, the promise runs on its own.
  }
}
