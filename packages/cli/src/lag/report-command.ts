/**
 * `walship lag --report FILE [--html OUT] [--json]`: a recording made with `--record FILE` turned
 * into its summary (p50 / p99 / max per standby) and a terminal chart; with `--html OUT`, also a
 * self-contained HTML page; with `--json`, the summary as one document instead of the text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliError, ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export async function runReport(file: string, options: { html: string | undefined; json: boolean }, io: CliIo): Promise<number> {
  const lag = await import('@walship/lag');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(ExitCode.failed, `could not read recording "${file}": ${(error as Error).message}`, {
      hint: 'Record samples first: walship lag --node HOST:PORT,... --record FILE (stop it with Ctrl-C).',
    });
  }
  const recording = lag.parseRecording(text);
  if (recording.samples === 0) {
    throw new CliError(ExitCode.failed, `"${file}" holds no lag samples`, {
      detail: recording.skippedLines > 0 ? `${recording.skippedLines} lines are not samples of walship lag --record.` : 'The file is empty.',
      hint: 'Record samples with walship lag --node HOST:PORT,... --record FILE.',
    });
  }
  const summary = lag.summarize(recording);
  if (options.html !== undefined) {
    try {
      fs.writeFileSync(options.html, lag.renderHtmlReport(recording, summary, path.basename(file)));
    } catch (error) {
      throw new CliError(ExitCode.failed, `could not write "${options.html}": ${(error as Error).message}`, {
        hint: 'Check that its directory exists and is writable.',
      });
    }
  }
  if (options.json) {
    printJson(io.stdout, {
      file, samples: recording.samples, skippedLines: recording.skippedLines,
      startMs: recording.startMs, endMs: recording.endMs, timelineChanges: recording.timelineChanges,
      standbys: summary, html: options.html ?? null,
    });
  } else {
    const columns = (io.stdout as { columns?: number }).columns ?? 100;
    io.stdout.write(`${lag.renderRecordingReport(recording, summary, { width: columns }).join('\n')}\n`);
    if (options.html !== undefined) io.stderr.write(`wrote ${options.html}\n`);
  }
  return ExitCode.ok;
}
