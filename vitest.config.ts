import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';

// wrangler reads wrangler.toml for the pool and warns on every read that its `[secrets] required` is
// experimental and unset here (the tests give the worker its settings as bindings): errors only.
process.env.WRANGLER_LOG ??= 'error';

/** Settings the worker under test gets; the store URL comes from the global setup (port 0). */
export const WORKER_TEST_ADMIN_TOKEN = 'workerd-admin-token-0123456789';

export default defineConfig({
  test: {
    // A green run prints only the report; a failed test's console output is still shown.
    silent: 'passed-only',
    projects: [
      {
        test: {
          name: 'node',
          environment: 'node',
          include: ['test/**/*.test.ts'],
          exclude: ['test/worker/**'],
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
      {
        plugins: [
          cloudflareTest(({ inject }) => ({
            wrangler: { configPath: './wrangler.toml' },
            // SELF is the production handlers built with a silent logger (src/worker.ts's createWorker).
            main: './test/worker/entry.ts',
            miniflare: {
              // Real KV (Miniflare's) for the snapshot archive (test/worker/kv-snapshots.test.ts).
              kvNamespaces: ['WAYMARK_SNAPSHOTS'],
              // Miniflare's Analytics Engine dataset (writes are accepted, not kept): test/worker/observability.test.ts.
              analyticsEngineDatasets: { WAYMARK_ANALYTICS: { dataset: 'waymark_requests' } },
              bindings: {
                WAYMARK_DATABASE_URL: inject('storeUrl'),
                WAYMARK_ADMIN_TOKEN: WORKER_TEST_ADMIN_TOKEN,
                WAYMARK_SNAPSHOT_REFRESH_MS: '60000',
                WAYMARK_TRY_TIMEOUT_MS: '1000',
                // The sync coordinator (WAYMARK_SYNC, from wrangler.toml; its class is exported by the entry)
                // must not fire its alarm by itself during a run: its syncs would race the tests' own.
                WAYMARK_SYNC_INTERVAL_MS: '600000',
                // The admin API answers on these hosts only (test/worker/admin-surface.test.ts); the other tests use waymark.test.
                WAYMARK_ADMIN_HOSTS: 'waymark.test,admin.test',
                // Clients seen at these colos are in these zones (test/worker/zones.test.ts).
                WAYMARK_COLO_ZONES: 'DUB:eu-west1-b,AMS:eu-west1-a',
              },
            },
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/worker/**/*.test.ts'],
          globalSetup: ['test/worker/global-setup.ts'],
          // The files share one store and one set of upstreams.
          fileParallelism: false,
          testTimeout: 20_000,
          hookTimeout: 20_000,
        },
      },
    ],
  },
});
