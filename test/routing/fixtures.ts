import type { ClusterSpec, ServiceSpec } from '../../src/routing/types.js';

export const AT = {
  'us-east1': { latitude: 33.2, longitude: -80.0 },
  'us-west1': { latitude: 45.6, longitude: -121.2 },
  'eu-west1': { latitude: 50.4, longitude: 3.8 },
  'europe-north1': { latitude: 60.6, longitude: 27.0 },
  'ap-southeast1': { latitude: 1.35, longitude: 103.8 },
  'ap-northeast1': { latitude: 35.7, longitude: 139.7 },
} as const;

export function cluster(name: string, region: keyof typeof AT, extra: Partial<ClusterSpec> = {}): ClusterSpec {
  return { name, region, origin: `https://${name}.internal`, ...AT[region], weight: 100, labels: {}, ...extra };
}

export function service(name: string, clusters: ClusterSpec[], extra: Partial<ServiceSpec> = {}): ServiceSpec {
  return { name, hosts: [`${name}.example.com`], failover: [], clusters, ...extra };
}
