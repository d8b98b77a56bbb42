import type { WaymarkProcess } from './procs.js';

/** The regions the chaos scenarios place clusters in, with their coordinates and cluster names. */
export const CHAOS_REGIONS = {
  'us-east1': { cluster: 'ue1', latitude: 33.2, longitude: -80.0 },
  'eu-west1': { cluster: 'ew1', latitude: 50.4, longitude: 3.8 },
  'ap-southeast1': { cluster: 'as1', latitude: 1.35, longitude: 103.8 },
} as const;

export type ChaosRegion = keyof typeof CHAOS_REGIONS;

/** A cluster's PUT body: the region's coordinates, a fast health check on the fake upstream's endpoint. */
export function clusterSpec(region: ChaosRegion, origin: string, extra: Record<string, unknown> = {}) {
  const { latitude, longitude } = CHAOS_REGIONS[region];
  return {
    region,
    origin,
    latitude,
    longitude,
    weight: 100,
    healthCheck: { path: '/health/ready', timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 2 },
    ...extra,
  };
}

/** An admin write that must succeed: throws with the answer otherwise. */
export async function mustWrite(waymark: WaymarkProcess, method: string, path: string, body?: unknown) {
  const res = await waymark.admin(method, path, body);
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${res.text.slice(0, 500)}`);
  return res;
}

/** Polls `check` every `everyMs` until it answers true; throws after `ms`. */
export async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000, everyMs = 100) {
  const deadline = Date.now() + ms;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
