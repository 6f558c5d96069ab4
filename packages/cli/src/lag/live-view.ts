/**
 * `walship lag`'s live view: a sample every `--interval`, until Ctrl-C.
 *
 * On a terminal it is full screen: the alternate screen, the cursor hidden, each frame drawn in
 * place from the top-left corner (every line cleared to its end, the rest of the screen below),
 * lines cut to the terminal's width, a sparkline of each standby's replay lag over the last five
 * minutes, rows coloured by `--warn` / `--crit` (no colours with NO_COLOR). Ctrl-C (SIGINT),
 * SIGTERM, or any failure restores the terminal: normal screen, cursor shown. A resized
 * terminal is redrawn at once.
 *
 * Not on a terminal (a pipe, a log file, TERM=dumb), each sample is printed as a plain block
 * after the previous one, without escape codes.
 *
 * It keeps running through anything the cluster does: members that do not answer are marked, a
 * new primary is found by the monitor (highest timeline), and the timeline change is shown.
 */
import type { CheckThresholds, LagReport } from '@walship/lag';
import type { CliIo } from '../io.js';

export interface LiveViewOptions {
  intervalMs: number;
  thresholds: CheckThresholds;
  record: ((report: LagReport) => void) | null;
  /** Lines drawn under the table, asked again for every frame (npm start's load figures). */
  footer?: (() => readonly string[]) | undefined;
  /** Each report, once drawn (npm start's load follows the primary with it). */
  onReport?: ((report: LagReport) => void) | undefined;
}

/** What a caller running the view in-process adds: its own Ctrl-C (`signal`), footer lines and each report. */
export interface LiveViewExtras {
  signal?: AbortSignal;
  footer?: () => readonly string[];
  onReport?: (report: LagReport) => void;
}

/** What the view samples (a LagMonitor). */
export interface Sampler {
  sample(): Promise<LagReport>;
}

export interface LiveViewControl {
  /** Ends the view (tests); in use, SIGINT and SIGTERM do. */
  signal?: AbortSignal;
  /** Terminal size; in use, read from stdout. */
  size?: () => { columns: number; rows: number };
}

/** The sparkline's width: five minutes at 10 s a column. */
export const SPARK_COLUMNS = 30;

export const ESC = {
  enterAlternateScreen: '\u001b[?1049h',
  leaveAlternateScreen: '\u001b[?1049l',
  hideCursor: '\u001b[?25l',
  showCursor: '\u001b[?25h',
  home: '\u001b[H',
  clearToEndOfLine: '\u001b[K',
  clearBelow: '\u001b[J',
} as const;

/** How the view draws, from the environment: full screen on a capable terminal, colours unless NO_COLOR. */
export function viewMode(io: CliIo): { fullScreen: boolean; color: boolean } {
  const fullScreen = io.stdout.isTTY === true && io.env.TERM !== 'dumb';
  // no-color.org: NO_COLOR present and not empty turns colours off.
  const noColor = io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '';
  return { fullScreen, color: fullScreen && !noColor };
}

/** `text` cut to `width` visible characters, escape codes kept (and a reset after a cut). */
export function fitToWidth(text: string, width: number): string {
  let visible = 0;
  let out = '';
  let cut = false;
  for (let i = 0; i < text.length; ) {
    if (text[i] === '\u001b') {
      const end = text.indexOf('m', i);
      if (end > 0) {
        out += text.slice(i, end + 1);
        i = end + 1;
        continue;
      }
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    if (visible >= width) {
      cut = true;
      break;
    }
    out += char;
    visible++;
    i += char.length;
  }
  return cut && out.includes('\u001b[') ? `${out}\u001b[0m` : out;
}

/**
 * One full-screen frame: home, each line cut to the width and cleared to its end, at most
 * `rows - 1` lines (the last row stays free, so the terminal never scrolls), the rest cleared.
 */
export function composeFrame(lines: readonly string[], size: { columns: number; rows: number }): string {
  const shown = lines.slice(0, Math.max(1, size.rows - 1));
  return ESC.home + shown.map((line) => `${fitToWidth(line, size.columns)}${ESC.clearToEndOfLine}`).join('\r\n') + `\r\n${ESC.clearBelow}`;
}

/** Resolves after `ms` or when `signal` aborts, whichever comes first. */
function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
}

/** `promise`'s value, or null as soon as `signal` aborts (the promise is then left to settle alone). */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | null> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      resolve(null);
      return;
    }
    const onAbort = () => resolve(null);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Runs the view until the signal (or Ctrl-C); returns the exit status (0). */
export async function runLiveView(sampler: Sampler, options: LiveViewOptions, io: CliIo, control: LiveViewControl = {}): Promise<number> {
  const lag = await import('@walship/lag');
  const { fullScreen, color } = viewMode(io);
  const stdout = io.stdout as CliIo['stdout'] & { columns?: number; rows?: number; on?: (event: string, listener: () => void) => unknown; off?: (event: string, listener: () => void) => unknown };
  const size = control.size ?? (() => ({ columns: stdout.columns ?? 120, rows: stdout.rows ?? 40 }));
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  control.signal?.addEventListener('abort', onSignal, { once: true });
  const ownSignals = control.signal === undefined;
  if (ownSignals) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const sparks = new lag.SparkHistory();
  let last: LagReport | null = null;

  const frameLines = (report: LagReport): string[] => {
    const sparklines = new Map<string, string>();
    if (fullScreen) for (const member of report.members) if (member.role === 'standby') sparklines.set(member.name, sparks.render(member.name, SPARK_COLUMNS, report.timeMs));
    const lines = lag.renderLagReport(report, { thresholds: options.thresholds, paint: color ? lag.ANSI_PAINT : lag.PLAIN, ...(fullScreen ? { sparklines } : {}) });
    return lines;
  };
  const footer = (paint: typeof lag.PLAIN) =>
    paint('dim', `refresh every ${lag.formatDuration(options.intervalMs)} · members that do not answer are marked · Ctrl-C to quit`);
  const extraLines = (): readonly string[] => {
    const lines = options.footer?.() ?? [];
    return lines.length === 0 ? [] : ['', ...lines];
  };
  const draw = () => {
    if (last === null || !fullScreen) return;
    io.stdout.write(composeFrame([...frameLines(last), ...extraLines(), '', footer(color ? lag.ANSI_PAINT : lag.PLAIN)], size()));
  };
  const onResize = () => draw();

  if (fullScreen) {
    io.stdout.write(ESC.enterAlternateScreen + ESC.hideCursor);
    stdout.on?.('resize', onResize);
  }
  try {
    while (!stop.signal.aborted) {
      const started = Date.now();
      // Ctrl-C while a sample waits on a member that does not answer ends the view at once.
      const report = await unlessAborted(sampler.sample(), stop.signal);
      if (report === null || stop.signal.aborted) break;
      options.record?.(report);
      for (const member of report.members) {
        if (member.role === 'standby') sparks.push(member.name, report.timeMs, member.state === 'disconnected' ? Number.POSITIVE_INFINITY : member.replayLagMs);
      }
      sparks.retain(report.members.map((member) => member.name));
      last = report;
      if (fullScreen) draw();
      else io.stdout.write(`${[...frameLines(report), ...extraLines()].join('\n')}\n\n`);
      options.onReport?.(report);
      await waitOrAbort(started + options.intervalMs - Date.now(), stop.signal);
    }
  } finally {
    if (fullScreen) {
      stdout.off?.('resize', onResize);
      io.stdout.write(ESC.showCursor + ESC.leaveAlternateScreen);
    }
    if (ownSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  return 0;
}
