/**
 * The walship program end to end (DESIGN.md section 10): every command run as a user runs it,
 * as a real process, against a real node that `walship start` put in the background. What is
 * checked is what users and scripts rely on: exit statuses (0 ok, 1 failed check or missing key,
 * 2 usage error, 3 node unreachable), the text and the JSON keys printed, and that the data is
 * still there after every stop, crash and restart.
 *
 * One node serves the whole file (starting one costs about half a second); the tests run in
 * order and each leaves the node running for the next, except where stopping it is the point.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { processIsAlive } from '@walship/server/pidfile';
import { CLI, ROOT, freePort, tempDir, waitFor, walship, type CliResult } from './helpers/node.js';

const LSN = /^[0-9A-F]+\/[0-9A-F]+$/;

function lsn(text: unknown): number {
  expect(text).toMatch(LSN);
  return parseLsn(text as string)!;
}

/** Runs the CLI without blocking the test's event loop (for commands that must wait). */
function walshipAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`walship ${args.join(' ')} did not finish within 60 s`)); }, 60_000);
    child.once('exit', (code) => { clearTimeout(timer); resolve({ status: code ?? -1, stdout, stderr }); });
  });
}

/** Parses the one JSON document a --json command prints, failing with the command's output. */
function json(result: CliResult): any {
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

function readPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether the node's process still runs; an exited one not yet reaped (a zombie) does not. */
function alive(pid: number): boolean {
  return processIsAlive(pid);
}

describe('walship CLI against a real node', () => {
  let root: string;
  let dir: string;
  let port: number;
  let node: string;
  let systemId: string;
  /** key -> value of every write acknowledged through the CLI, checked after each restart. */
  const acked = new Map<string, string>();

  const startupLog = () => path.join(dir, 'log', 'startup.log');
  const logSize = () => (fs.existsSync(startupLog()) ? fs.statSync(startupLog()).size : 0);
  const logSince = (offset: number) => fs.readFileSync(startupLog()).subarray(offset).toString('utf8');
  const status = () => json(walship(['status', '--node', node, '--json']));

  /** Every acknowledged key reads back with its value, through `get` and through `scan`. */
  function expectAckedIntact(): void {
    const scanned = new Map<string, string>();
    for (const entry of json(walship(['scan', '--node', node, '--prefix', 'ack:', '--json'])).entries) scanned.set(entry.key, entry.value);
    expect(scanned).toEqual(acked);
    const [someKey, someValue] = [...acked][acked.size - 1]!;
    const got = walship(['get', '--node', node, someKey]);
    expect(got.status, got.stderr).toBe(0);
    expect(got.stdout).toBe(someValue);
  }

  function putAcked(key: string, value: string): string {
    const result = walship(['put', '--node', node, key, value]);
    expect(result.status, result.stderr).toBe(0);
    const match = /^OK ([0-9A-F]+\/[0-9A-F]+)\n$/.exec(result.stdout);
    expect(match, result.stdout).not.toBeNull();
    acked.set(key, value);
    return match![1]!;
  }

  beforeAll(async () => {
    root = tempDir('cli');
    dir = path.join(root, 'data');
    port = await freePort();
    node = `127.0.0.1:${port}`;
  });

  afterAll(async () => {
    // A node started with `walship start` runs detached: end it (by its own pid) if a test left it.
    const pid = dir === undefined ? null : readPid(dir);
    if (pid !== null && alive(pid)) {
      process.kill(pid, 'SIGKILL');
      await waitFor('the leftover node to exit', () => !alive(pid), 10_000);
    }
    if (root !== undefined) fs.rmSync(root, { recursive: true, force: true });
  });

  it('init creates a data directory with walship.conf, a control file and a first WAL segment', () => {
    const result = walship(['init', '-D', dir, '--port', String(port), '--set', 'wal_segment_size=1MB', '--set', 'shared_buffers=2MB']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`creating data directory ${dir}`);
    expect(result.stdout).toContain('The WAL segment size is 1MB.');
    expect(result.stdout).toContain('Success. You can now start the node using:');
    expect(result.stdout).toContain(`walship start -D ${dir}`);
    systemId = /The database system identifier is (\d+)\./.exec(result.stdout)?.[1] ?? '';
    expect(systemId).toMatch(/^\d+$/);
    // As initdb does, init says that loopback connections are trusted until a password is set.
    expect(result.stderr).toContain('enabling "trust" authentication for local connections');

    const conf = fs.readFileSync(path.join(dir, 'walship.conf'), 'utf8');
    expect(conf).toMatch(new RegExp(`^port = ${port}$`, 'm'));
    expect(conf).toMatch(/^wal_segment_size = 1MB$/m);
    expect(conf).toMatch(/^shared_buffers = 2MB$/m);
    // Every other setting is listed, commented out, at its default.
    expect(conf).toMatch(/^#synchronous_commit = on\b/m);

    expect(fs.statSync(path.join(dir, 'global', 'control')).isFile()).toBe(true);
    const segments = fs.readdirSync(path.join(dir, 'pg_wal')).filter((name) => /^[0-9A-F]{24}$/.test(name));
    expect(segments.length).toBeGreaterThan(0);
    // Segments are zero-filled at their full size, never sparse or short.
    for (const segment of segments) expect(fs.statSync(path.join(dir, 'pg_wal', segment)).size).toBe(1024 * 1024);

    const control = json(walship(['controldata', '-D', dir, '--json']));
    expect(control.systemId).toBe(systemId);
    expect(control.walSegmentSize).toBe(1024 * 1024);
    expect(control.state).toBe('shut down');
  });

  it('init refuses a directory that is not empty, naming it, and changes nothing in it', () => {
    const confBefore = fs.readFileSync(path.join(dir, 'walship.conf'));
    const controlBefore = fs.readFileSync(path.join(dir, 'global', 'control'));
    const result = walship(['init', '-D', dir]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`directory "${dir}" exists but is not empty`);
    expect(result.stderr).toContain('HINT:');
    expect(fs.readFileSync(path.join(dir, 'walship.conf'))).toEqual(confBefore);
    expect(fs.readFileSync(path.join(dir, 'global', 'control'))).toEqual(controlBefore);

    // A setting init does not know is a usage error, and nothing is created.
    const other = path.join(root, 'other');
    const bad = walship(['init', '-D', other, '--set', 'no_such_setting=1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('no_such_setting');
    expect(fs.existsSync(other)).toBe(false);
  });

  it('start -D returns once the node accepts connections; a second start fails', async () => {
    const result = walship(['start', '-D', dir]);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('server started');
    // No waiting here: start has returned, so the node must answer now.
    const ready = walship(['isready', '--node', node]);
    expect(ready.status).toBe(0);
    expect(ready.stdout).toBe(`${node} - accepting connections\n`);
    const pid = readPid(dir)!;
    expect(alive(pid)).toBe(true);

    const second = walship(['start', '-D', dir]);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain('another server might be running');
    expect(second.stderr).toContain(String(pid));
    // The running node is untouched.
    expect(readPid(dir)).toBe(pid);
    expect(walship(['isready', '--node', node]).status).toBe(0);
  });

  it('status --json reports role, system id, timeline and WAL positions as "X/X"', () => {
    const s = status();
    expect(s.role).toBe('primary');
    expect(s.systemId).toBe(systemId);
    expect(s.timeline).toBe(1);
    const insert = lsn(s.insertLsn);
    const flush = lsn(s.flushLsn);
    const checkpoint = lsn(s.lastCheckpointLsn);
    expect(flush).toBeLessThanOrEqual(insert);
    expect(checkpoint).toBeLessThanOrEqual(flush);
    expect(s.walReceiver).toBeNull();
    expect(s.replication).toEqual([]);

    const text = walship(['status', '--node', node]);
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/^role:\s+primary$/m);
    expect(text.stdout).toMatch(new RegExp(`^system identifier:\\s+${systemId}$`, 'm'));
  });

  it('put, get and del: get prints the raw value, a missing key exits 1', () => {
    const value = 'a value with  spaces, tabs\tand ünïcödé';
    const commitLsn = putAcked('ack:first', value);
    const got = walship(['get', '--node', node, 'ack:first']);
    expect(got.status, got.stderr).toBe(0);
    // Exactly the bytes stored: no newline added when stdout is not a terminal.
    expect(got.stdout).toBe(value);
    const gotJson = json(walship(['get', '--node', node, 'ack:first', '--json']));
    expect(gotJson).toMatchObject({ key: 'ack:first', value, revision: commitLsn });

    const putJson = json(walship(['put', '--node', node, 'ack:second', 'two', '--json']));
    acked.set('ack:second', 'two');
    expect(putJson.succeeded).toBe(true);
    expect(putJson.timeline).toBe(1);
    expect(lsn(putJson.lsn)).toBeGreaterThan(lsn(commitLsn));

    const missing = walship(['get', '--node', node, 'ack:never-written']);
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('key "ack:never-written" not found');

    putAcked('ack:doomed', 'x');
    const del = walship(['del', '--node', node, 'ack:doomed']);
    expect(del.status, del.stderr).toBe(0);
    expect(del.stdout).toMatch(/^deleted 1 /);
    acked.delete('ack:doomed');
    expect(walship(['get', '--node', node, 'ack:doomed']).status).toBe(1);
    // The other keys are untouched by the delete.
    expect(walship(['get', '--node', node, 'ack:second']).stdout).toBe('two');
  });

  it('scan --prefix, --start/--end and --limit list entries in key order', () => {
    for (const key of ['scan:c1', 'scan:a2', 'scan:b1', 'scan:a1', 'scan:b2']) putAcked(`ack:${key}`, `value of ${key}`);

    const byPrefix = json(walship(['scan', '--node', node, '--prefix', 'ack:scan:a', '--json']));
    expect(byPrefix.entries.map((e: any) => [e.key, e.value])).toEqual([
      ['ack:scan:a1', 'value of scan:a1'],
      ['ack:scan:a2', 'value of scan:a2'],
    ]);
    for (const entry of byPrefix.entries) expect(Object.keys(entry).sort()).toEqual(['key', 'revision', 'value']);
    for (const entry of byPrefix.entries) lsn(entry.revision);

    // [start, end): the end key itself is not listed.
    const range = json(walship(['scan', '--node', node, '--start', 'ack:scan:a2', '--end', 'ack:scan:c1', '--json']));
    expect(range.entries.map((e: any) => e.key)).toEqual(['ack:scan:a2', 'ack:scan:b1', 'ack:scan:b2']);

    const limited = json(walship(['scan', '--node', node, '--prefix', 'ack:scan:', '--limit', '2', '--json']));
    expect(limited.entries.map((e: any) => e.key)).toEqual(['ack:scan:a1', 'ack:scan:a2']);
    expect(limited.more).toBe(true);

    const text = walship(['scan', '--node', node, '--prefix', 'ack:scan:b']);
    expect(text.status).toBe(0);
    expect(text.stdout).toBe('ack:scan:b1\tvalue of scan:b1\nack:scan:b2\tvalue of scan:b2\n');

    const none = json(walship(['scan', '--node', node, '--prefix', 'no-such-prefix', '--json']));
    expect(none).toEqual({ entries: [], more: false });
  });

  it('load --count N writes N keys, and scan finds all of them', () => {
    const result = walship(['load', '--node', node, '--count', '300', '--prefix', 'load:', '--value-size', '40', '--clients', '3']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^loaded 300 keys in [\d.]+ s \([\d.]+ commits\/s, 3 clients\)\n$/);
    const entries = json(walship(['scan', '--node', node, '--prefix', 'load:', '--json'])).entries;
    expect(entries.length).toBe(300);
    expect(entries[0].key).toBe('load:000');
    expect(entries[299].key).toBe('load:299');
    for (const entry of entries) expect(entry.value).toHaveLength(40);
  });

  it('load - reads KEY VALUE lines from stdin, in order per key; a malformed line exits 1', () => {
    const result = walship(['load', '--node', node, '-'], { input: 'ack:in:a 1\nack:in:b two words\n\nack:in:a 3\n' });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^loaded 3 keys /);
    acked.set('ack:in:a', '3');
    acked.set('ack:in:b', 'two words');
    expect(walship(['get', '--node', node, 'ack:in:a']).stdout).toBe('3');
    expect(walship(['get', '--node', node, 'ack:in:b']).stdout).toBe('two words');

    // A malformed first line: nothing is written.
    const badFirst = walship(['load', '--node', node, '-'], { input: 'just-a-key\nack:in:d fine\n' });
    expect(badFirst.status).toBe(1);
    expect(badFirst.stderr).toContain('line 1 of standard input is not "KEY VALUE"');
    expect(badFirst.stderr).toContain('0 writes were acknowledged before the error');
    expect(walship(['get', '--node', node, 'ack:in:d']).status).toBe(1);

    // A malformed later line: each line is its own transaction, so the lines before it may have
    // been committed; the error says how many were, and that is what the node has.
    const bad = walship(['load', '--node', node, '-'], { input: 'ack:in:c fine\njust-a-key\n' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('line 2 of standard input is not "KEY VALUE"');
    const written = Number(/(\d+) writes were acknowledged before the error/.exec(bad.stderr)?.[1]);
    expect([0, 1]).toContain(written);
    expect(walship(['get', '--node', node, 'ack:in:c']).status).toBe(written === 1 ? 0 : 1);
    if (written === 1) acked.set('ack:in:c', 'fine');
    expect(walship(['get', '--node', node, 'just-a-key']).status).toBe(1);
  });

  it('checkpoint runs a checkpoint: lastCheckpointLsn advances, and the control file agrees', () => {
    putAcked('ack:before-checkpoint', 'cp');
    const before = lsn(status().lastCheckpointLsn);
    const result = walship(['checkpoint', '--node', node]);
    expect(result.status, result.stderr).toBe(0);
    const printed = /^CHECKPOINT ([0-9A-F]+\/[0-9A-F]+)/.exec(result.stdout)?.[1];
    const after = status();
    expect(lsn(after.lastCheckpointLsn)).toBeGreaterThan(before);
    expect(after.lastCheckpointLsn).toBe(printed);
    expect(lsn(after.lastCheckpointLsn)).toBeLessThanOrEqual(lsn(after.flushLsn));
    expect(json(walship(['controldata', '-D', dir, '--json'])).checkpointLsn).toBe(after.lastCheckpointLsn);
  });

  it('show -D DIR NAME prints only the value; an unknown name exits 1', () => {
    const shared = walship(['show', '-D', dir, 'shared_buffers']);
    expect(shared.status).toBe(0);
    expect(shared.stdout).toBe('2MB\n');
    expect(walship(['show', '-D', dir, 'port']).stdout).toBe(`${port}\n`);
    // A setting not in the file shows its default.
    expect(walship(['show', '-D', dir, 'checkpoint_timeout']).stdout).toBe('5min\n');

    const unknown = walship(['show', '-D', dir, 'no_such_setting']);
    expect(unknown.status).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('unrecognized configuration parameter "no_such_setting"');

    const all = walship(['show', '-D', dir]);
    expect(all.status).toBe(0);
    expect(all.stdout).toMatch(new RegExp(`^port\\s+\\| ${port}\\s+\\| postmaster \\| walship.conf line \\d+$`, 'm'));
  });

  it('set -D DIR writes walship.conf and the running node reloads it; a bad unit is refused', async () => {
    const result = walship(['set', '-D', dir, 'bgwriter_delay', '50ms']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe('bgwriter_delay = 50ms\n');
    expect(result.stderr).toContain('server signaled to reload its configuration');
    expect(walship(['show', '-D', dir, 'bgwriter_delay']).stdout).toBe('50ms\n');
    // The node itself now runs with it (SIGHUP is handled asynchronously).
    const client = await WalshipClient.connect({ port, timeoutMs: 10_000 });
    try {
      await waitFor('the node to reload bgwriter_delay', async () => (await client.showSetting('bgwriter_delay')) === '50ms', 10_000);
    } finally {
      await client.close();
    }

    const confBefore = fs.readFileSync(path.join(dir, 'walship.conf'), 'utf8');
    const bad = walship(['set', '-D', dir, 'bgwriter_delay', '5XB']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('invalid value for parameter "bgwriter_delay": "5XB"');
    expect(bad.stderr).toContain('HINT:  Valid units for this parameter are');
    expect(fs.readFileSync(path.join(dir, 'walship.conf'), 'utf8')).toBe(confBefore);
  });

  it('set --node changes a setting through the node: status and show reflect it', () => {
    const result = walship(['set', '--node', node, 'synchronous_commit', 'local']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe('synchronous_commit = local\n');
    expect(result.stderr).toContain(`node at ${node} reloaded its configuration`);
    expect(status().synchronousCommit).toBe('local');
    // The node wrote it into its walship.conf, so it survives a restart.
    expect(walship(['show', '-D', dir, 'synchronous_commit']).stdout).toBe('local\n');

    const bad = walship(['set', '--node', node, 'wal_writer_delay', '1parsec']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('invalid value for parameter "wal_writer_delay": "1parsec"');
    expect(walship(['show', '-D', dir, 'wal_writer_delay']).stdout).toBe('200ms\n');

    const back = walship(['set', '--node', node, 'synchronous_commit', 'on']);
    expect(back.status, back.stderr).toBe(0);
    expect(status().synchronousCommit).toBe('on');
  });

  it('SIGHUP after editing walship.conf by hand applies a sighup setting', async () => {
    const confPath = path.join(dir, 'walship.conf');
    const original = fs.readFileSync(confPath, 'utf8');
    const pid = readPid(dir)!;
    const client = await WalshipClient.connect({ port, timeoutMs: 10_000 });
    try {
      // As an operator would: change one line, add another, and signal the postmaster.
      const edited = `${original.replace(/^synchronous_commit = .*\n/m, '')}synchronous_commit = off\ncheckpoint_timeout = 7min\n`;
      fs.writeFileSync(confPath, edited);
      process.kill(pid, 'SIGHUP');
      await waitFor('synchronous_commit to become off', () => status().synchronousCommit === 'off', 10_000, 100);
      expect(await client.showSetting('synchronous_commit')).toBe('off');
      expect(await client.showSetting('checkpoint_timeout')).toBe('7min');
      const logDir = path.join(dir, 'log');
      const logs = fs.readdirSync(logDir).filter((f) => f.startsWith('walship-')).map((f) => fs.readFileSync(path.join(logDir, f), 'utf8')).join('');
      expect(logs).toContain('received SIGHUP, reloading configuration files');
      expect(logs).toContain('parameter "synchronous_commit" changed to "off"');
    } finally {
      // Back to durable commits: the crash tests below rely on them.
      fs.writeFileSync(confPath, original);
      process.kill(pid, 'SIGHUP');
    }
    try {
      await waitFor('synchronous_commit to be on again', () => status().synchronousCommit === 'on', 10_000, 100);
      expect(await client.showSetting('checkpoint_timeout')).toBe('5min');
    } finally {
      await client.close();
    }
  });

  it('isready says whether a node accepts connections, with exit 0 or 3', () => {
    expect(walship(['isready', '--node', node, '-q'])).toMatchObject({ status: 0, stdout: '' });
    const nobody = walship(['isready', '--node', '127.0.0.1:1']);
    expect(nobody.status).toBe(3);
    expect(nobody.stdout).toContain('127.0.0.1:1 - no response');
  });

  it('waldump --json lists the WAL records: COMMIT and CHECKPOINT records, linked, with the commit LSNs', () => {
    const commitLsn = putAcked('ack:for-waldump', 'w');
    const dump = json(walship(['waldump', '-D', dir, '--json']));
    const records: any[] = dump.records;
    expect(records.length).toBeGreaterThan(300);
    for (const record of records) {
      lsn(record.lsn);
      expect(typeof record.rmgr).toBe('string');
      expect(typeof record.description).toBe('string');
    }
    for (let i = 1; i < records.length; i++) {
      expect(records[i].prevLsn).toBe(records[i - 1].lsn);
      expect(lsn(records[i].lsn)).toBeGreaterThan(lsn(records[i - 1].lsn));
    }
    const commits = records.filter((r) => r.rmgr === 'Transaction' && r.description.startsWith('COMMIT'));
    const checkpoints = records.filter((r) => r.rmgr === 'XLOG' && r.description.startsWith('CHECKPOINT'));
    expect(commits.length).toBeGreaterThan(300);
    expect(checkpoints.length).toBeGreaterThan(0);
    // The LSN a put acknowledges is the end of its commit record.
    expect(commits.some((r) => r.endLsn === commitLsn)).toBe(true);
    // The last checkpoint the control file names is in the dump.
    const control = json(walship(['controldata', '-D', dir, '--json']));
    expect(checkpoints.some((r) => r.lsn === control.checkpointLsn)).toBe(true);
    // waldump reads to the end of valid WAL and says where that is.
    expect(lsn(dump.end.lsn)).toBeGreaterThanOrEqual(lsn(commitLsn));

    const text = walship(['waldump', '-D', dir, '--limit', '2']);
    expect(text.status).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toMatch(/^rmgr: \w+\s+len \(tot\):\s+\d+, tx:\s+\d+, lsn: [0-9A-F]+\/[0-9A-F]{8}, prev [0-9A-F]+\/[0-9A-F]{8}, desc: /);
  });

  it('controldata --json shows the control file of a running node', () => {
    const control = json(walship(['controldata', '-D', dir, '--json']));
    expect(control.systemId).toBe(systemId);
    expect(control.state).toBe('in production');
    expect(control.timeline).toBe(1);
    lsn(control.checkpointLsn);
    lsn(control.redoLsn);
    const text = walship(['controldata', '-D', dir]);
    expect(text.stdout).toMatch(/^Database cluster state:\s+in production$/m);
    expect(text.stdout).toMatch(new RegExp(`^Database system identifier:\\s+${systemId}$`, 'm'));
  });

  it('a large --json output arrives whole through a pipe; a reader that goes away ends the command quietly', async () => {
    const load = walship(['load', '--node', node, '--count', '200', '--prefix', 'big:', '--value-size', '4kB', '--quiet']);
    expect(load.status, load.stderr).toBe(0);
    // About 800 kB through the pipe of spawnSync: all of it, as one valid JSON document.
    const scan = walship(['scan', '--node', node, '--prefix', 'big:', '--json']);
    expect(scan.stdout.length).toBeGreaterThan(800_000);
    const entries = json(scan).entries;
    expect(entries).toHaveLength(200);
    for (const entry of entries) expect(entry.value).toHaveLength(4096);

    // `walship scan | head -1`: the reader closes early; no crash, no stack trace.
    const child = spawn(process.execPath, [CLI, 'scan', '--node', node, '--prefix', 'big:'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(0);
  });

  it('bench --json measures commits per second and latencies', () => {
    const result = walship(['bench', '--node', node, '--duration', '2', '--clients', '4', '--keys', '100', '--json']);
    const bench = json(result);
    expect(bench.clients).toBe(4);
    expect(bench.commitsPerSecond).toBeGreaterThan(0);
    expect(bench.latencyMs.p50).toBeGreaterThan(0);
    expect(bench.latencyMs.p99).toBeGreaterThanOrEqual(bench.latencyMs.p50);
    expect(bench.latencyMs.max).toBeGreaterThanOrEqual(bench.latencyMs.p99);
    expect(bench.durationMs).toBeGreaterThanOrEqual(2000);
    // The writes were real: the keys are on the node.
    expect(json(walship(['scan', '--node', node, '--prefix', 'bench:', '--limit', '1', '--json'])).entries).toHaveLength(1);
  });

  it('stop --mode smart waits for sessions to end, then shuts down cleanly', async () => {
    const pid = readPid(dir)!;
    const client = await WalshipClient.connect({ port, timeoutMs: 10_000 });
    const stopping = walshipAsync(['stop', '-D', dir, '--mode', 'smart']);
    try {
      await waitFor('the node to enter smart shutdown', () => fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[7]?.trim() === 'stopping', 10_000);
      // New sessions are refused (exit 1: the node answered), while the open one keeps working.
      const refused = walship(['get', '--node', node, 'ack:first']);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toContain('the database system is shutting down');
      expect((await client.get('ack:first'))?.value.toString()).toBe(acked.get('ack:first'));
      expect(alive(pid)).toBe(true);
    } finally {
      await client.close();
    }
    const stopped = await stopping;
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain('server stopped');
    expect(alive(pid)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'postmaster.pid'))).toBe(false);
    expect(json(walship(['controldata', '-D', dir, '--json'])).state).toBe('shut down');
  });

  it('stop --mode fast disconnects sessions; controldata says "shut down" and the next start needs no recovery', async () => {
    expect(walship(['start', '-D', dir]).status).toBe(0);
    expectAckedIntact();
    putAcked('ack:before-fast', 'f');
    const client = await WalshipClient.connect({ port, timeoutMs: 10_000 });
    try {
      const result = walship(['stop', '-D', dir, '--mode', 'fast']);
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain('server stopped');
      await expect(client.get('ack:first')).rejects.toThrow();
    } finally {
      await client.close().catch(() => undefined);
    }
    const control = json(walship(['controldata', '-D', dir, '--json']));
    expect(control.state).toBe('shut down');
    // The shutdown checkpoint is the last record of the WAL.
    const dump = json(walship(['waldump', '-D', dir, '--start', control.checkpointLsn, '--json']));
    expect(dump.records).toHaveLength(1);
    expect(dump.records[0].lsn).toBe(control.checkpointLsn);
    expect(dump.records[0].description).toMatch(/^CHECKPOINT_SHUTDOWN/);

    const offset = logSize();
    expect(walship(['start', '-D', dir]).status).toBe(0);
    const log = logSince(offset);
    expect(log).toContain('database system was shut down at');
    expect(log).not.toContain('automatic recovery in progress');
    expectAckedIntact();
  });

  it('stop --mode immediate skips the shutdown checkpoint: the next start runs crash recovery and loses nothing', () => {
    for (let i = 0; i < 20; i++) putAcked(`ack:before-immediate:${i}`, `value ${i}`);
    const checkpointBefore = json(walship(['controldata', '-D', dir, '--json'])).checkpointLsn;
    const result = walship(['stop', '-D', dir, '--mode', 'immediate']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain('server stopped');
    const control = json(walship(['controldata', '-D', dir, '--json']));
    expect(control.state).toBe('in production');
    expect(control.checkpointLsn).toBe(checkpointBefore);

    const offset = logSize();
    const start = walship(['start', '-D', dir]);
    expect(start.status, start.stderr).toBe(0);
    const log = logSince(offset);
    expect(log).toContain('database system was not properly shut down; automatic recovery in progress');
    expect(log).toMatch(/redo starts at [0-9A-F]+\/[0-9A-F]+/);
    expect(log).toMatch(/redo done at [0-9A-F]+\/[0-9A-F]+/);
    expectAckedIntact();
    expect(json(walship(['scan', '--node', node, '--prefix', 'load:', '--json'])).entries).toHaveLength(300);
  });

  it('a node that cannot be reached exits 3, with the address and a hint', () => {
    const result = walship(['stop', '-D', dir]);
    expect(result.status, result.stderr).toBe(0);
    for (const args of [['get', 'ack:first'], ['put', 'k', 'v'], ['status', '--json'], ['scan'], ['checkpoint']]) {
      const unreachable = walship([...args, '--node', node]);
      expect(unreachable.status, `walship ${args.join(' ')}`).toBe(3);
      expect(unreachable.stdout).toBe('');
      expect(unreachable.stderr).toContain(`could not connect to node at ${node}`);
      expect(unreachable.stderr).toContain('HINT:');
    }
    // Stopping a node that is not running fails and says why.
    const again = walship(['stop', '-D', dir]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('postmaster.pid" does not exist');
  });

  it('usage errors exit 2 and point at --help; --help exits 0', () => {
    const cases: Array<[string[], string]> = [
      [['frobnicate'], "unknown command 'frobnicate'"],
      [['get'], "missing required argument 'key'"],
      [['scan', '--limit', 'zero'], '"zero" is not a whole number'],
      [['scan', '--prefix', 'a', '--start', 'b', '--node', node], '--prefix cannot be combined with --start or --end'],
      [['stop', '-D', dir, '--mode', 'gentle'], '"gentle" is not a shutdown mode'],
      [['get', 'k', '--node', 'not a node:x'], 'is not a'],
      [['set', 'bgwriter_delay', '10ms'], 'no target given'],
      [['start'], "required option '-D, --data-dir <dir>' not specified"],
    ];
    for (const [args, message] of cases) {
      const result = walship(args);
      expect(result.status, `walship ${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toContain(message);
    }
    expect(walship(['frobnicate']).stderr).toContain('Try "walship --help" for more information.');

    const help = walship(['--help']);
    expect(help.status).toBe(0);
    for (const command of ['init', 'start', 'stop', 'set', 'show', 'status', 'put', 'get', 'del', 'scan', 'load', 'waldump', 'controldata', 'bench']) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(help.stdout).toContain('Exit status: 0 success, 1 failed check or missing key, 2 usage error, 3 node unreachable.');
    const putHelp = walship(['put', '--help']);
    expect(putHelp.status).toBe(0);
    expect(putHelp.stdout).toContain('Usage: walship put [options] <key> <value>');
  });
});
