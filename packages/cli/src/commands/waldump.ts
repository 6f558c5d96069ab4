/**
 * `walship waldump -D DIR [--start LSN] [--end LSN] [-n N] [--json]` (pg_waldump): the WAL
 * records of a data directory, one line each, read by the engine's WAL reader (which checks every
 * record's CRC and back link). Without --end it reads to the end of valid WAL and says on stderr
 * where and why that was, exiting 0; with --end, WAL that ends before --end is an error (exit 1).
 * --json streams one document: `{"records":[...],"end":{"lsn","reason","endOfFiles"}|null}`.
 */
import type { DumpedRecord, DumpEnd } from '../adapters.js';
import { dumpWal } from '../adapters.js';
import { CliError, ExitCode } from '../cli-error.js';
import { loadToolKeys } from '../encryption.js';
import type { CliIo } from '../io.js';
import { formatLsn } from '../output.js';

export interface WalDumpOptions {
  dataDir: string;
  start?: number;
  end?: number;
  limit?: number;
  json?: boolean;
  /** An encrypted data directory's cluster key file (default: walship.conf's setting). */
  keyFile?: string;
}

/** pg_waldump prints LSNs with the low half zero-padded: `0/01000028`. */
export function formatPaddedLsn(lsn: number): string {
  const text = formatLsn(lsn);
  const [high, low] = text.split('/');
  return `${high}/${low!.padStart(8, '0')}`;
}

/** One record as pg_waldump prints it. */
export function formatRecord(record: DumpedRecord): string {
  // The engine's description already names the block references and full-page images.
  const line =
    `rmgr: ${record.rmgr.padEnd(11)} len (tot): ${String(record.totalLength).padStart(8)}, ` +
    `tx: ${String(record.xid).padStart(10)}, lsn: ${formatPaddedLsn(record.lsn)}, prev ${formatPaddedLsn(record.prevLsn)}, ` +
    `desc: ${record.description}`;
  return line;
}

function recordJson(record: DumpedRecord): Record<string, unknown> {
  return {
    lsn: formatLsn(record.lsn),
    endLsn: formatLsn(record.endLsn),
    prevLsn: formatLsn(record.prevLsn),
    totalLength: record.totalLength,
    xid: record.xid,
    rmgr: record.rmgr,
    description: record.description,
    blocks: record.blocks,
    fullPageImages: record.fullPageImages,
  };
}

export async function run(options: WalDumpOptions, io: CliIo): Promise<number> {
  const json = options.json === true;
  await loadToolKeys(options.dataDir, options.keyFile);
  const records = await dumpWal(options.dataDir, { start: options.start, end: options.end });
  let count = 0;
  let end: DumpEnd | null = null;
  let stoppedByLimit = false;
  if (json) io.stdout.write('{"records":[');
  try {
    for (;;) {
      if (options.limit !== undefined && count >= options.limit) {
        stoppedByLimit = true;
        break;
      }
      const next = records.next();
      if (next.done === true) {
        end = next.value;
        break;
      }
      if (json) io.stdout.write(`${count === 0 ? '\n' : ',\n'}${JSON.stringify(recordJson(next.value))}`);
      else io.stdout.write(`${formatRecord(next.value)}\n`);
      count++;
    }
  } finally {
    if (stoppedByLimit) records.return(null);
  }
  if (json) {
    const endJson = end === null ? null : { lsn: formatLsn(end.lsn), reason: end.error, endOfFiles: end.endOfFiles };
    io.stdout.write(`${count === 0 ? '' : '\n'}],"end":${JSON.stringify(endJson)}}\n`);
  }
  if (end === null) return ExitCode.ok;
  if (options.end !== undefined) {
    throw new CliError(ExitCode.failed, `error in WAL record at ${formatLsn(end.lsn)}: ${end.error}`, {
      detail: `The WAL ends before the requested end ${formatLsn(options.end)}.`,
      hint: 'Give an --end within the WAL that exists, or leave --end out to read to the end of valid WAL.',
    });
  }
  io.stderr.write(`walship: end of WAL at ${formatLsn(end.lsn)}: ${end.error}\n`);
  return ExitCode.ok;
}
