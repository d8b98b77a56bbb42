import type { Scenario } from '../result.js';
import { runVitestRow } from '../vitest-row.js';

/**
 * Scenario 5: the admin API fuzzed from its OpenAPI registry. The logic is test/chaos/api-fuzz.test.ts
 * (also part of `npm test`, 30 runs per endpoint with its own seed); here it runs with the chaos seed,
 * 10 runs per endpoint in quick mode (the suite's time budget; `npm test` covers 30) and 200 in full.
 * `requests` are the fuzzed requests sent; a violation is a failed property (a 5xx, a 4xx that is not a
 * problem document or that wrote, a token let through) or any other failed test.
 */
const scenario: Scenario = {
  name: '5 API fuzz',
  run: (context) => {
    const runs = context.quick ? 10 : 200;
    return runVitestRow(context, {
      scenario: '5 API fuzz',
      file: 'test/chaos/api-fuzz.test.ts',
      env: { FUZZ_RUNS: String(runs), FUZZ_SEED: String(context.seed) },
      read: (c) => ({ requests: c.requests ?? 0, details: { runsPerEndpoint: runs } }),
      timeoutMs: context.quick ? 180_000 : 900_000,
    });
  },
};

export default scenario;
