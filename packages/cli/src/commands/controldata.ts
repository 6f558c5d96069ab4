/**
 * `walship controldata -D DIR [--json]` (pg_controldata): the control file of a data directory:
 * system identifier, cluster state, latest checkpoint and its redo point, timeline, minimum
 * recovery point, page and segment sizes. The engine checks the CRC; a bad one fails with exit 1.
 * The control file is never encrypted (it holds no user data, as in PostgreSQL's TDE patches), so
 * this needs no key; it says whether the data directory is encrypted, and with --key-file checks
 * that the key unwraps its data keys (exit 1 when not).
 */
import { readControlFile } from '../adapters.js';
import { CliError, ExitCode } from '../cli-error.js';
import { loadToolKeys } from '../encryption.js';
import type { CliIo } from '../io.js';
import { formatLsn, formatPairs, printJson } from '../output.js';

export interface ControlDataOptions {
  dataDir: string;
  json?: boolean;
  keyFile?: string;
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
  const { isEncryptedDataDir, KEY_FILE } = await import('@walship/engine/crypto/index');
  const encrypted = isEncryptedDataDir(options.dataDir);
  if (options.keyFile !== undefined) {
    if (!encrypted) throw new CliError(ExitCode.failed, `data directory "${options.dataDir}" is not encrypted`, { hint: 'Leave out --key-file.' });
    await loadToolKeys(options.dataDir, options.keyFile);
  }
  const encryption = encrypted ? `AES-256 (WAL: CTR, pages: XTS; data keys wrapped in ${KEY_FILE})` : 'off';
  const keyCheck = options.keyFile === undefined ? null : 'matches';
  if (options.json === true) {
    printJson(io.stdout, { ...controlDataJson(data, stateName), dataEncryption: encrypted, ...(keyCheck !== null ? { clusterKey: keyCheck } : {}) });
  } else {
    io.stdout.write(formatPairs([...lines, ['Data encryption', encryption], ...(keyCheck !== null ? [['Cluster key', keyCheck] as [string, string]] : [])]));
  }
  return ExitCode.ok;
}
