/**
 * Bad input gets a clear error and loses nothing: oversized keys and values, frames that are not
 * the protocol, a walship.conf with mistakes, a port someone else holds, directories that are not
 * (or no longer) sound data directories, damaged WAL, a wrong password, and SIGKILL. For each,
 * what a user relies on: the node (or the CLI) says what is wrong, where, and what to do; nothing
 * acknowledged is lost; and once the cause is fixed, the node works again.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { processIsAlive } from '@walship/server/pidfile';
import { randomBytes } from 'node:crypto';
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import { ErrorCode, MAX_KEY_BYTES, MAX_VALUE_BYTES, parseLsn } from '@walship/engine';
import { CLIENT_PATH, PROTOCOL_VERSION, decodeServerMessage, encodeMessage } from '@walship/protocol';
import { TestNode, freePort, tempDir, waitFor, walship } from './helpers/node.js';

/** The test nodes' WAL segment size (TestNode.init sets wal_segment_size=1MB). */
const SEGMENT_BYTES = 1024 * 1024;
/** XLOG_BLCKSZ: the WAL page size. */
const WAL_PAGE_BYTES = 8192;

function lsnOf(text: string): number {
  expect(text).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  return parseLsn(text)!;
}

/** The segment file holding `lsn` and the byte offset of `lsn` in it, named as PostgreSQL names them. */
function walLocation(dataDir: string, lsn: number, timeline = 1): { file: string; offset: number } {
  const segNo = Math.floor(lsn / SEGMENT_BYTES);
  const segmentsPerXLogId = 0x1_0000_0000 / SEGMENT_BYTES;
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  const name = `${hex(timeline)}${hex(Math.floor(segNo / segmentsPerXLogId))}${hex(segNo % segmentsPerXLogId)}`;
  return { file: path.join(dataDir, 'pg_wal', name), offset: lsn % SEGMENT_BYTES };
}

function flipBit(file: string, offset: number, mask = 0x10): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    expect(fs.readSync(fd, byte, 0, 1, offset)).toBe(1);
    byte[0]! ^= mask;
    fs.writeSync(fd, byte, 0, 1, offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Every key of `expected` has its value on the node, read back with one range scan per prefix. */
async function expectIntact(client: WalshipClient, expected: Map<string, string>, prefix: string): Promise<void> {
  const found = new Map<string, string>();
  let start: Buffer | undefined;
  for (;;) {
    const page = await client.range({ prefix, ...(start ? { start } : {}), limit: 1000 });
    for (const entry of page.entries) found.set(entry.key.toString(), entry.value.toString());
    if (!page.more || page.entries.length === 0) break;
    start = Buffer.concat([page.entries[page.entries.length - 1]!.key, Buffer.from([0])]);
  }
  const problems: string[] = [];
  for (const [key, value] of expected) if (found.get(key) !== value) problems.push(`${key} is ${found.has(key) ? 'changed' : 'missing'}`);
  expect(problems.slice(0, 10)).toEqual([]);
}

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the call to fail, and it succeeded');
}

function appendLine(file: string, line: string): number {
  const text = fs.readFileSync(file, 'utf8');
  const body = text.endsWith('\n') ? text : `${text}\n`;
  fs.writeFileSync(file, `${body}${line}\n`);
  return body.split('\n').length; // the new line's number (1-based)
}

function readPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Ends a node that `walship start` left running in the background (by its own pid). */
async function killDetached(dataDir: string): Promise<void> {
  const pid = readPid(dataDir);
  if (pid === null) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  await waitFor(`process ${pid} to exit`, () => !processIsAlive(pid), 10_000);
}

