import type { ServiceSubsets, Subset, SubsetRef } from './types.js';

/**
 * The label selector a route's subset stands for: a selector as it is, a name as the service's subset
 * of that name (Istio's VirtualService `subset` naming a DestinationRule subset), or null when the
 * service defines no subset by that name, which selects no cluster.
 */
export function resolveSubset(ref: SubsetRef, subsets: ServiceSubsets | undefined): Subset | null {
  if (typeof ref !== 'string') return ref;
  return subsets && Object.hasOwn(subsets, ref) ? (subsets[ref] ?? null) : null;
}

/** Whether a cluster's labels carry every label of the selector (an empty selector takes every cluster). */
export function selects(selector: Subset, labels: Readonly<Record<string, string>>): boolean {
  for (const key in selector) if (labels[key] !== selector[key]) return false;
  return true;
}
