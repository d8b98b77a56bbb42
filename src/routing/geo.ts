import type { GeoPoint } from './types.js';

const EARTH_RADIUS_KM = 6371.0088;
const RADIANS_PER_DEGREE = Math.PI / 180;

/** Great-circle distance in kilometres (haversine formula). */
export function distanceKm(a: GeoPoint, b: GeoPoint): number {
  const dLat = (b.lat - a.lat) * RADIANS_PER_DEGREE;
  const dLon = (b.lon - a.lon) * RADIANS_PER_DEGREE;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * RADIANS_PER_DEGREE) * Math.cos(b.lat * RADIANS_PER_DEGREE) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** Parses "lat,lon" (degrees); null when it is not a valid location. */
export function parseGeoPoint(value: string | null | undefined): GeoPoint | null {
  if (!value) return null;
  const comma = value.indexOf(',');
  if (comma < 0) return null;
  return toGeoPoint(value.slice(0, comma), value.slice(comma + 1));
}

/** Builds a location from latitude and longitude given as strings or numbers; null when invalid. */
export function toGeoPoint(lat: unknown, lon: unknown): GeoPoint | null {
  const la = typeof lat === 'number' ? lat : typeof lat === 'string' && lat.trim() !== '' ? Number(lat) : NaN;
  const lo = typeof lon === 'number' ? lon : typeof lon === 'string' && lon.trim() !== '' ? Number(lon) : NaN;
  if (!Number.isFinite(la) || !Number.isFinite(lo) || Math.abs(la) > 90 || Math.abs(lo) > 180) return null;
  return { lat: la, lon: lo };
}
