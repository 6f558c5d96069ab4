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
 * - a promoted standby archives its timeline history file and its new timeline's segments, and
 *   none of the old timeline's again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { TestNode, freePort, tempDir, waitFor, walship } from './helpers/node.js';
import { caughtUp, nodeStatus, scanAll } from './helpers/replication.js';

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
  const archiveCommand = () => `cp %p ${archiveDir}/%f`;
  /** On failure, the end of each node's log (without the connection lines) goes to the test output. */
  const logsOnFailure = () => onTestFailed(() => {
    const tail = (log: string) => log.split('\n').filter((l) => !l.includes('connection authorized')).slice(-60).join('\n');
    console.log(`primary log:\n${tail(primary.log)}\nstandby log:\n${tail(standby?.log ?? '')}`);
  });

  beforeAll(async () => {
    archiveDir = tempDir('archive');
    primary = await TestNode.init('archiving', {
      wal_segment_size: '1MB', max_wal_size: '4MB', archive_mode: 'on', archive_command: `cp %p ${archiveDir}/%f`,
    });
    await primary.start();
  });

  afterAll(async () => {
    for (const node of [standby, primary]) await node?.stop('SIGINT').catch(() => undefined);
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

  it('archives a promoted standby\'s timeline history file and new timeline, not the old timeline\'s segments again', async () => {
    logsOnFailure();
    await primary.stop('SIGINT');
    const promoted = walship(['promote', '-D', standby.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    const history = path.join(archiveDir, '00000002.history');
    await waitFor('the history file archived', () => fs.existsSync(statusFile(standby, '00000002.history', 'done')));
    expect(fs.readFileSync(history, 'utf8')).toBe(fs.readFileSync(walPath(standby, '00000002.history'), 'utf8'));

    const client = await standby.client();
    const first = await currentSegment(standby);
    await writeUntilSegment(client, 'promoted', first + 2);
    await client.close();
    const name = segmentName(first, 2);
    await waitFor(`${name} archived`, () => fs.existsSync(statusFile(standby, name, 'done')) || !fs.existsSync(walPath(standby, name)));
    const original = readIfThere(walPath(standby, name));
    if (original !== null) expect(fs.readFileSync(path.join(archiveDir, name)).equals(original)).toBe(true);
    else expect(fs.statSync(path.join(archiveDir, name)).size).toBe(SEGMENT);
    // What the standby had of timeline 1 came from the primary or the archive: never .ready here.
    const statuses = fs.readdirSync(path.join(standby.dataDir, 'pg_wal', 'archive_status'));
    expect(statuses.filter((f) => f.startsWith('00000001') && f.endsWith('.ready'))).toEqual([]);
    const archiver = (await status(standby)).archiver;
    expect(archiver.failedCount).toBe(0);
    expect(archiver.lastArchivedWal?.startsWith('00000002')).toBe(true);
  });
});
