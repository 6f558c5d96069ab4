/**
 * `walship controldata -D DIR [--json]` (pg_controldata): the control file of a data directory:
 * system identifier, cluster state, latest checkpoint and its redo point, timeline, minimum
 * recovery point, page and segment sizes. The engine checks the CRC; a bad one fails with exit 1.
 */
import { readControlFile } from '../adapters.js';
import { ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { formatLsn, formatPairs, printJson } from '../output.js';

export interface ControlDataOptions {
  dataDir: string;
  json?: boolean;
}

/** The control file as JSON: LSNs as "X/X", the system identifier as a decimal string, the state by name. */
export function controlDataJson(data: object, stateName: string): Record<string, unknown> {
  const document: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(data)) {
    if (key === 'state') {
      document.state = stateName;
    } else if (typeof value === 'bigint') {
      document[key] = value.toString();
    } else if (key.endsWith('Lsn') && typeof value === 'number') {
      document[key] = formatLsn(value);
    } else {
      document[key] = value;
    }
  }
  return document;
}

export async function run(options: ControlDataOptions, io: CliIo): Promise<number> {
  const { data, lines, stateName } = await readControlFile(options.dataDir);
  if (options.json === true) printJson(io.stdout, controlDataJson(data, stateName));
  else io.stdout.write(formatPairs(lines));
  return ExitCode.ok;
}
