/**
 * Transparent data encryption on real processes: a primary made with `walship init --encrypt
 * --key-file`, a standby made from it with `walship basebackup --standby`, a promotion and a
 * rewind, all encrypted at rest.
 *
 * - No written key or value is found in the clear in any file of the data directories (WAL,
 *   relations, everything) or of the WAL archive, after a checkpoint; the same search on an
 *   unencrypted node finds them.
 * - A partial WAL page is never written with bytes that change later: every byte of a segment is
 *   either clear zero or, once written encrypted, the same ciphertext for good.
 * - SIGKILL and restart replay every acknowledged write.
 * - After a promotion, the old primary (timeline 1) and the new one (timeline 2) hold different
 *   records at the same LSNs, and their ciphertexts there do not XOR to the XOR of the
 *   plaintexts: the keystreams differ.
 * - The standbys have the primary's WAL key and get the WAL read from its files as stored
 *   (ciphertext, no cipher run on either side), and so does a cascading standby from its
 *   upstream standby; a replication connection with another key's identifier, or none, gets
 *   plaintext.
 * - A second standby (basebackup --key-file), repointed at the promoted one, follows timeline 2 by
 *   streaming and stores exactly the new primary's ciphertext for those bytes; the switch
 *   segment, which the new primary sends as stored under timeline 2, is converted into the
 *   standby's timeline-1 file, byte for byte what the old primary has there.
 * - The old primary is rewound and follows the new one; their pages are byte-identical.
 * - A wrong key is refused and changes nothing; rotate-key, then the new key works and the old
 *   one is refused; waldump and controldata read the encrypted directory with the key.
 * - A torn WAL tail (bytes encrypted under timeline 1 past the end of valid WAL, put there by the
 *   test after a SIGKILL) makes crash recovery end on timeline 2: every acknowledged write kept,
 *   the torn bytes never encrypted again under timeline 1's counters, and a streaming standby
 *   follows; a SIGKILL that leaves only complete records keeps the timeline. An old primary with
 *   a torn tail, rewound after its standby was promoted, ends its crash recovery on a timeline
 *   above the promoted one's.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataKeys, lsnToString as formatLsn, parseLsn, type DataKeys } from '@walship/engine';
import { WalCipher, walCounterBlock, walKeyId } from '@walship/engine/crypto/index';
import { ReplicationConnection } from '@walship/replication';
import { xlogFileName } from '@walship/engine/wal/xlog-internal';
import { TestNode, freePort, tempDir, waitFor, walship } from './helpers/node.js';
import { basebackup, caughtUp, nodeStatus, scanAll } from './helpers/replication.js';
import { findInClear, listFiles, readBytesAt } from './helpers/files.js';

const SEGMENT_BYTES = 1024 * 1024;
const XLOG_BLCKSZ = 8192;
const XLOG_PAGE_MAGIC = 0xd1a5;
const SECRET_KEY = 'tde-secret-key-';
const SECRET_VALUE = 'tde-secret-value-';

interface Status {
  role: string;
  timeline: number;
  flushLsn: string;
}

interface StandbyStatus {
  walReceiver: { walBytesReceived: number; walBytesReceivedAsStored: number };
}

/** XLogData received on a replication connection of our own, until `bytes` or the timeout. */
async function receiveXLogData(node: TestNode, startLsn: number, bytes: number, keyId: Buffer | undefined): Promise<Array<{ dataStart: number; data: Buffer; encryptedTimeline?: number }>> {
  const connection = await ReplicationConnection.connect({ host: '127.0.0.1', port: node.port, applicationName: 'probe', timeoutMs: 10_000 });
  const received: Array<{ dataStart: number; data: Buffer; encryptedTimeline?: number }> = [];
  try {
    await connection.request('startReplication', { startLsn: formatLsn(startLsn), timeline: 1, ...(keyId !== undefined ? { walKeyId: keyId } : {}) });
    let total = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`received ${total} of ${bytes} bytes of WAL in 20 s`)), 20_000);
      connection.onStream((message) => {
        if (message.type !== 'xlogData') return;
        received.push({ dataStart: message.dataStart, data: Buffer.from(message.data), ...(message.encryptedTimeline !== undefined ? { encryptedTimeline: message.encryptedTimeline } : {}) });
        total += message.data.length;
        if (total >= bytes) {
          clearTimeout(timer);
          resolve();
        }
      }, (error) => {
        clearTimeout(timer);
        reject(error ?? new Error('the stream ended'));
      });
    });
  } finally {
    connection.terminate();
  }
  return received;
}

async function put(node: TestNode, entries: Array<[string, string]>): Promise<number> {
  const client = await node.client();
  try {
    let last = 0;
    for (const [key, value] of entries) last = Math.max(last, (await client.put(key, value)).lsn);
    return last;
  } finally {
    await client.close();
  }
}

