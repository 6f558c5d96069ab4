/**
 * `walship show -D DIR [NAME] [--json]`: the settings of a data directory, read from its
 * walship.conf over the defaults (PostgreSQL's `postgres -C NAME` and SHOW ALL). With NAME it
 * prints only the value; an unknown NAME exits 1.
 */
import { readConfigFile, lookupSetting, type SettingRow, type SettingSource } from '@walship/server/settings/index';
import { CliError, ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { formatTable, printJson } from '../output.js';

export interface ShowOptions {
  dataDir: string;
  name?: string;
  json?: boolean;
}

const MASK = '********';

function sourceText(source: SettingSource): string {
  switch (source.kind) {
    case 'default':
      return 'default';
    case 'file':
      return `walship.conf line ${source.line}`;
    case 'override':
      return source.origin;
  }
}

function rowJson(row: SettingRow, masked: boolean) {
  return {
    name: row.name,
    setting: masked ? MASK : row.text,
    unit: row.unit,
    context: row.context,
    source: row.source.kind,
    sourceLine: row.source.kind === 'file' ? row.source.line : null,
    description: row.description,
  };
}

export async function run(options: ShowOptions, io: CliIo): Promise<number> {
  const settings = readConfigFile(options.dataDir);
  if (options.name !== undefined) {
    let name;
    try {
      name = lookupSetting(options.name);
    } catch (error) {
      const hint = (error as { hint?: string }).hint?.replace('DIR', options.dataDir);
      throw new CliError(ExitCode.failed, (error as Error).message, { hint });
    }
    const row = settings.rows().find((candidate) => candidate.name === name)!;
    if (options.json === true) printJson(io.stdout, rowJson(row, false));
    else io.stdout.write(`${row.text}\n`);
    return ExitCode.ok;
  }
  const rows = settings.rows();
  const hide = (row: SettingRow) => row.secret && row.text !== '';
  if (options.json === true) {
    printJson(io.stdout, { settings: rows.map((row) => rowJson(row, hide(row))) });
    return ExitCode.ok;
  }
  io.stdout.write(
    formatTable(
      ['name', 'setting', 'context', 'source'],
      rows.map((row) => [row.name, hide(row) ? MASK : row.text, row.context, sourceText(row.source)]),
    ),
  );
  return ExitCode.ok;
}
