import type { Scenario } from '../result.js';
import { runVitestRow } from '../vitest-row.js';

/**
 * Scenario 7: the routing core's invariants over random snapshots. The logic is
 * test/chaos/routing-properties.test.ts (also part of `npm test`, at scale 1 with its own seed); here it
 * runs with the chaos seed and, in full mode, five times the runs. No request goes over the network:
 * `requests` are the routing decisions the properties made (`decide` calls), `snapshots` the random
 * snapshots compiled; a violation is a failed property.
 */
const scenario: Scenario = {
  name: '7 routing properties',
  run: (context) => {
    const scale = context.quick ? 1 : 5;
    return runVitestRow(context, {
      scenario: '7 routing properties',
      file: 'test/chaos/routing-properties.test.ts',
      env: { PROPERTY_RUNS_SCALE: String(scale), FUZZ_SEED: String(context.seed) },
      read: (c) => ({ requests: c.decisions ?? 0, details: { snapshots: c.snapshots ?? 0, runsScale: scale } }),
      timeoutMs: context.quick ? 120_000 : 600_000,
    });
  },
};

export default scenario;
