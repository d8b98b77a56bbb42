import { createClient, type Client } from '@libsql/client';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import * as schema from './schema.js';

export type Db = LibSQLDatabase<typeof schema>;

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
  return storeFromClient(createClient(authToken ? { url, authToken } : { url }));
}

export function storeFromClient(client: Client): Store {
  return { db: drizzle(client, { schema }), client };
}
