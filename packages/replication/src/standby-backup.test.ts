import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from '@walship/engine/bootstrap';
import { readControlFile } from '@walship/engine/control-file';
import type { Lsn } from '@walship/engine';
import { decodeReplicationFrame, type WalSenderMessage } from '@walship/protocol';
import { sendBaseBackup, type BaseBackupSource } from './base-backup.js';
import { standbyBackupSource, type StandbyBackupNode, type StandbyBackupRecovery } from './standby-backup.js';

const SEGMENT = 1024 * 1024;
const lsn = (n: number): Lsn => n as Lsn;

/** A standby's recovery as the backup sees it; the test moves it along. */
class FakeRecovery implements StandbyBackupRecovery {
  control = { checkpointLsn: lsn(0x100100), redoLsn: lsn(0x100028), timeline: 1, fullPageWrites: true, minRecoveryLsn: lsn(0x100200) };
  consistent = true;
  replayEndLsn = lsn(0x100300);
  lastFpwDisableLsn = lsn(0);
  readonly holds: Lsn[] = [];

  holdWalForBackup(startLsn: Lsn): () => void {
    this.holds.push(startLsn);
    return () => this.holds.splice(this.holds.indexOf(startLsn), 1);
  }

  timelineOfSegment(): number {
    return 1;
  }
}

interface FakeNode extends StandbyBackupNode {
  current: StandbyBackupRecovery | null;
  restartPoints: number;
  /** What the next restartpoint does to the control file (a new checkpoint record replayed). */
  onRestartPoint: (() => void) | null;
}

function fakeNode(recovery: FakeRecovery, dataDir = '/nonexistent'): FakeNode {
  const node: FakeNode = {
    dataDir,
    segmentSize: SEGMENT,
    current: recovery,
    restartPoints: 0,
    onRestartPoint: null,
    recovery: () => node.current,
    requestRestartPoint: async () => {
      node.restartPoints++;
      node.onRestartPoint?.();
    },
  };
  return node;
}

describe('standbyBackupSource', () => {
  it('starts from the restartpoint it asked for, holds that WAL, and ends at the replay position', async () => {
    const recovery = new FakeRecovery();
    const node = fakeNode(recovery);
    node.onRestartPoint = () => {
      recovery.control = { ...recovery.control, checkpointLsn: lsn(0x180100), redoLsn: lsn(0x180028), timeline: 2 };
    };
    const source = standbyBackupSource(node);
    expect(source.backupFrom).toBe('standby');
    const started = await source.startBackup(true);
    expect(node.restartPoints).toBe(1);
    expect(started).toMatchObject({ startLsn: 0x180028, checkpointLsn: 0x180100, timeline: 2 });
    expect(recovery.holds).toEqual([0x180028]);

    recovery.replayEndLsn = lsn(0x190000);
    recovery.control.minRecoveryLsn = lsn(0x18ff00);
    expect(await source.stopBackup()).toBe(0x190000);
    // Never before the minimum recovery point, whatever replay says.
    recovery.control.minRecoveryLsn = lsn(0x1a0000);
    expect(await source.stopBackup()).toBe(0x1a0000);
    started.release();
    expect(recovery.holds).toEqual([]);
  });

  it('uses the last restartpoint when no new one can be made', async () => {
    const recovery = new FakeRecovery();
    const started = await standbyBackupSource(fakeNode(recovery)).startBackup(false);
    expect(started).toMatchObject({ startLsn: 0x100028, checkpointLsn: 0x100100, timeline: 1 });
  });

  it('refuses a standby that is not consistent yet, before asking for a restartpoint', async () => {
    const recovery = new FakeRecovery();
    recovery.consistent = false;
    const node = fakeNode(recovery);
    await expect(standbyBackupSource(node).startBackup(true)).rejects.toMatchObject({
      code: 'cannot_connect_now',
      message: 'the database system is not yet accepting connections',
      detail: expect.stringContaining('Consistent recovery state has not been yet reached'),
    });
    expect(node.restartPoints).toBe(0);
    expect(recovery.holds).toEqual([]);
  });

  it('refuses when WAL replayed since the restartpoint was generated with full_page_writes off', async () => {
    const off = new FakeRecovery();
    off.control.fullPageWrites = false;
    await expect(standbyBackupSource(fakeNode(off)).startBackup(true)).rejects.toMatchObject({
      code: 'object_not_in_prerequisite_state',
      message: 'WAL generated with full_page_writes=off was replayed since last restartpoint',
      hint: expect.stringContaining('Enable full_page_writes and run CHECKPOINT on the primary'),
    });
    expect(off.holds).toEqual([]);

    const turnedOff = new FakeRecovery();
    turnedOff.lastFpwDisableLsn = turnedOff.control.redoLsn;
    await expect(standbyBackupSource(fakeNode(turnedOff)).startBackup(true)).rejects.toThrow('was replayed since last restartpoint');

    // Turned off before the redo point, then on again by the checkpoint: nothing after it lacks images.
    const before = new FakeRecovery();
    before.lastFpwDisableLsn = lsn(before.control.redoLsn - 8);
    await expect(standbyBackupSource(fakeNode(before)).startBackup(true)).resolves.toMatchObject({ startLsn: before.control.redoLsn });
  });

  it('refuses at the end when full_page_writes was turned off during the backup', async () => {
    const recovery = new FakeRecovery();
    const source = standbyBackupSource(fakeNode(recovery));
    const started = await source.startBackup(true);
    recovery.lastFpwDisableLsn = lsn(started.startLsn + 0x1000);
    await expect(source.stopBackup()).rejects.toThrow('WAL generated with full_page_writes=off was replayed during online backup');
  });

  it('refuses when the standby was promoted, or its recovery restarted, during the backup', async () => {
    const recovery = new FakeRecovery();
    const node = fakeNode(recovery);
    const source = standbyBackupSource(node);
    await source.startBackup(true);
    expect(() => source.checkBackup?.()).not.toThrow();
    node.current = null;
    expect(() => source.checkBackup?.()).toThrow('the standby was promoted during online backup');
    await expect(source.stopBackup()).rejects.toMatchObject({
      code: 'object_not_in_prerequisite_state',
      message: 'the standby was promoted during online backup',
      hint: 'This means that the backup being taken is corrupt and should not be used. Try taking another online backup.',
    });
    node.current = new FakeRecovery();
    await expect(source.stopBackup()).rejects.toThrow('the standby restarted recovery during online backup');
  });

  it('refuses when promotion ended recovery while the restartpoint was being made', async () => {
    const recovery = new FakeRecovery();
    const node = fakeNode(recovery);
    node.onRestartPoint = () => { node.current = null; };
    await expect(standbyBackupSource(node).startBackup(true)).rejects.toThrow('the standby was promoted during online backup');
    expect(recovery.holds).toEqual([]);
  });
});

