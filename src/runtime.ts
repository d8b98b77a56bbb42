import type { Context } from 'hono';
import type { TokenGrant } from './api/auth.js';
import { consoleLogger, errorFields, type Logger } from './observe/log.js';
import { compileSnapshot } from './routing/compile.js';
import type { RandomSource } from './routing/types.js';
import type { Settings } from './settings.js';
import type { Store } from './store/client.js';
import { loadSnapshotSource, readRevision } from './store/queries.js';
import { SnapshotCache } from './store/snapshot-cache.js';

/** Everything the app needs, built once per process or isolate by an entry file. */
export interface Runtime {
  settings: Settings;
  store: Store;
  snapshots: SnapshotCache;
  grants: TokenGrant[];
  now: () => number;
  random: RandomSource;
  log: Logger;
  /** The client's address as the host runtime sees it. */
  clientIp: (c: Context) => string | null;
}

export interface RuntimeParts {
  settings: Settings;
  store: Store;
  clientIp: (c: Context) => string | null;
  now?: () => number;
  random?: RandomSource;
  log?: Logger;
}

export function createRuntime(parts: RuntimeParts): Runtime {
  const now = parts.now ?? Date.now;
  const log = parts.log ?? consoleLogger;
  const { db } = parts.store;
  const snapshots = new SnapshotCache({
    readVersion: () => readRevision(db),
    load: async () => compileSnapshot(await loadSnapshotSource(db)),
    refreshMs: parts.settings.WAYMARK_SNAPSHOT_REFRESH_MS,
    now,
    onError: (error) => log.log('error', 'snapshot refresh failed; serving the last good snapshot', errorFields(error)),
  });
  return {
    settings: parts.settings,
    store: parts.store,
    snapshots,
    grants: tokenGrants(parts.settings),
    now,
    random: parts.random ?? Math.random,
    log,
    clientIp: parts.clientIp,
  };
}

function tokenGrants(settings: Settings): TokenGrant[] {
  const grants: TokenGrant[] = [];
  if (settings.WAYMARK_ADMIN_TOKEN) grants.push({ name: 'admin', token: settings.WAYMARK_ADMIN_TOKEN, scopes: ['read', 'write', 'override'] });
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
