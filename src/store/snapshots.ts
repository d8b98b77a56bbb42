import { describeError } from '../observe/log.js';
import type { Snapshot } from '../routing/types.js';

export interface SnapshotCacheOptions {
  /** The store's current revision: one cheap query. */
  readVersion: () => Promise<number>;
  /** Loads and compiles the snapshot at the store's current revision. */
  load: () => Promise<Snapshot>;
  /** Rebuilds a snapshot for a later time from what it was compiled from (no store query). */
  rebuild: (snapshot: Snapshot, now: number) => Snapshot;
  refreshMs: number;
  now: () => number;
  onError: (error: unknown) => void;
}

/**
 * The routing snapshot held in memory by an isolate or process.
 *
 * Stale-while-revalidate: once loaded, the hot path always gets the snapshot at once; at most every
 * `refreshMs` a request starts a background version check (single-flight), which reloads only when
 * the revision moved. An override that expires is dropped in memory at once. Store errors keep the
 * last good snapshot serving.
 */
export class SnapshotCache {
  #current: Snapshot | null = null;
  #checkedAt = Number.NEGATIVE_INFINITY;
  #inflight: Promise<void> | null = null;
  #lastError: { at: number; message: string } | null = null;

  constructor(private readonly options: SnapshotCacheOptions) {}

  get current(): Snapshot | null {
    return this.#current;
  }

  get lastError(): { at: number; message: string } | null {
    return this.#lastError;
  }

  /** When the last version check ended, successful or not. */
  get checkedAt(): number {
    return this.#checkedAt;
  }

  /**
   * The snapshot to route with. Waits for the store only when nothing is loaded yet; otherwise hands a
   * due refresh to `background` (waitUntil on Workers) and answers with what it has.
   */
  async get(background: (work: Promise<unknown>) => void): Promise<Snapshot | null> {
    const loaded = this.peek(background);
    if (loaded) return loaded;
    await this.refresh();
    return this.#current;
  }

  /**
   * The loaded snapshot without waiting (null when none is loaded yet): the hot path's form of `get`,
   * with no promise to settle per request.
   */
  peek(background: (work: Promise<unknown>) => void): Snapshot | null {
    const now = this.options.now();
    // An override in the snapshot just expired: rebuild in memory so this very request is routed without it.
    if (this.#current && now >= this.#current.validUntil) this.#current = this.options.rebuild(this.#current, now);
    if (this.#current && now - this.#checkedAt >= this.options.refreshMs) background(this.refresh());
    return this.#current;
  }

  /** Checks the store's revision and reloads when it moved. Concurrent calls share one check. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#refresh().finally(() => {
      this.#inflight = null;
    });
    return this.#inflight;
  }

  async #refresh(): Promise<void> {
    try {
      const version = await this.options.readVersion();
      if (!this.#current || version !== this.#current.version) this.#current = await this.options.load();
      this.#lastError = null;
    } catch (error) {
      this.#lastError = { at: this.options.now(), message: describeError(error) };
      this.options.onError(error);
    } finally {
      this.#checkedAt = this.options.now();
    }
  }
}
