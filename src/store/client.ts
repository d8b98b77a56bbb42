import { createClient, LibsqlError, type Client, type Config } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import * as schema from './schema.js';

export type Db = LibSQLDatabase<typeof schema> & { $client: Client };

/** The global store: drizzle over a libSQL client. */
export interface Store {
  db: Db;
  client: Client;
}

/**
 * Opens the store. `@libsql/client` resolves to its web build inside workerd (libsql:// and https://
 * over HTTP) and to its native build in Node (which also opens file: databases), so this one function
 * serves both runtimes.
 */
export function openStore(url: string, authToken?: string): Store {
  return storeFromClient(createClient(storeConfig(url, authToken)));
}

/** How Waymark opens a libSQL client (for whoever wraps one, as tests do). */
export function storeConfig(url: string, authToken?: string): Config {
  const remote = !url.startsWith('file:');
  return {
    url,
    timeout: FILE_NATIVE_BUSY_TIMEOUT_MS,
    ...(authToken ? { authToken } : {}),
    ...(remote ? { fetch: storeFetch } : {}),
  };
}

/**
 * How long one HTTP request to a remote store (one Hrana pipeline: a query, a batch, a transaction's
 * step) may take, answer body included. Without a bound, a store that accepts connections and never
 * answers (a stuck server, or a kept-alive connection a middlebox dropped silently) held every caller
 * until TCP gave up, many minutes later: the snapshot refresh (single-flight, so no refresh at all
 * meanwhile), every admin write queued behind the first, and a cold start that waits for its first
 * refresh before it listens. Found by `npm run chaos` (scenario 2).
 */
export const STORE_REQUEST_TIMEOUT_MS = 10_000;

/**
 * The remote store's fetch: bounded by STORE_REQUEST_TIMEOUT_MS, and a request that could not be made
 * (connection refused or reset, DNS, the timeout) fails as a LibsqlError (`STORE_UNREACHABLE`), as the
 * client's own server errors do. The client passes fetch errors through as they are (a bare TypeError),
 * which the admin API then could not tell from a bug: a 500 rather than a 503 `store-unavailable`.
 */
async function storeFetch(request: Request): Promise<Response> {
  try {
    const response = await fetch(request, { signal: AbortSignal.timeout(STORE_REQUEST_TIMEOUT_MS) });
    // Read here, under the same deadline: a body that stops halfway fails as unreachable too.
    const body = await response.arrayBuffer();
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  } catch (error) {
    const what =
      error instanceof Error
        ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}`
        : String(error);
    throw new LibsqlError(
      `the store could not be reached (${what})`,
      'STORE_UNREACHABLE',
      undefined,
      undefined,
      error instanceof Error ? error : undefined,
    );
  }
}

/**
 * How long a write on a `file:` store waits for another process's write lock, in all: tried again
 * asynchronously (store/transaction.ts), never in SQLite's busy handler. Writes of one process queue
 * behind each other first, so this only ever waits for another process.
 */
export const FILE_BUSY_WAIT_MS = 5_000;

/**
 * SQLite's own busy wait on a `file:` store: a few milliseconds, as libSQL's calls are synchronous and a
 * longer wait would block the thread that proxies (remote stores ignore it).
 */
const FILE_NATIVE_BUSY_TIMEOUT_MS = 20;

export function storeFromClient(client: Client): Store {
  return { db: drizzle(client, { schema }), client };
}
