/**
 * The live view's sparkline of replay lag over the last minutes: each member's figures kept for
 * SPARK_WINDOW_MS, drawn into a fixed number of columns, each column the worst figure of its
 * slice of time. Lags span microseconds to minutes, so the height is logarithmic: a 0.3 ms
 * standby and a 30 s stall both stay readable on one line.
 */

/** How far back the sparkline reaches: long enough to see a stall and its catch-up. */
export const SPARK_WINDOW_MS = 5 * 60_000;

/** Points kept per member: a 100 ms interval over the window, and no more. */
export const SPARK_POINTS_MAX = SPARK_WINDOW_MS / 100;

const BARS = '▁▂▃▄▅▆▇█';
/** A sample with no replay lag because the standby was disconnected: never drawn as "no lag". */
export const SPARK_DISCONNECTED = '!';

interface Point {
  timeMs: number;
  /** Replay lag in ms; null when there was none (idle without heartbeats); Infinity when disconnected. */
  value: number | null;
}

export class SparkHistory {
  private readonly points = new Map<string, Point[]>();

  /** Adds a member's figure at `timeMs`, forgetting what fell out of the window. */
  push(name: string, timeMs: number, value: number | null): void {
    const list = this.points.get(name) ?? [];
    list.push({ timeMs, value });
    let drop = 0;
    while (drop < list.length && (list[drop]!.timeMs < timeMs - SPARK_WINDOW_MS || list.length - drop > SPARK_POINTS_MAX)) drop++;
    if (drop > 0) list.splice(0, drop);
    this.points.set(name, list);
  }

  /** Forgets members no longer shown. */
  retain(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const name of [...this.points.keys()]) if (!keep.has(name)) this.points.delete(name);
  }

  /** `width` columns ending at `nowMs`, oldest on the left; blank where nothing was sampled. */
  render(name: string, width: number, nowMs: number): string {
    return sparkline(this.points.get(name) ?? [], width, nowMs);
  }
}

/** Draws points into `width` columns covering the window that ends at `nowMs`. */
export function sparkline(points: readonly Point[], width: number, nowMs: number): string {
  if (width <= 0) return '';
  const sliceMs = SPARK_WINDOW_MS / width;
  const worst: Array<number | null | undefined> = new Array(width).fill(undefined);
  for (const point of points) {
    const age = nowMs - point.timeMs;
    if (age < 0 || age >= SPARK_WINDOW_MS) continue;
    const column = width - 1 - Math.floor(age / sliceMs);
    const current = worst[column];
    if (point.value === null) {
      if (current === undefined) worst[column] = null;
    } else if (current === undefined || current === null || point.value > current) {
      worst[column] = point.value;
    }
  }
  const finite = worst.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const top = Math.log1p(Math.max(1, ...finite));
  return worst.map((value) => {
    if (value === undefined || value === null) return ' ';
    if (!Number.isFinite(value)) return SPARK_DISCONNECTED;
    const level = Math.min(BARS.length - 1, Math.floor((Math.log1p(Math.max(0, value)) / top) * (BARS.length - 1) + 0.5));
    return BARS[level]!;
  }).join('');
}
