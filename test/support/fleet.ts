import { startUpstream, type Upstream } from '../../scripts/upstream.js';
import { clusterBody, serviceBody, type RegionName } from './factories.js';
import type { TestServer } from './server.js';

/** One fake cluster per region, registered as service "shop" (host shop.example.com). */
export interface Fleet {
  'us-east1': Upstream;
  'eu-west1': Upstream;
  'ap-southeast1': Upstream;
  all: Upstream[];
  stop(): Promise<void>;
}

const CLUSTER_NAMES: Record<RegionName, string> = {
  'us-east1': 'ue1',
  'eu-west1': 'ew1',
  'ap-southeast1': 'as1',
};

export async function startFleet(): Promise<Fleet> {
  const [ue1, ew1, as1] = await Promise.all([
    startUpstream('ue1', 'us-east1'),
    startUpstream('ew1', 'eu-west1'),
    startUpstream('as1', 'ap-southeast1'),
  ]);
  const all = [ue1, ew1, as1];
  return {
    'us-east1': ue1,
    'eu-west1': ew1,
    'ap-southeast1': as1,
    all,
    stop: async () => void (await Promise.all(all.map((u) => u.stop()))),
  };
}

/** Registers the fleet through the admin API and waits until this server routes with it. */
export async function registerFleet(server: TestServer, fleet: Fleet, host = 'shop.example.com'): Promise<void> {
  const put = await server.admin('PUT', '/services/shop', serviceBody([host]));
  if (put.status >= 300) throw new Error(`service PUT failed: ${put.status} ${put.body}`);
  for (const region of Object.keys(CLUSTER_NAMES) as RegionName[]) {
    const res = await server.admin(
      'PUT',
      `/services/shop/clusters/${CLUSTER_NAMES[region]}`,
      clusterBody(region, fleet[region].url),
    );
    if (res.status >= 300) throw new Error(`cluster PUT failed: ${res.status} ${res.body}`);
  }
  await server.runtime.snapshots.refresh();
}

/** Polls `check` until it returns true, for at most `ms`. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
