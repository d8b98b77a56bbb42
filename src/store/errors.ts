/** The libSQL error code somewhere in the cause chain (drizzle wraps driver errors); null if none. */
export function storeErrorCode(error: unknown): string | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (e.name === 'LibsqlError' || code.startsWith('SQLITE_'))) return code;
  }
  return null;
}

/** Whether another writer held the database's write lock (another process on the same file, or sqld). */
export function isBusyError(error: unknown): boolean {
  const code = storeErrorCode(error);
  return code !== null && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}
