/** A cluster's stored origin split for the hot path: `origin + basePath + path` is the upstream URL. */
export interface OriginParts {
  /** scheme://host[:port], no path and no trailing slash. */
  origin: string;
  /** '' for none, else like '/shop' (no trailing slash). */
  basePath: string;
}

const SCHEME_AUTHORITY_REST = /^([a-z][a-z0-9+.-]*:\/\/[^/]*)(.*)$/i;

/**
 * Splits a stored origin (`https://api.internal/shop`, as the admin API normalised it) into the part a
 * connection goes to and the base path upstream paths go under. Plain string work that never throws,
 * done once per snapshot compile, never per request.
 */
export function splitOrigin(stored: string): OriginParts {
  const parts = SCHEME_AUTHORITY_REST.exec(stored);
  if (!parts) return { origin: stored.replace(/\/+$/, ''), basePath: '' };
  // No path: the stored text is the origin (one string kept, not two).
  if (parts[2] === '') return { origin: stored, basePath: '' };
  return { origin: parts[1] ?? '', basePath: (parts[2] ?? '').replace(/\/+$/, '') };
}
