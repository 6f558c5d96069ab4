/**
 * TLS on real nodes (issue 8's transport part): a primary made with `walship init --tls
 * --tls-ca DIR` and a standby made from it with `walship basebackup --standby` under
 * WALSHIP_SSLMODE=verify-full. Checked:
 * - each sslmode against the TLS node, through the CLI and the client library: disable refused
 *   with "server requires SSL", require and prefer accepted, verify-ca accepted with the CA that
 *   signed the certificate and refused with another, verify-full accepted for a name the
 *   certificate has and refused for one it has not;
 * - require against a plain node: "server does not support SSL";
 * - /healthz and /metrics stay plain HTTP on the TLS port and on metrics_port;
 * - the standby streams over TLS with verify-full (its primary_conninfo says so, and the
 *   primary refuses plain replication connections, so streaming at all is TLS);
 * - a SIGHUP reloads the certificate files (a new certificate is served without a restart);
 * - a missing certificate file and a key that is not the certificate's refuse the start, naming
 *   the file;
 * - `cluster-configs/local-3node-tls.yaml` as shipped (free ports, a temporary data root): up
 *   makes the cluster CA and each member's certificate, the standbys stream with verify-full
 *   through the partition proxy and present their certificates (checked by the upstream's
 *   ssl_ca_file), status, put -f, lag -f and a switchover work, and the CA's key
 *   is in no member's data directory.
 */
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { makeCertificateAuthority, makeNodeCertificate } from '@walship/server/ssl/make-certificates';
import { ROOT, TestNode, freePort, freePortRange, tempDir, waitFor, walship } from './helpers/node.js';
import { caughtUp, nodeStatus } from './helpers/replication.js';

const STANDBY_SETTINGS = ['--set', 'wal_retrieve_retry_interval=100ms', '--set', 'wal_receiver_status_interval=1s'];

function httpGet(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

async function refusal(promise: Promise<unknown>): Promise<{ code: string; message: string; hint?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; hint?: string };
  }
  throw new Error('expected the connection to be refused');
}

