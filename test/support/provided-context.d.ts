import 'vitest';

/** What the workerd tests' global setup provides (see test/worker/global-setup.ts). */
declare module 'vitest' {
  export interface ProvidedContext {
    storeUrl: string;
    controlUrl: string;
    upstreams: Record<string, string>;
  }
}
