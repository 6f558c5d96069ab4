import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  certificateNames, classifyTlsError, defaultSslRootCert, describeSslFailure, isSslProblem, loadSslRootCerts, parseSslMode, sslAttempts,
  sslVerifiesChain, tlsClientSettings,
} from './ssl-mode.js';

describe('sslmode', () => {
  it('tries what libpq tries, in its order', () => {
    expect(sslAttempts('disable')).toEqual(['plain']);
    expect(sslAttempts('allow')).toEqual(['plain', 'tls']);
    expect(sslAttempts('prefer')).toEqual(['tls', 'plain']);
    for (const mode of ['require', 'verify-ca', 'verify-full'] as const) expect(sslAttempts(mode)).toEqual(['tls']);
  });

  it('checks the value as libpq does', () => {
    expect(parseSslMode('verify-full', 'WALSHIP_SSLMODE')).toBe('verify-full');
    expect(parseSslMode('Verify-Full', 'WALSHIP_SSLMODE')).toMatchObject({ message: 'invalid sslmode value: "Verify-Full"', detail: 'In WALSHIP_SSLMODE.' });
  });

  it('verifies the chain for verify-ca, verify-full, and require with an sslrootcert (libpq)', () => {
    expect(sslVerifiesChain('require', undefined)).toBe(false);
    expect(sslVerifiesChain('require', '/x/root.crt')).toBe(true);
    expect(sslVerifiesChain('verify-ca', undefined)).toBe(true);
    expect(sslVerifiesChain('prefer', '/x/root.crt')).toBe(false);
  });

  it('reads sslrootcert, or says which file is missing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-sslmode-'));
    try {
      writeFileSync(join(dir, 'root.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'empty.crt'), 'nothing here\n');
      expect(loadSslRootCerts({ sslmode: 'require' })).toBeNull();
      expect(loadSslRootCerts({ sslmode: 'verify-ca', sslrootcert: 'system' })).toEqual({ kind: 'system' });
      expect(loadSslRootCerts({ sslmode: 'verify-ca', sslrootcert: join(dir, 'root.crt') })).toMatchObject({ kind: 'file', path: join(dir, 'root.crt') });
      const empty = loadSslRootCerts({ sslmode: 'verify-full', sslrootcert: join(dir, 'empty.crt') });
      expect(isSslProblem(empty) && empty.message).toContain('no PEM certificate found');
      const missing = loadSslRootCerts({ sslmode: 'verify-full', sslrootcert: join(dir, 'missing.crt') });
      expect(isSslProblem(missing) && missing.message).toBe(`could not read root certificate file "${join(dir, 'missing.crt')}": No such file or directory`);
      const fallback = loadSslRootCerts({ sslmode: 'verify-full', sslrootcert: '' });
      if (isSslProblem(fallback)) expect(fallback.message).toBe(`root certificate file "${defaultSslRootCert()}" does not exist`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('checks the host name only for verify-full, against the name given, never sending an address as SNI', () => {
    const cert = { subjectaltname: 'DNS:localhost', subject: { CN: 'localhost' } } as never;
    const full = tlsClientSettings('verify-full', 'localhost', { kind: 'system' });
    expect(full).toMatchObject({ rejectUnauthorized: true, servername: 'localhost' });
    expect(full.checkServerIdentity('127.0.0.1', cert)).toBeUndefined();
    expect(tlsClientSettings('verify-full', '127.0.0.1', { kind: 'system' }).checkServerIdentity('127.0.0.1', cert)).toBeInstanceOf(Error);
    expect(tlsClientSettings('verify-ca', '127.0.0.1', { kind: 'system' }).checkServerIdentity('127.0.0.1', cert)).toBeUndefined();
    expect(tlsClientSettings('require', '127.0.0.1', null)).toMatchObject({ rejectUnauthorized: false });
    expect(tlsClientSettings('require', '127.0.0.1', null).servername).toBeUndefined();
  });

  it('tells what a failed TLS attempt means', () => {
    expect(classifyTlsError(Object.assign(new Error('write EPROTO ...:ssl3_get_record:wrong version number'), { code: 'EPROTO' }))).toBe('server_not_tls');
    expect(classifyTlsError(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }))).toBe('verify_failed');
    expect(classifyTlsError(Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }))).toBe('host_mismatch');
    expect(classifyTlsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeNull();
  });

  it('names the certificate as libpq does, and words each failure with a hint', () => {
    expect(certificateNames({ subjectaltname: 'DNS:localhost, IP Address:127.0.0.1, DNS:db1' } as never)).toBe('"localhost" (and 2 other names)');
    expect(certificateNames({ subjectaltname: 'DNS:localhost' } as never)).toBe('"localhost"');
    const context = { mode: 'verify-full' as const, endpoint: '"127.0.0.2", port 5433', host: '127.0.0.2', roots: null, reason: '"localhost"' };
    expect(describeSslFailure('host_mismatch', context).message).toBe('server certificate for "localhost" does not match host name "127.0.0.2"');
    for (const failure of ['server_not_tls', 'ssl_required', 'verify_failed', 'host_mismatch'] as const) {
      const problem = describeSslFailure(failure, context);
      expect(problem.code).toMatch(/^ssl_/);
      expect(problem.hint).toBeTruthy();
    }
  });
});