/** A WebSocket on /client that speaks raw frames, recording what the node answers. */
class RawConnection {
  readonly messages: any[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.messages.push(isBinary ? decodeServerMessage(data) : { text: data.toString() });
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(port: number): Promise<RawConnection> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${CLIENT_PATH}`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new RawConnection(ws);
  }

  async authenticate(): Promise<void> {
    this.ws.send(encodeMessage({ type: 'startup', protocolVersion: PROTOCOL_VERSION, applicationName: 'raw test' }));
    await waitFor('authOk', () => this.messages.some((m) => m.type === 'authOk'), 10_000);
  }

  /** Waits for the node to close the connection, failing if it does not within 10 s. */
  async closedByNode(): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the node did not close the connection within 10 s')), 10_000);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

describe('bad requests to a running node', () => {
  let node: TestNode;
  let client: WalshipClient;
  const seeded = new Map<string, string>();

  beforeAll(async () => {
    node = await TestNode.init('bad-requests');
    await node.start();
    client = await node.client();
    for (let i = 0; i < 100; i++) {
      const key = `seed:${String(i).padStart(3, '0')}`;
      const value = `value ${i} ${'x'.repeat(i)}`;
      await client.put(key, value);
      seeded.set(key, value);
    }
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await node?.destroy();
  });

  it('a key over 1 KiB is refused with key_too_large; the data is intact and the node keeps serving', async () => {
    const tooLong = 'k'.repeat(MAX_KEY_BYTES + 1);
    const error = await rejection(client.put(tooLong, 'v'));
    expect(error.code).toBe('key_too_large');
    expect(error.message).toContain(`${MAX_KEY_BYTES + 1} bytes, more than the maximum of ${MAX_KEY_BYTES}`);
    expect((await rejection(client.get(tooLong))).code).toBe('key_too_large');
    // In a transaction, nothing of it is applied.
    const txnError = await rejection(client.txn({ onSuccess: [{ kind: 'put', key: 'seed:txn-ok', value: 'no' }, { kind: 'put', key: tooLong, value: 'v' }] }));
    expect(txnError.code).toBe('key_too_large');
    expect(await client.get('seed:txn-ok')).toBeNull();

    // Through the CLI: exit 1 and the same message.
    const cli = walship(['put', '--node', `127.0.0.1:${node.port}`, tooLong, 'v']);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain(`more than the maximum of ${MAX_KEY_BYTES}`);

    // The limit itself is allowed, and the session that saw the errors still works.
    const longest = 'L'.repeat(MAX_KEY_BYTES);
    await client.put(longest, 'at the limit');
    expect((await client.get(longest))?.value.toString()).toBe('at the limit');
    await client.del(longest);
    await expectIntact(client, seeded, 'seed:');
  });

  it('a value over the limit is refused with value_too_large; a 1 MiB value works', async () => {
    const error = await rejection(client.put('seed:huge', Buffer.alloc(MAX_VALUE_BYTES + 1, 0x61)));
    expect(error.code).toBe('value_too_large');
    expect(error.message).toContain(`more than the maximum of ${MAX_VALUE_BYTES}`);
    expect(await client.get('seed:huge')).toBeNull();

    const big = randomBytes(1024 * 1024);
    await client.put('big:one-mib', big);
    expect((await client.get('big:one-mib'))?.value.equals(big)).toBe(true);
    await client.del('big:one-mib');
    await expectIntact(client, seeded, 'seed:');
  });

  it('a malformed binary frame ends that connection with a protocol error; other clients keep working', async () => {
    // Before authentication: bytes that are not msgpack at all (0xc1 is never used).
    const raw = await RawConnection.open(node.port);
    raw.ws.send(Buffer.from([0xc1, 0xff, 0x00, 0x13, 0x37]), { binary: true });
    const closed = await raw.closedByNode();
    expect(closed.code).toBe(1002);
    expect(raw.messages).toHaveLength(1);
    expect(raw.messages[0]).toMatchObject({ type: 'error', severity: 'FATAL', code: 'protocol_violation' });
    expect(raw.messages[0].message).toMatch(/invalid/);

    // After authentication: a frame cut in half.
    const second = await RawConnection.open(node.port);
    await second.authenticate();
    const frame = encodeMessage({ type: 'get', id: 1, key: Buffer.from('seed:001') });
    second.ws.send(frame.subarray(0, Math.floor(frame.length / 2)), { binary: true });
    expect((await second.closedByNode()).code).toBe(1002);
    expect(second.messages.at(-1)).toMatchObject({ type: 'error', severity: 'FATAL', code: 'protocol_violation' });
    // It never got a reply to the broken request.
    expect(second.messages.filter((m) => m.type === 'result')).toEqual([]);

    // The client connected all along and a new one both work, and nothing was lost.
    expect((await client.get('seed:001'))?.value.toString()).toBe(seeded.get('seed:001'));
    const fresh = await node.client();
    try {
      await fresh.put('seed:after-bad-frame', 'fine');
      seeded.set('seed:after-bad-frame', 'fine');
      await expectIntact(fresh, seeded, 'seed:');
    } finally {
      await fresh.close();
    }
  });

  it('a text frame ends that connection with a protocol error; other clients keep working', async () => {
    const raw = await RawConnection.open(node.port);
    raw.ws.send('{"type":"startup","protocolVersion":1}');
    expect((await raw.closedByNode()).code).toBe(1002);
    expect(raw.messages).toHaveLength(1);
    expect(raw.messages[0]).toMatchObject({ type: 'error', severity: 'FATAL', code: 'protocol_violation' });
    expect(raw.messages[0].message).toContain('text frames are not part of the protocol');

    await client.put('seed:after-text-frame', 'fine');
    seeded.set('seed:after-text-frame', 'fine');
    await expectIntact(client, seeded, 'seed:');
  });

  it('an oversized key sent raw, past the client library, is refused by the node and nothing is written', async () => {
    const packr = new Packr({ useRecords: false, mapsAsObjects: true });
    const raw = await RawConnection.open(node.port);
    await raw.authenticate();
    const tooLong = Buffer.alloc(MAX_KEY_BYTES + 1, 0x7a);
    raw.ws.send(packr.pack({ type: 'txn', id: 7, onSuccess: [{ kind: 'put', key: tooLong, value: Buffer.from('v') }] }), { binary: true });
    await raw.closedByNode();
    const error = raw.messages.at(-1);
    expect(error).toMatchObject({ type: 'error', severity: 'FATAL', code: 'protocol_violation' });
    expect(error.message).toContain(`more than the maximum of ${MAX_KEY_BYTES}`);
    const scan = await client.range({ start: Buffer.from('z'), limit: 10 });
    expect(scan.entries.filter((e) => e.key.length > MAX_KEY_BYTES)).toEqual([]);
    await expectIntact(client, seeded, 'seed:');
  });
});

describe('bad configuration and bad data directories', () => {
  let node: TestNode;
  let conf: string;
  let original: string;
  const data = new Map<string, string>();
  const leftovers: string[] = [];

  beforeAll(async () => {
    node = await TestNode.init('bad-conf');
    conf = path.join(node.dataDir, 'walship.conf');
    original = fs.readFileSync(conf, 'utf8');
    await node.start();
    const client = await node.client();
    for (let i = 0; i < 50; i++) {
      await client.put(`conf:${i}`, `v${i}`);
      data.set(`conf:${i}`, `v${i}`);
    }
    await client.close();
    expect(await node.stop('SIGINT')).toBe(0);
  });

  afterAll(async () => {
    for (const dir of [node?.dataDir, ...leftovers]) if (dir !== undefined) await killDetached(dir);
    await node?.destroy();
    for (const dir of leftovers) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The node starts again once the cause is gone, with all its data. */
  async function expectStartsWithData(): Promise<void> {
    await node.start();
    const client = await node.client();
    try {
      await expectIntact(client, data, 'conf:');
    } finally {
      await client.close();
    }
    expect(await node.stop('SIGINT')).toBe(0);
  }

  it('an unknown setting in walship.conf: start refuses, naming the file and line; fixing it makes start work', async () => {
    try {
      const line = appendLine(conf, 'no_such_setting = 3');
      const result = walship(['start', '-D', node.dataDir]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`unrecognized configuration parameter "no_such_setting" in file "${conf}" line ${line}`);
      expect(result.stderr).toContain('could not start server');
      expect(fs.existsSync(path.join(node.dataDir, 'postmaster.pid'))).toBe(false);
    } finally {
      fs.writeFileSync(conf, original);
    }
    await expectStartsWithData();
  });

  it('a bad unit in walship.conf: the server refuses with the setting, the value and the line, and no stack trace', async () => {
    try {
      const line = appendLine(conf, 'shared_buffers = 12XB');
      const { code, output } = await node.startExpectingFailure();
      expect(code).toBe(1);
      expect(output).toContain('FATAL:  invalid value for parameter "shared_buffers": "12XB"');
      expect(output).toContain(`The value is in file "${conf}" line ${line}.`);
      expect(output).toContain('HINT:  Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".');
      expect(output).not.toMatch(/^\s+at /m);
      expect(fs.existsSync(path.join(node.dataDir, 'postmaster.pid'))).toBe(false);
    } finally {
      fs.writeFileSync(conf, original);
    }
    await expectStartsWithData();
  });

  it('a port already in use: start fails with "address already in use" and a hint, leaving nothing behind', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject);
      blocker.listen(node.port, '127.0.0.1', () => resolve());
    });
    try {
      const result = walship(['start', '-D', node.dataDir]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('address already in use');
      expect(result.stderr).toContain(`Is another node already running on port ${node.port}?`);
      expect(result.stderr).toContain('The server exited with status 1.');
      expect(fs.existsSync(path.join(node.dataDir, 'postmaster.pid'))).toBe(false);
      // The control file was not touched: it still says the node was shut down cleanly.
      expect(JSON.parse(walship(['controldata', '-D', node.dataDir, '--json']).stdout).state).toBe('shut down');
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
    await expectStartsWithData();
  });

  it('a directory that is not a data directory: start refuses and says what is missing', async () => {
    const notData = tempDir('not-data');
    leftovers.push(notData);
    fs.writeFileSync(path.join(notData, 'notes.txt'), 'hello\n');
    const cli = walship(['start', '-D', notData]);
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain(`directory "${notData}" is not a walship data directory`);
    expect(cli.stderr).toContain(`global/control" is missing`);

    const missing = walship(['start', '-D', path.join(notData, 'nope')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('does not exist');

    // The server itself, given a directory with a walship.conf but no control file.
    fs.copyFileSync(conf, path.join(notData, 'walship.conf'));
    const server = await new TestNode(notData, await freePort()).startExpectingFailure();
    expect(server.code).toBe(1);
    expect(server.output).toContain(`"${notData}" is not a walship data directory`);
    expect(fs.existsSync(path.join(notData, 'postmaster.pid'))).toBe(false);

    // And one without even a walship.conf: a clear FATAL, not a stack trace.
    fs.rmSync(path.join(notData, 'walship.conf'));
    const bare = await new TestNode(notData, await freePort()).startExpectingFailure();
    expect(bare.code).toBe(1);
    expect(bare.output).toContain(`FATAL:  could not open configuration file "${path.join(notData, 'walship.conf')}": No such file or directory`);
    expect(bare.output).not.toMatch(/^\s+at /m);
    // A refused start never turns the directory into something else.
    for (const made of ['global', 'pg_wal', 'base', 'postmaster.pid']) expect(fs.existsSync(path.join(notData, made))).toBe(false);
    expect(fs.readFileSync(path.join(notData, 'notes.txt'), 'utf8')).toBe('hello\n');
  });

  it('a corrupt control file: start and controldata refuse and say so; restoring it brings everything back', async () => {
    const controlPath = path.join(node.dataDir, 'global', 'control');
    const good = fs.readFileSync(controlPath);
    try {
      flipBit(controlPath, 20);
      const start = walship(['start', '-D', node.dataDir]);
      expect(start.status).toBe(1);
      expect(start.stderr).toContain(`could not read control file "${controlPath}": the file is corrupt`);
      expect(start.stderr).toContain('incorrect checksum in control file');
      expect(fs.existsSync(path.join(node.dataDir, 'postmaster.pid'))).toBe(false);
      const control = walship(['controldata', '-D', node.dataDir]);
      expect(control.status).toBe(1);
      expect(control.stderr).toContain('incorrect checksum in control file');

      fs.writeFileSync(controlPath, good.subarray(0, 100));
      const short = await node.startExpectingFailure();
      expect(short.code).toBe(1);
      expect(short.output).toContain('the file is corrupt');
      expect(short.output).toContain(`the file is 100 bytes, expected ${good.length}`);
    } finally {
      fs.writeFileSync(controlPath, good);
    }
    await expectStartsWithData();
  });
});

