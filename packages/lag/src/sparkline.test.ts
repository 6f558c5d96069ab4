import { describe, expect, it } from 'vitest';
import { SPARK_WINDOW_MS, SparkHistory, sparkline } from './sparkline.js';

describe('sparkline', () => {
  it('draws the worst figure of each slice of the window, on a log scale, oldest left', () => {
    const now = 1_000_000;
    const slice = SPARK_WINDOW_MS / 4;
    const points = [
      { timeMs: now - 3.5 * slice, value: 0.5 },
      { timeMs: now - 2.5 * slice, value: 1000 },
      { timeMs: now - 2.4 * slice, value: 10 },
      { timeMs: now - 1.5 * slice, value: null },
      { timeMs: now - 0.5 * slice, value: Number.POSITIVE_INFINITY },
    ];
    expect(sparkline(points, 4, now)).toBe('▁█ !');
    expect(sparkline([], 3, now)).toBe('   ');
    expect(sparkline(points, 0, now)).toBe('');
  });

  it('keeps each member\'s points for the window only', () => {
    const history = new SparkHistory();
    history.push('s1', 0, 5);
    history.push('s1', SPARK_WINDOW_MS + 10, 5);
    expect(history.render('s1', 2, SPARK_WINDOW_MS + 10)).toBe(' █');
    history.retain(['s2']);
    expect(history.render('s1', 2, SPARK_WINDOW_MS + 10)).toBe('  ');
  });
});
