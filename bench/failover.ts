/**
 * `npm run bench:failover`: a steady stream of GETs through Waymark's Node runtime to a service with
 * clusters in three regions; one region's server is stopped mid-run and started again later. Prints
 * requests, client-visible errors, and how long until traffic settled on the new shares and came back.
 * Measures and prints; not a test. Everything runs on 127.0.0.1 and stops by itself.
 *
 * Environment: BENCH_FAILOVER_SECONDS (default 36), BENCH_FAILOVER_RATE requests/s (default 200).
 */
import { Agent } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { send } from '../scripts/http-client.js';
import { startUpstream, type Upstream } from '../scripts/upstream.js';
import { silentLogger } from '../src/observe/log.js';
import { startNodeServer } from '../src/node/server.js';

const SECONDS = Number(process.env.BENCH_FAILOVER_SECONDS ?? 36);
const RATE = Number(process.env.BENCH_FAILOVER_RATE ?? 200);
const STOP_AT_S = SECONDS * (6 / 36);
const START_AT_S = SECONDS * (16 / 36);
const BUCKET_MS = 250;
const TOKEN = 'bench-failover-admin-token-0123';
const HOST = 'shop.bench';
/** Settings for a quick-reacting control plane, stated in the output. */
const SYNC_INTERVAL_MS = 1_000;
const BASE_EJECTION_MS = 5_000;

const REGIONS = [
  { name: 'ue1', region: 'us-east1', latitude: 33.2, longitude: -80.0 },
  { name: 'ew1', region: 'eu-west1', latitude: 50.4, longitude: 3.8 },
  { name: 'as1', region: 'ap-southeast1', latitude: 1.35, longitude: 103.8 },
];
const VICTIM = 'ew1';
const VICTIM_REGION = 'eu-west1';

interface Sample {
  t: number;
  region: string;
  status: number;
  cluster: string;
  attempts: number;
}

