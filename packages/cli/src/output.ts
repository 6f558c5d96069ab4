/**
 * Output helpers: the one JSON document of `--json`, aligned tables, and keys and values (bytes)
 * shown as text.
 */
import type { OutputStream } from './io.js';

/** Prints exactly one JSON document (and a newline) on stdout. */
export function printJson(stdout: OutputStream, document: unknown): void {
  stdout.write(`${JSON.stringify(document, jsonReplacer, 2)}\n`);
}

/** bigint (system identifiers) as decimal strings; Buffers as text. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value !== null && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return bytesToText(Buffer.from((value as { data: number[] }).data)).text;
  }
  return value;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes as UTF-8 text when they are valid UTF-8, else as base64 (and says which). */
export function bytesToText(bytes: Uint8Array): { text: string; encoding: 'utf8' | 'base64' } {
  try {
    return { text: utf8.decode(bytes), encoding: 'utf8' };
  } catch {
    return { text: Buffer.from(bytes).toString('base64'), encoding: 'base64' };
  }
}

/** Rows as aligned columns with a header and a rule, as psql prints a result. */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join(' | ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('-+-');
  return [line(headers), rule, ...rows.map(line)].join('\n') + '\n';
}

/** Label: value lines with the values aligned, as pg_controldata prints. */
export function formatPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...pairs.map(([label]) => label.length + 1));
  return pairs.map(([label, value]) => `${`${label}:`.padEnd(width)}   ${value}`.trimEnd()).join('\n') + '\n';
}

/** Prints an LSN as PostgreSQL does (`%X/%X`). */
export function formatLsn(lsn: number): string {
  const high = Math.floor(lsn / 0x1_0000_0000);
  const low = lsn - high * 0x1_0000_0000;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

/** An LSN field that may already be a string (from a JSON status) or a number. */
export function lsnText(value: unknown): string {
  if (typeof value === 'number') return formatLsn(value);
  if (typeof value === 'string') return value;
  return '';
}
