import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import {
  parseConfigText,
  quoteConfigString,
  readConfigFile,
  resetConfigValue,
  setConfigValue,
  setConfigValues,
  settingsFromConfigText,
  unquoteConfigString,
  writeConfigFile,
} from './config-file.js';

function errorOf(run: () => unknown): WalshipError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    return error as WalshipError;
  }
  throw new Error('expected an error');
}

describe('parseConfigText', () => {
  it('reads name = value lines, comments, quotes and the optional =', () => {
    const text = [
      '# a comment',
      '',
      "port = 6000   # trailing comment",
      'shared_buffers 64MB',
      "primary_conninfo = 'host=127.0.0.1 port=5433 application_name=s1'",
      "archive_command = 'cp %p /archive/%f'",
      '   fsync=off',
      'checkpoint_completion_target = .5',
      'max_slot_wal_keep_size = -1',
      "application_name = 'it''s'",
      'synchronous_commit = remote_apply',
      'log_directory = pg_log/sub-dir',
    ].join('\n');
    const lines = parseConfigText(text, '/x/walship.conf');
    expect(lines.map((line) => [line.lineNumber, line.name, line.value])).toEqual([
      [3, 'port', '6000'],
      [4, 'shared_buffers', '64MB'],
      [5, 'primary_conninfo', 'host=127.0.0.1 port=5433 application_name=s1'],
      [6, 'archive_command', 'cp %p /archive/%f'],
      [7, 'fsync', 'off'],
      [8, 'checkpoint_completion_target', '.5'],
      [9, 'max_slot_wal_keep_size', '-1'],
      [10, 'application_name', "it's"],
      [11, 'synchronous_commit', 'remote_apply'],
      [12, 'log_directory', 'pg_log/sub-dir'],
    ]);
    expect(lines[0]!.commentOffset).toBe(14);
  });

  it('names the file, the line and the token of a syntax error', () => {
    expect(errorOf(() => parseConfigText('port = 1\n\nport = 5433 extra\n', '/x/walship.conf')).message).toBe(
      'syntax error in file "/x/walship.conf" line 3, near token "extra"',
    );
    expect(errorOf(() => parseConfigText('port =\n', '/x/walship.conf')).message).toBe(
      'syntax error in file "/x/walship.conf" line 1, near end of line',
    );
    expect(errorOf(() => parseConfigText("archive_command = 'unterminated\n", '/x/walship.conf')).message).toBe(
      `syntax error in file "/x/walship.conf" line 1, near token "'"`,
    );
    expect(errorOf(() => parseConfigText('restore_command = /bin/cp\n', '/x/walship.conf')).message).toBe(
      'syntax error in file "/x/walship.conf" line 1, near token "/"',
    );
    expect(errorOf(() => parseConfigText('= 5\n', '/x/walship.conf')).message).toContain('near token "="');
  });

  it('reads backslash escapes in quoted strings and quotes back', () => {
    expect(unquoteConfigString(String.raw`'a\'b\\c\n\101'`)).toBe("a'b\\c\nA");
    for (const value of ["it's", 'back\\slash', 'two\nlines', '', "'''", 'tab\there']) {
      const quoted = quoteConfigString(value);
      expect(unquoteConfigString(quoted)).toBe(value);
      const [line] = parseConfigText(`archive_command = ${quoted}`, 'f');
      expect(line!.value).toBe(value);
    }
  });
});

describe('settingsFromConfigText', () => {
  it('types values and remembers where they came from; the last line wins', () => {
    const settings = settingsFromConfigText('port = 6000\nshared_buffers = 1GB\nport = 6001\n', '/x/walship.conf');
    expect(settings.get('port')).toBe(6001);
    expect(settings.get('shared_buffers')).toBe(1024 ** 3);
    expect(settings.get('fsync')).toBe(true);
    expect(settings.source('port')).toEqual({ kind: 'file', file: '/x/walship.conf', line: 3 });
  });

  it('refuses unknown names and bad values, naming the line', () => {
    const unknown = errorOf(() => settingsFromConfigText('\nfoo = 1\n', '/x/walship.conf'));
    expect(unknown.code).toBe(ErrorCode.unknownSetting);
    expect(unknown.message).toBe('unrecognized configuration parameter "foo" in file "/x/walship.conf" line 2');
    const bad = errorOf(() => settingsFromConfigText('port = 1\n\nshared_buffers = 12XB\n', '/x/walship.conf'));
    expect(bad.message).toBe('invalid value for parameter "shared_buffers": "12XB"');
    expect(bad.detail).toBe('The value is in file "/x/walship.conf" line 3.');
    expect(bad.hint).toBe('Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".');
  });
});

