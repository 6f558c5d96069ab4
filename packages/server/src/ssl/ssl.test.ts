/**
 * TLS on the node's port, end to end on loopback: certificates made by make-certificates.ts,
 * checked by ssl-files.ts, served by the real listener, and connected to by the real client
 * library and replication connection with each sslmode. The Backend is a STAND-IN (it answers
 * the handshake's questions and `get`, nothing else): what is checked here is the transport,
 * not what a node stores; test/tls.test.ts does the same on real nodes.
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import type { SslMode } from '@walship/protocol';
import { ReplicationConnection } from '@walship/replication';
import type { Backend } from '../backend.js';
import { startListener, type Listener, type ListenerTls } from '../listener.js';
import { makeCertificateAuthority, makeNodeCertificate, nodeCertificateFits, type PemPair } from './make-certificates.js';
import { loadSslFiles } from './ssl-files.js';

const backend = {
  state: () => 'ready',
  memberName: () => 'tls-node',
  status: async () => ({ role: 'primary' }),
  role: () => 'primary',
  metrics: () => '# TYPE walship_up gauge\nwalship_up 1\n',
  get: async () => null,
} as unknown as Backend;

let dir: string;
let ca: PemPair;
let otherCa: PemPair;
/** Names only "localhost": connecting to 127.0.0.1 under verify-full must fail. */
let localhostOnly: PemPair;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'walship-ssl-'));
  ca = makeCertificateAuthority({ commonName: 'walship test CA' });
  otherCa = makeCertificateAuthority({ commonName: 'another CA' });
  localhostOnly = makeNodeCertificate(ca, { hostNames: ['localhost'] });
  writeFileSync(join(dir, 'root.crt'), ca.cert);
  writeFileSync(join(dir, 'other.crt'), otherCa.cert);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function listen(tls: ListenerTls | null, logs: string[] = []): Promise<Listener> {
  const listener = await startListener({
    port: 0, backend, auth: {}, tls, log: (level, message) => logs.push(`${level}: ${message}`),
    replication: (socket) => socket.close(1000),
  });
  cleanups.push(() => listener.close());
  return listener;
}

async function connect(port: number, options: { host?: string; sslmode?: SslMode; sslrootcert?: string; sslcert?: string; sslkey?: string }): Promise<WalshipClient> {
  const client = await WalshipClient.connect({ port, timeoutMs: 5000, ...options });
  cleanups.push(() => client.close());
  return client;
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; detail?: string; hint?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('expected a failure');
}

