import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  certificateNames, classifyTlsError, connectBySslMode, defaultSslRootCert, SslErrorCode, describeSslFailure, isSslProblem, loadSslRootCerts, parseSslMode, sslAttempts,
  sslVerifiesChain, tlsAttemptFailure, tlsClientSettings, upgradeRefusalFailure,
} from './ssl-mode.js';

/** A CA certificate made once by @walship/server's make-certificates.ts (a fixture: only parsed here). */
const FIXTURE_CA = [
  '-----BEGIN CERTIFICATE-----',
  'MIIDEDCCAfigAwIBAgIQfARc/pT+epXfMS0DikGxVjANBgkqhkiG9w0BAQsFADAi',
  'MSAwHgYDVQQDExd3YWxzaGlwIHRlc3QgZml4dHVyZSBDQTAeFw0yNjExMjExMjM5',
  'MDVaFw0zNjExMTgxMjQwMDVaMCIxIDAeBgNVBAMTF3dhbHNoaXAgdGVzdCBmaXh0',
  'dXJlIENBMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxOt+j7rLRhgT',
  'yVSm6kH9vJoco/yDu5z6fSQEoRkc4+sQm7oyYzyUPQmIvqu8+pScCw0LruFdYrGC',
  'hZxqEloYYT3lFMwXsVQFw0CBQynhrA8a3ljXTphAzWmIl/gbOWuqlVuigH6DmdFB',
  'tAca72WwBVdapfPyoB8lluUFkcGhUXheQ30c+K1u9Y7B/bPZ2jt66/7o1ZUsRU2L',
  'ldsypGK4udGmo7jDuHQUEP50orwckzOmfi89hTWsrxoFgQCXkTulDDgH6w4+EKxA',
  'AH6TowSYocBTKbdehMb8pKr/W33v4d8kYFDXJARWJVP9/aHPywHeD8464LWBGK3x',
  'f0Uuto9BFwIDAQABo0IwQDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIB',
  'BjAdBgNVHQ4EFgQUd2/xayb2YObxk4I2cXxBLC86unIwDQYJKoZIhvcNAQELBQAD',
  'ggEBAGOeR3h3F6mSzv8JEtL5rss8c1E2vn7j8U2j7PU9506QhZthxJFGBPFm6qlk',
  'RtLx+jfYKFIHSW+iVspi3p1GXJmW1hh+f6RVS8A2ucaV6O/bOj10tN/XvVDTOQ2d',
  'a7blLm+n4qDzqDFsVL/MZLatVyi3EdocEgQPGy0Z2u5ugKr64Iwf98mR7LwrZS5M',
  'o8006H4XnQDCNzYqGK7GHb/d0pxKCPHDz2FguzquEazYfR99IYuw6088fTYW3IQv',
  'T+Vr9uR6lIWQf/bYi+nyx0zp7vQwku/DCurrMQfNPyH2BGwg5Brbcod+bJFQID/q',
  'ybSDpMchDKOIqnP8r0AmPmqzXtk=',
  '-----END CERTIFICATE-----',
].join('\n');

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
      writeFileSync(join(dir, 'root.crt'), FIXTURE_CA);
      writeFileSync(join(dir, 'damaged.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'empty.crt'), 'nothing here\n');
      expect(loadSslRootCerts({ sslmode: 'require' })).toBeNull();
      expect(loadSslRootCerts({ sslmode: 'verify-ca', sslrootcert: 'system' })).toEqual({ kind: 'system' });
      expect(loadSslRootCerts({ sslmode: 'verify-ca', sslrootcert: join(dir, 'root.crt') })).toMatchObject({ kind: 'file', path: join(dir, 'root.crt') });
      const damaged = loadSslRootCerts({ sslmode: 'verify-ca', sslrootcert: join(dir, 'damaged.crt') });
      expect(isSslProblem(damaged) && damaged.message).toContain(`could not read root certificate file "${join(dir, 'damaged.crt')}": `);
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

  it('falls back to the other kind only when the first attempt met a node of the other kind', async () => {
    const kinds: string[] = [];
    const otherKind = (): Promise<string> => Promise.reject(Object.assign(new Error('other kind'), { code: SslErrorCode.notSupported }));
    const result = await connectBySslMode({ host: 'localhost', sslmode: 'prefer' }, (problem) => new Error(problem.message), (tls) => {
      kinds.push(tls === null ? 'plain' : 'tls');
      return kinds.length === 1 ? otherKind() : Promise.resolve('connected');
    });
    expect(result).toBe('connected');
    expect(kinds).toEqual(['tls', 'plain']);

    const refused = Object.assign(new Error('password authentication failed'), { code: '28P01' });
    let calls = 0;
    await expect(connectBySslMode({ host: 'localhost', sslmode: 'prefer' }, (problem) => new Error(problem.message), () => {
      calls++;
      return Promise.reject(refused);
    })).rejects.toBe(refused);
    expect(calls).toBe(1);

    calls = 0;
    await expect(connectBySslMode({ host: 'localhost', sslmode: 'allow' }, (problem) => new Error(problem.message), () => {
      calls++;
      return otherKind();
    }, () => false)).rejects.toMatchObject({ code: SslErrorCode.notSupported });
    expect(calls).toBe(1);

    await expect(connectBySslMode({ host: 'localhost', sslmode: 'require', sslrootcert: '/nonexistent/root.crt' }, (problem) => new Error(`problem: ${problem.message}`), () => {
      throw new Error('must not be attempted');
    })).rejects.toThrow(/^problem: /);
  });

  it('tells what a failed TLS attempt means', () => {
    expect(classifyTlsError(Object.assign(new Error('write EPROTO ...:ssl3_get_record:wrong version number'), { code: 'EPROTO' }))).toBe('server_not_tls');
    expect(classifyTlsError(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }))).toBe('verify_failed');
    expect(classifyTlsError(Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }))).toBe('host_mismatch');
    expect(classifyTlsError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBeNull();
  });

  it('reads a refused upgrade and a socket error as the TLS failure they are, or as none', () => {
    expect(upgradeRefusalFailure({ statusCode: 426, headers: {} }, false)).toEqual({ failure: 'ssl_required' });
    const refused = { statusCode: 403, headers: { 'x-walship-client-certificate-error': 'certificate has expired' } };
    expect(upgradeRefusalFailure(refused, true)).toEqual({ failure: 'client_certificate_refused', reason: 'certificate has expired' });
    expect(upgradeRefusalFailure(refused, false)).toBeNull();
    expect(upgradeRefusalFailure({ statusCode: 403, headers: {} }, true)).toBeNull();
    expect(upgradeRefusalFailure({ statusCode: 404, headers: {} }, true)).toBeNull();
    const selfSigned = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(tlsAttemptFailure(selfSigned, true)).toEqual({ failure: 'verify_failed', reason: 'self-signed certificate in certificate chain' });
    expect(tlsAttemptFailure(selfSigned, false)).toBeNull();
    const mismatch = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), {
      code: 'ERR_TLS_CERT_ALTNAME_INVALID', cert: { subjectaltname: 'DNS:node1, IP Address:10.0.0.1' },
    });
    expect(tlsAttemptFailure(mismatch, true)).toEqual({ failure: 'host_mismatch', reason: '"node1" (and 1 other name)' });
    expect(tlsAttemptFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), true)).toBeNull();
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
