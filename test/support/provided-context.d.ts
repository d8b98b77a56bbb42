import 'vitest';

/** What the workerd tests' global setup provides (see test/worker/global-setup.ts). */
declare module 'vitest' {
  export interface ProvidedContext {
    storeUrl: string;
    controlUrl: string;
    upstreams: Record<string, string>;
    /** The protocol-edge origins (test/worker/echo-upstream.ts); `echo`'s `/gzip` answers gzipBase64, the gzip of gzipText. */
    origins: { echo: string; refusing: string; gzipText: string; gzipBase64: string };
  }
}
