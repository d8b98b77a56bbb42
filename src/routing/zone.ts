/**
 * A zone name as Istio's locality carries it after the region: `zone` or `zone/subzone`, each part
 * spelt like a region name (lowercase letters, digits and dashes, at most 63 characters).
 */
export const ZONE_NAME = /^[a-z0-9][a-z0-9-]{0,62}(\/[a-z0-9][a-z0-9-]{0,62})?$/;

/** Whether `value` is a zone name (`zone` or `zone/subzone`). */
export function isZoneName(value: string): boolean {
  return ZONE_NAME.test(value);
}

/** The zone part of `zone` or `zone/subzone`. */
export function zoneOf(zone: string): string {
  const slash = zone.indexOf('/');
  return slash < 0 ? zone : zone.slice(0, slash);
}

/**
 * Whether a locality pattern (`region`, `region/zone`, `region/zone/subzone`; `*` or a missing part
 * matches anything, as in Istio's localityLbSetting) covers a client or cluster in `region` and `zone`
 * (`zone` or `zone/subzone`, null: none).
 */
export function localityMatches(pattern: string, region: string, zone: string | null): boolean {
  const [r, z, sub] = pattern.split('/');
  if (r !== undefined && r !== '*' && r !== region) return false;
  const slash = zone === null ? -1 : zone.indexOf('/');
  const ownZone = zone === null ? null : slash < 0 ? zone : zone.slice(0, slash);
  const ownSub = zone === null || slash < 0 ? null : zone.slice(slash + 1);
  if (z !== undefined && z !== '*' && z !== ownZone) return false;
  return sub === undefined || sub === '*' || sub === ownSub;
}

/** The zone (`zone` or `zone/subzone`) a locality pattern names in its region, if any (no wildcards). */
export function patternZone(pattern: string): { region: string; zone: string } | null {
  const [r, z, sub] = pattern.split('/');
  if (r === undefined || r === '*' || z === undefined || z === '*') return null;
  return { region: r, zone: sub === undefined || sub === '*' ? z : `${z}/${sub}` };
}
