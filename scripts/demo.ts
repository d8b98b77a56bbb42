/**
 * `npm run demo`: three regional clusters on 127.0.0.1, Waymark's Node server in front of them, the
 * clusters registered through the admin API, and commands to paste to watch locality and failover.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync } from 'node:fs';
import { startNodeServer } from '../src/node/server.js';
import { send } from './http-client.js';
import { startUpstream, type Upstream } from './upstream.js';

const REGIONS = [
  { cluster: 'ue1', region: 'us-east1', latitude: 33.2, longitude: -80.0 },
  { cluster: 'ew1', region: 'eu-west1', latitude: 50.4, longitude: 3.8 },
  { cluster: 'as1', region: 'ap-southeast1', latitude: 1.35, longitude: 103.8 },
];
const HOST = 'shop.localhost';
const DB_FILE = '.waymark/demo.db';

const token = process.env.WAYMARK_ADMIN_TOKEN ?? `demo-${randomBytes(12).toString('hex')}`;
for (const suffix of ['', '-wal', '-shm']) rmSync(DB_FILE + suffix, { force: true });

const upstreams = new Map<string, Upstream>();
for (const r of REGIONS) upstreams.set(r.region, await startUpstream(r.cluster, r.region));

const server = await startNodeServer({
  env: {
    ...process.env,
    WAYMARK_DATABASE_URL: `file:${DB_FILE}`,
    WAYMARK_ADMIN_TOKEN: token,
    WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
    WAYMARK_SNAPSHOT_REFRESH_MS: process.env.WAYMARK_SNAPSHOT_REFRESH_MS ?? '1000',
  },
});

const api = `${server.url}/_waymark/api/v1`;
const admin = async (path: string, body: unknown) => {
  const res = await send(`${api}${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`PUT ${path}: ${res.status} ${res.body}`);
};
await admin('/services/shop', { hosts: [HOST] });
for (const r of REGIONS) {
  const upstream = upstreams.get(r.region) as Upstream;
  await admin(`/services/shop/clusters/${r.cluster}`, {
    region: r.region,
    origin: upstream.url,
    latitude: r.latitude,
    longitude: r.longitude,
    labels: { version: 'v1' },
    healthCheck: { path: '/health/ready' },
  });
}

// A small control server so a person can stop and start a region's cluster with curl.
const control = createServer(async (req, res) => {
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
const controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;

const curl = (region: string) =>
  `curl -s -H 'Host: ${HOST}' -H 'x-waymark-client-region: ${region}' ${server.url}/hello -D - -o /dev/null | grep -i x-waymark`;
console.log(`
Waymark demo: ${server.url}  (service "shop" at Host ${HOST}, clusters: ${REGIONS.map((r) => `${r.cluster}=${r.region}`).join(', ')})
Admin token: ${token}

Locality: each client region is served by its own cluster
  ${curl('eu-west1')}
  ${curl('us-east1')}
  ${curl('ap-southeast1')}
  curl -s -H 'Host: ${HOST}' -H 'x-waymark-client-location: 35.7,139.7' ${server.url}/hello      # Tokyo -> nearest region

Failover: stop eu-west1's server, and the same request is answered by the next-nearest cluster (x-waymark-attempts: 2)
  curl -s ${controlUrl}/stop/eu-west1
  ${curl('eu-west1')}
  curl -s ${controlUrl}/start/eu-west1

Admin API
  curl -s -H 'Authorization: Bearer ${token}' ${api}/services/shop
  curl -s -H 'Authorization: Bearer ${token}' '${api}/audit?limit=5'

Ctrl-C stops everything.`);

const stop = async () => {
  control.close();
  await server.close();
  await Promise.all([...upstreams.values()].map((u) => u.stop()));
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
