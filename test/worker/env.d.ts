declare namespace Cloudflare {
  interface Env {
    WAYMARK_DATABASE_URL: string;
    WAYMARK_ADMIN_TOKEN: string;
    WAYMARK_SNAPSHOTS: KVNamespace;
    WAYMARK_ANALYTICS: AnalyticsEngineDataset;
    WAYMARK_SYNC: DurableObjectNamespace<import('../../src/sync-coordinator.js').SyncCoordinator>;
  }
}
