import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sslConninfoPairs, sslOptionsFromEnv } from './ssl-env.js';

describe('WALSHIP_SSLMODE and WALSHIP_SSLROOTCERT', () => {
  it('are read as libpq reads PGSSLMODE and PGSSLROOTCERT', () => {
    expect(sslOptionsFromEnv({})).toEqual({});
    expect(sslOptionsFromEnv({ WALSHIP_SSLMODE: '', WALSHIP_SSLROOTCERT: '' })).toEqual({});
    expect(sslOptionsFromEnv({ WALSHIP_SSLMODE: 'verify-full', WALSHIP_SSLROOTCERT: 'ca/root.crt' })).toEqual({ sslmode: 'verify-full', sslrootcert: resolve('ca/root.crt') });
    expect(sslOptionsFromEnv({ WALSHIP_SSLROOTCERT: 'system' })).toEqual({ sslrootcert: 'system' });
    expect(sslOptionsFromEnv({ WALSHIP_SSLCERT: 'me.crt', WALSHIP_SSLKEY: '/k/me.key' })).toEqual({ sslcert: resolve('me.crt'), sslkey: '/k/me.key' });
  });

  it('a bad sslmode is a usage error naming the variable', () => {
    expect(() => sslOptionsFromEnv({ WALSHIP_SSLMODE: 'on' })).toThrow('invalid sslmode value: "on"');
    try {
      sslOptionsFromEnv({ WALSHIP_SSLMODE: 'on' });
    } catch (error) {
      expect(error).toMatchObject({ exitCode: 2, detail: 'In WALSHIP_SSLMODE.' });
    }
  });

  it('go into primary_conninfo as pg_basebackup -R writes them', () => {
    const quote = (value: string) => (/^[\w./-]+$/.test(value) ? value : `'${value}'`);
    expect(sslConninfoPairs({}, quote)).toEqual([]);
    expect(sslConninfoPairs({ sslmode: 'verify-full', sslrootcert: '/a b/root.crt' }, quote)).toEqual(['sslmode=verify-full', "sslrootcert='/a b/root.crt'"]);
    expect(sslConninfoPairs({ sslcert: '/c/me.crt', sslkey: '/c/me.key' }, quote)).toEqual(['sslcert=/c/me.crt', 'sslkey=/c/me.key']);
  });
});
