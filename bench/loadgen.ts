/**
 * Fallback load generator when wrk is not installed: its own process (started by bench/load.ts with an
 * IPC channel), `connections` keep-alive connections through one node:http Agent, each running requests
 * back to back for the duration. Receives a LoadSpec, answers with a LoadResult.
 */
import { Agent, request } from 'node:http';
import type { LoadResult, LoadSpec } from './load.js';
import { percentile } from './stats.js';

function run(spec: LoadSpec): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections, maxFreeSockets: spec.connections });
  const target = new URL(spec.path, spec.url);
  const headers: Record<string, string> = spec.host ? { host: spec.host } : {};
  const latencies: number[] = [];
  const errors = { connect: 0, read: 0, write: 0, status: 0, timeout: 0 };
  let ok = 0;
  let bad = 0;
  let badSample = '';
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(spec.durationS * 1e9));

  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      const req = request(target, { agent, headers, timeout: 5_000 }, (res) => {
        res.on('data', () => {});
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e3);
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 400) errors.status += 1;
          const good =
            status === 200 &&
            res.headers['x-served-by'] === spec.expectServedBy &&
            (!spec.expectCluster || res.headers['x-waymark-cluster'] === spec.expectCluster);
          if (good) ok += 1;
          else {
            bad += 1;
            badSample ||= `status ${status}, x-served-by ${String(res.headers['x-served-by'])}, x-waymark-cluster ${String(res.headers['x-waymark-cluster'])}`;
          }
          resolve();
        });
        res.on('error', () => {
          errors.read += 1;
          resolve();
        });
      });
      req.on('timeout', () => {
        errors.timeout += 1;
        req.destroy();
      });
      req.on('error', () => {
        errors.connect += 1;
        resolve();
      });
      req.end();
    });

  const loop = async (): Promise<void> => {
    while (process.hrtime.bigint() < deadline) await one();
  };
  return Promise.all(Array.from({ length: spec.connections }, loop)).then(() => {
    const durationS = Number(process.hrtime.bigint() - started) / 1e9;
    agent.destroy();
    latencies.sort((a, b) => a - b);
    const mean = latencies.reduce((s, v) => s + v, 0) / Math.max(1, latencies.length);
    return {
      tool: 'node' as const,
      requests: latencies.length,
      durationS,
      rps: latencies.length / durationS,
      latencyUs: {
        mean,
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies[latencies.length - 1] ?? Number.NaN,
      },
      errors,
      ok,
      bad,
      badSample,
    };
  });
}

process.on('message', (spec: LoadSpec) => {
  void run(spec).then((result) => {
    process.send?.(result);
  });
});
process.on('disconnect', () => process.exit(0));
