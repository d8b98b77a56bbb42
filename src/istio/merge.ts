import type { StoredPolicy } from '../routing/policy.js';
import type { FailoverRule } from '../routing/types.js';

/** A stored policy with an import's fields set over it; outlier detection fields merge one by one. */
export function mergePolicy(stored: StoredPolicy, imported: StoredPolicy): StoredPolicy {
  const outlier = stored.outlierDetection || imported.outlierDetection ? { outlierDetection: { ...stored.outlierDetection, ...imported.outlierDetection } } : {};
  return { ...stored, ...imported, ...outlier };
}

/** Stored failover rules with an import's: a rule for the same `from` region is replaced in place, new ones are appended. */
export function mergeFailover(stored: FailoverRule[], imported: FailoverRule[]): FailoverRule[] {
  const merged = stored.map((rule) => imported.find((r) => r.from === rule.from) ?? rule);
  for (const rule of imported) if (!stored.some((r) => r.from === rule.from)) merged.push(rule);
  return merged;
}
