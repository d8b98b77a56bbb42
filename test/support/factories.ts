/** Coordinates of the regions the tests and the demo use. */
export const REGIONS = {
  'us-east1': { latitude: 33.2, longitude: -80.0 },
  'eu-west1': { latitude: 50.4, longitude: 3.8 },
  'ap-southeast1': { latitude: 1.35, longitude: 103.8 },
} as const;

export type RegionName = keyof typeof REGIONS;

export function serviceBody(hosts: string[] = ['shop.example.com'], failover: { from: string; to: string[] }[] = []) {
  return { hosts, failover, policy: {}, subsets: {} };
}

export function clusterBody(region: RegionName, origin: string, extra: Record<string, unknown> = {}) {
  return {
    region,
    zone: null,
    origin,
    originHost: null,
    ...REGIONS[region],
    weight: 100,
    labels: { version: 'v1' },
    healthCheck: {
      path: '/health/ready',
      expectedStatuses: ['2xx'],
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 2,
    },
    ...extra,
  };
}