describe('damaged WAL and SIGKILL', () => {
  let node: TestNode;
  const acked = new Map<string, string>();

  beforeAll(async () => {
    node = await TestNode.init('bad-wal');
  });

  afterAll(async () => {
    await node?.destroy();
  });

  async function writeAcked(client: WalshipClient, prefix: string, count: number): Promise<number> {
    let maxLsn = 0;
    for (let i = 0; i < count; i++) {
      const key = `${prefix}${String(i).padStart(4, '0')}`;
      const value = `${prefix}-${i}-${randomBytes(8).toString('hex')}`.padEnd(60 + (i % 50), '.');
      const result = await client.put(key, value);
      acked.set(key, value);
      maxLsn = Math.max(maxLsn, result.lsn);
    }
    return maxLsn;
  }

  async function checkAll(): Promise<void> {
    const client = await node.client();
    try {
      await expectIntact(client, acked, 'w:');
    } finally {
      await client.close();
    }
  }

  /** The WAL records after the latest checkpoint, and where valid WAL ends. */
  function walAfterCheckpoint(): { checkpointLsn: string; records: any[]; end: { lsn: string; reason: string } } {
    const control = JSON.parse(walship(['controldata', '-D', node.dataDir, '--json']).stdout);
    const dump = walship(['waldump', '-D', node.dataDir, '--start', control.checkpointLsn, '--json']);
    expect(dump.status, dump.stderr).toBe(0);
    const parsed = JSON.parse(dump.stdout);
    expect(parsed.records[0].lsn).toBe(control.checkpointLsn);
    return { checkpointLsn: control.checkpointLsn, records: parsed.records.slice(1), end: parsed.end };
  }

  it('acknowledged writes survive SIGKILL, from concurrent clients and in multi-key transactions', async () => {
    await node.start();
    const clients = await Promise.all([0, 1, 2, 3].map(() => node.client()));
    const groups: string[] = [];
    const lsns = await Promise.all(
      clients.map(async (c, n) => {
        let max = await writeAcked(c, `w:kill:${n}:`, 40);
        for (let g = 0; g < 5; g++) {
          const base = `w:grp:${n}:${g}`;
          const result = await c.txn({ onSuccess: ['a', 'b', 'c'].map((s) => ({ kind: 'put' as const, key: `${base}:${s}`, value: base })) });
          for (const s of ['a', 'b', 'c']) acked.set(`${base}:${s}`, base);
          groups.push(base);
          max = Math.max(max, result.lsn);
        }
        return max;
      }),
    );
    expect(await node.kill()).toBeNull(); // killed by a signal: no exit code
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));

    await node.start();
    expect(node.log).toContain('database system was not properly shut down; automatic recovery in progress');
    await checkAll();
    const client = await node.client();
    try {
      const status = await client.status();
      expect(lsnOf(status.flushLsn)).toBeGreaterThanOrEqual(Math.max(...lsns));
    } finally {
      await client.close();
    }
  });

  it('corruption in the middle of the WAL: start refuses naming the LSN; repairing the bit brings back all data', async () => {
    // The node runs (from the test above): a checkpoint, then acknowledged writes, then SIGKILL,
    // so that recovery has to replay all of them.
    const client = await node.client();
    await client.checkpoint();
    await writeAcked(client, 'w:mid:', 250);
    await client.close();
    await node.kill();

    const { checkpointLsn, records, end } = walAfterCheckpoint();
    expect(records.length).toBeGreaterThanOrEqual(250);
    // A record in the middle, with valid WAL on whole pages after it, whose first 8 bytes lie in one page.
    const endLsn = lsnOf(end.lsn);
    const candidates = records.filter((r) => {
      const at = lsnOf(r.lsn);
      return r.description.startsWith('COMMIT') && (at % WAL_PAGE_BYTES) + 8 <= WAL_PAGE_BYTES && at + 3 * WAL_PAGE_BYTES < endLsn;
    });
    const victim = candidates[Math.floor(candidates.length / 2)];
    expect(victim, 'a record to damage').toBeDefined();
    const victimLsn = lsnOf(victim.lsn);
    expect(victimLsn).toBeGreaterThan(lsnOf(checkpointLsn));
    const where = walLocation(node.dataDir, victimLsn);
    expect(fs.statSync(where.file).size).toBe(SEGMENT_BYTES);
    // Byte 4 of a record is in its header (the transaction id), which the record's CRC covers.
    flipBit(where.file, where.offset + 4);
    try {
      const { code, output } = await node.startExpectingFailure();
      expect(code).not.toBe(0);
      expect(output).toContain(`WAL is corrupt at ${victim.lsn}`);
      expect(output).not.toContain('database system is ready to accept connections');
      expect(fs.existsSync(path.join(node.dataDir, 'postmaster.pid'))).toBe(false);
      // waldump finds the same place.
      expect(walAfterCheckpoint().end.lsn).toBe(victim.lsn);
      // The refused start changed nothing: the control file still points at the same checkpoint.
      expect(JSON.parse(walship(['controldata', '-D', node.dataDir, '--json']).stdout).checkpointLsn).toBe(checkpointLsn);
    } finally {
      flipBit(where.file, where.offset + 4);
    }
    await node.start();
    expect(node.log).toContain('automatic recovery in progress');
    await checkAll();
  });

  it('a torn tail (garbage after the end of valid WAL in the last page) recovers quietly with all acknowledged data', async () => {
    const client = await node.client();
    await client.checkpoint();
    await writeAcked(client, 'w:torn:', 60);
    await client.close();
    await node.kill();

    const { end } = walAfterCheckpoint();
    const endLsn = lsnOf(end.lsn);
    const garbageBytes = WAL_PAGE_BYTES - (endLsn % WAL_PAGE_BYTES);
    const where = walLocation(node.dataDir, endLsn);
    const fd = fs.openSync(where.file, 'r+');
    try {
      const garbage = randomBytes(garbageBytes);
      garbage[0] = 0xff; // never a zero length: this must not read as a clean end of WAL
      fs.writeSync(fd, garbage, 0, garbage.length, where.offset);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    // waldump stops at the same end, garbage or not.
    expect(walAfterCheckpoint().end.lsn).toBe(end.lsn);

    await node.start();
    expect(node.log).not.toMatch(/PANIC|FATAL|corrupt/);
    expect(node.log).toContain('redo done at');
    await checkAll();

    // New WAL is written over the torn tail, and it survives the next crash too.
    const after = await node.client();
    await writeAcked(after, 'w:after-torn:', 20);
    await after.close();
    await node.kill();
    await node.start();
    expect(node.log).not.toMatch(/PANIC|FATAL|corrupt/);
    await checkAll();
    await node.stop('SIGINT');
  });
});

