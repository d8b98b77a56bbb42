import { type LoadReport, type OpenLoopOptions, openLoop } from './load.js';

const SEGMENT_MS = 1_000;

/**
 * load.ts's open loop for as long as a scenario needs, not a fixed duration: a new one-second open loop
 * starts every second whatever the ones before are still waiting for, so a stalled process keeps receiving
 * arrivals at the rate. `stop()` ends the arrivals and answers every segment's report merged.
 */
export function steadyLoad(options: Omit<OpenLoopOptions, 'durationMs'>): { stop(): Promise<LoadReport> } {
  const reports: Promise<LoadReport>[] = [];
  let stopped = false;
  const arrivals = (async () => {
    const start = performance.now();
    for (let i = 0; !stopped; i++) {
      reports.push(openLoop({ ...options, durationMs: SEGMENT_MS }));
      const wait = start + (i + 1) * SEGMENT_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await arrivals;
      return mergeReports(await Promise.all(reports));
    },
  };
}

function mergeReports(all: LoadReport[]): LoadReport {
  const statuses: Record<string, number> = {};
  for (const r of all) for (const [k, n] of Object.entries(r.statuses ?? {})) statuses[k] = (statuses[k] ?? 0) + n;
  return {
    requests: all.reduce((n, r) => n + r.requests, 0),
    gets: all.reduce((n, r) => n + r.gets, 0),
    posts: all.reduce((n, r) => n + r.posts, 0),
    failures: all.flatMap((r) => r.failures),
    latenciesMs: { get: all.flatMap((r) => r.latenciesMs.get), post: all.flatMap((r) => r.latenciesMs.post) },
    postIds: all.flatMap((r) => r.postIds),
    statuses,
  };
}
