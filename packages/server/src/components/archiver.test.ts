import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { archiveStatusOf, xlogArchiveNotify } from '@walship/engine/wal/archive-status';
import { Archiver, ArchiverExit, archiverStatusView, newArchiverStats, type ArchiverOptions } from './archiver.js';

let root: string;
let dataDir: string;
let archiveDir: string;
let lines: string[];
let archivers: Archiver[];

function seg(n: number): string {
  return `0000000100000000000000${n.toString(16).toUpperCase().padStart(2, '0')}`;
}

/** A finished WAL file marked .ready, as XLogWrite leaves it. */
function finished(name: string, content = `wal ${name}`): void {
  fs.writeFileSync(path.join(dataDir, 'pg_wal', name), content);
  xlogArchiveNotify(dataDir, name);
}

function archiver(command: string, extra: Partial<ArchiverOptions> = {}): Archiver {
  const a = new Archiver({
    dataDir, archiveCommand: command, stats: newArchiverStats(), log: (level, message) => lines.push(`${level}: ${message}`),
    retryDelayMs: 10, ...extra,
  });
  archivers.push(a);
  return a;
}

async function waitFor<T>(what: string, condition: () => T, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; log:\n${lines.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-archiver-'));
  dataDir = path.join(root, 'data');
  archiveDir = path.join(root, 'archive');
  fs.mkdirSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
  fs.mkdirSync(archiveDir);
  lines = [];
  archivers = [];
});

afterEach(async () => {
  for (const a of archivers) await a.stopAndWait();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('archiver', () => {
  it('archives .ready files in order, history files first, with %p relative to the data directory, and marks them .done', async () => {
    for (const name of [seg(3), seg(1), '00000002.history', seg(2)]) finished(name);
    const order = path.join(root, 'order');
    const a = archiver(`echo %f >> '${order}' && test -f %p && cp %p '${archiveDir}/%f'`);
    void a.start();
    await waitFor('four files archived', () => a['options'].stats.archivedCount === 4);
    expect(fs.readFileSync(order, 'utf8').trim().split('\n')).toEqual(['00000002.history', seg(1), seg(2), seg(3)]);
    for (const name of [seg(1), seg(2), seg(3), '00000002.history']) {
      expect(fs.readFileSync(path.join(archiveDir, name), 'utf8')).toBe(`wal ${name}`);
      expect(archiveStatusOf(dataDir, name)).toBe('done');
    }
    const view = archiverStatusView(a['options'].stats);
    expect(view).toMatchObject({ archivedCount: 4, lastArchivedWal: seg(3), failedCount: 0, lastFailedWal: null, lastFailedTime: null });
    expect(Date.parse(view.lastArchivedTime!)).toBeGreaterThan(Date.now() - 60_000);

    // Woken by its latch for a new file (XLogArchiveNotify's signal).
    finished(seg(4));
    a.latch.set();
    await waitFor('the new file archived', () => archiveStatusOf(dataDir, seg(4)) === 'done');
    expect(fs.existsSync(path.join(archiveDir, seg(4)))).toBe(true);
  });

  it('retries a failing command three times, gives up until woken, keeps later files waiting, and archives once the command works', async () => {
    finished(seg(1));
    finished(seg(2));
    const a = archiver('exit 3');
    void a.start();
    await waitFor('the give-up warning', () => lines.some((l) => l.includes('failed too many times')));
    expect(lines.filter((l) => l === 'LOG: archive command failed with exit code 3')).toHaveLength(3);
    expect(lines).toContain('DETAIL: The failed archive command was: exit 3');
    expect(lines).toContain(`WARNING: archiving write-ahead log file "${seg(1)}" failed too many times, will try again later`);
    const stats = a['options'].stats;
    expect(stats).toMatchObject({ archivedCount: 0, failedCount: 3, lastFailedWal: seg(1) });
    expect(archiveStatusOf(dataDir, seg(1))).toBe('ready');
    expect(archiveStatusOf(dataDir, seg(2))).toBe('ready');

    // A reload: the new command, and the latch.
    a.archiveCommand = `cp %p '${archiveDir}/%f'`;
    a.latch.set();
    await waitFor('both archived', () => stats.archivedCount === 2);
    expect(archiveStatusOf(dataDir, seg(1))).toBe('done');
    expect(archiveStatusOf(dataDir, seg(2))).toBe('done');
    expect(stats.failedCount).toBe(3);
  });

  it('exits FATAL when the command cannot run or is killed by a signal, without counting a failure', async () => {
    finished(seg(1));
    const missing = archiver('/nonexistent/archive-tool %p');
    await expect(missing.start()).rejects.toBeInstanceOf(ArchiverExit);
    expect(lines).toContain('FATAL: archive command failed with exit code 127');
    expect(missing['options'].stats.failedCount).toBe(0);

    lines = [];
    const killed = archiver('kill -TERM $$');
    await expect(killed.start()).rejects.toBeInstanceOf(ArchiverExit);
    expect(lines.some((l) => /^FATAL: archive command (was terminated by signal 15|failed with exit code 143)/.test(l))).toBe(true);
    expect(lines).toContain('DETAIL: The failed archive command was: kill -TERM $$');

    const badPlaceholder = archiver('cp %p /x/%r');
    await expect(badPlaceholder.start()).rejects.toBeInstanceOf(ArchiverExit);
    expect(lines).toContain('FATAL: invalid value for parameter "archive_command": "cp %p /x/%r"');
    expect(archiveStatusOf(dataDir, seg(1))).toBe('ready');
  });

  it('removes an orphan .ready whose WAL file is gone', async () => {
    xlogArchiveNotify(dataDir, seg(1)); // no file in pg_wal/
    finished(seg(2));
    const a = archiver(`cp %p '${archiveDir}/%f'`);
    void a.start();
    await waitFor('the next file archived', () => archiveStatusOf(dataDir, seg(2)) === 'done');
    expect(lines).toContain(`WARNING: removed orphan archive status file "pg_wal/archive_status/${seg(1)}.ready"`);
    expect(archiveStatusOf(dataDir, seg(1))).toBeNull();
    expect(a['options'].stats).toMatchObject({ archivedCount: 1, failedCount: 0 });
  });

  it('warns and waits when archive_command is empty', async () => {
    finished(seg(1));
    const a = archiver('');
    void a.start();
    await waitFor('the empty-command warning', () => lines.includes('WARNING: archive_mode enabled, yet archive_command is not set'));
    expect(archiveStatusOf(dataDir, seg(1))).toBe('ready');
    a.archiveCommand = `cp %p '${archiveDir}/%f'`;
    a.latch.set();
    await waitFor('archived after the reload', () => archiveStatusOf(dataDir, seg(1)) === 'done');
  });

  it('stops without starting another command, and does not wait past the grace period for a hung one', async () => {
    finished(seg(1));
    finished(seg(2));
    const started = path.join(root, 'started');
    const a = archiver(`touch '${started}' && sleep 2`, { stopGraceMs: 50 });
    const running = a.start();
    await waitFor('the command to start', () => fs.existsSync(started));
    const before = performance.now();
    await a.stopAndWait();
    await running;
    expect(performance.now() - before).toBeLessThan(5_000);
    expect(archiveStatusOf(dataDir, seg(1))).toBe('ready');
    expect(archiveStatusOf(dataDir, seg(2))).toBe('ready');
  });
});
