import { dbState, type DbState } from '../api/api-support.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/store/client.js';
import { migrateStore } from '../../src/store/migrate.js';
import type { Actor } from '../../src/control/command.js';
import type { ClusterConfig, ServiceConfig } from '../../src/store/services.js';
import { REGIONS, type RegionName } from '../support/factories.js';

export interface TempStore extends Store {
  /** Closes the client and removes the folder. */
  dispose: () => void;
}

/** A fresh libSQL file in its own temp folder, migrated with the real migrations. */
export async function openTempStore(): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'waymark-store-'));
  const store = openStore(`file:${join(dir, 'waymark.db')}`);
  const migrated = await migrateStore(store, { holder: 'test' });
  if (!migrated.ok) throw new Error(migrated.message);
  return {
    ...store,
    dispose: () => {
      store.client.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Row counts of every table a write touches, and the revision: what "changed nothing" compares. */
/** Row counts and the revision, as the API tests read them (one definition: dbState). */
export function storeState(store: Store): Promise<DbState> {
  return dbState(store.client);
}

export function actor(now: number, name = 'alice', requestId = `req-${now}`): Actor {
  return { name, requestId, now };
}

export function serviceConfig(name: string, hosts: string[], failover: ServiceConfig['failover'] = []): ServiceConfig {
  return { name, hosts, failover, policy: {}, subsets: {} };
}

export function clusterConfig(
  service: string,
  name: string,
  region: RegionName,
  extra: Partial<ClusterConfig> = {},
): ClusterConfig {
  return {
    service,
    name,
    region,
    zone: null,
    origin: `https://${name}.${service}.internal`,
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
