import { createClient, type Client, type Config } from '@libsql/client';
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
  return { url, timeout: FILE_BUSY_TIMEOUT_MS, ...(authToken ? { authToken } : {}) };
}

/**
 * How long a write on a `file:` store waits for another process's write lock (remote stores ignore it).
 * Writes of one process queue behind each other first (store/transaction.ts), so this only ever waits
 * for another process: a failure here would leave the connection unusable (libsql-client-ts#352).
 */
const FILE_BUSY_TIMEOUT_MS = 5_000;

export function storeFromClient(client: Client): Store {
  return { db: drizzle(client, { schema }), client };
}
