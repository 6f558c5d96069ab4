/**
 * `walship scan --node HOST:PORT [--prefix P | --start A --end B] [--limit N] [--json]`: entries
 * in key order, fetched page by page so that a large scan never needs one huge reply. Text output
 * is one `KEY<TAB>VALUE` line per entry; --json prints
 * `{"entries":[{"key","value","revision"}],"more":false}`, `more` telling whether --limit cut the
 * list short.
 */
import { usageError, ExitCode } from '../cli-error.js';
import type { ClientEntry } from '../adapters.js';
import { withReadSession, type TargetSessionAttrs } from '../connect.js';
import { resolveDataNodes, type ClusterNodesOptions } from '../cluster-nodes.js';
import type { CliIo } from '../io.js';
import type { NodeAddress } from '../options.js';
import { bytesToText, formatLsn, jsonReplacer } from '../output.js';

export interface ScanOptions extends ClusterNodesOptions {
  node?: NodeAddress[];
  targetSessionAttrs?: TargetSessionAttrs;
  prefix?: string;
  start?: string;
  end?: string;
  limit?: number;
  minLsn?: number;
  minLsnTimeline?: number;
  timeout?: number;
  table?: string;
  json?: boolean;
}

/**
 * Entries asked for per request. Values can be up to 16 MiB, so a page is kept small enough that
 * one reply stays reasonable while a scan of small values still takes few round trips.
 */
const SCAN_PAGE_ENTRIES = 500;

/** The smallest key greater than every key starting with `prefix`; undefined when there is none. */
export function prefixEnd(prefix: Buffer): Buffer | undefined {
  for (let index = prefix.length - 1; index >= 0; index--) {
    if (prefix[index]! < 0xff) {
      const end = Buffer.from(prefix.subarray(0, index + 1));
      end[index] = prefix[index]! + 1;
      return end;
    }
  }
  return undefined;
}

function entryJson(entry: ClientEntry): Record<string, unknown> {
  const key = bytesToText(entry.key);
  const value = bytesToText(entry.value);
  return {
    key: key.text,
    value: value.text,
    revision: formatLsn(entry.revision),
    ...(key.encoding === 'base64' ? { keyEncoding: 'base64' } : {}),
    ...(value.encoding === 'base64' ? { valueEncoding: 'base64' } : {}),
  };
}

export async function run(options: ScanOptions, io: CliIo): Promise<number> {
  if (options.prefix !== undefined && (options.start !== undefined || options.end !== undefined)) {
    throw usageError('--prefix cannot be combined with --start or --end', 'Give either --prefix P, or --start A and/or --end B.');
  }
  let start: Buffer | undefined;
  let end: Buffer | undefined;
  if (options.prefix !== undefined) {
    start = Buffer.from(options.prefix, 'utf8');
    end = prefixEnd(start);
  } else {
    start = options.start === undefined ? undefined : Buffer.from(options.start, 'utf8');
    end = options.end === undefined ? undefined : Buffer.from(options.end, 'utf8');
  }
  if (start !== undefined && end !== undefined && Buffer.compare(start, end) > 0) {
    throw usageError(`--start "${options.start}" sorts after --end "${options.end}"`, 'The range is [start, end): give a start that sorts before the end.');
  }

  const { nodes, io: connectIo } = await resolveDataNodes(options, io);
  return withReadSession(nodes, connectIo, { purpose: 'read', timeoutMs: options.timeout, targetSessionAttrs: options.targetSessionAttrs ?? (options.file === undefined ? 'any' : 'read-write') }, async (client) => {
    const json = options.json === true;
    let remaining = options.limit ?? Number.POSITIVE_INFINITY;
    let more = false;
    let first = true;
    if (json) io.stdout.write('{"entries":[');
    for (;;) {
      const pageLimit = Math.min(remaining, SCAN_PAGE_ENTRIES);
      const page = await client.range({ start, end, limit: pageLimit, table: options.table, minLsn: options.minLsn, minLsnTimeline: options.minLsnTimeline });
      for (const entry of page.entries) {
        if (json) {
          io.stdout.write(`${first ? '\n' : ',\n'}${JSON.stringify(entryJson(entry), jsonReplacer)}`);
        } else {
          io.stdout.write(Buffer.concat([entry.key, Buffer.from('\t'), entry.value, Buffer.from('\n')]));
        }
        first = false;
      }
      remaining -= page.entries.length;
      const last = page.entries.at(-1);
      if (!page.more || last === undefined) break;
      if (remaining <= 0) {
        more = true;
        break;
      }
      // The next page starts just after the last key: the key followed by a zero byte.
      start = Buffer.concat([last.key, Buffer.alloc(1)]);
    }
    if (json) io.stdout.write(`${first ? '' : '\n'}],"more":${more}}\n`);
    else if (more) io.stderr.write(`(more entries; raise --limit to see them)\n`);
    return ExitCode.ok;
  });
}
