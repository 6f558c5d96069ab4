import { describe, expect, it } from 'vitest';
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import { SETTING_DEFINITIONS, SETTING_NAMES } from './definitions.js';
import { defaultSettingValue, formatSettingValue, lookupSetting, parseBoolText, parseSettingValue } from './parse.js';
import { Settings, changedSettings } from './settings.js';

function errorOf(run: () => unknown): WalshipError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    return error as WalshipError;
  }
  throw new Error('expected an error');
}

describe('memory settings', () => {
  it('reads every memory unit into bytes', () => {
    expect(parseSettingValue('shared_buffers', '128MB')).toBe(128 * 1024 * 1024);
    expect(parseSettingValue('shared_buffers', '1GB')).toBe(1024 ** 3);
    expect(parseSettingValue('shared_buffers', '1TB')).toBe(1024 ** 4);
    expect(parseSettingValue('shared_buffers', '256kB')).toBe(256 * 1024);
    expect(parseSettingValue('wal_segment_size', '16777216B')).toBe(16 * 1024 * 1024);
    expect(parseSettingValue('shared_buffers', ' 64 MB ')).toBe(64 * 1024 * 1024);
  });

  it('reads a bare number in the base unit, as PostgreSQL does', () => {
    // shared_buffers and wal_buffers count 8kB blocks.
    expect(parseSettingValue('shared_buffers', '16384')).toBe(128 * 1024 * 1024);
    expect(parseSettingValue('wal_buffers', '2048')).toBe(16 * 1024 * 1024);
    // wal_segment_size is in bytes, max_wal_size in MB, log_rotation_size in kB.
    expect(parseSettingValue('wal_segment_size', '1048576')).toBe(1024 * 1024);
    expect(parseSettingValue('max_wal_size', '1024')).toBe(1024 ** 3);
    expect(parseSettingValue('log_rotation_size', '10240')).toBe(10 * 1024 * 1024);
  });

  it('rounds fractional input to the base unit', () => {
    expect(parseSettingValue('max_wal_size', '1.5GB')).toBe(1536 * 1024 * 1024);
    expect(parseSettingValue('wal_buffers', '12kB')).toBe(16 * 1024); // 1.5 blocks -> 2
    expect(parseSettingValue('max_wal_size', '2.4')).toBe(2 * 1024 * 1024); // bare fractions round too
  });

  it('keeps -1 as the special value', () => {
    expect(parseSettingValue('max_slot_wal_keep_size', '-1')).toBe(-1);
    expect(parseSettingValue('wal_buffers', '-1')).toBe(-1);
    expect(formatSettingValue('max_slot_wal_keep_size', -1)).toBe('-1');
  });

  it('refuses an unknown unit with the PostgreSQL hint', () => {
    const error = errorOf(() => parseSettingValue('shared_buffers', '12XB'));
    expect(error.code).toBe(ErrorCode.invalidParameter);
    expect(error.message).toBe('invalid value for parameter "shared_buffers": "12XB"');
    expect(error.hint).toBe('Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".');
  });

  it('is case-sensitive about units', () => {
    expect(errorOf(() => parseSettingValue('shared_buffers', '128mb')).hint).toContain('"MB"');
    expect(errorOf(() => parseSettingValue('shared_buffers', '128KB')).hint).toContain('"kB"');
  });

  it('refuses values out of range in base units', () => {
    const error = errorOf(() => parseSettingValue('shared_buffers', '64kB'));
    expect(error.message).toBe('8 8kB is outside the valid range for parameter "shared_buffers" (16 8kB .. 1073741823 8kB)');
  });

  it('requires wal_segment_size to be a power of two from 1MB to 1GB', () => {
    expect(parseSettingValue('wal_segment_size', '1MB')).toBe(1024 * 1024);
    expect(parseSettingValue('wal_segment_size', '1GB')).toBe(1024 ** 3);
    const error = errorOf(() => parseSettingValue('wal_segment_size', '3MB'));
    expect(error.message).toBe('invalid value for parameter "wal_segment_size": "3MB"');
    expect(error.detail).toContain('power of two');
    expect(errorOf(() => parseSettingValue('wal_segment_size', '512kB')).message).toContain('outside the valid range');
    expect(errorOf(() => parseSettingValue('wal_segment_size', '2GB')).message).toContain('outside the valid range');
  });

  it('says when a number is too large for any unit', () => {
    const error = errorOf(() => parseSettingValue('max_wal_size', '1e300TB'));
    expect(error.message).toBe('invalid value for parameter "max_wal_size": "1e300TB"');
  });
});