const dir = mkdtempSync(join(tmpdir(), 'waymark-bench-failover-'));
const upstreams = new Map<string, Upstream>();
for (const r of REGIONS) upstreams.set(r.name, await startUpstream(r.name, r.region));
const server = await startNodeServer({
  env: {
    WAYMARK_DATABASE_URL: `file:${join(dir, 'waymark.db')}`,
    WAYMARK_ADMIN_TOKEN: TOKEN,
    WAYMARK_TRUST_LOCALITY_HEADERS: 'true',
    WAYMARK_SYNC_INTERVAL_MS: String(SYNC_INTERVAL_MS),
    WAYMARK_SNAPSHOT_REFRESH_MS: '500',
    WAYMARK_TRY_TIMEOUT_MS: '1000',
    WAYMARK_ACCESS_LOG_SAMPLE: '0',
    PORT: '0',
  },
  log: silentLogger,
});
const admin = (path: string, body: unknown) =>
  send(`${server.url}/_waymark/api/v1${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
await admin('/services/shop', { hosts: [HOST], policy: { outlierDetection: { baseEjectionMs: BASE_EJECTION_MS } } });
for (const r of REGIONS) {
  const { name, ...rest } = r;
  await admin(`/services/shop/clusters/${name}`, {
    ...rest,
    origin: (upstreams.get(name) as Upstream).url,
    healthCheck: { path: '/health/ready', timeoutMs: 500, healthyThreshold: 2, unhealthyThreshold: 2 },
  });
}
await server.runtime.snapshots.refresh();

const agent = new Agent({ keepAlive: true, maxSockets: 16 });
const samples: Sample[] = [];
const started = performance.now();
const elapsed = () => (performance.now() - started) / 1000;
const victim = upstreams.get(VICTIM) as Upstream;
const stopTimer = setTimeout(() => void victim.stop(), STOP_AT_S * 1000);
const startTimer = setTimeout(() => void victim.start(), START_AT_S * 1000);

// Open-loop pacing: one request every 1/RATE s, clients spread over the three regions (half in eu-west1).
const inflight = new Set<Promise<void>>();
let sent = 0;
while (elapsed() < SECONDS) {
  const due = Math.floor(elapsed() * RATE);
  while (sent < due) {
    const region = sent % 2 === 0 ? VICTIM_REGION : (REGIONS[(sent >> 1) % 3] as (typeof REGIONS)[number]).region;
    sent += 1;
    const t = elapsed();
    const p = send(`${server.url}/item`, { host: HOST, headers: { 'x-waymark-client-region': region }, agent })
      .then((res) => {
        samples.push({
          t,
          region,
          status: res.status,
          cluster: String(res.headers['x-waymark-cluster'] ?? '-'),
          attempts: Number(res.headers['x-waymark-attempts'] ?? 0),
        });
      })
      .catch(() => {
        samples.push({ t, region, status: 0, cluster: '-', attempts: 0 });
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await new Promise((r) => setTimeout(r, 2));
}
await Promise.all(inflight);
clearTimeout(stopTimer);
clearTimeout(startTimer);

// Analysis: eu-west1 clients per bucket. "Settled" = the first decision no longer picks the stopped
// cluster (served elsewhere with one attempt); "came back" = the restarted cluster serves its region again.
const victimClients = samples.filter((s) => s.region === VICTIM_REGION).sort((a, b) => a.t - b.t);
const buckets = new Map<number, Sample[]>();
for (const s of victimClients) {
  const b = Math.floor((s.t * 1000) / BUCKET_MS);
  buckets.set(b, [...(buckets.get(b) ?? []), s]);
}
const firstBucketAfter = (t: number, ok: (bucket: Sample[]) => boolean): number | null => {
  for (const [b, list] of [...buckets.entries()].sort((x, y) => x[0] - y[0])) {
    if ((b * BUCKET_MS) / 1000 < t || list.length === 0) continue;
    if (ok(list)) return ((b + 1) * BUCKET_MS) / 1000 - t;
  }
  return null;
};
const settled = firstBucketAfter(STOP_AT_S, (l) => l.every((s) => s.cluster !== VICTIM && s.attempts === 1));
const cameBack = firstBucketAfter(START_AT_S, (l) => l.filter((s) => s.cluster === VICTIM).length / l.length >= 0.95);
const errors = samples.filter((s) => s.status !== 200);
const retried = samples.filter((s) => s.attempts > 1).length;
const during = victimClients.filter((s) => s.t >= STOP_AT_S && s.t < START_AT_S);
const servedBy = (list: Sample[]) =>
  Object.entries(
    list.reduce<Record<string, number>>((acc, s) => {
      acc[s.cluster] = (acc[s.cluster] ?? 0) + 1;
      return acc;
    }, {}),
  )
    .map(([k, v]) => `${k} ${((100 * v) / list.length).toFixed(1)}%`)
    .join(', ');

console.log(`Failover benchmark (Node runtime, ${SECONDS} s at ${RATE} GET/s; half the clients in ${VICTIM_REGION})`);
console.log(
  `  control plane: health sync every ${SYNC_INTERVAL_MS / 1000} s, unhealthy/healthy thresholds 2/2, base ejection ${BASE_EJECTION_MS / 1000} s`,
);
console.log(
  `  ${VICTIM} (${VICTIM_REGION}) stopped at ${STOP_AT_S.toFixed(1)} s, started again at ${START_AT_S.toFixed(1)} s`,
);
console.log(`  requests:                 ${samples.length}`);
console.log(
  `  client-visible errors:    ${errors.length}${errors.length ? ` (${[...new Set(errors.map((e) => e.status))].join(', ')})` : ''}`,
);
console.log(`  requests retried inside:  ${retried} (moved to the next cluster within the same request)`);
console.log(
  `  settled on new shares:    ${settled === null ? 'never' : `${settled.toFixed(2)} s after the stop`} (first picks stop going to ${VICTIM})`,
);
console.log(`  ${VICTIM_REGION} clients while down: ${servedBy(during)}`);
console.log(
  `  came back:                ${cameBack === null ? 'not within the run' : `${cameBack.toFixed(2)} s after the restart`} (>= 95% of ${VICTIM_REGION} clients on ${VICTIM} again)`,
);
console.log(`  target: zero client-visible errors for GETs: ${errors.length === 0 ? 'met' : 'MISSED'}`);

agent.destroy();
await server.close();
await Promise.all([...upstreams.values()].map((u) => u.stop()));
rmSync(dir, { recursive: true, force: true });
