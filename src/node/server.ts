import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, type HttpBindings } from '@hono/node-server';
import { migrate } from 'drizzle-orm/libsql/migrator';
import { createApp } from '../app.js';
import { errorFields, type Logger } from '../observe/log.js';
import type { RandomSource } from '../routing/types.js';
import { createRuntime, type Runtime } from '../runtime.js';
import { parseSettings } from '../settings.js';
import { openStore, type Store } from '../store/client.js';

export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface NodeServer {
  url: string;
  port: number;
  runtime: Runtime;
  close(): Promise<void>;
}

export interface NodeServerOptions {
  /** Settings source; process.env for the real server. */
  env: Record<string, string | undefined>;
  /** A store to use instead of opening WAYMARK_DATABASE_URL (tests wrap one to count queries). */
  store?: Store;
  now?: () => number;
  random?: RandomSource;
  log?: Logger;
}

/** Opens the store (creating a file database's folder), applies migrations, loads the snapshot, listens. */
export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const settings = parseSettings(options.env);
  const store = options.store ?? openStore(localPath(settings.WAYMARK_DATABASE_URL), settings.WAYMARK_DATABASE_AUTH_TOKEN);
  await migrate(store.db, { migrationsFolder: MIGRATIONS_FOLDER });
  const runtime = createRuntime({
    settings,
    store,
    clientIp: (c) => (c.env as HttpBindings | undefined)?.incoming.socket.remoteAddress ?? null,
    ...(options.now ? { now: options.now } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  await runtime.snapshots.refresh();
  const app = createApp(runtime);
  const log = (what: string) => (error: unknown) => runtime.log.log('error', `${what} failed`, errorFields(error));
  // The health sync on a timer (a Cron Trigger on Workers); 0 turns it off for this process.
  const syncTimer =
    settings.WAYMARK_SYNC_INTERVAL_MS > 0 ? setInterval(() => void runtime.runSync().catch(log('health sync')), settings.WAYMARK_SYNC_INTERVAL_MS) : null;
  const flushTimer = setInterval(() => {
    if (runtime.reports.due()) void runtime.flushReports();
  }, Math.min(settings.WAYMARK_REPORT_FLUSH_MS, 1_000));
  syncTimer?.unref();
  flushTimer.unref();
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    // Keep the runtime's own Response: proxied answers then leave with a content-length in one write
    // instead of being flushed and streamed chunked (measured in npm run bench).
    const s = serve({ fetch: app.fetch, port: settings.PORT, hostname: settings.HOST, overrideGlobalObjects: false }, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${settings.HOST.includes(':') ? `[${settings.HOST}]` : settings.HOST}:${port}`,
    port,
    runtime,
    close: async () => {
      if (syncTimer) clearInterval(syncTimer);
      clearInterval(flushTimer);
      await new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      });
      if (runtime.reports.pending > 0) await runtime.flushReports();
      store.client.close();
    },
  };
}

/** For a file: database, make sure its folder exists. */
function localPath(url: string): string {
  if (url.startsWith('file:') && !url.startsWith('file::memory:')) {
    const path = url.slice('file:'.length).split('?')[0] as string;
    if (path) mkdirSync(dirname(path), { recursive: true });
  }
  return url;
}
