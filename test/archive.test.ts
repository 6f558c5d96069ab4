/**
 * WAL archiving on real processes: a primary with archive_mode = on and
 * archive_command = 'cp %p ARCHIVE/%f', and a standby made with `walship basebackup --standby`
 * whose restore_command reads that archive. Checked:
 * - every finished segment is archived (the copy equals the segment) and marked `.done`, and the
 *   status JSON counts it as pg_stat_archiver does;
 * - a standby stopped while the primary wrote, checkpointed and removed several segments catches
 *   up from the archive ("restored log file ... from archive"), then streams; tables are equal;
 * - a failing archive_command is logged and retried, reported in the status, and its segment
 *   stays in pg_wal/ (`.ready`) across checkpoints until the command works again;
 * - a FATAL outcome (exit 127) ends the archiver, not the node: the postmaster starts a new one;
 * - a standby with archive_mode = always archives, with its own archive_command, every segment it
 *   streamed or restored from the archive (the same bytes as the primary's archive), but none of
 *   the WAL its base backup brought (that is `.done` from the start); a reload does not change
 *   archive_mode, a restart does;
 * - a promoted standby archives its timeline history file, its new timeline's segments and the
 *   old timeline's last segment as `.partial`, and none of the old timeline's again; its
 *   checkpoints remove the `.partial` (and its `.done`) once WAL has moved past it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { TestNode, freePort, tempDir, waitFor, walship } from './helpers/node.js';
import { basebackup, caughtUp, nodeStatus, scanAll } from './helpers/replication.js';

const SEGMENT = 1024 * 1024;
const STANDBY_SETTINGS = ['--set', 'wal_retrieve_retry_interval=100ms', '--set', 'wal_receiver_status_interval=1s'];

interface ArchiverStatus {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedTime: string | null;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: string | null;
}

interface Status {
  role: string;
  insertLsn: string;
  replayLsn: string | null;
  walReceiver: { status: string } | null;
  archiver: ArchiverStatus;
}

async function status(node: TestNode): Promise<Status> {
  return nodeStatus<Status>(node);
}

function segmentName(segNo: number, timeline = 1): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(Math.floor(segNo / 4096)) + hex(segNo % 4096);
}

/** A file's bytes, or null when it is gone (a checkpoint may remove a segment at any time). */
function readIfThere(file: string): Buffer | null {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function walPath(node: TestNode, name: string): string {
  return path.join(node.dataDir, 'pg_wal', name);
}

function statusFile(node: TestNode, name: string, suffix: 'ready' | 'done'): string {
  return path.join(node.dataDir, 'pg_wal', 'archive_status', `${name}.${suffix}`);
}

/** Archived by `node`: `.done`, or already removed by a checkpoint (with its `.done`). */
function archivedBy(node: TestNode, name: string): boolean {
  return fs.existsSync(statusFile(node, name, 'done')) || !fs.existsSync(walPath(node, name));
}

/** The segment the primary is writing into now. */
async function currentSegment(node: TestNode): Promise<number> {
  return Math.floor(parseLsn((await status(node)).insertLsn)! / SEGMENT);
}

/** Writes rows of ~8 kB until the WAL has reached segment `target`; returns the last commit LSN. */
async function writeUntilSegment(client: WalshipClient, prefix: string, target: number): Promise<number> {
  let last = 0;
  let i = 0;
  while (Math.floor(last / SEGMENT) < target) {
    const results = await Promise.all(Array.from({ length: 8 }, () => {
      const n = i++;
      return client.put(`${prefix}-${n}`, `${prefix} ${n} `.padEnd(8000, '.'));
    }));
    for (const r of results) last = Math.max(last, r.lsn);
  }
  return last;
}

describe('WAL archiving', () => {
  let archiveDir: string;
  let primary: TestNode;
  let standby: TestNode;
  /** Nodes and folders a test made besides these, for afterAll to stop and remove. */
  const others: TestNode[] = [];
  const otherDirs: string[] = [];
  const archiveCommand = () => `cp %p ${archiveDir}/%f`;
  /** On failure, the end of each node's log (without the connection lines) goes to the test output. */
  const logsOnFailure = (...more: Array<[string, () => TestNode | undefined]>) => onTestFailed(() => {
    const tail = (log: string) => log.split('\n').filter((l) => !l.includes('connection authorized')).slice(-60).join('\n');
    console.log(`primary log:\n${tail(primary.log)}\nstandby log:\n${tail(standby?.log ?? '')}`);
    for (const [name, node] of more) console.log(`${name} log:\n${tail(node()?.log ?? '')}`);
  });

  beforeAll(async () => {
    archiveDir = tempDir('archive');
    primary = await TestNode.init('archiving', {
      wal_segment_size: '1MB', max_wal_size: '4MB', archive_mode: 'on', archive_command: `cp %p ${archiveDir}/%f`,
    });
    await primary.start();
  });

  afterAll(async () => {
    for (const node of [...others, standby, primary]) await node?.stop('SIGINT').catch(() => undefined);
    for (const dir of otherDirs) fs.rmSync(dir, { recursive: true, force: true });
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
    if (archiveDir !== undefined) fs.rmSync(archiveDir, { recursive: true, force: true });
  });

  it('archives every finished segment with archive_command and marks it .done', async () => {
    logsOnFailure();
    const first = await currentSegment(primary);
    const client = await primary.client();
    await writeUntilSegment(client, 'first', first + 4);
    await client.close();
    const current = await currentSegment(primary);
    const finished = Array.from({ length: current - first }, (_, k) => segmentName(first + k));
    await waitFor('every finished segment in the archive', () => finished.every((name) => fs.existsSync(path.join(archiveDir, name))));
    for (const name of finished) {
      // Archived: .done, unless a checkpoint already removed the segment (and its .done with it).
      await waitFor(`${name}.done`, () => fs.existsSync(statusFile(primary, name, 'done')) || !fs.existsSync(walPath(primary, name)));
      expect(fs.existsSync(statusFile(primary, name, 'ready'))).toBe(false);
      const archived = fs.readFileSync(path.join(archiveDir, name));
      expect(archived.length).toBe(SEGMENT);
      const original = readIfThere(walPath(primary, name));
      if (original !== null) expect(archived.equals(original)).toBe(true);
    }
    // The segment being written is not archived.
    expect(fs.existsSync(path.join(archiveDir, segmentName(current)))).toBe(false);
    const archiver = await waitFor('the status to count them', async () => {
      const a = (await status(primary)).archiver;
      return a.lastArchivedWal === finished.at(-1) ? a : null;
    });
    expect(archiver.archivedCount).toBeGreaterThanOrEqual(finished.length);
    expect(archiver.failedCount).toBe(0);
    expect(Date.parse(archiver.lastArchivedTime!)).toBeGreaterThan(Date.now() - 120_000);
  });

  it('lets a standby that was down while its WAL was removed catch up from the archive, then stream', async () => {
    logsOnFailure();
    const dir = path.join(path.dirname(primary.dataDir), 'standby');
    const port = await freePort();
    const made = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', dir, '--standby', '--port', String(port),
      '--set', 'application_name=standby', ...STANDBY_SETTINGS, '--set', `restore_command=cp ${archiveDir}/%f %p`]);
    expect(made.status, made.stderr).toBe(0);
    standby = new TestNode(dir, port);
    await standby.start();
    await waitFor('the standby to stream', async () => (await status(standby)).walReceiver?.status === 'streaming');
    const client = await primary.client();
    const marker = await client.put('before-stop', 'x');
    await caughtUp(standby, marker.lsn);
    const stoppedAt = Math.floor(parseLsn((await status(standby)).replayLsn!)! / SEGMENT);
    await standby.stop('SIGINT');

    // The primary moves on by several segments, archives them, and its checkpoints remove them.
    const last = await writeUntilSegment(client, 'while-down', stoppedAt + 5);
    const needed = segmentName(stoppedAt + 1);
    await waitFor(`${needed} archived and removed from the primary's pg_wal`, async () => {
      if (fs.existsSync(walPath(primary, needed))) await client.checkpoint();
      return fs.existsSync(path.join(archiveDir, needed)) && !fs.existsSync(walPath(primary, needed));
    });
    expect(fs.existsSync(statusFile(primary, needed, 'done'))).toBe(false);

    await standby.start();
    await waitFor('a restore from the archive', () => standby.log.includes(`restored log file "${needed}" from archive`));
    await waitFor('the standby to stream again', async () => (await status(standby)).walReceiver?.status === 'streaming');
    const after = await client.put('after-restart', 'y');
    await client.close();
    await caughtUp(standby, Math.max(last, after.lsn));
    expect(await scanAll(standby)).toEqual(await scanAll(primary));
    // archive_mode = on: a standby does not archive.
    expect((await status(standby)).archiver.archivedCount).toBe(0);
  });

  it('archives on a standby with archive_mode = always what it streams or restores, not its base backup\'s WAL', async () => {
    const ownArchive = tempDir('standby-archive');
    otherDirs.push(ownArchive);
    let always: TestNode | undefined;
    logsOnFailure(['always', () => always]);
    // No restartpoints while the test runs (they would recreate a lost .ready on their own):
    // every .ready here comes from the walreceiver or from the restore.
    always = await basebackup(primary, 'always', [
      ...STANDBY_SETTINGS, '--set', 'archive_mode=always', '--set', `archive_command=cp %p ${ownArchive}/%f`,
      '--set', `restore_command=cp ${archiveDir}/%f %p`, '--set', 'max_wal_size=1GB', '--set', 'checkpoint_timeout=1h',
    ]);
    const node = always;
    others.push(node);

    // The base backup's WAL is the primary's to archive: .done before the node ever starts.
    const backupWal = fs.readdirSync(path.join(node.dataDir, 'pg_wal')).filter((name) => /^[0-9A-F]{24}$/.test(name)).sort();
    expect(backupWal.length).toBeGreaterThan(0);
    for (const name of backupWal) {
      expect(fs.existsSync(statusFile(node, name, 'done')), name).toBe(true);
      expect(fs.existsSync(statusFile(node, name, 'ready')), name).toBe(false);
    }

    await node.start();
    await waitFor('the always standby to stream', async () => (await status(node)).walReceiver?.status === 'streaming');
    const client = await primary.client();
    const first = await currentSegment(primary);
    await writeUntilSegment(client, 'always', first + 3);
    const streamed = [first, first + 1, first + 2].map((segNo) => segmentName(segNo));
    /** `name` archived by both nodes, each into its own archive, with the same bytes. */
    const sameInBothArchives = async (name: string): Promise<void> => {
      await waitFor(`${name} archived by the standby`, () => fs.existsSync(path.join(ownArchive, name)) && archivedBy(node, name));
      await waitFor(`${name} archived by the primary`, () => fs.existsSync(path.join(archiveDir, name)) && archivedBy(primary, name));
      const own = fs.readFileSync(path.join(ownArchive, name));
      expect(own.length).toBe(SEGMENT);
      expect(own.equals(fs.readFileSync(path.join(archiveDir, name))), `${name} differs between the archives`).toBe(true);
    };
    for (const name of streamed) await sameInBothArchives(name);

    // Restored from the primary's archive while it was down: archived here too.
    const stoppedAt = Math.floor(parseLsn((await status(node)).replayLsn!)! / SEGMENT);
    await node.stop('SIGINT');
    await writeUntilSegment(client, 'always-down', stoppedAt + 4);
    const needed = segmentName(stoppedAt + 1);
    await waitFor(`${needed} archived and removed from the primary's pg_wal`, async () => {
      if (fs.existsSync(walPath(primary, needed))) await client.checkpoint();
      return fs.existsSync(path.join(archiveDir, needed)) && !fs.existsSync(walPath(primary, needed));
    });
    await node.start();
    await waitFor(`${needed} restored`, () => node.log.includes(`restored log file "${needed}" from archive`));
    await sameInBothArchives(needed);
    await waitFor('the always standby to stream again', async () => (await status(node)).walReceiver?.status === 'streaming');

    // archive_mode needs a restart: a reload leaves the running value alone.
    const set = walship(['set', '--node', `127.0.0.1:${node.port}`, 'archive_mode', 'on']);
    expect(set.status, set.stderr).toBe(0);
    expect(set.stderr).toContain('parameter "archive_mode" cannot be changed without restarting the server');
    await waitFor('the reload', () => node.log.includes('LOG:  parameter "archive_mode" cannot be changed without restarting the server'));
    const beforeRestart = await currentSegment(primary);
    await writeUntilSegment(client, 'always-reloaded', beforeRestart + 1);
    await sameInBothArchives(segmentName(beforeRestart));

    // After a restart, archive_mode = on: what it streams is .done, and not archived here.
    await node.stop('SIGINT');
    await node.start();
    await waitFor('the standby to stream after the restart', async () => (await status(node)).walReceiver?.status === 'streaming');
    const afterRestart = (await currentSegment(primary)) + 1;
    await writeUntilSegment(client, 'always-restarted', afterRestart + 1);
    await client.close();
    const onlyDone = segmentName(afterRestart);
    await waitFor(`${onlyDone} received and marked .done`, () => fs.existsSync(statusFile(node, onlyDone, 'done')));
    expect(fs.existsSync(path.join(ownArchive, onlyDone))).toBe(false);
    expect((await status(node)).archiver.archivedCount).toBe(0);
    await node.stop('SIGINT');
  });

  it('retries a failing archive_command, reports it, and keeps the segment until it is archived', async () => {
    logsOnFailure();
    const set = walship(['set', '-D', primary.dataDir, 'archive_command', 'exit 7']);
    expect(set.status, set.stderr).toBe(0);
    await waitFor('the reload', () => primary.log.includes('parameter "archive_command" changed to "exit 7"'));
    const before = (await status(primary)).archiver;
    const client = await primary.client();
    const failing = await currentSegment(primary);
    await writeUntilSegment(client, 'failing', failing + 1);
    const name = segmentName(failing);
    await waitFor('the give-up warning', () => primary.log.includes(`WARNING:  archiving write-ahead log file "${name}" failed too many times, will try again later`));
    expect(primary.log).toMatch(/LOG: {2}archive command failed with exit code 7\n.*DETAIL: {2}The failed archive command was: exit 7/);
    const archiver = (await status(primary)).archiver;
    expect(archiver.failedCount).toBeGreaterThanOrEqual(before.failedCount + 3);
    expect(archiver.lastFailedWal).toBe(name);
    expect(archiver.lastFailedTime).not.toBeNull();
    expect(archiver.archivedCount).toBe(before.archivedCount);

    // Checkpoints past it keep it: it is not archived yet.
    await writeUntilSegment(client, 'failing-more', failing + 3);
    await client.checkpoint();
    await client.checkpoint();
    expect(fs.existsSync(walPath(primary, name))).toBe(true);
    expect(fs.existsSync(statusFile(primary, name, 'ready'))).toBe(true);
    expect(fs.existsSync(path.join(archiveDir, name))).toBe(false);

    // Fixed: archived (the reload wakes the archiver), then the next checkpoint removes it.
    const fixed = walship(['set', '-D', primary.dataDir, 'archive_command', archiveCommand()]);
    expect(fixed.status, fixed.stderr).toBe(0);
    await waitFor(`${name} archived`, () => fs.existsSync(statusFile(primary, name, 'done')) || !fs.existsSync(walPath(primary, name)));
    const original = readIfThere(walPath(primary, name));
    if (original !== null) expect(fs.readFileSync(path.join(archiveDir, name)).equals(original)).toBe(true);
    await waitFor(`${name} removed by a checkpoint`, async () => {
      await client.checkpoint();
      return !fs.existsSync(walPath(primary, name)) && !fs.existsSync(statusFile(primary, name, 'done'));
    });
    await client.close();
    const after = (await status(primary)).archiver;
    expect(after.archivedCount).toBeGreaterThan(archiver.archivedCount);
    expect(after.lastFailedWal).toBe(name);
  });

  it('restarts the archiver after a FATAL archive_command outcome, without a node crash', async () => {
    logsOnFailure();
    const set = walship(['set', '-D', primary.dataDir, 'archive_command', '/nonexistent/archive-tool %p']);
    expect(set.status, set.stderr).toBe(0);
    await waitFor('the reload', () => primary.log.includes('parameter "archive_command" changed to "/nonexistent/archive-tool %p"'));
    const client = await primary.client();
    const segment = await currentSegment(primary);
    await writeUntilSegment(client, 'fatal', segment + 1);
    const name = segmentName(segment);
    // 127: the shell could not find the command; the archiver exits, the postmaster starts another.
    await waitFor('the archiver to exit', () => /FATAL: {2}archive command failed with exit code 127\n.*DETAIL: {2}The failed archive command was: \/nonexistent\/archive-tool pg_wal\/[0-9A-F]{24}\n.*LOG: {2}archiver process \(PID \d+\) exited with exit code 1/.test(primary.log));
    const s = await status(primary);
    expect(s.role).toBe('primary');
    expect((s as unknown as { crashRestarts: number }).crashRestarts).toBe(0);
    expect(fs.existsSync(statusFile(primary, name, 'ready'))).toBe(true);

    const fixed = walship(['set', '-D', primary.dataDir, 'archive_command', archiveCommand()]);
    expect(fixed.status, fixed.stderr).toBe(0);
    // A new archiver (at most PGARCH_RESTART_INTERVAL later) archives it.
    await waitFor(`${name} archived by a new archiver`, () => fs.existsSync(statusFile(primary, name, 'done')) || !fs.existsSync(walPath(primary, name)), 30_000);
    expect(fs.existsSync(path.join(archiveDir, name))).toBe(true);
    await client.close();
  });

  it('archives a promoted standby\'s timeline history file, new timeline and old timeline\'s .partial, which checkpoints then remove', async () => {
    logsOnFailure();
    await primary.stop('SIGINT');
    const promoted = walship(['promote', '-D', standby.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    const history = path.join(archiveDir, '00000002.history');
    await waitFor('the history file archived', () => fs.existsSync(statusFile(standby, '00000002.history', 'done')));
    expect(fs.readFileSync(history, 'utf8')).toBe(fs.readFileSync(walPath(standby, '00000002.history'), 'utf8'));

    // Timeline 1's last segment, up to the switch point, is archived as .partial, never under
    // its own name (where the old primary archives the whole of it).
    const switchPoint = parseLsn(/^1\t([0-9A-F]+\/[0-9A-F]+)\t/m.exec(fs.readFileSync(history, 'utf8'))![1]!)!;
    expect(switchPoint % SEGMENT).not.toBe(0);
    const switchSegNo = Math.floor(switchPoint / SEGMENT);
    const partial = `${segmentName(switchSegNo)}.partial`;
    await waitFor(`${partial} archived`, () => fs.existsSync(statusFile(standby, partial, 'done')));
    const archivedPartial = fs.readFileSync(path.join(archiveDir, partial));
    expect(archivedPartial.length).toBe(SEGMENT);
    expect(archivedPartial.equals(fs.readFileSync(walPath(standby, partial)))).toBe(true);
    // The WAL both timelines share, up to the switch point, is the new timeline's too.
    const shared = switchPoint % SEGMENT;
    const newTimelineCopy = readIfThere(walPath(standby, segmentName(switchSegNo, 2)));
    if (newTimelineCopy !== null) expect(archivedPartial.subarray(0, shared).equals(newTimelineCopy.subarray(0, shared))).toBe(true);

    const client = await standby.client();
    const first = await currentSegment(standby);
    await writeUntilSegment(client, 'promoted', first + 2);
    const name = segmentName(first, 2);
    await waitFor(`${name} archived`, () => archivedBy(standby, name));
    const original = readIfThere(walPath(standby, name));
    if (original !== null) expect(fs.readFileSync(path.join(archiveDir, name)).equals(original)).toBe(true);
    else expect(fs.statSync(path.join(archiveDir, name)).size).toBe(SEGMENT);
    // What the standby had of timeline 1 came from the primary or the archive: never .ready here.
    const statuses = fs.readdirSync(path.join(standby.dataDir, 'pg_wal', 'archive_status'));
    expect(statuses.filter((f) => f.startsWith('00000001') && f.endsWith('.ready'))).toEqual([]);
    const archiver = (await status(standby)).archiver;
    expect(archiver.failedCount).toBe(0);
    expect(archiver.lastArchivedWal?.startsWith('00000002')).toBe(true);

    // Once WAL has moved past it, checkpoints remove the archived .partial and its .done.
    await waitFor(`${partial} removed by a checkpoint`, async () => {
      await client.checkpoint();
      return !fs.existsSync(walPath(standby, partial)) && !fs.existsSync(statusFile(standby, partial, 'done'));
    });
    await client.close();
    expect(fs.existsSync(path.join(archiveDir, partial))).toBe(true);
    expect(fs.existsSync(path.join(archiveDir, segmentName(switchSegNo)))).toBe(false);
  });
});
