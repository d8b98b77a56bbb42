import { DurableObject } from 'cloudflare:workers';
import type { SyncSummary } from './health/sync.js';
import { describeError, errorFields } from './observe/log.js';
import type { Runtime } from './runtime.js';
import type { Env } from './worker-env.js';

/** The one coordinator instance (`idFromName`): one writer for the whole deployment. */
export const SYNC_COORDINATOR_NAME = 'sync';

/** Where the coordinator keeps when its last sync started (epoch ms), in its own storage. */
const LAST_SYNC_AT_MS_KEY = 'lastSyncAtMs';

/** What a wake did: ran the sync (which may have failed), or nothing, as one ran within the interval. */
export type WakeOutcome =
  | { outcome: 'synced'; summary: SyncSummary }
  | { outcome: 'failed'; error: string }
  | { outcome: 'skipped'; lastSyncAt: string };

/** The coordinator's RPC surface, as the Cron Trigger sees it through the WAYMARK_SYNC binding. */
interface SyncCoordinatorRpc {
  wake(): Promise<WakeOutcome>;
}

/**
 * The Durable Object class that runs the health sync on Workers, as the single writer: its alarm fires
 * every WAYMARK_SYNC_INTERVAL_MS, runs the sync and sets the next alarm, failed or not. The Cron Trigger
 * is the backstop: `wake` sets the alarm if it is missing and syncs only if the last sync is older than
 * the interval. With an interval of 0 no alarm is set and every wake syncs. The store lease still guards
 * against overlap with anyone else. `runtimeFor` builds the runtime from the bindings as the Worker does
 * (undefined when they are invalid; it has logged why).
 */
export function defineSyncCoordinator(runtimeFor: (env: Env) => Runtime | undefined) {
  return class SyncCoordinator extends DurableObject<Env> implements SyncCoordinatorRpc {
    #runtime: Runtime | undefined;

    override async alarm(): Promise<void> {
      const runtime = this.#runtimeOnce();
      if (!runtime) return;
      await this.#sync(runtime, Date.now());
      // The next alarm comes whatever this sync did: one failure must not stop the chain.
      await this.#schedule(runtime, true);
    }

    async wake(): Promise<WakeOutcome> {
      const runtime = this.#runtimeOnce();
      if (!runtime) return { outcome: 'failed', error: 'waymark is misconfigured (see the log)' };
      await this.#schedule(runtime, false);
      const now = Date.now();
      const last = await this.ctx.storage.get<number>(LAST_SYNC_AT_MS_KEY);
      if (last !== undefined && now - last < runtime.settings.WAYMARK_SYNC_INTERVAL_MS)
        return { outcome: 'skipped', lastSyncAt: new Date(last).toISOString() };
      return this.#sync(runtime, now);
    }

    #runtimeOnce(): Runtime | undefined {
      this.#runtime ??= runtimeFor(this.env);
      return this.#runtime;
    }

    /** Sets the next alarm an interval from now: always (after an alarm), or only when none is set. */
    async #schedule(runtime: Runtime, replace: boolean): Promise<void> {
      const intervalMs = runtime.settings.WAYMARK_SYNC_INTERVAL_MS;
      if (intervalMs <= 0) return;
      if (!replace && (await this.ctx.storage.getAlarm()) !== null) return;
      await this.ctx.storage.setAlarm(Date.now() + intervalMs);
    }

    async #sync(runtime: Runtime, startedAt: number): Promise<WakeOutcome> {
      // Recorded before the sync starts: a wake that arrives while it runs sees it and skips.
      await this.ctx.storage.put(LAST_SYNC_AT_MS_KEY, startedAt);
      try {
        await runtime.flushReports();
        const summary = await runtime.runSync();
        runtime.log.log('info', 'health sync', { ...summary });
        // After the sync's write, in the alarm's own time: the sync never waits for a webhook.
        await runtime.alerts.dispatch();
        return { outcome: 'synced', summary };
      } catch (error) {
        runtime.log.log('error', 'health sync failed', errorFields(error));
        return { outcome: 'failed', error: describeError(error) };
      }
    }
  };
}

/** An instance of the coordinator class, for typing its namespace and stubs. */
export type SyncCoordinator = InstanceType<ReturnType<typeof defineSyncCoordinator>>;
