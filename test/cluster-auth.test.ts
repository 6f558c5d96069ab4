/**
 * A cluster with `auth: scram-sha-256` (one key in its config), on real processes: `cluster up`
 * creates every member with SCRAM, the superuser and a replication user, their passwords
 * generated into the data root's passfile (0600); standbys stream as the replication user; the
 * cluster's own commands (status, put -f, lag --once, switchover) connect as the superuser; a
 * connection without the passwords is refused; a person gets in with WALSHIP_PASSFILE.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import { freePortRange, tempDir, waitFor, walship } from './helpers/node.js';

const CONFIG = `
name: auth-2node
base_port: 7000
data_root: data
failover:
  mode: manual
auth: scram-sha-256
settings:
  wal_segment_size: 1MB
  shared_buffers: 4MB
  wal_retrieve_retry_interval: 100ms
  wal_keep_size: 32MB
  heartbeat_interval: 0
nodes:
  - name: n1
    port_offset: 0
  - name: s1
    port_offset: 1
`;

interface Members {
  primary: string;
  members: Array<{ name: string; role: string; state: string; port: number }>;
}

describe('a cluster with auth: scram-sha-256', () => {
  let root: string;
  let file: string;
  let basePort: number;
  const args = () => ['-f', file, '--base-port', String(basePort), '--data-root', path.join(root, 'data')];
  // The cluster commands must find the passwords themselves: nothing from this process's environment.
  const clean = { WALSHIP_USER: '', WALSHIP_PASSWORD: '', WALSHIP_PASSFILE: '' };

  beforeAll(async () => {
    root = tempDir('cluster-auth');
    file = path.join(root, 'auth-2node.yaml');
    fs.writeFileSync(file, CONFIG);
    basePort = await freePortRange(2);
  });
  afterAll(() => {
    walship(['cluster', 'down', ...args()], { env: clean });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('up creates SCRAM members, the users and the passfile; status, writes and lag work as the superuser', async () => {
    const up = walship(['cluster', 'up', ...args(), '--json'], { env: clean });
    expect(up.status, up.stderr).toBe(0);
    const passfile = path.join(root, 'data', 'passfile');
    expect(fs.statSync(passfile).mode & 0o777).toBe(0o600);
    const lines = fs.readFileSync(passfile, 'utf8').split('\n').filter((line) => line.startsWith('*:*:'));
    expect(lines.map((line) => line.split(':')[2])).toEqual(['walship', 'replicator']);
    for (const member of ['n1', 's1']) {
      const dataDir = path.join(root, 'data', member);
      expect(walship(['show', '-D', dataDir, 'auth_method']).stdout.trim()).toBe('scram-sha-256');
      const users = JSON.parse(walship(['user', 'list', '-D', dataDir, '--json']).stdout) as { users: Array<{ name: string; rights: string[] }> };
      expect(users.users).toEqual([{ name: 'replicator', rights: ['replication'] }, { name: 'walship', rights: ['read', 'write', 'replication', 'admin'] }]);
    }
    expect(walship(['show', '-D', path.join(root, 'data', 's1'), 'primary_conninfo']).stdout).toMatch(/user=replicator password=/);

    const status = walship(['cluster', 'status', ...args(), '--json'], { env: clean });
    expect(status.status, status.stderr).toBe(0);
    const document = JSON.parse(status.stdout) as Members;
    expect(document.members.map((member) => [member.name, member.role, member.state])).toEqual([['n1', 'primary', 'running'], ['s1', 'standby', 'streaming']]);

    const put = walship(['put', ...args(), 'secure', 'yes'], { env: clean });
    expect(put.status, put.stderr).toBe(0);
    const lag = walship(['lag', ...args(), '--once', '--json', '--interval', '200'], { env: clean });
    expect(lag.status, lag.stderr).toBe(0);
    expect((JSON.parse(lag.stdout) as { members: unknown[] }).members).toHaveLength(2);

    // Not without the password; a person gets in with the passfile (the default user is the superuser).
    const refused = await WalshipClient.connect({ port: basePort, timeoutMs: 10_000 }).then(() => null, (error: Error) => error);
    expect(refused?.message).toBe('no password supplied');
    const get = walship(['get', '--node', `127.0.0.1:${basePort}`, 'secure'], { env: { ...clean, WALSHIP_PASSFILE: passfile } });
    expect(get.status, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('yes');
  });

  it('a switchover and the old primary\'s return as a standby go through SCRAM too', async () => {
    const switchover = walship(['cluster', 'switchover', ...args(), '--to', 's1', '--json'], { env: clean });
    expect(switchover.status, switchover.stderr).toBe(0);
    await waitFor('n1 to stream from s1', () => {
      const status = walship(['cluster', 'status', ...args(), '--json'], { env: clean });
      const document = JSON.parse(status.stdout) as Members;
      return document.primary === 's1' && document.members.find((member) => member.name === 'n1')?.state === 'streaming';
    }, 60_000, 500);
    const put = walship(['put', ...args(), 'after-switchover', 'yes'], { env: clean });
    expect(put.status, put.stderr).toBe(0);
    const down = walship(['cluster', 'down', ...args()], { env: clean });
    expect(down.status, down.stderr).toBe(0);
  });
});
