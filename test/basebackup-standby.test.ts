/**
 * A base backup taken from a standby (a cascading base backup), on real processes:
 * - with the primary under a write load and the standby replaying it, `walship basebackup
 *   --from STANDBY --standby` copies the standby; the label says `BACKUP FROM: standby` and
 *   starts at the standby's restartpoint; the copy starts as a cascading standby streaming from
 *   the standby; once writes stop and everyone caught up, the three tables are equal, and
 *   `walship verify` finds the pages equal after checkpoint and restartpoints;
 * - while that backup is held up (its receiver stopped with SIGSTOP), the standby makes a
 *   restartpoint whose redo point is segments past the backup's start: the backup's WAL stays
 *   (restartpoints keep what a running backup holds), or the backup would fail;
 * - WAL replayed with full_page_writes off on the primary makes the standby refuse a backup until
 *   the primary has turned it on again and checkpointed;
 * - a standby promoted while a backup of it runs (held up with SIGSTOP) makes the backup fail
 *   with "the standby was promoted during online backup";
 * - a standby that has not reached its consistent point refuses with a clear error.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLsn, parseLsn, readControlFile, writeControlFile, type Lsn } from '@walship/engine';
import { CLI, ROOT, TestNode, freePort, waitFor, walship, type CliResult } from './helpers/node.js';
import { basebackup, caughtUp, nodeStatus, scanAll } from './helpers/replication.js';

/**
 * Standbys retry quickly; wal_keep_size stays 0 (the primary's, copied), so a standby keeps the
 * WAL a running backup needs only because the backup holds it, while its restartpoints (every
 * couple of MB, with max_wal_size = 4MB) remove what nothing holds.
 */
const STANDBY_SETTINGS = ['--set', 'wal_retrieve_retry_interval=100ms', '--set', 'wal_receiver_status_interval=1s'];

/**
 * Data in the standby's relation files before the held-up backup: more than the sender buffers
 * (BASE_BACKUP_BUFFERED_BYTES_MAX, 16 MB, plus the sockets' buffers), so that a stopped receiver
 * stops the sender among the files, before it has asked where the backup ends.
 */
const PRELOAD_BYTES = 48 * 1024 * 1024;
const SEGMENT_BYTES = 1024 * 1024;

interface Status {
  role: string;
  replayLsn: string | null;
  flushLsn: string;
  walReceiver: { status: string; upstream: string | null } | null;
  replication: Array<{ applicationName: string; state: string }>;
}

interface VerifyReport {
  identical: boolean;
  nodes: Array<{ address: string; role: string; lsn: string }>;
  blocksCompared: number;
  differingBlocks: number;
}

/** Writes from four clients until `stop()` is called; resolves with the last commit LSN and the keys written. */
function writeLoad(node: TestNode, prefix: string): { stop(): Promise<{ lastLsn: number; count: number }>; written(): number } {
  let stopping = false;
  let lastLsn = 0;
  let count = 0;
  const running = (async () => {
    const client = await node.client();
    try {
      await Promise.all(Array.from({ length: 4 }, async () => {
        while (!stopping) {
          const i = count++;
          const { lsn } = i % 10 === 9
            ? await client.txn({ onSuccess: [{ kind: 'delete', key: Buffer.from(`${prefix}-${i - 5}`) }, { kind: 'put', key: Buffer.from(`${prefix}-${i}`), value: Buffer.from(`v${i}`) }] })
            : await client.put(`${prefix}-${i}`, `${prefix} ${i} `.padEnd(100 + (i % 900), '.'));
          lastLsn = Math.max(lastLsn, lsn);
        }
      }));
    } finally {
      await client.close();
    }
  })();
  return {
    async stop() {
      stopping = true;
      await running;
      return { lastLsn, count };
    },
    written: () => count,
  };
}

/** `walship ARGS` as a child process, for a command the test holds up (SIGSTOP) and lets go. */
function startWalship(args: string[]): { pid: number; stderr(): string; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const done = new Promise<CliResult>((resolve) => child.once('exit', (code) => resolve({ status: code ?? -1, stdout, stderr })));
  return { pid: child.pid!, stderr: () => stderr, done };
}

async function replayLsn(node: TestNode): Promise<number> {
  const s = await nodeStatus<Status>(node);
  return s.replayLsn === null ? 0 : parseLsn(s.replayLsn)!;
}

function verify(a: TestNode, b: TestNode): VerifyReport {
  const result = walship(['verify', '--node', `127.0.0.1:${a.port}`, '--node', `127.0.0.1:${b.port}`, '--json']);
  expect(result.status, result.stderr + result.stdout).toBe(0);
  return JSON.parse(result.stdout) as VerifyReport;
}

