import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';

const VALID_REQUEST_ID = /^[\w\-=.:]{1,128}$/;

/** The client's x-request-id when it is a sane token, else a new one. */
export function requestIdFrom(header: string | null | undefined): string {
  return header && VALID_REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

/** Sets `requestId` for Waymark's own endpoints and echoes it on the answer. */
export const requestIdMiddleware: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = requestIdFrom(c.req.header('x-request-id'));
  c.set('requestId', id);
  await next();
  c.res.headers.set('x-request-id', id);
};