describe('time settings', () => {
  it('reads every time unit into milliseconds', () => {
    expect(parseSettingValue('wal_sender_timeout', '2000us')).toBe(2);
    expect(parseSettingValue('wal_sender_timeout', '250ms')).toBe(250);
    expect(parseSettingValue('wal_sender_timeout', '3s')).toBe(3000);
    expect(parseSettingValue('wal_sender_timeout', '2min')).toBe(120_000);
    expect(parseSettingValue('wal_sender_timeout', '1h')).toBe(3_600_000);
    expect(parseSettingValue('wal_sender_timeout', '1d')).toBe(86_400_000);
  });

  it('reads a bare number in the base unit', () => {
    expect(parseSettingValue('wal_writer_delay', '200')).toBe(200); // ms
    expect(parseSettingValue('checkpoint_timeout', '300')).toBe(300_000); // s
    expect(parseSettingValue('log_rotation_age', '60')).toBe(3_600_000); // min
  });

  it('rounds to the base unit', () => {
    expect(parseSettingValue('checkpoint_timeout', '30500ms')).toBe(31_000);
    // 1500ms of a setting counted in seconds is 2 s, and below its minimum of 30 s.
    const error = errorOf(() => parseSettingValue('checkpoint_timeout', '1500ms'));
    expect(error.message).toBe('2 s is outside the valid range for parameter "checkpoint_timeout" (30 s .. 86400 s)');
  });

  it('refuses a bad unit with the PostgreSQL hint', () => {
    const error = errorOf(() => parseSettingValue('wal_writer_delay', '5sec'));
    expect(error.message).toBe('invalid value for parameter "wal_writer_delay": "5sec"');
    expect(error.hint).toBe('Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".');
  });

  it('states ranges in the base unit', () => {
    const error = errorOf(() => parseSettingValue('checkpoint_timeout', '10s'));
    expect(error.message).toBe('10 s is outside the valid range for parameter "checkpoint_timeout" (30 s .. 86400 s)');
  });
});