function get(module: typeof http | typeof https, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    module.get({ host: '127.0.0.1', port, path, agent: false, rejectUnauthorized: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

const tlsOf = (pair: PemPair): ListenerTls => ({ cert: Buffer.from(pair.cert), key: Buffer.from(pair.key), ca: null });

describe('make-certificates', () => {
  it('makes a CA and a node certificate it signed, for every name given', () => {
    const node = makeNodeCertificate(ca, { hostNames: ['localhost', '127.0.0.1', 'db1.example'] });
    const cert = new X509Certificate(node.cert);
    const root = new X509Certificate(ca.cert);
    expect(root.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(root)).toBe(true);
    expect(cert.verify(root.publicKey)).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, DNS:db1.example');
    expect(cert.checkHost('db1.example')).toBe('db1.example');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(nodeCertificateFits(node, ca.cert, ['localhost', '127.0.0.1'])).toBe(true);
    expect(nodeCertificateFits(node, otherCa.cert, ['localhost'])).toBe(false);
    expect(nodeCertificateFits(node, ca.cert, ['localhost', 'db2.example'])).toBe(false);
    expect(nodeCertificateFits({ cert: node.cert, key: localhostOnly.key }, ca.cert, ['localhost'])).toBe(false);
    expect(nodeCertificateFits(node, ca.cert, ['localhost'], { marginDays: 10_000 })).toBe(false);
    expect(() => makeNodeCertificate(ca, { hostNames: [] })).toThrow(/at least one host name/);
  });
});

describe('ssl-files', () => {
  function files(name: string, pair: PemPair, keyMode = 0o600): { certFile: string; keyFile: string; caFile: string } {
    writeFileSync(join(dir, `${name}.crt`), pair.cert);
    writeFileSync(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
    chmodSync(join(dir, `${name}.key`), keyMode);
    return { certFile: `${name}.crt`, keyFile: `${name}.key`, caFile: '' };
  }

  it('reads a matching certificate and key, relative to the data directory, with the CA file', () => {
    const loaded = loadSslFiles(dir, { ...files('good', localhostOnly), caFile: 'root.crt' });
    expect(loaded.certPath).toBe(join(dir, 'good.crt'));
    expect(loaded.subject).toBe('CN=localhost');
    expect(loaded.ca?.toString()).toBe(ca.cert);
    expect(loaded.warnings).toEqual([]);
  });

  it('refuses a missing file, naming it', () => {
    expect(() => loadSslFiles(dir, { certFile: 'missing.crt', keyFile: 'good.key', caFile: '' })).toThrow('could not load server certificate file "missing.crt": No such file or directory');
    expect(() => loadSslFiles(dir, { certFile: 'good.crt', keyFile: 'missing.key', caFile: '' })).toThrow('could not load private key file "missing.key": No such file or directory');
    expect(() => loadSslFiles(dir, { certFile: 'good.crt', keyFile: 'good.key', caFile: 'missing-ca.crt' })).toThrow('could not load root certificate file "missing-ca.crt": No such file or directory');
  });

  it('refuses a key that is not the certificate\'s, a readable key, and a file that is no certificate', () => {
    const other = files('mismatch', makeNodeCertificate(ca, { hostNames: ['localhost'] }));
    let caught: { message: string; detail?: string } | null = null;
    try {
      loadSslFiles(dir, { certFile: 'good.crt', keyFile: other.keyFile, caFile: '' });
    } catch (error) {
      caught = error as { message: string; detail?: string };
    }
    expect(caught?.message).toBe('check of private key failed: key values mismatch');
    expect(caught?.detail).toContain('mismatch.key');
    files('open', localhostOnly, 0o644);
    expect(() => loadSslFiles(dir, { certFile: 'open.crt', keyFile: 'open.key', caFile: '' })).toThrow('private key file "open.key" has group or world access');
    writeFileSync(join(dir, 'garbage.crt'), 'not a certificate\n');
    expect(() => loadSslFiles(dir, { certFile: 'garbage.crt', keyFile: 'good.key', caFile: '' })).toThrow(/could not load server certificate file "garbage.crt": no PEM certificate found/);
  });

  it('warns about an expired certificate', () => {
    const old = makeNodeCertificate(ca, { hostNames: ['localhost'], validDays: 1, now: new Date(Date.now() - 10 * 86_400_000) });
    expect(loadSslFiles(dir, files('old', old)).warnings[0]).toMatch(/server certificate "old.crt" expired on/);
  });
});

describe('TLS on the listener, with each sslmode', () => {
  it('serves wss:// to require, prefer and allow, refuses disable with "server requires SSL", and keeps /healthz and /metrics plain', async () => {
    const listener = await listen(tlsOf(localhostOnly));
    expect(listener.tls).toBe(true);
    for (const sslmode of ['require', 'prefer', 'allow'] as const) {
      const client = await connect(listener.port, { sslmode });
      expect(await client.get('k')).toBeNull();
    }
    const refused = await failure(connect(listener.port, { sslmode: 'disable' }));
    expect(refused.code).toBe('ssl_required');
    expect(refused.message).toBe('server requires SSL, but SSL is disabled');
    expect(refused.hint).toContain('sslmode=require');

    expect(await get(http, listener.port, '/healthz')).toMatchObject({ status: 200 });
    expect((await get(http, listener.port, '/metrics')).body).toContain('walship_up 1');
    expect((await get(https, listener.port, '/metrics')).body).toContain('walship_up 1');

    const replication = await failure(ReplicationConnection.connect({ host: '127.0.0.1', port: listener.port, applicationName: 's', timeoutMs: 5000, sslmode: 'disable' }));
    expect(replication.code).toBe('ssl_required');
  });

  it('verify-ca: accepted with the CA that signed the certificate, refused with another', async () => {
    const listener = await listen(tlsOf(localhostOnly));
    await connect(listener.port, { sslmode: 'verify-ca', sslrootcert: join(dir, 'root.crt') });
    const refused = await failure(connect(listener.port, { sslmode: 'verify-ca', sslrootcert: join(dir, 'other.crt') }));
    expect(refused.code).toBe('ssl_certificate_verify_failed');
    expect(refused.message).toBe('SSL error: certificate verify failed');
    expect(refused.detail).toContain('other.crt');
    // libpq: require with an sslrootcert given verifies as verify-ca does.
    expect((await failure(connect(listener.port, { sslmode: 'require', sslrootcert: join(dir, 'other.crt') }))).code).toBe('ssl_certificate_verify_failed');
    const missing = await failure(connect(listener.port, { sslmode: 'verify-ca', sslrootcert: join(dir, 'nowhere.crt') }));
    expect(missing.code).toBe('ssl_root_cert_unreadable');
    expect(missing.message).toContain(`could not read root certificate file "${join(dir, 'nowhere.crt')}": No such file or directory`);
  });

  it('verify-full: accepted for the host name the certificate names, refused for an address it does not', async () => {
    const listener = await listen(tlsOf(localhostOnly));
    const client = await connect(listener.port, { host: 'localhost', sslmode: 'verify-full', sslrootcert: join(dir, 'root.crt') });
    expect(await client.get('k')).toBeNull();
    const refused = await failure(connect(listener.port, { host: '127.0.0.1', sslmode: 'verify-full', sslrootcert: join(dir, 'root.crt') }));
    expect(refused.code).toBe('ssl_host_name_mismatch');
    expect(refused.message).toBe('server certificate for "localhost" does not match host name "127.0.0.1"');
    // verify-ca does not look at the name.
    await connect(listener.port, { host: '127.0.0.1', sslmode: 'verify-ca', sslrootcert: join(dir, 'root.crt') });
  });

  it('a plain listener: require and verify-full get "server does not support SSL"; prefer and allow connect in plain', async () => {
    const listener = await listen(null);
    expect(listener.tls).toBe(false);
    for (const sslmode of ['require', 'verify-full'] as const) {
      const refused = await failure(connect(listener.port, { host: 'localhost', sslmode, sslrootcert: join(dir, 'root.crt') }));
      expect(refused.code).toBe('ssl_not_supported');
      expect(refused.message).toBe('server does not support SSL, but SSL was required');
    }
    await connect(listener.port, { sslmode: 'prefer' });
    await connect(listener.port, { sslmode: 'allow' });
    await connect(listener.port, {});
    const replication = await failure(ReplicationConnection.connect({ host: '127.0.0.1', port: listener.port, applicationName: 's', timeoutMs: 5000, sslmode: 'require' }));
    expect(replication.code).toBe('ssl_not_supported');
  });

  it('ssl_ca_file: a client certificate signed by that CA is accepted, one from another CA refused; none is required', async () => {
    const logs: string[] = [];
    const listener = await listen({ ...tlsOf(localhostOnly), ca: Buffer.from(ca.cert) }, logs);
    const client = (name: string, signer: PemPair): { sslcert: string; sslkey: string } => {
      const pair = makeNodeCertificate(signer, { hostNames: [name] });
      writeFileSync(join(dir, `${name}.crt`), pair.cert);
      writeFileSync(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
      return { sslcert: join(dir, `${name}.crt`), sslkey: join(dir, `${name}.key`) };
    };
    const good = client('client-good', ca);
    const stranger = client('client-stranger', otherCa);
    await connect(listener.port, { sslmode: 'require', ...good });
    await connect(listener.port, { sslmode: 'require' });
    const refused = await failure(connect(listener.port, { sslmode: 'require', ...stranger }));
    expect(refused.code).toBe('ssl_client_certificate_refused');
    expect(refused.message).toBe('SSL error: the node refused the client certificate');
    expect(refused.detail).toMatch(/ssl_ca_file: .*(UNABLE_TO_VERIFY|unable to verify|certificate)/i);
    expect(logs.some((line) => line.includes('client certificate verify failed'))).toBe(true);
    const replication = await failure(ReplicationConnection.connect({ host: '127.0.0.1', port: listener.port, applicationName: 's', timeoutMs: 5000, sslmode: 'require', ...stranger }));
    expect(replication.code).toBe('ssl_client_certificate_refused');
    const halfGiven = await failure(connect(listener.port, { sslmode: 'require', sslcert: good.sslcert }));
    expect(halfGiven.code).toBe('ssl_client_cert_unreadable');
    expect(halfGiven.message).toBe(`certificate present, but not private key file "${good.sslcert}"`);
    const mismatched = await failure(connect(listener.port, { sslmode: 'require', sslcert: good.sslcert, sslkey: stranger.sslkey }));
    expect(mismatched.code).toBe('ssl_client_cert_unreadable');
    expect(mismatched.message).toBe(`certificate does not match private key file "${stranger.sslkey}"`);
  });

  it('reloadTls: new connections get the new certificate', async () => {
    const listener = await listen(tlsOf(localhostOnly));
    const rootFile = join(dir, 'other.crt');
    expect((await failure(connect(listener.port, { host: 'localhost', sslmode: 'verify-full', sslrootcert: rootFile }))).code).toBe('ssl_certificate_verify_failed');
    expect(listener.reloadTls(tlsOf(makeNodeCertificate(otherCa, { hostNames: ['localhost'] })))).toBe(true);
    await connect(listener.port, { host: 'localhost', sslmode: 'verify-full', sslrootcert: rootFile });
  });
});
