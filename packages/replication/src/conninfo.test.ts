import { WalshipError } from '@walship/engine/errors';
import { describe, expect, it } from 'vitest';
import { MAX_CONNINFO_BYTES } from './constants.js';
import {
  conninfoConnectTimeoutMs, conninfoHosts, conninfoSslOptions, formatConninfo, parseConninfo, quoteConninfoValue, type ConninfoOptions,
} from './conninfo.js';

function expectError(text: string, message: string): void {
  try {
    parseConninfo(text);
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    expect((error as WalshipError).code).toBe('invalid_parameter_value');
    expect((error as WalshipError).message).toBe(message);
    return;
  }
  throw new Error(`expected "${text}" to be refused`);
}

describe('parseConninfo', () => {
  it('reads keyword=value pairs separated by whitespace', () => {
    expect(parseConninfo('host=127.0.0.1 port=5433 application_name=s1')).toEqual({
      host: '127.0.0.1', port: '5433', application_name: 's1',
    });
  });

  it('allows whitespace around = and at either end', () => {
    expect(parseConninfo('  host = localhost\t\nport=\t5433  ')).toEqual({ host: 'localhost', port: '5433' });
  });

  it('reads single-quoted values with backslash escapes, as libpq', () => {
    expect(parseConninfo("password='it\\'s a \\\\secret' user=walship")).toEqual({ password: "it's a \\secret", user: 'walship' });
    expect(parseConninfo("application_name=''")).toEqual({ application_name: '' });
    expect(parseConninfo("passfile='/tmp/my pass'")).toEqual({ passfile: '/tmp/my pass' });
  });

  it('undoes backslash escapes in bare values too, including an escaped space', () => {
    expect(parseConninfo('password=a\\ b\\\\c user=u')).toEqual({ password: 'a b\\c', user: 'u' });
    expect(parseConninfo('password=trailing\\')).toEqual({ password: 'trailing' });
  });

  it('keeps the last value of a repeated keyword', () => {
    expect(parseConninfo('port=1 port=2')).toEqual({ port: '2' });
  });

  it('accepts every known keyword, dbname included', () => {
    const text = 'host=h port=1 user=u password=p passfile=f application_name=a sslmode=verify-full sslrootcert=r ' +
      'sslcert=c sslkey=k connect_timeout=5 target_session_attrs=read-write dbname=replication';
    expect(Object.keys(parseConninfo(text))).toHaveLength(13);
  });

  it('gives nothing for an empty string', () => {
    expect(parseConninfo('')).toEqual({});
    expect(parseConninfo('   ')).toEqual({});
  });

  it("refuses what libpq refuses, with libpq's messages", () => {
    expectError('host', 'missing "=" after "host" in connection info string');
    expectError('host localhost', 'missing "=" after "host" in connection info string');
    expectError("host='localhost", 'unterminated quoted string in connection info string');
    expectError('hostname=x', 'invalid connection option "hostname"');
    expectError('=x', 'invalid connection option ""');
    expectError('sslmode=sometimes', 'invalid sslmode value: "sometimes"');
    expectError('target_session_attrs=any-old', 'invalid target_session_attrs value: "any-old"');
    expectError('connect_timeout=soon', 'invalid integer value "soon" for connection option "connect_timeout"');
    expectError('port=70000', 'invalid port number: "70000"');
    expectError('port=54x', 'invalid port number: "54x"');
    expectError('host=a,b,c port=1,2', 'could not match 2 port numbers to 3 hosts');
  });

  it('refuses a string longer than MAXCONNINFO', () => {
    expectError(`application_name=${'x'.repeat(MAX_CONNINFO_BYTES)}`, 'connection info string is too long');
  });
});

describe('conninfoHosts and connect_timeout', () => {
  it('pairs hosts with ports; one port applies to all', () => {
    expect(conninfoHosts(parseConninfo('host=a,b port=5433'))).toEqual([{ host: 'a', port: 5433 }, { host: 'b', port: 5433 }]);
    expect(conninfoHosts(parseConninfo('host=a,b port=1,2'))).toEqual([{ host: 'a', port: 1 }, { host: 'b', port: 2 }]);
    expect(conninfoHosts(parseConninfo('host=a'))).toEqual([{ host: 'a', port: null }]);
    expect(conninfoHosts(parseConninfo(''))).toEqual([{ host: '', port: null }]);
  });

  it('reads connect_timeout as libpq: 0 or unset waits forever, under 2 s counts as 2 s', () => {
    expect(conninfoConnectTimeoutMs(parseConninfo(''))).toBeNull();
    expect(conninfoConnectTimeoutMs(parseConninfo('connect_timeout=0'))).toBeNull();
    expect(conninfoConnectTimeoutMs(parseConninfo('connect_timeout=1'))).toBe(2_000);
    expect(conninfoConnectTimeoutMs(parseConninfo('connect_timeout=10'))).toBe(10_000);
  });
});

describe('formatConninfo', () => {
  it('quotes only values that are not plain, as appendConnStrVal', () => {
    expect(quoteConninfoValue('127.0.0.1')).toBe('127.0.0.1');
    expect(quoteConninfoValue('s_1')).toBe('s_1');
    expect(quoteConninfoValue('')).toBe("''");
    expect(quoteConninfoValue('verify-full')).toBe("'verify-full'");
    expect(quoteConninfoValue("it's \\ here")).toBe("'it\\'s \\\\ here'");
  });

  it('round-trips through the parser', () => {
    const options: ConninfoOptions = {
      host: '127.0.0.1', port: '5433', user: 'repl user', password: "p'w\\d", application_name: 'node-2',
      sslmode: 'prefer', passfile: '', sslrootcert: '/etc/ssl/root ca.pem',
    };
    const text = formatConninfo(options);
    expect(text).toBe("host=127.0.0.1 port=5433 user='repl user' password='p\\'w\\\\d' application_name='node-2' " +
      "sslmode=prefer passfile='' sslrootcert='/etc/ssl/root ca.pem'");
    expect(parseConninfo(text)).toEqual(options);
  });

  it('hides the password when asked, as pg_stat_wal_receiver shows it', () => {
    expect(formatConninfo(parseConninfo('host=h password=secret user=u'), { redactPassword: true })).toBe('host=h password=\'********\' user=u');
  });
});

describe('conninfoSslOptions', () => {
  it('gives the replication connection sslmode and sslrootcert, a relative sslrootcert in the data directory', () => {
    expect(conninfoSslOptions(parseConninfo('host=a port=1'), '/data/s1')).toEqual({});
    expect(conninfoSslOptions(parseConninfo('host=a sslmode=verify-full sslrootcert=root.crt'), '/data/s1')).toEqual({ sslmode: 'verify-full', sslrootcert: '/data/s1/root.crt' });
    expect(conninfoSslOptions(parseConninfo("sslmode=verify-ca sslrootcert='/etc/ssl/my ca.pem'"), '/data/s1')).toEqual({ sslmode: 'verify-ca', sslrootcert: '/etc/ssl/my ca.pem' });
    expect(conninfoSslOptions(parseConninfo('sslmode=verify-full sslrootcert=system'), '/data/s1')).toEqual({ sslmode: 'verify-full', sslrootcert: 'system' });
    expect(conninfoSslOptions(parseConninfo("sslmode='' sslrootcert=''"), '/data/s1')).toEqual({});
    expect(conninfoSslOptions(parseConninfo('sslmode=verify-full sslcert=server.crt sslkey=/k/server.key'), '/data/s1')).toEqual({ sslmode: 'verify-full', sslcert: '/data/s1/server.crt', sslkey: '/k/server.key' });
  });
});