describe('a wrong password', () => {
  let node: TestNode;

  beforeAll(async () => {
    node = await TestNode.init('bad-password', { password: 'correct horse' });
    await node.start();
  });

  afterAll(async () => {
    await node?.destroy();
  });

  it('is refused with "password authentication failed", and the data is intact', async () => {
    const good = await WalshipClient.connect({ port: node.port, password: 'correct horse', timeoutMs: 10_000 });
    await good.put('pw:key', 'secret value');

    const wrong = await rejection(WalshipClient.connect({ port: node.port, password: 'battery staple', timeoutMs: 10_000 }));
    expect(wrong.code).toBe(ErrorCode.authenticationFailed); // PostgreSQL's 28P01 invalid_password
    expect(wrong.message).toContain('password authentication failed for user "walship"');
    const none = await rejection(WalshipClient.connect({ port: node.port, timeoutMs: 10_000 }));
    expect(none.code).toBe(ErrorCode.authenticationFailed);
    expect(none.message).toContain('no password supplied');

    const address = `127.0.0.1:${node.port}`;
    const cliWrong = walship(['get', '--node', address, 'pw:key'], { env: { WALSHIP_PASSWORD: 'battery staple' } });
    expect(cliWrong.status).toBe(1);
    expect(cliWrong.stdout).toBe('');
    expect(cliWrong.stderr).toContain('password authentication failed');
    expect(cliWrong.stderr).toContain('WALSHIP_PASSWORD');
    const cliPut = walship(['put', '--node', address, 'pw:key', 'overwritten?'], { env: { WALSHIP_PASSWORD: 'battery staple' } });
    expect(cliPut.status).toBe(1);

    const cliRight = walship(['get', '--node', address, 'pw:key'], { env: { WALSHIP_PASSWORD: 'correct horse' } });
    expect(cliRight.status, cliRight.stderr).toBe(0);
    expect(cliRight.stdout).toBe('secret value');
    // The session opened before the failures is unaffected.
    expect((await good.get('pw:key'))?.value.toString()).toBe('secret value');
    await good.close();
  });
});
