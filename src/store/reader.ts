import type { BatchItem, BatchResponse } from 'drizzle-orm/batch';
import type { Db } from './client.js';
import type { Tx } from './transaction.js';

/** Where reads go: the database, or a command's transaction (which sees its own writes). */
export type Reader = Db | Tx;

/**
 * Runs reads that must agree with each other: in one batch (one round trip, one consistent view) on
 * the database; one after another inside a transaction, which is consistent by itself.
 */
export function readTogether<U extends BatchItem<'sqlite'>, T extends Readonly<[U, ...U[]]>>(
  r: Reader,
  queries: T,
): Promise<BatchResponse<T>> {
  if ('batch' in r) return r.batch(queries);
  return Promise.all(queries) as Promise<BatchResponse<T>>;
}

/** Rows grouped by service, then by a second key (a cluster, a route): no composite string keys. */
export function byServiceThen<R extends { service: string }, V>(
  rows: readonly R[],
  key: (r: R) => string,
  value: (r: R) => V,
): Map<string, Map<string, V>> {
  const out = new Map<string, Map<string, V>>();
  for (const r of rows) {
    let inner = out.get(r.service);
    if (!inner) out.set(r.service, (inner = new Map()));
    inner.set(key(r), value(r));
  }
  return out;
}
