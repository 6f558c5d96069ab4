/**
 * The small pure pieces: option parsers, the password file, output formats, pg_waldump lines,
 * the control file as JSON, bench's latency recorder, and isready against a plain HTTP server.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LatencyRecorder, benchReportPairs, serverCpuMicros, type BenchResult } from './commands/bench.js';
import { controlDataJson } from './commands/controldata.js';
import { shellQuote } from './commands/init.js';
import { parseLoadLine } from './commands/load.js';
import { prefixEnd } from './commands/scan.js';
import { formatPaddedLsn, formatRecord } from './commands/waldump.js';
import { findPassfilePassword, resolveCredentials } from './credentials.js';
import {
  collectAssignment,
  parseByteSize,
  parseLsnArgument,
  parseNodeAddress,
  parseNodeList,
  parseSecondsToMs,
  parseStopMode,
  resolveNodes,
} from './options.js';
import { bytesToText, formatLsn, formatPairs, formatTable } from './output.js';
import { runCli } from './program.js';
import { memoryIo } from './test-support/memory-io.js';

describe('option parsers', () => {
  it('reads node addresses', () => {
    expect(parseNodeAddress('127.0.0.1:6001')).toEqual({ host: '127.0.0.1', port: 6001 });
    expect(parseNodeAddress('db.example')).toEqual({ host: 'db.example', port: 5433 });
    expect(parseNodeAddress('[::1]:7000')).toEqual({ host: '::1', port: 7000 });
    expect(parseNodeList('a:1,b:2')).toEqual([
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    for (const bad of ['a:0', 'a:65536', 'a:x', 'a:1:2', '', ',']) expect(() => parseNodeList(bad), bad).toThrow();
    expect(resolveNodes(undefined, { WALSHIP_NODE: 'x:9' })).toEqual([{ host: 'x', port: 9 }]);
    expect(resolveNodes(undefined, {})).toEqual([{ host: '127.0.0.1', port: 5433 }]);
  });

  it('reads sizes, seconds, LSNs, modes and assignments', () => {
    expect(parseByteSize('100')).toBe(100);
    expect(parseByteSize('4kB')).toBe(4096);
    expect(parseByteSize('1MB')).toBe(1024 * 1024);
    expect(() => parseByteSize('1mb')).toThrow();
    expect(parseSecondsToMs('2.5')).toBe(2500);
    expect(() => parseSecondsToMs('0')).toThrow();
    expect(() => parseSecondsToMs('soon')).toThrow();
    expect(parseLsnArgument('0/16B3748')).toBe(0x16b3748);
    expect(parseLsnArgument('1/0')).toBe(0x1_0000_0000);
    expect(() => parseLsnArgument('16B3748')).toThrow();
    expect(parseStopMode('i')).toBe('immediate');
    expect(collectAssignment('primary_conninfo=host=a port=1', [['port', '1']])).toEqual([
      ['port', '1'],
      ['primary_conninfo', 'host=a port=1'],
    ]);
    expect(() => collectAssignment('=1')).toThrow();
  });

  it('splits load lines and computes prefix ends', () => {
    expect(parseLoadLine('key value with spaces')).toEqual({ key: 'key', value: 'value with spaces' });
    expect(parseLoadLine('key\t')).toEqual({ key: 'key', value: '' });
    expect(parseLoadLine('lonely')).toBeNull();
    expect(prefixEnd(Buffer.from('ab'))).toEqual(Buffer.from('ac'));
    expect(prefixEnd(Buffer.from([0x61, 0xff]))).toEqual(Buffer.from('b'));
    expect(prefixEnd(Buffer.from([0xff, 0xff]))).toBeUndefined();
    expect(shellQuote('/data/n1')).toBe('/data/n1');
    expect(shellQuote("/my data/it's")).toBe(`'/my data/it'\\''s'`);
  });
});

describe('credentials', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('finds the first matching password file line, with wildcards and escapes', () => {
    const text = ['# comment', 'other:5433:*:nope', '127.0.0.1:6001:alice:a\\:b', '*:*:*:fallback'].join('\n');
    expect(findPassfilePassword(text, { host: '127.0.0.1', port: 6001 }, 'alice')).toBe('a:b');
    expect(findPassfilePassword(text, { host: '127.0.0.1', port: 6001 }, undefined)).toBe('fallback');
    expect(findPassfilePassword('h:1:u', { host: 'h', port: 1 }, 'u')).toBeUndefined();
  });

  it('prefers WALSHIP_PASSWORD, reads WALSHIP_PASSFILE, and ignores a password file others can read', () => {
    const directory = mkdtempSync(join(tmpdir(), 'walship-pass-'));
    dir = directory;
    const passfile = join(directory, 'pass');
    writeFileSync(passfile, '*:*:*:fromfile\n', { mode: 0o600 });
    const node = { host: '127.0.0.1', port: 6001 };
    expect(resolveCredentials(memoryIo({ env: { WALSHIP_PASSWORD: 'env', WALSHIP_PASSFILE: passfile } }), node)).toEqual({ user: undefined, password: 'env' });
    expect(resolveCredentials(memoryIo({ env: { WALSHIP_PASSFILE: passfile, WALSHIP_USER: 'bob' } }), node)).toEqual({ user: 'bob', password: 'fromfile' });
    chmodSync(passfile, 0o644);
    const io = memoryIo({ env: { WALSHIP_PASSFILE: passfile } });
    expect(resolveCredentials(io, node).password).toBeUndefined();
    expect(io.stderrText()).toContain('has group or world access');
  });
});

describe('bench report', () => {
  const result: BenchResult = {
    node: '127.0.0.1:5433', clients: 8, durationMs: 8004, commits: 25_520, commitsPerSecond: 3190,
    latencyMs: { p50: 2.1, p99: 6.269, max: 19 }, valueSizeBytes: 100, keys: 100_000, syncCommit: 'on',
    warmupMs: 1000, warmupCommits: 2393, cpuMicrosPerCommit: 213, clientCpuMicrosPerCommit: 59.8,
  };

  it('prints every figure with a fixed number of decimals, whole values included', () => {
    expect(formatPairs(benchReportPairs(result))).toBe([
      'node:                    127.0.0.1:5433',
      'clients:                 8',
      'duration:                8.0 s',
      'warm-up:                 1.0 s, 2393 commits not counted',
      'commits:                 25520',
      'commits per second:      3190.0',
      'latency p50:             2.100 ms',
      'latency p99:             6.269 ms',
      'latency max:             19.000 ms',
      'server CPU per commit:   213.0 us',
      'bench CPU per commit:    59.8 us',
      '',
    ].join('\n'));
  });

  it('leaves out the warm-up and the CPU lines when there are none', () => {
    const { cpuMicrosPerCommit: _server, clientCpuMicrosPerCommit: _bench, ...rest } = result;
    const names = benchReportPairs({ ...rest, warmupMs: 0, warmupCommits: 0 }).map(([name]) => name);
    expect(names).toEqual(['node', 'clients', 'duration', 'commits', 'commits per second', 'latency p50', 'latency p99', 'latency max']);
  });
});

describe('output', () => {
  it('formats LSNs, tables, pairs and bytes', () => {
    expect(formatLsn(0x16b3748)).toBe('0/16B3748');
    expect(formatLsn(0x2_0000_0010)).toBe('2/10');
    expect(formatPaddedLsn(0x100028)).toBe('0/00100028');
    expect(formatTable(['a', 'bb'], [['xyz', '1']])).toBe('a   | bb\n----+---\nxyz | 1\n');
    expect(formatPairs([['one', '1'], ['three', '3']])).toBe('one:     1\nthree:   3\n');
    expect(bytesToText(Buffer.from('héllo'))).toEqual({ text: 'héllo', encoding: 'utf8' });
    expect(bytesToText(Buffer.from([0xff, 0x00]))).toEqual({ text: '/wA=', encoding: 'base64' });
  });

  it('prints WAL records as pg_waldump does', () => {
    const line = formatRecord({
      lsn: 0x100028 as never,
      endLsn: 0x100060 as never,
      prevLsn: 0 as never,
      totalLength: 55,
      xid: 0,
      rmgr: 'XLOG',
      description: 'CHECKPOINT_SHUTDOWN redo 0/100028',
      blocks: 0,
      fullPageImages: 0,
    });
    expect(line).toBe('rmgr: XLOG        len (tot):       55, tx:          0, lsn: 0/00100028, prev 0/00000000, desc: CHECKPOINT_SHUTDOWN redo 0/100028');
  });

  it('prints the control file as JSON with LSNs as X/X and the state by name', () => {
    expect(controlDataJson({ systemId: 7300000000000000001n, state: 6, checkpointLsn: 0x100190, timeline: 1 }, 'in production')).toEqual({
      systemId: '7300000000000000001',
      state: 'in production',
      checkpointLsn: '0/100190',
      timeline: 1,
    });
  });
});

describe('bench helpers', () => {
  it('computes nearest-rank percentiles and the exact maximum', () => {
    const recorder = new LatencyRecorder();
    for (let value = 1; value <= 100; value++) recorder.record(value);
    expect(recorder.count).toBe(100);
    expect(recorder.percentile(0.5)).toBe(50);
    expect(recorder.percentile(0.99)).toBe(99);
    expect(recorder.maxMs).toBe(100);
    expect(new LatencyRecorder().percentile(0.5)).toBe(0);
  });

  it('reads the server CPU time from a status', () => {
    expect(serverCpuMicros({ cpuUserMicros: 10, cpuSystemMicros: 5 })).toBe(15);
    expect(serverCpuMicros({ cpuMicros: 7 })).toBe(7);
    expect(serverCpuMicros({ role: 'primary' })).toBeNull();
    expect(serverCpuMicros(null)).toBeNull();
  });
});

describe('isready', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  async function serve(status: number, body: string): Promise<number> {
    server = createServer((_request, response) => {
      response.writeHead(status, { 'content-type': 'text/plain' });
      response.end(body);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  async function isready(args: string[]) {
    const io = memoryIo();
    const code = await runCli(['isready', ...args], io);
    return { code, stdout: io.stdoutText() };
  }

  it('exits 0 when the node accepts connections', async () => {
    const port = await serve(200, 'ok');
    expect(await isready(['--node', `127.0.0.1:${port}`])).toEqual({ code: 0, stdout: `127.0.0.1:${port} - accepting connections\n` });
    expect(await isready(['--node', `127.0.0.1:${port}`, '--quiet'])).toEqual({ code: 0, stdout: '' });
  });

  it('exits 1 when the node rejects connections', async () => {
    const port = await serve(503, 'the database system is starting up');
    expect(await isready(['--node', `127.0.0.1:${port}`])).toEqual({
      code: 1,
      stdout: `127.0.0.1:${port} - rejecting connections (the database system is starting up)\n`,
    });
  });

  it('exits 3 when nothing answers', async () => {
    const port = await serve(200, 'ok');
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = null;
    const result = await isready(['--node', `127.0.0.1:${port}`]);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/ - no response \(connect ECONNREFUSED/);
  });
});
