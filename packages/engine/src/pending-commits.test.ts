import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from './bootstrap.js';
import { Database, type DatabaseOptions } from './database.js';
import { WalshipError } from './errors.js';
import type { Lsn } from './lsn.js';
import { PendingCommits } from './pending-commits.js';
import type { CommitWaitOptions, SyncCommitLevel } from './types.js';

const b = (text: string): Buffer => Buffer.from(text);

/** Whether a promise settled within a few turns of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('PendingCommits', () => {
  it('blocks point reads on the writer of the revision read, and reads of deleted keys on the deleter', () => {
    const pending = new PendingCommits();
    const writer = pending.register(100 as Lsn, []);
    const deleter = pending.register(200 as Lsn, [{ relNode: 7, start: b('d'), end: null }, { relNode: 7, start: b('m'), end: b('p') }]);
    expect(pending.blockersOfGet(7, b('a'), 100 as Lsn)).toEqual([writer]);
    expect(pending.blockersOfGet(7, b('a'), 50 as Lsn)).toEqual([]);
    expect(pending.blockersOfGet(7, b('d'), null)).toEqual([deleter]);
    expect(pending.blockersOfGet(7, b('d\0'), null)).toEqual([]);
    expect(pending.blockersOfGet(7, b('n'), null)).toEqual([deleter]);
    expect(pending.blockersOfGet(7, b('p'), null)).toEqual([]);
    expect(pending.blockersOfGet(8, b('d'), null)).toEqual([]);
    expect(pending.blockersOfScan(7, b('e'), b('m'), [])).toEqual([]);
    expect(pending.blockersOfScan(7, b('e'), b('m\0'), [])).toEqual([deleter]);
    expect(pending.blockersOfScan(7, null, null, [100 as Lsn, 150 as Lsn])).toEqual([writer, deleter]);
    pending.release(deleter);
    expect(pending.blockersOfGet(7, b('d'), null)).toEqual([]);
    expect(pending.size).toBe(1);
  });

  it('wakes a reader once every commit it waits for is visible', async () => {
    const pending = new PendingCommits();
    const one = pending.register(1 as Lsn, []);
    const two = pending.register(2 as Lsn, []);
    const visible = pending.untilVisible([one, two]);
    pending.release(one);
    expect(await settled(visible)).toBe(false);
    pending.release(two);
    expect(await settled(visible)).toBe(true);
    await pending.untilVisible([one]);
  });
});

describe('Database: commits waiting for synchronous standbys', () => {
  let dir: string;
  let db: Database;
  /** The standbys' confirmations, per commit LSN; the test resolves or rejects them. */
  let waits: Map<number, { resolve: () => void; reject: (error: Error) => void; level: SyncCommitLevel; wait: CommitWaitOptions }>;

  beforeEach(async () => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-pending-')), 'data');
    await bootstrapDataDirectory(dir, { walSegmentSize: 1024 * 1024 });
    waits = new Map();
    const options: DatabaseOptions = {
      dataDir: dir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: false, fullPageWrites: true,
      synchronousCommit: 'on', memberName: 'test', walKeepBytes: 0, log: () => undefined,
      syncRepWait: (lsn, level, wait) => new Promise<void>((resolve, reject) => { waits.set(lsn, { resolve, reject, level, wait }); }),
    };
    db = await Database.open(options);
  });

  afterEach(async () => {
    for (const wait of waits.values()) wait.resolve();
    await db.shutdown();
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  });

  async function waitingCommit(promise: Promise<{ lsn: Lsn }>): Promise<number> {
    const before = waits.size;
    // The local flush goes through the WAL worker thread first.
    for (let i = 0; i < 500 && waits.size === before; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(waits.size).toBe(before + 1);
    expect(await settled(promise)).toBe(false);
    return [...waits.keys()].at(-1)!;
  }

  it('hides a waiting commit from readers of its keys until its standbys confirm it, and no one else waits', async () => {
    await db.txn({ onSuccess: [{ kind: 'put', key: b('k'), value: b('old') }], syncCommit: 'local' });
    await db.txn({ onSuccess: [{ kind: 'put', key: b('other'), value: b('x') }], syncCommit: 'local' });
    const commit = db.txn({ onSuccess: [{ kind: 'put', key: b('k'), value: b('new') }, { kind: 'put', key: b('fresh'), value: b('1') }] });
    const lsn = await waitingCommit(commit);
    expect(waits.get(lsn)!.level).toBe('on');
    const read = db.get(undefined, b('k'));
    const scan = db.range({ prefix: b('f') });
    expect(await settled(read)).toBe(false);
    expect(await settled(scan)).toBe(false);
    expect((await db.get(undefined, b('other')))?.value.toString()).toBe('x');
    expect(db.pendingCommitCount).toBe(1);
    waits.get(lsn)!.resolve();
    expect((await commit).lsn).toBe(lsn);
    expect((await read)?.value.toString()).toBe('new');
    expect((await scan).entries.map((e) => e.key.toString())).toEqual(['fresh']);
    expect(db.pendingCommitCount).toBe(0);
  });

  it('hides a waiting delete from readers of the deleted keys', async () => {
    for (const key of ['a', 'b', 'c']) await db.txn({ onSuccess: [{ kind: 'put', key: b(key), value: b(key) }], syncCommit: 'local' });
    const commit = db.txn({ onSuccess: [{ kind: 'delete', key: b('b') }] });
    const lsn = await waitingCommit(commit);
    const read = db.get(undefined, b('b'));
    const scan = db.range({});
    expect(await settled(read)).toBe(false);
    expect(await settled(scan)).toBe(false);
    expect((await db.get(undefined, b('a')))?.value.toString()).toBe('a');
    expect((await db.range({ start: b('c') })).entries).toHaveLength(1);
    waits.get(lsn)!.resolve();
    await commit;
    expect(await read).toBeNull();
    expect((await scan).entries.map((e) => e.key.toString())).toEqual(['a', 'c']);
  });

  it('makes a commit whose wait was cancelled visible, and its caller gets the error with the LSN', async () => {
    const commit = db.txn({ onSuccess: [{ kind: 'put', key: b('k'), value: b('v') }] });
    const lsn = await waitingCommit(commit);
    const read = db.get(undefined, b('k'));
    waits.get(lsn)!.reject(new WalshipError('indeterminate', 'canceling wait for synchronous replication due to user request', { lsn }));
    await expect(commit).rejects.toMatchObject({ code: 'indeterminate', lsn });
    expect((await read)?.value.toString()).toBe('v');
  });

  it('holds a transaction whose compares read a waiting commit until that commit is visible', async () => {
    const first = db.txn({ onSuccess: [{ kind: 'put', key: b('k'), value: b('1') }] });
    const lsn = await waitingCommit(first);
    const cas = db.txn({ compares: [{ kind: 'value', key: b('k'), op: 'eq', value: b('1') }], onSuccess: [{ kind: 'put', key: b('k'), value: b('2') }], syncCommit: 'local' });
    expect(await settled(cas)).toBe(false);
    waits.get(lsn)!.resolve();
    await first;
    expect((await cas).succeeded).toBe(true);
  });

  it('passes the wait options through, and local commits do not wait for standbys', async () => {
    const controller = new AbortController();
    await db.txn({ onSuccess: [{ kind: 'put', key: b('l'), value: b('1') }], syncCommit: 'local' });
    expect(waits.size).toBe(0);
    const commit = db.txn({ onSuccess: [{ kind: 'put', key: b('r'), value: b('1') }], syncCommit: 'remote_apply' }, { deadlineMs: 123, signal: controller.signal });
    const lsn = await waitingCommit(commit);
    expect(waits.get(lsn)).toMatchObject({ level: 'remote_apply', wait: { deadlineMs: 123, signal: controller.signal } });
    waits.get(lsn)!.resolve();
    await commit;
  });
});