describe('TLS', () => {
  let root: string;
  let caDir: string;
  let rootCert: string;
  let otherCaCert: string;
  let primary: TestNode;
  let standby: TestNode | null = null;
  let plain: TestNode | null = null;
  let metricsPort: number;
  const verifyFull = (): Record<string, string> => ({ WALSHIP_SSLMODE: 'verify-full', WALSHIP_SSLROOTCERT: rootCert });

  beforeAll(async () => {
    root = tempDir('tls');
    caDir = path.join(root, 'ca');
    const dataDir = path.join(root, 'primary');
    const port = await freePort();
    metricsPort = await freePort();
    const init = walship(['init', '-D', dataDir, '--port', String(port), '--tls', '--tls-ca', caDir, '--tls-host', 'db1.walship.test',
      '--set', 'wal_segment_size=1MB', '--set', 'shared_buffers=2MB', '--set', 'heartbeat_interval=0', '--set', `metrics_port=${metricsPort}`]);
    expect(init.status, init.stderr).toBe(0);
    expect(init.stdout).toContain('SSL is on');
    expect(init.stdout).toContain(`WALSHIP_SSLROOTCERT=${path.join(dataDir, 'root.crt')}`);
    rootCert = path.join(caDir, 'root.crt');
    // The CA's key stays in the CA directory; the data directory has its certificate only.
    expect(fs.existsSync(path.join(caDir, 'root.key'))).toBe(true);
    expect(fs.readdirSync(dataDir).filter((name) => /\.(crt|key)$/.test(name)).sort()).toEqual(['root.crt', 'server.crt', 'server.key']);
    expect(fs.readFileSync(path.join(dataDir, 'root.crt'), 'utf8')).toBe(fs.readFileSync(rootCert, 'utf8'));
    expect(fs.statSync(path.join(dataDir, 'server.key')).mode & 0o777).toBe(0o600);
    otherCaCert = path.join(root, 'other-ca.crt');
    fs.writeFileSync(otherCaCert, makeCertificateAuthority({ commonName: 'another CA' }).cert);
    primary = new TestNode(dataDir, port);
    await primary.start();
  });

  afterAll(async () => {
    await standby?.stop();
    await plain?.stop();
    await primary?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('each sslmode against the TLS node, through the CLI', async () => {
    const node = `127.0.0.1:${primary.port}`;
    expect(walship(['put', '--node', node, 'k1', 'v1']).status).toBe(0);

    const disabled = walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: 'disable' } });
    expect(disabled.status).toBe(1);
    expect(disabled.stderr).toContain(`connection to node at ${node} failed: server requires SSL, but SSL is disabled`);
    expect(disabled.stderr).toContain('HINT:  Connect with sslmode=require');

    for (const mode of ['require', 'prefer', 'allow']) {
      const result = walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: mode } });
      expect(result.stdout, `${mode}: ${result.stderr}`).toBe('v1');
    }
    expect(walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: 'verify-ca', WALSHIP_SSLROOTCERT: rootCert } }).stdout).toBe('v1');
    const otherCa = walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: 'verify-ca', WALSHIP_SSLROOTCERT: otherCaCert } });
    expect(otherCa.status).toBe(1);
    expect(otherCa.stderr).toContain('SSL error: certificate verify failed');
    expect(otherCa.stderr).toContain(otherCaCert);

    for (const host of ['localhost', '127.0.0.1']) {
      const result = walship(['get', '--node', `${host}:${primary.port}`, 'k1'], { env: verifyFull() });
      expect(result.stdout, `${host}: ${result.stderr}`).toBe('v1');
    }
    const missingRoot = walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: 'verify-full', WALSHIP_SSLROOTCERT: path.join(root, 'nowhere.crt') } });
    expect(missingRoot.status).toBe(1);
    expect(missingRoot.stderr).toContain(`could not read root certificate file "${path.join(root, 'nowhere.crt')}": No such file or directory`);
    const badMode = walship(['get', '--node', node, 'k1'], { env: { WALSHIP_SSLMODE: 'on' } });
    expect(badMode.status).toBe(2);
    expect(badMode.stderr).toContain('invalid sslmode value: "on"');
  });

  it('verify-full through the client library: the names the certificate has, and a name it has not', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const client = await WalshipClient.connect({ host, port: primary.port, sslmode: 'verify-full', sslrootcert: rootCert, timeoutMs: 10_000 });
      expect((await client.get('k1'))?.value.toString()).toBe('v1');
      await client.close();
    }
    // A node whose certificate names only "localhost": 127.0.0.1 is then a name it has not.
    const ca = { cert: fs.readFileSync(rootCert, 'utf8'), key: fs.readFileSync(path.join(caDir, 'root.key'), 'utf8') };
    const narrow = makeNodeCertificate(ca, { hostNames: ['localhost'] });
    const dir = path.join(root, 'narrow');
    const port = await freePort();
    expect(walship(['init', '-D', dir, '--port', String(port), '--tls', '--tls-ca', caDir, '--set', 'wal_segment_size=1MB', '--set', 'shared_buffers=2MB']).status).toBe(0);
    fs.writeFileSync(path.join(dir, 'server.key'), narrow.key, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'server.crt'), narrow.cert);
    const node = new TestNode(dir, port);
    await node.start();
    try {
      const ok = await WalshipClient.connect({ host: 'localhost', port, sslmode: 'verify-full', sslrootcert: rootCert, timeoutMs: 10_000 });
      await ok.close();
      const refused = await refusal(WalshipClient.connect({ host: '127.0.0.1', port, sslmode: 'verify-full', sslrootcert: rootCert, timeoutMs: 10_000 }));
      expect(refused.code).toBe('ssl_host_name_mismatch');
      expect(refused.message).toBe('server certificate for "localhost" does not match host name "127.0.0.1"');
      const cli = walship(['get', '--node', `127.0.0.1:${port}`, 'k'], { env: verifyFull() });
      expect(cli.status).toBe(1);
      expect(cli.stderr).toContain('server certificate for "localhost" does not match host name "127.0.0.1"');
      // verify-ca checks the CA only.
      const caOnly = await WalshipClient.connect({ host: '127.0.0.1', port, sslmode: 'verify-ca', sslrootcert: rootCert, timeoutMs: 10_000 });
      await caOnly.close();

      // SIGHUP reloads the files: back to the certificate naming 127.0.0.1 too, without a restart.
      const wide = makeNodeCertificate(ca, { hostNames: ['localhost', '127.0.0.1'] });
      fs.writeFileSync(path.join(dir, 'server.key'), wide.key, { mode: 0o600 });
      fs.writeFileSync(path.join(dir, 'server.crt'), wide.cert);
      node.process!.kill('SIGHUP');
      await waitFor('the reloaded certificate to be served', async () => {
        const client = await WalshipClient.connect({ host: '127.0.0.1', port, sslmode: 'verify-full', sslrootcert: rootCert, timeoutMs: 10_000 }).catch(() => null);
        await client?.close();
        return client !== null;
      }, 10_000, 100);
      // A bad file at a reload keeps the files in use, and says so.
      fs.writeFileSync(path.join(dir, 'server.crt'), narrow.cert);
      node.process!.kill('SIGHUP');
      await waitFor('the reload to be refused', () => node.log.includes('SSL configuration was not reloaded'), 10_000);
      expect(node.log).toContain('check of private key failed: key values mismatch');
      const still = await WalshipClient.connect({ host: '127.0.0.1', port, sslmode: 'verify-full', sslrootcert: rootCert, timeoutMs: 10_000 });
      await still.close();
    } finally {
      await node.stop();
    }
  });

  it('/healthz and /metrics stay plain HTTP, on the TLS port and on metrics_port', async () => {
    for (const port of [primary.port, metricsPort]) {
      const health = await httpGet(port, '/healthz');
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ status: 'ok', state: 'ready' });
      const metrics = await httpGet(port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('walship_up 1');
    }
    expect(walship(['isready', '--node', `127.0.0.1:${primary.port}`]).stdout).toContain('accepting connections');
    expect((await nodeStatus<{ ssl: boolean; metricsPort: number }>(primary))).toMatchObject({ ssl: true, metricsPort });
  });

  it('a standby made with basebackup under verify-full streams over TLS', async () => {
    const dir = path.join(root, 's1');
    const port = await freePort();
    const backup = walship(['basebackup', '--from', `localhost:${primary.port}`, '-D', dir, '--standby', '--port', String(port), '--set', 'application_name=s1', ...STANDBY_SETTINGS], { env: verifyFull() });
    expect(backup.status, backup.stderr).toBe(0);
    const shown = walship(['show', '-D', dir, 'primary_conninfo']);
    expect(shown.stdout).toContain('sslmode=verify-full');
    expect(shown.stdout).toContain(`sslrootcert='${rootCert}'`);
    standby = new TestNode(dir, port);
    await standby.start();
    const client = await primary.client();
    const put = await client.put('over-tls', 'yes');
    await client.close();
    await caughtUp(standby, put.lsn);
    const status = await nodeStatus<{ walReceiver: { status: string; upstream: string } }>(standby);
    expect(status.walReceiver).toMatchObject({ status: 'streaming', upstream: `localhost:${primary.port}` });
    const read = walship(['get', '--node', `localhost:${port}`, 'over-tls'], { env: verifyFull() });
    expect(read.stdout, read.stderr).toBe('yes');
    const primaryStatus = await nodeStatus<{ replication: Array<{ applicationName: string; state: string; replayLsn: string }> }>(primary);
    const row = primaryStatus.replication.find((r) => r.applicationName === 's1');
    expect(row?.state).toBe('streaming');
    expect(parseLsn(row!.replayLsn)).toBeGreaterThanOrEqual(put.lsn);
    // A plain replication connection is refused: the stream above is TLS.
    const plainBackup = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', path.join(root, 'refused')], { env: { WALSHIP_SSLMODE: 'disable' } });
    expect(plainBackup.status).toBe(1);
    expect(plainBackup.stderr).toContain('server requires SSL, but SSL is disabled');
  });

  it('require against a plain node: "server does not support SSL"', async () => {
    plain = await TestNode.init('tls-plain');
    await plain.start();
    const result = walship(['get', '--node', `127.0.0.1:${plain.port}`, 'k'], { env: { WALSHIP_SSLMODE: 'require' } });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('server does not support SSL, but SSL was required');
    expect(result.stderr).toContain('Turn ssl on at the node');
    // prefer (the default) falls back to plain.
    expect(walship(['get', '--node', `127.0.0.1:${plain.port}`, 'k']).status).toBe(1);
    expect(walship(['put', '--node', `127.0.0.1:${plain.port}`, 'k', 'v']).status).toBe(0);
  });

  it('a bad certificate file refuses the start, naming the file', async () => {
    const dir = path.join(root, 'bad');
    const port = await freePort();
    expect(walship(['init', '-D', dir, '--port', String(port), '--tls', '--set', 'wal_segment_size=1MB', '--set', 'shared_buffers=2MB']).status).toBe(0);
    const node = new TestNode(dir, port);
    fs.renameSync(path.join(dir, 'server.crt'), path.join(dir, 'moved.crt'));
    const missing = await node.startExpectingFailure();
    expect(missing.code).toBe(1);
    expect(missing.output).toContain('FATAL:  could not load server certificate file "server.crt": No such file or directory');
    expect(missing.output).toContain(`DETAIL:  The file is "${path.join(dir, 'server.crt')}".`);
    // A certificate that is not the key's: the primary's.
    fs.copyFileSync(path.join(primary.dataDir, 'server.crt'), path.join(dir, 'server.crt'));
    const started = walship(['start', '-D', dir]);
    expect(started.status).toBe(1);
    expect(started.stderr).toContain('FATAL:  check of private key failed: key values mismatch');
    expect(fs.existsSync(path.join(dir, 'postmaster.pid'))).toBe(false);
  });
});

