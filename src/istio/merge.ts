import type { StoredPolicy } from '../routing/policy.js';
import type { FailoverRule, ServiceSubsets } from '../routing/types.js';

/** A stored policy with an import's fields set over it; outlier detection fields merge one by one. */
export function mergePolicy(stored: StoredPolicy, imported: StoredPolicy): StoredPolicy {
  const outlier =
    stored.outlierDetection || imported.outlierDetection
      ? { outlierDetection: { ...stored.outlierDetection, ...imported.outlierDetection } }
      : {};
  return { ...stored, ...imported, ...outlier };
}

/** Stored failover rules with an import's: a rule for the same `from` region is replaced in place, new ones are appended. */
export function mergeFailover(stored: FailoverRule[], imported: FailoverRule[]): FailoverRule[] {
  const merged = stored.map((rule) => imported.find((r) => r.from === rule.from) ?? rule);
  for (const rule of imported) if (!stored.some((r) => r.from === rule.from)) merged.push(rule);
  return merged;
}

/** Stored subsets with a DestinationRule's: a subset of the same name takes the rule's labels, others are kept. */
export function mergeSubsets(stored: ServiceSubsets, imported: ServiceSubsets): ServiceSubsets {
  return { ...stored, ...imported };
}

/** Whether two stored objects say the same, whatever the order of their keys (an import that changes nothing writes nothing). */
export function sameConfig(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
