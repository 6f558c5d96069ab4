/**
 * A cluster from `cluster-configs/local-3node-encrypted.yaml` as shipped (`encryption: true`,
 * `tls: true`, the monitor and the proxy), moved to free ports and a temporary data root, on real
 * processes:
 *
 * - `cluster up` generates the cluster key (DATA_ROOT/cluster.key, 0600, 32 bytes as hex), the
 *   primary is initialized encrypted with it, the standbys (base backups) share its data keys,
 *   and every member's walship.conf names the key;
 * - writes before and after a switchover (the old primary rewound and back as a standby) and a
 *   reinit of a standby (a new base backup from the new primary) are on every member, and once the cluster is down no written key or value is in the clear in any
 *   file under the data root (every member's WAL, relations, logs; the state, the history);
 * - a config whose `encryption` no longer matches the members is refused, and so is a cluster
 *   whose generated key went missing, both before anything starts.
 *
 * That the same byte search finds the values on an unencrypted node is shown in encryption.test.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import { ROOT, freePortRange, tempDir, waitFor, walship, type CliResult } from './helpers/node.js';
import { killClusterLeftovers } from './helpers/cluster.js';
import { findInClear } from './helpers/files.js';

const SHIPPED = path.join(ROOT, 'cluster-configs', 'local-3node-encrypted.yaml');
const MEMBERS = ['n1', 's1', 's2'] as const;
const SECRET_KEY = 'cluster-tde-key-';
const SECRET_VALUE = 'cluster-tde-value-';

interface MembersDocument {
  primary: string;
  members: Array<{ name: string; role: string; state: string; timeline: number; lagBytes: number | null }>;
}

describe('a cluster with encryption: true (local-3node-encrypted.yaml)', () => {
  let dir: string;
  let dataRoot: string;
  let basePort: number;
  const written = new Map<string, string>();
  const clusterArgs = (args: string[]) => ['cluster', ...args, '-f', SHIPPED, '--base-port', String(basePort), '--data-root', dataRoot, ...(['up', 'switchover'].includes(args[0]!) ? ['--timeout', '60'] : [])];
  const cluster = (...args: string[]) => walship(clusterArgs(args));
  const json = <T>(result: CliResult): T => {
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const status = () => json<MembersDocument>(cluster('status', '--json'));
  const portOf = (name: string) => basePort + MEMBERS.indexOf(name as (typeof MEMBERS)[number]);
  const dataDirOf = (name: string) => path.join(dataRoot, name);

  async function client(name: string): Promise<WalshipClient> {
    return WalshipClient.connect({ host: '127.0.0.1', port: portOf(name), sslmode: 'verify-full', sslrootcert: path.join(dataRoot, 'tls', 'root.crt'), timeoutMs: 10_000 });
  }

  async function write(name: string, tag: string, count: number): Promise<void> {
    const c = await client(name);
    try {
      for (let i = 0; i < count; i++) {
        const key = `${SECRET_KEY}${tag}-${i}`;
        const value = `${SECRET_VALUE}${tag}-${i}-${'x'.repeat(i % 40)}`;
        await c.put(key, value);
        written.set(key, value);
      }
    } finally {
      await c.close();
    }
  }

  /** Every written key is on `name` with its value (waiting until it has replayed that far). */
  async function expectAllWritten(name: string): Promise<void> {
    const c = await client(name);
    try {
      await waitFor(`${name} to hold all ${written.size} writes`, async () => {
        const { entries } = await c.range({ limit: 1_000_000 });
        const found = new Map(entries.map((entry) => [entry.key.toString(), entry.value.toString()]));
        return [...written].every(([key, value]) => found.get(key) === value);
      }, 30_000, 100);
    } finally {
      await c.close();
    }
  }

  beforeAll(async () => {
    dir = tempDir('cluster-encryption');
    dataRoot = path.join(dir, 'data');
    basePort = await freePortRange(3);
  });

  afterAll(() => {
    cluster('down', '--mode', 'immediate');
    // Whatever a failed step left running: only processes of this test's data root.
    killClusterLeftovers(dataRoot, MEMBERS);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('up generates the key, makes every member encrypted with it, and names it in every walship.conf', () => {
    const up = json<MembersDocument & { created: string[] }>(cluster('up', '--json'));
    expect(up.created).toEqual(['n1', 's1', 's2']);
    const keyFile = path.join(dataRoot, 'cluster.key');
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(keyFile, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    const wrappedKeys = new Set<string>();
    for (const name of MEMBERS) {
      const show = walship(['show', '-D', dataDirOf(name), 'cluster_key_file']);
      expect(show.stdout.trim(), name).toBe(keyFile);
      const control = json<{ dataEncryption: boolean }>(walship(['controldata', '-D', dataDirOf(name), '--json', '--key-file', keyFile]));
      expect(control.dataEncryption, name).toBe(true);
      wrappedKeys.add(fs.readFileSync(path.join(dataDirOf(name), 'pg_cryptokeys', 'keys.json'), 'utf8'));
    }
    // The standbys are copies of the primary: one set of data keys, wrapped once, for the cluster.
    expect(wrappedKeys.size).toBe(1);
    expect(status().members.map((m) => [m.name, m.role, m.state])).toEqual([['n1', 'primary', 'running'], ['s1', 'standby', 'streaming'], ['s2', 'standby', 'streaming']]);
  });

  it('writes, a switchover, the old primary back as a standby and a standby copied anew: every member holds every write, and no file holds one in the clear', async () => {
    await write('n1', 'before', 150);
    const switchover = cluster('switchover', '--to', 's1', '--json');
    expect(switchover.status, switchover.stderr).toBe(0);
    await waitFor('n1 to stream from s1, the new primary', () => {
      const document = status();
      return document.primary === 's1' && document.members.every((m) => m.name === 's1' || m.state === 'streaming');
    }, 60_000, 500);
    await write('s1', 'after', 100);
    // s2 copied again from the new primary (a new base backup): encrypted with the same keys.
    const reinit = cluster('reinit', 's2');
    expect(reinit.status, reinit.stderr).toBe(0);
    await write('s1', 'after-reinit', 50);
    for (const name of MEMBERS) await expectAllWritten(name);
    // n1 was rewound onto timeline 2, s2 copied anew: both kept the key setting and the data keys.
    for (const name of ['n1', 's2']) {
      expect(walship(['show', '-D', dataDirOf(name), 'cluster_key_file']).stdout.trim(), name).toBe(path.join(dataRoot, 'cluster.key'));
      expect(fs.readFileSync(path.join(dataDirOf(name), 'pg_cryptokeys', 'keys.json'), 'utf8'), name).toBe(fs.readFileSync(path.join(dataDirOf('s1'), 'pg_cryptokeys', 'keys.json'), 'utf8'));
    }

    // Down (the primary first, each with its shutdown checkpoint): every page is on disk.
    const down = cluster('down');
    expect(down.status, down.stderr).toBe(0);
    const needles = [...written].flatMap(([key, value]) => [key, value]);
    expect(needles).toHaveLength(600);
    expect(findInClear(dataRoot, [...needles, SECRET_KEY, SECRET_VALUE])).toEqual([]);
  });

  it('refuses a config whose encryption no longer matches the members, and a generated key gone missing', () => {
    const plainConfig = path.join(dir, 'plain.yaml');
    fs.writeFileSync(plainConfig, fs.readFileSync(SHIPPED, 'utf8').replace(/^encryption: true$/m, ''));
    const plain = walship(['cluster', 'up', '-f', plainConfig, '--base-port', String(basePort), '--data-root', dataRoot]);
    expect(plain.status).toBe(1);
    expect(plain.stderr).toContain(`n1 is encrypted, but ${plainConfig} has no "encryption" key`);

    const keyFile = path.join(dataRoot, 'cluster.key');
    fs.renameSync(keyFile, `${keyFile}.moved`);
    const missing = cluster('up');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain(`the cluster key file "${keyFile}" is missing`);
    // Nothing was started by either.
    for (const name of MEMBERS) expect(fs.existsSync(path.join(dataDirOf(name), 'postmaster.pid')), name).toBe(false);
    fs.renameSync(`${keyFile}.moved`, keyFile);
  });
});