describe('a cluster with tls: true (cluster-configs/local-3node-tls.yaml)', () => {
  const configFile = path.join(ROOT, 'cluster-configs', 'local-3node-tls.yaml');
  let dataRoot: string;
  let basePort: number;
  const clusterArgs = (args: string[]): string[] => [...args, '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot];

  beforeAll(async () => {
    dataRoot = path.join(tempDir('tls-cluster'), 'data');
    basePort = await freePortRange(3);
  });

  afterAll(() => {
    walship(clusterArgs(['cluster', 'down', '--mode', 'immediate']));
    fs.rmSync(path.dirname(dataRoot), { recursive: true, force: true });
  });

  it('up makes the CA and the members\' certificates; the standbys stream with verify-full; status, put -f, lag -f and a switchover work', async () => {
    const up = walship(clusterArgs(['cluster', 'up', '--timeout', '30', '--json']));
    expect(up.status, up.stderr).toBe(0);
    const caCert = path.join(dataRoot, 'tls', 'root.crt');
    expect(fs.existsSync(path.join(dataRoot, 'tls', 'root.key'))).toBe(true);
    for (const member of ['n1', 's1', 's2']) {
      const dir = path.join(dataRoot, member);
      expect(fs.readdirSync(dir).filter((name) => /\.(crt|key)$/.test(name)).sort(), member).toEqual(['root.crt', 'server.crt', 'server.key']);
      expect(fs.readFileSync(path.join(dir, 'root.crt'), 'utf8')).toBe(fs.readFileSync(caCert, 'utf8'));
      const cert = new X509Certificate(fs.readFileSync(path.join(dir, 'server.crt')));
      expect(cert.subject).toBe(`CN=${member}`);
      expect(cert.checkHost(member)).toBe(member);
      expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(walship(['show', '-D', dir, 'ssl']).stdout.trim()).toBe('on');
    }
    // verify-full, and the member's own certificate as its client certificate (the upstream checks it: mutual TLS).
    expect(walship(['show', '-D', path.join(dataRoot, 's1'), 'primary_conninfo']).stdout).toContain('sslmode=verify-full sslrootcert=root.crt sslcert=server.crt sslkey=server.key');

    const status = JSON.parse(walship(clusterArgs(['cluster', 'status', '--json'])).stdout) as { primary: string; members: Array<{ name: string; state: string }> };
    expect(status.primary).toBe('n1');
    expect(status.members.filter((m) => m.state === 'streaming').map((m) => m.name).sort()).toEqual(['s1', 's2']);

    const put = walship(['put', ...clusterArgs([]), 'over-tls', 'cluster']);
    expect(put.status, put.stderr).toBe(0);
    const lag = walship(['lag', ...clusterArgs([]), '--once', '--json']);
    expect(lag.status, lag.stderr).toBe(0);
    expect(lag.stdout).toContain('"s1"');
    // Without the cluster's CA, a client that verifies is refused; with it, it reads the write.
    const read = (env: Record<string, string>) => walship(['get', '--node', `localhost:${basePort + 1}`, '--min-lsn', put.stdout.trim().split(' ')[1]!, 'over-tls'], { env });
    expect(read({ WALSHIP_SSLMODE: 'verify-full', WALSHIP_SSLROOTCERT: caCert }).stdout).toBe('cluster');
    expect(read({ WALSHIP_SSLMODE: 'disable' }).stderr).toContain('server requires SSL');

    const switchover = walship(clusterArgs(['cluster', 'switchover', '--to', 's1', '--timeout', '30', '--json']));
    expect(switchover.status, switchover.stderr).toBe(0);
    await waitFor('n1 to stream from s1 over TLS', () => {
      const after = JSON.parse(walship(clusterArgs(['cluster', 'status', '--json'])).stdout) as { primary: string; members: Array<{ name: string; state: string }> };
      return after.primary === 's1' && after.members.filter((m) => m.state === 'streaming').length === 2;
    }, 30_000, 250);
    expect(walship(['put', ...clusterArgs([]), 'after-switchover', 'yes']).status).toBe(0);
  });
});
