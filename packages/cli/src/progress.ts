/**
 * Progress lines on stderr (load, bench): redrawn in place on a terminal, or printed as plain
 * lines once a second when --progress forces them onto a pipe or file; --quiet hides them.
 * Nothing here touches stdout, which carries the result (and --json's one document).
 */
import type { CliIo } from './io.js';

/** Redraws at most this often on a terminal: more is flicker, not information. */
const TERMINAL_REDRAW_MS = 100;

/** Lines at most this often when not on a terminal, so a log file stays readable. */
const LINE_INTERVAL_MS = 1000;

export interface ProgressChoice {
  progress?: boolean;
  quiet?: boolean;
}

export class Progress {
  private readonly io: CliIo;
  private readonly enabled: boolean;
  private readonly terminal: boolean;
  private lastDrawMs = 0;
  private drawn = false;

  constructor(io: CliIo, choice: ProgressChoice) {
    this.io = io;
    this.terminal = io.stderr.isTTY === true;
    this.enabled = choice.quiet === true ? false : choice.progress === true || this.terminal;
  }

  /**
   * Whether an update now would be shown. A caller in a hot loop (bench's one call per commit)
   * builds its text only then: formatting it every time was a few percent of the load
   * generator's CPU, for a line drawn ten times a second at most.
   */
  due(): boolean {
    return this.enabled && Date.now() - this.lastDrawMs >= (this.terminal ? TERMINAL_REDRAW_MS : LINE_INTERVAL_MS);
  }

  /** Shows `text` unless the last update was too recent (or `force`). */
  update(text: string, force = false): void {
    if (!this.enabled) return;
    if (!force && !this.due()) return;
    this.lastDrawMs = Date.now();
    if (this.terminal) {
      this.io.stderr.write(`\r\x1b[K${text}`);
      this.drawn = true;
    } else {
      this.io.stderr.write(`${text}\n`);
    }
  }

  /** Clears the line on a terminal, so that what follows starts clean. */
  done(): void {
    if (this.enabled && this.terminal && this.drawn) this.io.stderr.write('\r\x1b[K');
    this.drawn = false;
  }
}
