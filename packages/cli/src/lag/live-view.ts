/** Placeholder until the live view is built: samples printed one after another. */
import type { CheckThresholds, LagMonitor, LagReport } from '@walship/lag';
import type { CliIo } from '../io.js';

export interface LiveViewOptions {
  intervalMs: number;
  thresholds: CheckThresholds;
  record: ((report: LagReport) => void) | null;
  json: boolean;
}

export async function runLiveView(monitor: LagMonitor, options: LiveViewOptions, io: CliIo): Promise<number> {
  const { renderLagReport } = await import('@walship/lag');
  for (;;) {
    const report = await monitor.sample();
    options.record?.(report);
    io.stdout.write(`${renderLagReport(report, { thresholds: options.thresholds }).join('\n')}\n\n`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}