describe('integers, reals, booleans, enums, strings', () => {
  it('reads integers and checks the range', () => {
    expect(parseSettingValue('port', '5433')).toBe(5433);
    expect(parseSettingValue('port', '0x1539')).toBe(5433);
    expect(parseSettingValue('port', '+80')).toBe(80);
    expect(parseSettingValue('port', '010')).toBe(10);
    expect(errorOf(() => parseSettingValue('port', '70000')).message).toBe(
      '70000 is outside the valid range for parameter "port" (1 .. 65535)',
    );
    expect(errorOf(() => parseSettingValue('port', '0')).message).toBe('0 is outside the valid range for parameter "port" (1 .. 65535)');
    const error = errorOf(() => parseSettingValue('port', 'abc'));
    expect(error.message).toBe('invalid value for parameter "port": "abc"');
    expect(error.hint).toBeDefined();
    expect(errorOf(() => parseSettingValue('port', '80MB')).message).toBe('invalid value for parameter "port": "80MB"');
  });

  it('keeps commit_delay in microseconds', () => {
    expect(parseSettingValue('commit_delay', '10')).toBe(10);
    expect(errorOf(() => parseSettingValue('commit_delay', '100001')).message).toBe(
      '100001 us is outside the valid range for parameter "commit_delay" (0 us .. 100000 us)',
    );
  });

  it('reads reals', () => {
    expect(parseSettingValue('checkpoint_completion_target', '0.5')).toBe(0.5);
    expect(parseSettingValue('checkpoint_completion_target', '1')).toBe(1);
    expect(parseSettingValue('checkpoint_completion_target', '.25')).toBe(0.25);
    expect(errorOf(() => parseSettingValue('checkpoint_completion_target', 'half')).message).toBe(
      'parameter "checkpoint_completion_target" requires a numeric value',
    );
    expect(errorOf(() => parseSettingValue('checkpoint_completion_target', '1.5')).message).toBe(
      '1.5 is outside the valid range for parameter "checkpoint_completion_target" (0 .. 1)',
    );
  });

  it('reads booleans as PostgreSQL does, prefixes included', () => {
    for (const text of ['on', 'ON', 'true', 't', 'tr', 'yes', 'y', '1']) expect(parseBoolText(text)).toBe(true);
    for (const text of ['off', 'of', 'OFF', 'false', 'f', 'no', 'n', '0']) expect(parseBoolText(text)).toBe(false);
    for (const text of ['o', '', '2', 'onn', 'enable']) expect(parseBoolText(text)).toBeNull();
    expect(parseSettingValue('fsync', 'off')).toBe(false);
    const error = errorOf(() => parseSettingValue('fsync', 'maybe'));
    expect(error.message).toBe('parameter "fsync" requires a Boolean value');
  });

  it('reads enums ignoring case, with hidden boolean aliases where PostgreSQL has them', () => {
    expect(parseSettingValue('synchronous_commit', 'remote_apply')).toBe('remote_apply');
    expect(parseSettingValue('synchronous_commit', 'LOCAL')).toBe('local');
    expect(parseSettingValue('synchronous_commit', 'true')).toBe('on');
    expect(parseSettingValue('archive_mode', 'always')).toBe('always');
    expect(parseSettingValue('log_min_messages', 'debug1')).toBe('debug1');
    const error = errorOf(() => parseSettingValue('synchronous_commit', 'sometimes'));
    expect(error.message).toBe('invalid value for parameter "synchronous_commit": "sometimes"');
    expect(error.hint).toBe('Available values: off, local, remote_write, on, remote_apply.');
    expect(errorOf(() => parseSettingValue('log_min_messages', 'true')).code).toBe(ErrorCode.invalidParameter);
  });

  it('reads strings and runs their checks', () => {
    expect(parseSettingValue('primary_conninfo', 'host=127.0.0.1 port=5433')).toBe('host=127.0.0.1 port=5433');
    expect(parseSettingValue('primary_slot_name', 'standby_1')).toBe('standby_1');
    expect(errorOf(() => parseSettingValue('primary_slot_name', 'Standby-1')).hint).toContain('lower case letters');
    expect(parseSettingValue('recovery_target_timeline', '3')).toBe('3');
    expect(parseSettingValue('synchronous_standby_names', 'FIRST 1 (s1, s2)')).toBe('FIRST 1 (s1, s2)');
    expect(parseSettingValue('synchronous_standby_names', '')).toBe('');
    const refused = errorOf(() => parseSettingValue('synchronous_standby_names', 'ANY 0 (s1)'));
    expect(refused.code).toBe(ErrorCode.invalidParameter);
    expect(refused.message).toContain('synchronous_standby_names');
    expect(errorOf(() => parseSettingValue('synchronous_standby_names', 'FIRST (s1')).detail).toContain('syntax error');
    expect(errorOf(() => parseSettingValue('recovery_target_timeline', 'newest')).code).toBe(ErrorCode.invalidParameter);
    expect(errorOf(() => parseSettingValue('application_name', 'x'.repeat(64))).code).toBe(ErrorCode.invalidParameter);
  });
});

describe('names', () => {
  it('looks names up ignoring case', () => {
    expect(lookupSetting('Shared_Buffers')).toBe('shared_buffers');
    expect(parseSettingValue('PORT', '6000')).toBe(6000);
  });

  it('refuses unknown names, suggesting a close one', () => {
    const error = errorOf(() => parseSettingValue('foo', '1'));
    expect(error.code).toBe(ErrorCode.unknownSetting);
    expect(error.message).toBe('unrecognized configuration parameter "foo"');
    expect(errorOf(() => lookupSetting('shared_bufers')).hint).toContain('"shared_buffers"');
  });
});