describe('sendBaseBackup from a standby', () => {
  let root: string;
  let dataDir: string;

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-sbbackup-'));
    dataDir = path.join(root, 'data');
    await bootstrapDataDirectory(dataDir, { walSegmentSize: SEGMENT });
    fs.writeFileSync(path.join(dataDir, 'base', '20000'), Buffer.alloc(3 * 8192, 7));
    fs.writeFileSync(path.join(dataDir, 'base', '20001'), Buffer.alloc(8192, 9));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  /** A recovery whose positions are those of the bootstrapped WAL, in its first segment. */
  function recoveryOfDataDir(): FakeRecovery {
    const control = readControlFile(dataDir);
    const recovery = new FakeRecovery();
    recovery.control = { checkpointLsn: control.checkpointLsn, redoLsn: control.redoLsn, timeline: 1, fullPageWrites: true, minRecoveryLsn: control.checkpointLsn };
    recovery.replayEndLsn = lsn(control.checkpointLsn + 56);
    return recovery;
  }

  async function collect(source: BaseBackupSource): Promise<WalSenderMessage[]> {
    const messages: WalSenderMessage[] = [];
    await sendBaseBackup(async (frame) => { messages.push(decodeReplicationFrame(frame, 'receiver')); }, 1, source, { label: 'test', fast: true, includeWal: true });
    return messages;
  }

  it('sends the control file as it was before the end was taken, and a label that says BACKUP FROM: standby', async () => {
    const recovery = recoveryOfDataDir();
    const source = standbyBackupSource(fakeNode(recovery, dataDir));
    const controlPath = path.join(dataDir, 'global', 'control');
    const controlBefore = fs.readFileSync(controlPath);
    const messages = await collect({
      ...source,
      stopBackup: async () => {
        // A page write after the copy moves the standby's minimum recovery point: not the copy's.
        fs.writeFileSync(controlPath, Buffer.alloc(controlBefore.length, 0xee));
        return source.stopBackup();
      },
    });
    const files = messages.filter((m): m is Extract<WalSenderMessage, { type: 'backupFile' }> => m.type === 'backupFile').map((m) => m.path);
    expect(files).toContain('base/20000');
    expect(files.at(-1)).toBe('global/control');
    expect(files.filter((f) => f.startsWith('pg_wal/'))).toEqual(['pg_wal/000000010000000000000001']);
    const controlChunks = messages.filter((m): m is Extract<WalSenderMessage, { type: 'backupChunk' }> => m.type === 'backupChunk' && m.path === 'global/control');
    expect(Buffer.concat(controlChunks.map((m) => m.data))).toEqual(controlBefore);
    const end = messages.at(-1)!;
    expect(end.type).toBe('backupEnd');
    if (end.type !== 'backupEnd') return;
    expect(end.backupLabel).toContain('BACKUP FROM: standby\n');
    expect(end.backupLabel).toContain(`START WAL LOCATION: 0/${recovery.control.redoLsn.toString(16).toUpperCase()} (file 000000010000000000000001)`);
    expect(end.endLsn).toBe(`0/${recovery.replayEndLsn.toString(16).toUpperCase()}`);
    expect(recovery.holds).toEqual([]);
  });

  it('stops at the next file once the standby is promoted, and releases its hold on WAL', async () => {
    const recovery = recoveryOfDataDir();
    const node = fakeNode(recovery, dataDir);
    const source = standbyBackupSource(node);
    let files = 0;
    const send = async (frame: Buffer): Promise<void> => {
      const message = decodeReplicationFrame(frame, 'receiver');
      if (message.type === 'backupFile' && ++files === 2) node.current = null;
    };
    await expect(sendBaseBackup(send, 1, source, { label: 'test', fast: true, includeWal: true })).rejects.toThrow('the standby was promoted during online backup');
    expect(files).toBe(2);
    expect(recovery.holds).toEqual([]);
  });
});