async function checkpoint(node: TestNode): Promise<void> {
  const client = await node.client();
  try {
    await client.checkpoint();
  } finally {
    await client.close();
  }
}

async function flushLsn(node: TestNode): Promise<number> {
  return parseLsn((await nodeStatus<Status>(node)).flushLsn)!;
}

const secrets = (tag: string, count: number): Array<[string, string]> =>
  Array.from({ length: count }, (_, i) => [`${SECRET_KEY}${tag}-${i}`, `${SECRET_VALUE}${tag}-${i}-${'v'.repeat(i % 50)}`]);

/** Every file's bytes, for "nothing changed" checks. */
function snapshot(dir: string): Map<string, string> {
  return new Map(listFiles(dir).map((file) => [path.relative(dir, file), crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')]));
}

function segmentFile(dataDir: string, timeline: number, lsn: number): string {
  return path.join(dataDir, 'pg_wal', xlogFileName(timeline, Math.floor(lsn / SEGMENT_BYTES), SEGMENT_BYTES));
}

/** Raw WAL bytes [lsn, lsn + length) from the segment files of `timeline` (within one segment). */
function rawWal(dataDir: string, timeline: number, lsn: number, length: number): Buffer {
  expect(Math.floor(lsn / SEGMENT_BYTES)).toBe(Math.floor((lsn + length - 1) / SEGMENT_BYTES));
  return readBytesAt(segmentFile(dataDir, timeline, lsn), lsn % SEGMENT_BYTES, length);
}

describe('encryption at rest', () => {
  const root = tempDir('tde');
  const keyFile = path.join(root, 'cluster.key');
  const newKeyFile = path.join(root, 'cluster-new.key');
  const wrongKeyFile = path.join(root, 'wrong.key');
  const archiveDir = path.join(root, 'archive');
  let p: TestNode;
  let s: TestNode;
  let s2: TestNode;
  let keys: DataKeys;
  const acknowledged = new Map<string, string>();

  beforeAll(async () => {
    fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    fs.writeFileSync(newKeyFile, `${crypto.randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    fs.writeFileSync(wrongKeyFile, crypto.randomBytes(32).toString('hex'), { mode: 0o600 });
    // autovacuum off and no heartbeat: the WAL the partial-page check reads is only this test's.
    fs.mkdirSync(archiveDir);
    p = await TestNode.init('tde-primary', {
      max_wal_size: '1GB', wal_keep_size: '64MB', wal_retrieve_retry_interval: '100ms', autovacuum: 'off',
      archive_mode: 'on', archive_command: `cp %p ${archiveDir}/%f`,
    }, ['--encrypt', '--key-file', keyFile]);
    keys = loadDataKeys(p.dataDir, { keyFile });
    await p.start();
  }, 60_000);

  afterAll(async () => {
    for (const node of [s2, s, p]) await node?.destroy().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('records the key setting and keeps no key in the clear', () => {
    const conf = fs.readFileSync(path.join(p.dataDir, 'walship.conf'), 'utf8');
    expect(conf).toMatch(new RegExp(`^cluster_key_file = '${keyFile}'$`, 'm'));
    const keyText = fs.readFileSync(keyFile, 'utf8').trim();
    const hexKeys = [keys.walKey.toString('hex'), keys.relationKey.toString('hex')];
    for (const file of listFiles(p.dataDir)) {
      const bytes = fs.readFileSync(file);
      expect(bytes.includes(keyText), file).toBe(false);
      expect(bytes.includes(Buffer.from(keyText, 'hex')), file).toBe(false);
      for (const key of [keys.walKey, keys.relationKey]) expect(bytes.includes(key), file).toBe(false);
      for (const hex of hexKeys) expect(bytes.includes(hex), file).toBe(false);
    }
  });

  it('never rewrites a WAL byte it wrote encrypted: the unfinished part of a page is clear zeros', async () => {
    const snapshots: Array<{ flush: number; bytes: Buffer }> = [];
    let segment = '';
    for (let i = 0; i < 6; i++) {
      await put(p, [[`${SECRET_KEY}partial-${i}`, `${SECRET_VALUE}partial-${i}`]]);
      const flush = await flushLsn(p);
      const file = segmentFile(p.dataDir, 1, flush);
      if (segment !== '' && file !== segment) break; // crossed into the next segment: compare within one
      segment = file;
      snapshots.push({ flush, bytes: fs.readFileSync(file) });
    }
    expect(snapshots.length).toBeGreaterThanOrEqual(3);
    const segmentStart = Math.floor(snapshots[0]!.flush / SEGMENT_BYTES) * SEGMENT_BYTES;
    for (let i = 0; i < snapshots.length; i++) {
      const { flush, bytes } = snapshots[i]!;
      const written = flush - segmentStart;
      // Each snapshot ends on a partial page: past the flushed position, nothing but clear zeros.
      expect(written % XLOG_BLCKSZ).not.toBe(0);
      expect(bytes.subarray(written).equals(Buffer.alloc(SEGMENT_BYTES - written))).toBe(true);
      // Every later snapshot holds exactly these bytes before that position.
      for (let j = i + 1; j < snapshots.length; j++) {
        expect(snapshots[j]!.bytes.subarray(0, written).equals(bytes.subarray(0, written))).toBe(true);
      }
      // And they are encrypted: decrypting the page with the WAL key gives a valid page header.
      const pageStart = written - (written % XLOG_BLCKSZ);
      const page = Buffer.from(bytes.subarray(pageStart, written));
      expect(page.readUInt16LE(0)).not.toBe(XLOG_PAGE_MAGIC);
      new WalCipher(keys.walKey).applyInPlace(1, segmentStart + pageStart, page, 0, page.length);
      expect(page.readUInt16LE(0)).toBe(XLOG_PAGE_MAGIC);
    }
    for (let i = 0; i < snapshots.length; i++) acknowledged.set(`${SECRET_KEY}partial-${i}`, `${SECRET_VALUE}partial-${i}`);
  });

  it('writes no key or value in the clear, in the WAL or the relation files', async () => {
    for (const [key, value] of secrets('first', 300)) acknowledged.set(key, value);
    await put(p, secrets('first', 300));
    // A value large enough for overflow pages, and to fill a WAL segment for the archiver.
    const big = `${SECRET_VALUE}big-${'x'.repeat(1_500_000)}`;
    await put(p, [[`${SECRET_KEY}big`, big]]);
    acknowledged.set(`${SECRET_KEY}big`, big);
    await checkpoint(p);
    expect(findInClear(p.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    // Archived segments are copies of the encrypted files.
    await waitFor('a segment to be archived', () => fs.readdirSync(archiveDir).some((name) => /^[0-9A-F]{24}$/.test(name)), 30_000);
    expect(findInClear(archiveDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    // The node itself reads them back.
    const client = await p.client();
    try {
      expect((await client.get(`${SECRET_KEY}first-7`))?.value.toString()).toBe(acknowledged.get(`${SECRET_KEY}first-7`));
    } finally {
      await client.close();
    }
  });

  it('the same search finds them on an unencrypted node (the search can fail)', async () => {
    const plain = await TestNode.init('tde-plain', { autovacuum: 'off' });
    try {
      await plain.start();
      await put(plain, secrets('plain', 5));
      await checkpoint(plain);
      const found = findInClear(plain.dataDir, [SECRET_KEY, SECRET_VALUE]);
      expect(found.some((line) => line.startsWith('pg_wal/'))).toBe(true);
      expect(found.some((line) => line.startsWith('base/'))).toBe(true);
    } finally {
      await plain.destroy();
    }
  });

  it('replays every acknowledged write after SIGKILL', async () => {
    const batch = secrets('before-kill', 200);
    await put(p, batch);
    for (const [key, value] of batch) acknowledged.set(key, value);
    await p.kill();
    await p.start();
    const rows = await scanAll(p);
    for (const [key, value] of acknowledged) expect(rows.get(key)?.split('@')[0], key).toBe(value);
    await checkpoint(p);
    expect(findInClear(p.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
  });

  it('streams to an encrypted standby made by basebackup, which replays and stores nothing in the clear', async () => {
    const dir = path.join(path.dirname(p.dataDir), 's');
    const port = await freePort();
    const backup = walship(['basebackup', '--from', `127.0.0.1:${p.port}`, '-D', dir, '--standby', '--port', String(port), '--set', 'application_name=s']);
    expect(backup.status, backup.stderr).toBe(0);
    // The copy carries the source's key setting and the wrapped keys.
    expect(fs.readFileSync(path.join(dir, 'walship.conf'), 'utf8')).toMatch(new RegExp(`^cluster_key_file = '${keyFile}'$`, 'm'));
    expect(fs.existsSync(path.join(dir, 'pg_cryptokeys', 'keys.json'))).toBe(true);
    s = new TestNode(dir, port);
    await s.start();
    // A second standby, with the key given explicitly (--key-file), to follow the promotion later.
    const dir2 = path.join(path.dirname(p.dataDir), 's2');
    const port2 = await freePort();
    const backup2 = walship(['basebackup', '--from', `127.0.0.1:${p.port}`, '-D', dir2, '--standby', '--port', String(port2), '--set', 'application_name=s2', '--key-file', keyFile]);
    expect(backup2.status, backup2.stderr).toBe(0);
    s2 = new TestNode(dir2, port2);
    await s2.start();
    const batch = secrets('streamed', 300);
    const last = await put(p, batch);
    for (const [key, value] of batch) acknowledged.set(key, value);
    await caughtUp(s, last);
    await caughtUp(s2, last);
    expect(await scanAll(s)).toEqual(await scanAll(p));
    // The standbys have the primary's WAL key: what the walsender read from its files (the
    // standbys start at their segment's start, before what the primary's buffers hold since its
    // restart) came as stored, and was written without running the cipher.
    for (const standby of [s, s2]) {
      const { walReceiver } = await nodeStatus<StandbyStatus>(standby);
      expect(walReceiver.walBytesReceivedAsStored, standby.dataDir).toBeGreaterThan(0);
      expect(walReceiver.walBytesReceivedAsStored).toBeLessThanOrEqual(walReceiver.walBytesReceived);
    }
    const rows = (await nodeStatus<{ replication: Array<{ applicationName: string; walBytesSent: number; walBytesSentAsStored: number }> }>(p)).replication;
    expect(rows.map((row) => row.applicationName).sort()).toEqual(['s', 's2']);
    for (const row of rows) expect(row.walBytesSentAsStored).toBeLessThanOrEqual(row.walBytesSent);
    const verify = walship(['verify', '--node', `127.0.0.1:${p.port}`, '--node', `127.0.0.1:${s.port}`]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(findInClear(s.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
  });

  it('a cascading standby gets WAL as stored from its upstream standby\'s files', async () => {
    const s3 = await basebackup(s, 's3', []);
    try {
      await s3.start();
      const batch = secrets('cascaded', 100);
      const last = await put(p, batch);
      for (const [key, value] of batch) acknowledged.set(key, value);
      await caughtUp(s3, last);
      expect(await scanAll(s3)).toEqual(await scanAll(p));
      // A standby's walsender has no WAL buffers: all it sends comes from its files, as stored.
      const row = (await nodeStatus<{ replication: Array<{ applicationName: string; walBytesSent: number; walBytesSentAsStored: number }> }>(s)).replication
        .find((r) => r.applicationName === 's3')!;
      expect(row.walBytesSent).toBeGreaterThan(0);
      expect(row.walBytesSentAsStored).toBe(row.walBytesSent);
      expect((await nodeStatus<StandbyStatus>(s3)).walReceiver.walBytesReceivedAsStored).toBeGreaterThan(0);
      expect(findInClear(s3.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    } finally {
      // Not destroy(): s3 lives beside the other nodes, in the directory destroy() removes.
      await s3.stop('SIGINT');
      fs.rmSync(s3.dataDir, { recursive: true, force: true });
    }
  });

  it('sends WAL from its files as stored only to a standby that proves the same WAL key', async () => {
    // The oldest segment of timeline 1 still here: read from the files, not the WAL buffers.
    const oldest = fs.readdirSync(path.join(p.dataDir, 'pg_wal')).filter((name) => /^00000001[0-9A-F]{16}$/.test(name)).sort()[0]!;
    const start = parseInt(oldest.slice(16, 24), 16) * SEGMENT_BYTES + parseInt(oldest.slice(8, 16), 16) * 0x1_0000_0000;
    const want = 3 * XLOG_BLCKSZ;
    const pageMagicAt = (plain: Buffer, dataStart: number): void => {
      for (let at = (XLOG_BLCKSZ - (dataStart % XLOG_BLCKSZ)) % XLOG_BLCKSZ; at + 2 <= plain.length; at += XLOG_BLCKSZ) {
        expect(plain.readUInt16LE(at)).toBe(XLOG_PAGE_MAGIC);
      }
    };
    // Another key's identifier, and none (a plain or older standby): plaintext, as before.
    for (const id of [walKeyId(crypto.randomBytes(32)), undefined]) {
      const messages = await receiveXLogData(p, start, want, id);
      expect(messages.every((m) => m.encryptedTimeline === undefined)).toBe(true);
      for (const m of messages) pageMagicAt(m.data, m.dataStart);
    }
    // The same key: the bytes of the timeline-1 file as they are, labelled with its timeline.
    const messages = await receiveXLogData(p, start, want, walKeyId(keys.walKey));
    expect(messages.every((m) => m.encryptedTimeline === 1)).toBe(true);
    const cipher = new WalCipher(keys.walKey);
    for (const m of messages) {
      expect(m.data.equals(rawWal(p.dataDir, 1, m.dataStart, m.data.length))).toBe(true);
      expect(m.data.readUInt16LE(0)).not.toBe(XLOG_PAGE_MAGIC);
      pageMagicAt(cipher.applyToNew(1, m.dataStart, m.data), m.dataStart);
    }
  });

  it('after a promotion the two timelines never share a keystream; the old primary is rewound and follows', async () => {
    await checkpoint(p);
    await caughtUp(s, await flushLsn(p));
    await caughtUp(s2, await flushLsn(p));
    // The standbys lose their primary; the old primary goes on alone on timeline 1, then stops.
    await s.stop('SIGINT');
    await s2.stop('SIGINT');
    await put(p, secrets('old-primary-only', 200));
    await p.stop('SIGINT');
    await s.start();
    const promoted = walship(['promote', '-D', s.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    expect((await nodeStatus<Status>(s)).timeline).toBe(2);
    const afterPromotion = secrets('new-primary', 200);
    await put(s, afterPromotion);
    for (const [key, value] of afterPromotion) acknowledged.set(key, value);
    await checkpoint(s);

    // Where the histories part, and how far both wrote past it.
    const history = fs.readFileSync(path.join(s.dataDir, 'pg_wal', '00000002.history'), 'utf8');
    const divergence = parseLsn(history.trim().split(/\s+/)[1]!)!;
    const controlP = JSON.parse(walship(['controldata', '-D', p.dataDir, '--json']).stdout) as { checkPointLsn?: string; checkpointLsn?: string };
    const endP = parseLsn((controlP.checkpointLsn ?? controlP.checkPointLsn)!)!;
    const endS = await flushLsn(s);
    const end = Math.min(endP, endS, (Math.floor(divergence / SEGMENT_BYTES) + 1) * SEGMENT_BYTES);
    expect(end - divergence).toBeGreaterThan(4096);
    const c1 = rawWal(p.dataDir, 1, divergence, end - divergence);
    const c2 = rawWal(s.dataDir, 2, divergence, end - divergence);
    const cipher = new WalCipher(keys.walKey);
    const p1 = Buffer.from(c1);
    cipher.applyInPlace(1, divergence, p1, 0, p1.length);
    const p2 = Buffer.from(c2);
    cipher.applyInPlace(2, divergence, p2, 0, p2.length);
    // Both decrypt to WAL pages (the page after the divergence starts with the page magic).
    const nextPage = Math.ceil(divergence / XLOG_BLCKSZ) * XLOG_BLCKSZ - divergence;
    if (nextPage + 2 <= p1.length) {
      expect(p1.readUInt16LE(nextPage)).toBe(XLOG_PAGE_MAGIC);
      expect(p2.readUInt16LE(nextPage)).toBe(XLOG_PAGE_MAGIC);
    }
    // The counters differ, and so do the keystreams: at the bytes where the plaintexts differ,
    // c1 XOR c2 would equal p1 XOR p2 everywhere if the keystream were shared; it matches only
    // by chance (about 1 byte in 256).
    expect(walCounterBlock(1, divergence).equals(walCounterBlock(2, divergence))).toBe(false);
    let differing = 0;
    let xorMatches = 0;
    for (let i = 0; i < c1.length; i++) {
      if (p1[i] === p2[i]) continue;
      differing++;
      if ((c1[i]! ^ c2[i]!) === (p1[i]! ^ p2[i]!)) xorMatches++;
    }
    expect(differing).toBeGreaterThan(1000);
    expect(xorMatches / differing).toBeLessThan(0.02);
    // The old primary's timeline-1 WAL after the divergence is in the clear nowhere either.
    expect(findInClear(p.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    expect(findInClear(s.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);

    // The other standby, repointed at the new primary, follows timeline 2 by streaming: its
    // walreceiver encrypts what it receives under timeline 2.
    const repointed = walship(['set', '-D', s2.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${s.port} application_name=s2`]);
    expect(repointed.status, repointed.stderr).toBe(0);
    await s2.start();
    await caughtUp(s2, await flushLsn(s));
    expect((await nodeStatus<Status>(s2)).timeline).toBe(2);
    expect((await nodeStatus<StandbyStatus>(s2)).walReceiver.walBytesReceivedAsStored).toBeGreaterThan(0);
    // s2 streamed timeline 1 again from the start of the switch segment, which the new primary
    // has only in its timeline-2 file (re-encrypted at promotion): sent as stored under timeline
    // 2, converted by s2 into its timeline-1 file. The result is what the old primary wrote there.
    const switchSegmentStart = Math.floor(divergence / SEGMENT_BYTES) * SEGMENT_BYTES;
    if (divergence > switchSegmentStart) {
      expect(rawWal(s2.dataDir, 1, switchSegmentStart, divergence - switchSegmentStart)
        .equals(rawWal(p.dataDir, 1, switchSegmentStart, divergence - switchSegmentStart))).toBe(true);
    }
    expect(await scanAll(s2)).toEqual(await scanAll(s));
    expect(findInClear(s2.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    const received = rawWal(s2.dataDir, 2, divergence, end - divergence);
    // Same plaintext, same timeline, same key: the same ciphertext as the new primary's file.
    expect(received.equals(c2)).toBe(true);

    // The old primary is rewound with its own key and follows the new one.
    const rewound = walship(['rewind', '-D', p.dataDir, '--source', `127.0.0.1:${s.port}`, '--json']);
    expect(rewound.status, rewound.stderr).toBe(0);
    expect(JSON.parse(rewound.stdout)).toMatchObject({ rewound: true, sourceTimeline: 2, targetTimeline: 1 });
    await p.start();
    const last = await put(s, secrets('after-rewind', 50));
    for (const [key, value] of secrets('after-rewind', 50)) acknowledged.set(key, value);
    await caughtUp(p, last);
    const rows = await scanAll(p);
    expect(rows).toEqual(await scanAll(s));
    expect([...rows.keys()].some((key) => key.includes('old-primary-only'))).toBe(false);
    for (const [key, value] of acknowledged) expect(rows.get(key)?.split('@')[0], key).toBe(value);
    const verify = walship(['verify', '--node', `127.0.0.1:${s.port}`, '--node', `127.0.0.1:${p.port}`]);
    expect(verify.status, verify.stdout + verify.stderr).toBe(0);
    expect(findInClear(p.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
  });

  it('refuses a wrong key and changes nothing in the data directory', async () => {
    await p.stop('SIGINT');
    const conf = path.join(p.dataDir, 'walship.conf');
    const original = fs.readFileSync(conf, 'utf8');
    fs.writeFileSync(conf, original.replace(`cluster_key_file = '${keyFile}'`, `cluster_key_file = '${wrongKeyFile}'`));
    const before = snapshot(p.dataDir);
    const viaCli = walship(['start', '-D', p.dataDir]);
    expect(viaCli.status).toBe(1);
    expect(viaCli.stderr).toContain('cluster key does not match the data directory');
    const direct = await p.startExpectingFailure();
    expect(direct.code).toBe(1);
    expect(direct.output).toContain('FATAL:  cluster key does not match the data directory');
    expect(snapshot(p.dataDir)).toEqual(before);
    // A key that is not a key at all is refused as such.
    fs.writeFileSync(wrongKeyFile, 'not a key');
    const garbage = walship(['start', '-D', p.dataDir]);
    expect(garbage.status).toBe(1);
    expect(garbage.stderr).toContain('invalid cluster key');
    expect(snapshot(p.dataDir)).toEqual(before);
    fs.writeFileSync(conf, original);
  });

  it('rotate-key re-wraps the data keys: the new key opens the node, the old one no longer does', async () => {
    const relationFiles = listFiles(path.join(p.dataDir, 'base')).map((file) => [file, fs.readFileSync(file)] as const);
    const rotated = walship(['rotate-key', '-D', p.dataDir, '--new-key-file', newKeyFile, '--json']);
    expect(rotated.status, rotated.stderr).toBe(0);
    expect(JSON.parse(rotated.stdout)).toMatchObject({ rotated: true, setting: { cluster_key_file: newKeyFile } });
    // No data rewritten.
    for (const [file, bytes] of relationFiles) expect(fs.readFileSync(file).equals(bytes), file).toBe(true);
    const conf = path.join(p.dataDir, 'walship.conf');
    expect(fs.readFileSync(conf, 'utf8')).toMatch(new RegExp(`^cluster_key_file = '${newKeyFile}'$`, 'm'));
    await p.start();
    const last = await put(s, [[`${SECRET_KEY}after-rotation`, `${SECRET_VALUE}after-rotation`]]);
    await caughtUp(p, last);
    await p.stop('SIGINT');

    const withNewKey = fs.readFileSync(conf, 'utf8');
    fs.writeFileSync(conf, withNewKey.replace(`cluster_key_file = '${newKeyFile}'`, `cluster_key_file = '${keyFile}'`));
    const before = snapshot(p.dataDir);
    const refused = walship(['start', '-D', p.dataDir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('cluster key does not match the data directory');
    expect(snapshot(p.dataDir)).toEqual(before);
    fs.writeFileSync(conf, withNewKey);
  });

  it('waldump and controldata work with the key', () => {
    const dump = walship(['waldump', '-D', p.dataDir, '--json']);
    expect(dump.status, dump.stderr).toBe(0);
    const records = (JSON.parse(dump.stdout) as { records: Array<{ rmgr: string }> }).records;
    expect(records.length).toBeGreaterThan(100);
    expect(records.some((record) => record.rmgr === 'Transaction')).toBe(true);
    const withKey = walship(['waldump', '-D', p.dataDir, '--key-file', newKeyFile, '-n', '5', '--json']);
    expect(withKey.status, withKey.stderr).toBe(0);
    const wrong = walship(['waldump', '-D', p.dataDir, '--key-file', keyFile]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('cluster key does not match the data directory');

    const control = walship(['controldata', '-D', p.dataDir, '--json', '--key-file', newKeyFile]);
    expect(control.status, control.stderr).toBe(0);
    expect(JSON.parse(control.stdout)).toMatchObject({ dataEncryption: true, clusterKey: 'matches' });
    const text = walship(['controldata', '-D', p.dataDir]);
    expect(text.stdout).toMatch(/Data encryption:\s+AES-256/);
    // The control file is readable without the key and holds no user data.
    expect(findInClear(path.join(p.dataDir, 'global'), [SECRET_KEY, SECRET_VALUE])).toEqual([]);
  });
});

/**
 * A torn WAL tail on an encrypted primary. The fault is made by the test: after a SIGKILL it
 * writes, past the end of valid WAL, bytes encrypted with the WAL key under timeline 1 at those
 * positions — what the WAL I/O worker leaves when a crash tears its last write (a record whose
 * later pages never reached the disk). A real crash cannot be made to tear a write at a chosen
 * place, so this is the one step not done by the node itself.
 */
describe('encryption at rest: a torn WAL tail after a crash', () => {
  const root = tempDir('tde-torn');
  const keyFile = path.join(root, 'cluster.key');
  const archiveDir = path.join(root, 'archive');
  let p: TestNode;
  let s: TestNode;
  let keys: DataKeys;
  const acknowledged = new Map<string, string>();

  beforeAll(async () => {
    fs.writeFileSync(keyFile, `${crypto.randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    fs.mkdirSync(archiveDir);
    p = await TestNode.init('tde-torn-primary', {
      autovacuum: 'off', wal_keep_size: '64MB', wal_retrieve_retry_interval: '100ms', archive_mode: 'on', archive_command: `cp %p ${archiveDir}/%f`,
    }, ['--encrypt', '--key-file', keyFile]);
    keys = loadDataKeys(p.dataDir, { keyFile });
    await p.start();
    s = await basebackup(p, 'torn-standby', []);
    await s.start();
  }, 60_000);

  afterAll(async () => {
    for (const node of [s, p]) await node?.destroy().catch(() => undefined);
    fs.rmSync(root, { recursive: true, force: true });
  });

  const putAll = async (node: TestNode, batch: Array<[string, string]>): Promise<number> => {
    const last = await put(node, batch);
    for (const [key, value] of batch) acknowledged.set(key, value);
    return last;
  };

  const expectAllAcknowledged = async (node: TestNode): Promise<void> => {
    const rows = await scanAll(node);
    for (const [key, value] of acknowledged) expect(rows.get(key)?.split('@')[0], key).toBe(value);
  };

  const readFileAt = (file: string, lsn: number, length: number): Buffer => readBytesAt(file, lsn % SEGMENT_BYTES, length);

  /** Writes bytes over a WAL segment file at lsn's offset in it (a torn tail left by a crash). */
  const writeFileAt = (file: string, lsn: number, bytes: Buffer): void => {
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, bytes, 0, bytes.length, lsn % SEGMENT_BYTES);
    } finally {
      fs.closeSync(fd);
    }
  };

  /** The end of WAL of a stopped node's data directory, as walship waldump reads it. */
  const walEnd = (dataDir: string): number => {
    const dump = walship(['waldump', '-D', dataDir, '--json']);
    expect(dump.status, dump.stderr).toBe(0);
    return parseLsn((JSON.parse(dump.stdout) as { end: { lsn: string } }).end.lsn)!;
  };

  it('keeps its timeline after a SIGKILL that left only complete records', async () => {
    await caughtUp(s, await putAll(p, secrets('kept', 200)));
    await p.kill();
    await p.start();
    expect((await nodeStatus<Status>(p)).timeline).toBe(1);
    expect(p.log).not.toContain('selected new timeline');
    await expectAllAcknowledged(p);
  });

  it('ends crash recovery on a new timeline when bytes of an unfinished write follow the end of WAL; the streaming standby follows it', async () => {
    await caughtUp(s, await putAll(p, secrets('before-tear', 200)));
    await p.kill();
    const end = walEnd(p.dataDir);
    // Into the next page: its header is where the new timeline's WAL is recognizable below.
    const nextPage = Math.ceil(end / XLOG_BLCKSZ) * XLOG_BLCKSZ - end;
    const length = Math.min(nextPage + XLOG_BLCKSZ / 2, SEGMENT_BYTES - (end % SEGMENT_BYTES));
    expect(length).toBeGreaterThan(nextPage + 2);
    const oldFile = segmentFile(p.dataDir, 1, end);
    expect(readFileAt(oldFile, end, length).equals(Buffer.alloc(length))).toBe(true);
    const cipher = new WalCipher(keys.walKey);
    const plain1 = crypto.randomBytes(length);
    const torn = Buffer.from(plain1);
    cipher.applyInPlace(1, end, torn, 0, length);
    writeFileAt(oldFile, end, torn);

    await p.start();
    expect((await nodeStatus<Status>(p)).timeline).toBe(2);
    expect(p.log).toContain('LOG:  selected new timeline ID: 2');
    expect(p.log).toMatch(new RegExp(`DETAIL:  Bytes of an unfinished write follow the end of WAL at ${formatLsn(end)} on timeline 1 \\(the first at [0-9A-F/]+\\); new WAL written there on the same timeline would be encrypted twice under one counter\\.`));
    const history = fs.readFileSync(path.join(p.dataDir, 'pg_wal', '00000002.history'), 'utf8');
    expect(parseLsn(history.trim().split(/\s+/)[1]!)).toBe(end);
    // Archived, as a promotion's history file is, for archive recovery to follow the switch.
    await waitFor('00000002.history to be archived', () => fs.existsSync(path.join(archiveDir, '00000002.history')));
    await expectAllAcknowledged(p);

    // New WAL over the torn positions goes to timeline 2's file, under timeline 2's counters; the
    // old timeline's segment is kept as .partial with the torn bytes as they were.
    await putAll(p, secrets('after-tear', 300));
    await checkpoint(p);
    expect((await flushLsn(p))).toBeGreaterThan(end + length);
    expect(fs.existsSync(oldFile)).toBe(false);
    expect(readFileAt(`${oldFile}.partial`, end, length).equals(torn)).toBe(true);
    const c2 = readFileAt(segmentFile(p.dataDir, 2, end), end, length);
    const plain2 = Buffer.from(c2);
    cipher.applyInPlace(2, end, plain2, 0, length);
    expect(plain2.readUInt16LE(nextPage)).toBe(XLOG_PAGE_MAGIC);
    // Under a shared keystream c1 XOR c2 would equal p1 XOR p2 at every byte; it matches only by chance.
    let xorMatches = 0;
    for (let i = 0; i < length; i++) if ((torn[i]! ^ c2[i]!) === (plain1[i]! ^ plain2[i]!)) xorMatches++;
    expect(xorMatches / length).toBeLessThan(0.02);

    // The standby, streaming timeline 1 when its primary died, follows timeline 2
    // (recovery_target_timeline = latest, the walsender's end of timeline 1 at the switch point).
    await caughtUp(s, await flushLsn(p));
    expect((await nodeStatus<Status>(s)).timeline).toBe(2);
    expect(await scanAll(s)).toEqual(await scanAll(p));
    // It never held the torn bytes: no file of its pg_wal contains them (its timeline-1 segment
    // has zeros there, or has already been removed).
    const standbyWal = path.join(s.dataDir, 'pg_wal');
    const holdingTorn = fs.readdirSync(standbyWal).filter((name) => {
      const file = path.join(standbyWal, name);
      return fs.statSync(file).isFile() && fs.readFileSync(file).includes(torn);
    });
    expect(holdingTorn).toEqual([]);
    expect(readFileAt(segmentFile(s.dataDir, 2, end), end, length).equals(c2)).toBe(true);
    expect(findInClear(p.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);
    expect(findInClear(s.dataDir, [SECRET_KEY, SECRET_VALUE])).toEqual([]);

    // A later SIGKILL that leaves only complete records keeps timeline 2.
    await caughtUp(s, await putAll(p, secrets('on-timeline-2', 100)));
    await p.kill();
    await p.start();
    expect((await nodeStatus<Status>(p)).timeline).toBe(2);
    expect(p.log).not.toContain('selected new timeline');
    await expectAllAcknowledged(p);
    const last = await putAll(p, secrets('after-restart', 20));
    await caughtUp(s, last);
    await expectAllAcknowledged(s);
  });

  it('rewinds an old primary with a torn tail onto a timeline above the promoted one, never onto the same number', async () => {
    // The primary (timeline 2) dies with a torn tail; its standby is promoted (timeline 3).
    await caughtUp(s, await putAll(p, secrets('before-failover', 100)));
    await p.kill();
    const end = walEnd(p.dataDir);
    const length = Math.min(3000, SEGMENT_BYTES - (end % SEGMENT_BYTES));
    const torn = crypto.randomBytes(length);
    new WalCipher(keys.walKey).applyInPlace(2, end, torn, 0, length);
    writeFileAt(segmentFile(p.dataDir, 2, end), end, torn);
    const promoted = walship(['promote', '-D', s.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    expect((await nodeStatus<Status>(s)).timeline).toBe(3);
    await putAll(s, secrets('new-primary', 100));

    // The rewind's crash recovery of the old primary switches past the source's timeline 3 (the
    // next free number on the old primary would be 3 itself: "no rewind required", diverged).
    const rewound = walship(['rewind', '-D', p.dataDir, '--source', `127.0.0.1:${s.port}`, '--json']);
    expect(rewound.status, rewound.stderr).toBe(0);
    expect(rewound.stderr).toContain('selected new timeline ID: 4');
    expect(JSON.parse(rewound.stdout)).toMatchObject({ rewound: true, sourceTimeline: 3, targetTimeline: 4 });
    // The target's own timeline is gone with the rewind: its history file and WAL.
    expect(fs.existsSync(path.join(p.dataDir, 'pg_wal', '00000004.history'))).toBe(false);
    await p.start();
    const last = await putAll(s, secrets('after-rewind', 20));
    await caughtUp(p, last);
    expect((await nodeStatus<Status>(p)).timeline).toBe(3);
    expect(await scanAll(p)).toEqual(await scanAll(s));
    await expectAllAcknowledged(p);
  });
});
