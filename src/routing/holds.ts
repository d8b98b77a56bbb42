import type { OverrideSpec } from './types.js';

/** What operators' overrides hold of one route: automation frozen, the mirror percent, the canary weight. */
export interface RouteHolds<O extends OverrideSpec> {
  frozen: boolean;
  mirrorPercent: number | null;
  canaryWeight: number | null;
  /** The overrides that hold it. */
  by: O[];
}

/**
 * The overrides in force at `now` that hold `route` of `service`: those naming the route, and a freeze
 * of the whole service. The one rule for compile (values at the edge), automation (what it may move)
 * and the API (a route's status).
 */
export function routeHolds<O extends OverrideSpec>(
  overrides: readonly O[],
  service: string,
  route: string,
  now: number,
): RouteHolds<O> {
  const by = overrides.filter(
    (o) => o.service === service && o.expiresAt > now && (o.route === route || (o.action === 'freeze' && !o.route)),
  );
  const value = (action: OverrideSpec['action']) => by.find((o) => o.action === action)?.value ?? null;
  return {
    frozen: by.some((o) => o.action === 'freeze'),
    mirrorPercent: value('mirror-percent'),
    canaryWeight: value('canary-weight'),
    by,
  };
}