describe('defaults and formatting', () => {
  it('has the documented defaults', () => {
    const settings = Settings.defaults();
    expect(settings.get('port')).toBe(5433);
    expect(settings.get('listen_addresses')).toBe('localhost');
    expect(settings.get('shared_buffers')).toBe(128 * 1024 * 1024);
    expect(settings.get('wal_segment_size')).toBe(16 * 1024 * 1024);
    expect(settings.get('wal_buffers')).toBe(16 * 1024 * 1024);
    expect(settings.get('wal_writer_flush_after')).toBe(1024 * 1024);
    expect(settings.get('checkpoint_timeout')).toBe(300_000);
    expect(settings.get('max_wal_size')).toBe(1024 ** 3);
    expect(settings.get('min_wal_size')).toBe(80 * 1024 * 1024);
    expect(settings.get('synchronous_commit')).toBe('on');
    expect(settings.get('log_rotation_age')).toBe(86_400_000);
    expect(settings.get('log_rotation_size')).toBe(10 * 1024 * 1024);
    expect(settings.get('heartbeat_interval')).toBe(1000);
    expect(settings.get('max_slot_wal_keep_size')).toBe(-1);
    expect(settings.get('recovery_target_timeline')).toBe('latest');
  });

  it('prints values as SHOW does', () => {
    const settings = Settings.defaults();
    expect(settings.text('shared_buffers')).toBe('128MB');
    expect(settings.text('wal_writer_delay')).toBe('200ms');
    expect(settings.text('checkpoint_timeout')).toBe('5min');
    expect(settings.text('autovacuum_naptime')).toBe('1min');
    expect(settings.text('wal_sender_timeout')).toBe('1min');
    expect(settings.text('log_rotation_age')).toBe('1d');
    expect(settings.text('fsync')).toBe('on');
    expect(settings.text('checkpoint_completion_target')).toBe('0.9');
    expect(settings.text('recovery_min_apply_delay')).toBe('0');
    expect(settings.text('max_wal_size')).toBe('1GB');
    expect(formatSettingValue('shared_buffers', 131080 * 1024)).toBe('131080kB');
    expect(formatSettingValue('wal_sender_timeout', 1500)).toBe('1500ms');
  });

  it('round-trips every default through text', () => {
    for (const name of SETTING_NAMES) {
      const value = defaultSettingValue(name);
      expect(parseSettingValue(name, formatSettingValue(name, value)), name).toEqual(value);
    }
  });

  it('round-trips values in every unit', () => {
    const cases: Array<[string, string]> = [
      ['shared_buffers', '1536MB'],
      ['wal_segment_size', '1MB'],
      ['log_rotation_size', '1000kB'],
      ['wal_sender_timeout', '90s'],
      ['log_rotation_age', '2h'],
      ['recovery_min_apply_delay', '3d'],
    ];
    for (const [name, text] of cases) expect(formatSettingValue(name, parseSettingValue(name, text))).toBe(text);
  });

  it('has a description and context for every setting, and defaults inside the ranges', () => {
    for (const name of SETTING_NAMES) {
      const definition = SETTING_DEFINITIONS[name];
      expect(definition.description.length, name).toBeGreaterThan(10);
      if ('min' in definition) {
        expect(definition.default, name).toBeGreaterThanOrEqual(definition.min);
        expect(definition.default, name).toBeLessThanOrEqual(definition.max);
        expect(Number.isInteger(definition.max) || definition.kind === 'real', name).toBe(true);
      }
    }
  });
});

describe('Settings', () => {
  it('builds from entries, later ones winning, and lists what changed', () => {
    const settings = Settings.fromEntries([
      ['port', '6000'],
      ['shared_buffers', '64MB'],
      ['port', '6001'],
    ]);
    expect(settings.get('port')).toBe(6001);
    expect(settings.source('port')).toEqual({ kind: 'override', origin: 'entries' });
    expect(settings.source('fsync')).toEqual({ kind: 'default' });
    expect(changedSettings(Settings.defaults(), settings)).toEqual([
      { name: 'port', context: 'postmaster' },
      { name: 'shared_buffers', context: 'postmaster' },
    ]);
    const rows = settings.rows();
    expect(rows.length).toBe(SETTING_NAMES.length);
    expect(rows.find((row) => row.name === 'password')?.secret).toBe(true);
    expect(rows.find((row) => row.name === 'shared_buffers')).toMatchObject({ text: '64MB', unit: '8kB' });
  });
});