describe('walship.conf on disk', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = mkdtempSync(join(tmpdir(), 'walship-settings-'));
  });
  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  const confText = () => readFileSync(join(dataDir, 'walship.conf'), 'utf8');

  it('writes a file that reads back, with a commented reference of the rest', () => {
    writeConfigFile(dataDir, [
      ['port', '6000'],
      ['wal_segment_size', '1MB'],
      ['primary_conninfo', "host=127.0.0.1 port=5433 password='x'"],
    ]);
    const text = confText();
    expect(text).toContain('\nport = 6000\n');
    expect(text).toContain('\nwal_segment_size = 1MB\n');
    expect(text).toMatch(/\n#shared_buffers = 128MB +# Sets the number of shared memory buffers/);
    expect(text).not.toMatch(/\n#port = /);
    expect(statSync(join(dataDir, 'walship.conf')).mode & 0o777).toBe(0o600);
    const settings = readConfigFile(dataDir);
    expect(settings.get('port')).toBe(6000);
    expect(settings.get('wal_segment_size')).toBe(1024 * 1024);
    expect(settings.get('primary_conninfo')).toBe("host=127.0.0.1 port=5433 password='x'");
    expect(settings.get('shared_buffers')).toBe(128 * 1024 * 1024);
    expect(readdirSync(dataDir)).toEqual(['walship.conf']); // no temporary file left behind
  });

  it('validates everything before writing anything', () => {
    expect(() => writeConfigFile(dataDir, { port: '6000', shared_buffers: '12XB' })).toThrow(WalshipError);
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('edits one line in place, keeping the others and their comments', () => {
    writeFileSync(join(dataDir, 'walship.conf'), '# mine\nport = 6000  # the port\nfsync = on\n\n# end\n');
    const change = setConfigValue(dataDir, 'PORT', '6001');
    expect(change).toMatchObject({ name: 'port', value: 6001, text: '6001', previous: '6000', context: 'postmaster', restartRequired: true });
    expect(confText()).toBe('# mine\nport = 6001\t# the port\nfsync = on\n\n# end\n');
    expect(readConfigFile(dataDir).get('port')).toBe(6001);
  });

  it('adds a new setting after the last setting line', () => {
    writeFileSync(join(dataDir, 'walship.conf'), '# mine\nport = 6000\n\n# end\n');
    const change = setConfigValue(dataDir, 'synchronous_standby_names', 'FIRST 1 (s1, s2)');
    expect(change).toMatchObject({ previous: null, context: 'sighup', restartRequired: false });
    expect(confText()).toBe("# mine\nport = 6000\nsynchronous_standby_names = 'FIRST 1 (s1, s2)'\n\n# end\n");
  });

  it('adds to a file without setting lines, and sets several at once', () => {
    writeFileSync(join(dataDir, 'walship.conf'), '# only comments\n');
    setConfigValues(dataDir, [
      ['primary_conninfo', 'host=a port=1'],
      ['primary_slot_name', 's1'],
      ['checkpoint_timeout', '90s'],
    ]);
    expect(confText()).toBe("# only comments\nprimary_conninfo = 'host=a port=1'\nprimary_slot_name = 's1'\ncheckpoint_timeout = 90s\n");
    setConfigValue(dataDir, 'checkpoint_timeout', '3600s');
    expect(confText()).toContain('\ncheckpoint_timeout = 1h\n');
  });

  it('rewrites the last of duplicated lines, the one in effect', () => {
    writeFileSync(join(dataDir, 'walship.conf'), 'port = 1\nport = 2\n');
    setConfigValue(dataDir, 'port', '3');
    expect(confText()).toBe('port = 1\nport = 3\n');
  });

  it('refuses bad values, unknown names and settings fixed at init, leaving the file alone', () => {
    const original = 'port = 6000\n';
    writeFileSync(join(dataDir, 'walship.conf'), original);
    expect(errorOf(() => setConfigValue(dataDir, 'shared_buffers', '12XB')).code).toBe(ErrorCode.invalidParameter);
    expect(errorOf(() => setConfigValue(dataDir, 'nonsense', '1')).code).toBe(ErrorCode.unknownSetting);
    const fixed = errorOf(() => setConfigValue(dataDir, 'wal_segment_size', '2MB'));
    expect(fixed.message).toBe('parameter "wal_segment_size" cannot be changed');
    expect(confText()).toBe(original);
  });

  it('resets a setting by removing its lines', () => {
    writeFileSync(join(dataDir, 'walship.conf'), 'port = 1\nfsync = off\nport = 2\n');
    expect(resetConfigValue(dataDir, 'port')).toBe(true);
    expect(confText()).toBe('fsync = off\n');
    expect(resetConfigValue(dataDir, 'port')).toBe(false);
  });

  it('says what to do when walship.conf is missing', () => {
    const error = errorOf(() => readConfigFile(dataDir));
    expect(error.code).toBe(ErrorCode.notADataDirectory);
    expect(error.message).toContain('could not open configuration file');
    expect(error.hint).toContain('walship init');
  });
});
