import haversine from 'haversine-distance';

export interface Point {
  latitude: number;
  longitude: number;
  accuracyKm?: number;
}

/** Great-circle distance in km, less both locations' accuracy radii: never overstates travel. */
export function distanceKm(a: Point, b: Point): number {
  const km = haversine({ lat: a.latitude, lon: a.longitude }, { lat: b.latitude, lon: b.longitude }) / 1000;
  return Math.max(0, km - (a.accuracyKm ?? 0) - (b.accuracyKm ?? 0));
}