describe('a base backup taken from a standby', () => {
  let primary: TestNode;
  let standby: TestNode;
  let cascade: TestNode | undefined;
  const others: TestNode[] = [];

  beforeAll(async () => {
    primary = await TestNode.init('sbbackup', { max_wal_size: '4MB' });
    await primary.start();
    const client = await primary.client();
    const value = 'p'.repeat(32 * 1024);
    for (let i = 0; i < PRELOAD_BYTES / value.length; i += 8) {
      await Promise.all(Array.from({ length: 8 }, (_, n) => client.put(`preload-${i + n}`, value)));
    }
    await client.close();
    standby = await basebackup(primary, 'standby', STANDBY_SETTINGS);
    await standby.start();
  });

  afterAll(async () => {
    for (const node of [...others, cascade, standby, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  it('copies a standby that keeps replaying a primary under load; the copy streams from the standby and ends equal to both', async () => {
    const load = writeLoad(primary, 'during');
    // The standby is replaying the load when the backup starts.
    const replayedBefore = await replayLsn(standby);
    await waitFor('the standby to replay part of the load', async () => load.written() >= 500 && await replayLsn(standby) > replayedBefore + 1024 * 1024, 60_000);
    const logBefore = standby.log.length;
    const cascadeDir = path.join(path.dirname(primary.dataDir), 'cascade');
    const cascadePort = await freePort();
    const backup = startWalship(['basebackup', '--from', `127.0.0.1:${standby.port}`, '-D', cascadeDir, '--standby', '--progress',
      '--port', String(cascadePort), '--set', 'application_name=cascade', ...STANDBY_SETTINGS]);
    // The first progress line comes with backupStart: the restartpoint is made and its WAL held.
    await waitFor('the backup to start', () => /kB \(/.test(backup.stderr()), 60_000, 5);
    process.kill(backup.pid, 'SIGSTOP');
    let restartPoint: { lsn: number; redoLsn: number };
    try {
      const held = JSON.parse(walship(['controldata', '-D', standby.dataDir, '--json']).stdout) as { redoLsn: string };
      const heldFrom = parseLsn(held.redoLsn)!;
      // Two segments of WAL past the backup's start, a checkpoint, replayed, and a restartpoint
      // at it: without the backup's hold, it would remove the segment the backup starts in.
      await waitFor('the load to write two segments past the backup start', async () => await replayLsn(standby) > heldFrom + 2 * SEGMENT_BYTES, 60_000);
      const client = await primary.client();
      const checkpoint = await client.checkpoint();
      await client.close();
      await caughtUp(standby, checkpoint.lsn);
      const standbyClient = await standby.client();
      restartPoint = await standbyClient.checkpoint();
      await standbyClient.close();
    } finally {
      process.kill(backup.pid, 'SIGCONT');
    }
    const made = await backup.done;
    expect(made.status, made.stderr).toBe(0);
    cascade = new TestNode(cascadeDir, cascadePort);
    const writtenDuringBackup = load.written();
    const first = await load.stop();
    expect(writtenDuringBackup).toBeGreaterThan(500);

    const label = fs.readFileSync(path.join(cascade.dataDir, 'backup_label'), 'utf8');
    expect(label).toContain('BACKUP FROM: standby\n');
    const startLsn = parseLsn(/^START WAL LOCATION: (\S+)/m.exec(label)![1]!)!;
    const endLsn = parseLsn(/^BACKUP END LOCATION: (\S+)/m.exec(label)![1]!)!;
    expect(endLsn).toBeGreaterThan(startLsn);
    // The restartpoint made while the backup was held up came after its start and before its
    // end, and its redo point lies segments past the start: the backup's WAL was kept for it.
    expect(Math.floor(restartPoint.redoLsn / SEGMENT_BYTES)).toBeGreaterThan(Math.floor(startLsn / SEGMENT_BYTES));
    expect(endLsn).toBeGreaterThan(restartPoint.lsn);
    expect(fs.existsSync(path.join(cascade.dataDir, 'standby.signal'))).toBe(true);
    expect(fs.readFileSync(path.join(cascade.dataDir, 'walship.conf'), 'utf8')).toMatch(new RegExp(`^primary_conninfo = '.*port=${standby.port}.*'`, 'm'));
    const duringBackup = standby.log.slice(logBefore);
    expect(duringBackup).toMatch(/base backup "walship basebackup to cascade" sent from standby/);
    expect(duringBackup).toContain(`redo lsn=${formatLsn(restartPoint.redoLsn)}`);
    console.log(`standby backup: WAL ${formatLsn(startLsn)} to ${formatLsn(endLsn)}; restartpoints on the standby while it ran: ${(duringBackup.match(/restartpoint complete/g) ?? []).length}, WAL files they removed: ${[...duringBackup.matchAll(/(\d+) WAL file\(s\) removed/g)].reduce((n, m) => n + Number(m[1]), 0)}`);

    await cascade.start();
    expect(cascade.log).toContain(`starting backup recovery with redo LSN ${formatLsn(startLsn)}`);
    await waitFor('the cascading standby to stream from the standby', async () => {
      const s = await nodeStatus<Status>(cascade!);
      return s.walReceiver?.status === 'streaming' && s.walReceiver.upstream === `127.0.0.1:${standby.port}`;
    }, 60_000);
    expect((await nodeStatus<Status>(standby)).replication.map((r) => r.applicationName)).toEqual(['cascade']);

    // More writes, now through primary -> standby -> cascade.
    const after = writeLoad(primary, 'after');
    await waitFor('the second load to write 1500 transactions', () => after.written() >= 1500, 60_000);
    const second = await after.stop();
    const last = Math.max(first.lastLsn, second.lastLsn);
    await caughtUp(standby, last);
    await caughtUp(cascade, last);

    const expected = await scanAll(primary);
    expect(expected.size).toBeGreaterThan(3000);
    expect([...expected.keys()].filter((k) => k.startsWith('during-')).length).toBeGreaterThan(400);
    expect([...expected.keys()].filter((k) => k.startsWith('after-')).length).toBeGreaterThan(1000);
    expect(await scanAll(standby)).toEqual(expected);
    expect(await scanAll(cascade)).toEqual(expected);

    // Byte-identical pages once each has flushed: a checkpoint on the primary, a restartpoint
    // and a flush of every dirty buffer on the standbys.
    for (const [a, b] of [[primary, cascade], [standby, cascade]] as const) {
      const report = verify(a, b);
      expect(report.identical).toBe(true);
      expect(report.differingBlocks).toBe(0);
      expect(report.blocksCompared).toBeGreaterThan(50);
      expect(report.nodes[1]!.lsn).toBe(report.nodes[0]!.lsn);
    }
  });

  it('refuses while WAL generated with full_page_writes=off is replayed since the restartpoint, and copies again once the primary turned it on and checkpointed', async () => {
    const set = (value: string) => {
      const result = walship(['set', '--node', `127.0.0.1:${primary.port}`, 'full_page_writes', value]);
      expect(result.status, result.stderr).toBe(0);
    };
    const checkpointAndReplay = async (prefix: string) => {
      const client = await primary.client();
      try {
        await client.put(`${prefix}-key`, 'value');
        const checkpoint = await client.checkpoint();
        await caughtUp(standby, checkpoint.lsn);
      } finally {
        await client.close();
      }
    };
    set('off');
    await checkpointAndReplay('fpw-off');
    const refusedDir = path.join(path.dirname(primary.dataDir), 'refused');
    const refused = walship(['basebackup', '--from', `127.0.0.1:${standby.port}`, '-D', refusedDir, '--standby']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('WAL generated with full_page_writes=off was replayed since last restartpoint');
    expect(refused.stderr).toContain('Enable full_page_writes and run CHECKPOINT on the primary');
    fs.rmSync(refusedDir, { recursive: true, force: true });

    set('on');
    await checkpointAndReplay('fpw-on');
    const copy = await basebackup(standby, 'after-fpw', STANDBY_SETTINGS);
    expect(fs.readFileSync(path.join(copy.dataDir, 'backup_label'), 'utf8')).toContain('BACKUP FROM: standby\n');
    fs.rmSync(copy.dataDir, { recursive: true, force: true });
  });

  it('fails a backup of a standby that is promoted while the backup runs', async () => {
    const promoted = await basebackup(primary, 'promoted', STANDBY_SETTINGS);
    others.push(promoted);
    await promoted.start();
    const dir = path.join(path.dirname(primary.dataDir), 'from-promoted');
    const backup = startWalship(['basebackup', '--from', `127.0.0.1:${promoted.port}`, '-D', dir, '--standby', '--progress']);
    await waitFor('the backup to start', () => /kB \(/.test(backup.stderr()), 60_000, 5);
    process.kill(backup.pid, 'SIGSTOP');
    try {
      const promotion = walship(['promote', '-D', promoted.dataDir]);
      expect(promotion.status, promotion.stderr).toBe(0);
    } finally {
      process.kill(backup.pid, 'SIGCONT');
    }
    const result = await backup.done;
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('the standby was promoted during online backup');
    expect(result.stderr).toContain('This means that the backup being taken is corrupt and should not be used.');
    expect(promoted.log).not.toMatch(/base backup .* sent from standby/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a backup of a standby that has not reached its consistent point yet', async () => {
    const late = await basebackup(primary, 'late', STANDBY_SETTINGS);
    others.push(late);
    await late.start();
    const { lsn } = await (async () => {
      const client = await primary.client();
      try {
        return await client.put('late-marker', 'x');
      } finally {
        await client.close();
      }
    })();
    await caughtUp(late, lsn);
    await late.stop('SIGINT');
    // As if pages up to far beyond anything written had reached disk before a crash: the standby
    // is not consistent until it has replayed that far, which it cannot while the primary idles.
    const control = readControlFile(late.dataDir);
    control.minRecoveryLsn = (lsn + 1024 * 1024 * 1024) as Lsn;
    writeControlFile(late.dataDir, control);
    await late.startNotReady();

    const dir = path.join(path.dirname(primary.dataDir), 'from-late');
    const result = walship(['basebackup', '--from', `127.0.0.1:${late.port}`, '-D', dir, '--standby']);
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toContain('the database system is not yet accepting connections');
    expect(result.stderr).toContain('Consistent recovery state has not been yet reached.');
    expect(fs.existsSync(dir) && fs.readdirSync(dir).length > 0).toBe(false);
  });
});
