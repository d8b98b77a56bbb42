import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, LibsqlError, type Client } from '@libsql/client';
import type { AlertOptions } from '../../src/alerts/dispatcher.js';
import { silentLogger } from '../../src/observe/log.js';
import { seededRandom } from '../../src/routing/random.js';
import { startNodeServer, type NodeServer } from '../../src/node/server.js';
import { storeConfig, storeFromClient } from '../../src/store/client.js';
import { send, type SimpleResponse } from '../../scripts/http-client.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * A libSQL client that counts the statements, batches and transactions it was asked to run, and can be
 * made to fail them all as an unreachable store would.
 */
export function instrumentedClient(client: Client): {
  client: Client;
  count: () => number;
  setDown: (down: boolean) => void;
} {
  let n = 0;
  let down = false;
  const counted = new Set(['execute', 'batch', 'transaction', 'executeMultiple', 'migrate']);
  const proxy = new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (counted.has(String(prop))) {
          n += 1;
          if (down)
            return Promise.reject(new LibsqlError('store unreachable (test): connection refused', 'SERVER_ERROR'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { client: proxy, count: () => n, setDown: (d) => (down = d) };
}

export interface TestServer extends NodeServer {
  /** Store statements run since start. */
  storeQueries: () => number;
  /** Makes every store call fail (true) or work again (false). */
  setStoreDown: (down: boolean) => void;
  /** An admin API call with the admin token (unless `token` says otherwise). */
  admin: (method: string, path: string, body?: unknown, token?: string | null) => Promise<SimpleResponse>;
  /** A proxied request for `host`. */
  request: (
    host: string,
    path?: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string },
  ) => Promise<SimpleResponse>;
  /** Raw access to the database, for assertions. */
  db: Client;
  dir: string;
}

/**
 * Waymark's Node server on port 0 over a fresh libSQL file migrated with the real migrations.
 * Locality headers are trusted so tests can say where a client is.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: {
    now?: () => number;
    alerts?: Partial<AlertOptions>;
    accessLog?: (lines: string[]) => void;
    partialAbove?: number;
  } = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'waymark-test-'));
  const url = env.WAYMARK_DATABASE_URL ?? `file:${join(dir, 'waymark.db')}`;
  const counting = instrumentedClient(createClient(storeConfig(url)));
  const server = await startNodeServer({
    env: {
      WAYMARK_DATABASE_URL: url,
      WAYMARK_ADMIN_TOKEN: ADMIN_TOKEN,
      WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
      WAYMARK_SYNC_INTERVAL_MS: '0',
      PORT: '0',
      ...env,
    },
    store: storeFromClient(counting.client),
    random: seededRandom(42),
    log: silentLogger,
    // Access log lines are dropped unless a test keeps them.
    accessLog: options.accessLog ?? (() => undefined),
    ...(options.now ? { now: options.now } : {}),
    ...(options.alerts ? { alerts: options.alerts } : {}),
    ...(options.partialAbove !== undefined ? { partialAbove: options.partialAbove } : {}),
  });
  const db = createClient({ url });
  return {
    ...server,
    dir,
    db,
    storeQueries: counting.count,
    setStoreDown: counting.setDown,
    admin: (method, path, body, token = ADMIN_TOKEN) =>
      send(`${server.url}/_waymark/api/v1${path}`, {
        method,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    request: (host, path = '/', init = {}) => send(`${server.url}${path}`, { host, ...init }),
    close: async () => {
      await server.close();
      db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
