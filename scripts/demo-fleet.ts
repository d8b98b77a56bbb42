/**
 * The demo's fleet, for `npm run demo` (Node) and `npm run dev` (the worker under wrangler dev): three
 * regional clusters of service "shop" on 127.0.0.1, registered through the admin API, a small control
 * server to stop and start a region's cluster with curl, and the commands to paste (curl and the CLI,
 * an incident drill included).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { send } from './http-client.js';
import { startUpstream, type Upstream } from './upstream.js';

const REGIONS = [
  { cluster: 'ue1', region: 'us-east1', latitude: 33.2, longitude: -80.0 },
  { cluster: 'ew1', region: 'eu-west1', latitude: 50.4, longitude: 3.8 },
  { cluster: 'as1', region: 'ap-southeast1', latitude: 1.35, longitude: 103.8 },
];
export const DEMO_HOST = 'shop.localhost';

export interface DemoFleet {
  upstreams: Map<string, Upstream>;
  controlUrl: string;
  stop(): Promise<void>;
}

/** The three upstreams and the control server that stops and starts them (`/stop/<region>`, `/start/<region>`). */
export async function startDemoFleet(): Promise<DemoFleet> {
  const upstreams = new Map<string, Upstream>();
  for (const r of REGIONS) upstreams.set(r.region, await startUpstream(r.cluster, r.region));
  const control: Server = createServer(async (req, res) => {
    const [, action, region] = (req.url ?? '').split('/');
    const upstream = upstreams.get(region ?? '');
    if (!upstream || (action !== 'stop' && action !== 'start')) {
      res.writeHead(404).end('use /stop/<region> or /start/<region>\n');
      return;
    }
    await (action === 'stop' ? upstream.stop() : upstream.start());
    res.writeHead(200).end(`${upstream.name} (${region}) ${action === 'stop' ? 'stopped' : 'started'}\n`);
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  return {
    upstreams,
    controlUrl: `http://127.0.0.1:${(control.address() as AddressInfo).port}`,
    async stop() {
      control.close();
      await Promise.all([...upstreams.values()].map((u) => u.stop()));
    },
  };
}

/** Registers service "shop" and its three clusters through the admin API at `baseUrl`. */
export async function seedDemo(baseUrl: string, token: string, fleet: DemoFleet): Promise<void> {
  const put = async (path: string, body: unknown) => {
    const res = await send(`${baseUrl}/_waymark/api/v1${path}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`PUT ${path}: ${res.status} ${res.body}`);
  };
  await put('/services/shop', { hosts: [DEMO_HOST] });
  for (const r of REGIONS) {
    const upstream = fleet.upstreams.get(r.region) as Upstream;
    await put(`/services/shop/clusters/${r.cluster}`, {
      region: r.region,
      origin: upstream.url,
      latitude: r.latitude,
      longitude: r.longitude,
      labels: { version: 'v1' },
      healthCheck: { path: '/health/ready' },
    });
  }
}

/** What to paste: locality, failover, the admin API, and the CLI's incident drill. */
export function demoInstructions(baseUrl: string, token: string, fleet: DemoFleet): string {
  const api = `${baseUrl}/_waymark/api/v1`;
  const curl = (region: string) =>
    `curl -s -H 'Host: ${DEMO_HOST}' -H 'x-waymark-client-region: ${region}' ${baseUrl}/hello -D - -o /dev/null | grep -i x-waymark`;
  return `
Waymark demo: ${baseUrl}  (service "shop" at Host ${DEMO_HOST}, clusters: ${REGIONS.map((r) => `${r.cluster}=${r.region}`).join(', ')})
Admin token: ${token}

Locality: each client region is served by its own cluster
  ${curl('eu-west1')}
  ${curl('us-east1')}
  ${curl('ap-southeast1')}
  curl -s -H 'Host: ${DEMO_HOST}' -H 'x-waymark-client-location: 35.7,139.7' ${baseUrl}/hello      # Tokyo -> nearest region

Failover: stop eu-west1's server, and the same request is answered by the next-nearest cluster (x-waymark-attempts: 2)
  curl -s ${fleet.controlUrl}/stop/eu-west1
  ${curl('eu-west1')}
  curl -s ${fleet.controlUrl}/start/eu-west1

Admin API (reference: ${baseUrl}/_waymark/docs)
  curl -s -H 'Authorization: Bearer ${token}' ${api}/services/shop
  curl -s -H 'Authorization: Bearer ${token}' '${api}/audit?limit=5'

Incident drill with the CLI (in another terminal of this checkout)
  export WAYMARK_URL=${baseUrl} WAYMARK_TOKEN=${token}
  npx waymark status shop                                                   # where each client region goes
  npx waymark drain shop --region eu-west1 --for 10m --reason "drill: eu-west1 degraded"
  npx waymark status shop                                                   # eu-west1's clients now go elsewhere
  npx waymark events --service shop                                         # what changed, and why
  npx waymark overrides --active                                            # the drain, with its id and expiry
  npx waymark end <override-id> --reason "drill over"
  npx waymark export > waymark.yaml && npx waymark diff -f waymark.yaml     # config as code: no drift

Ctrl-C stops everything.`;
}
