/**
 * The data and admin commands against an in-memory stand-in for WalshipClient: output formats,
 * JSON documents, exit statuses, scan paging, load from stdin, bench's report, and how client
 * errors are reported.
 */
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './program.js';
import { memoryIo } from './test-support/memory-io.js';
import { benchKey } from './commands/bench.js';

interface FakeEntry {
  key: Buffer;
  value: Buffer;
  revision: number;
}

class FakeClient {
  static store = new Map<string, FakeEntry>();
  static lsn = 0x1000000;
  static failWith: { code: string; message: string; detail?: string; lsn?: number } | null = null;
  static rangeLimits: number[] = [];
  static status: Record<string, unknown> = {};
  static closed = 0;

  private fail(): void {
    if (FakeClient.failWith !== null) {
      const { message, ...fields } = FakeClient.failWith;
      throw Object.assign(new Error(message), { ...fields, name: 'WalshipClientError' });
    }
  }

  async get(key: Uint8Array): Promise<FakeEntry | null> {
    this.fail();
    return FakeClient.store.get(Buffer.from(key).toString('latin1')) ?? null;
  }

  async put(key: Uint8Array, value: Uint8Array) {
    this.fail();
    FakeClient.lsn += 0x40;
    FakeClient.store.set(Buffer.from(key).toString('latin1'), { key: Buffer.from(key), value: Buffer.from(value), revision: FakeClient.lsn });
    return { succeeded: true, lsn: FakeClient.lsn, timeline: 1, member: 'n1', counts: [1] };
  }

  async del(key: Uint8Array) {
    this.fail();
    FakeClient.lsn += 0x40;
    const deleted = FakeClient.store.delete(Buffer.from(key).toString('latin1')) ? 1 : 0;
    return { succeeded: true, lsn: FakeClient.lsn, timeline: 1, member: 'n1', counts: [deleted], deleted };
  }

  async range(options: { start?: Uint8Array; end?: Uint8Array; limit?: number }) {
    this.fail();
    FakeClient.rangeLimits.push(options.limit ?? -1);
    const sorted = [...FakeClient.store.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    const inRange = sorted.filter(
      (entry) =>
        (options.start === undefined || Buffer.compare(entry.key, Buffer.from(options.start)) >= 0) &&
        (options.end === undefined || Buffer.compare(entry.key, Buffer.from(options.end)) < 0),
    );
    const limit = options.limit ?? inRange.length;
    return { entries: inRange.slice(0, limit), more: inRange.length > limit };
  }

  async status() {
    this.fail();
    return FakeClient.status;
  }

  async checkpoint() {
    this.fail();
    return { lsn: 0x1000128, redoLsn: 0x10000f0 };
  }

  async setSetting(_name: string, _value: string) {
    this.fail();
    return { restartRequired: false };
  }

  async waitForLsn(lsn: number, options: { mode?: string }) {
    this.fail();
    return { status: 'success', lsn: Math.max(lsn, FakeClient.lsn), mode: options.mode };
  }

  async close() {
    FakeClient.closed++;
  }
}

const connections: Array<Record<string, unknown>> = [];
let refuseConnections = false;

vi.mock('./adapters.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./adapters.js')>();
  return {
    ...original,
    connectClient: vi.fn(async (options: Record<string, unknown>) => {
      connections.push(options);
      if (refuseConnections) {
        throw Object.assign(new Error(`connect ECONNREFUSED ${String(options.host)}:${String(options.port)}`), {
          name: 'WalshipClientError',
          code: 'connection_failure',
        });
      }
      return new FakeClient();
    }),
  };
});

beforeEach(() => {
  FakeClient.store = new Map();
  FakeClient.lsn = 0x1000000;
  FakeClient.failWith = null;
  FakeClient.rangeLimits = [];
  FakeClient.status = {};
  FakeClient.closed = 0;
  connections.length = 0;
  refuseConnections = false;
});

async function walship(args: string[], options: Parameters<typeof memoryIo>[0] = {}) {
  const io = memoryIo(options);
  const code = await runCli(args, io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText(), bytes: io.stdoutBytes() };
}

describe('put, get, del', () => {
  it('writes, reads the raw value, and deletes', async () => {
    expect(await walship(['put', 'greeting', 'hello world'])).toMatchObject({ code: 0, stdout: 'OK 0/1000040\n' });
    const got = await walship(['get', 'greeting']);
    expect(got).toMatchObject({ code: 0, stdout: 'hello world' }); // raw: no newline on a pipe
    expect((await walship(['get', 'greeting'], { tty: true })).stdout).toBe('hello world\n');
    expect(JSON.parse((await walship(['get', 'greeting', '--json'])).stdout)).toEqual({ key: 'greeting', value: 'hello world', revision: '0/1000040' });
    expect(await walship(['del', 'greeting'])).toMatchObject({ code: 0, stdout: 'deleted 1 (0/1000080)\n' });
    const missing = await walship(['get', 'greeting']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('walship: error: key "greeting" not found');
    expect(FakeClient.closed).toBe(6); // every session closed
  });

  it('prints put as JSON', async () => {
    const result = await walship(['put', 'k', 'v', '--json', '--sync-commit', 'remote_apply']);
    expect(JSON.parse(result.stdout)).toEqual({ succeeded: true, lsn: '0/1000040', timeline: 1, member: 'n1' });
  });

  it('connects to --node, else WALSHIP_NODE, else 127.0.0.1:5433, with the password from the environment', async () => {
    await walship(['get', 'k', '--node', 'db1:7000']);
    await walship(['get', 'k'], { env: { WALSHIP_NODE: '[::1]:7001', WALSHIP_PASSWORD: 's3cret' } });
    await walship(['get', 'k']);
    expect(connections.map(({ host, port }) => `${String(host)}:${String(port)}`)).toEqual(['db1:7000', '::1:7001', '127.0.0.1:5433']);
    expect(connections[1]!.password).toBe('s3cret');
    expect(connections[0]!.password).toBeUndefined();
    // No --timeout: calls wait as long as the operation does.
    expect(connections[0]!.timeoutMs).toBe(2_147_483_647);
    await walship(['get', 'k', '--timeout', '2.5']);
    expect(connections[3]!.timeoutMs).toBe(2500);
  });

  it('exits 3 when the node cannot be reached, saying what to do', async () => {
    refuseConnections = true;
    const result = await walship(['put', 'k', 'v', '--node', '127.0.0.1:1']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('walship: error: could not connect to node at 127.0.0.1:1\nDETAIL:  connect ECONNREFUSED 127.0.0.1:1\n');
    expect(result.stderr).toContain('HINT:  Is the node running');
  });

  it('reports a write to a standby as read-only, with exit 1', async () => {
    FakeClient.failWith = { code: 'read_only_transaction', message: 'cannot execute put in a read-only transaction' };
    const result = await walship(['put', 'k', 'v', '--node', '127.0.0.1:6002']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: cannot write to node at 127.0.0.1:6002: read-only standby');
  });

  it('reports an indeterminate write, with exit 1', async () => {
    FakeClient.failWith = { code: 'indeterminate', message: 'the connection was lost after the write was sent' };
    const result = await walship(['put', 'k', 'v']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: the write may or may not have been committed');
    expect(result.stderr).toContain('DETAIL:  the connection was lost after the write was sent');
  });

  it('reports a write whose wait for synchronous standbys ended as committed locally, with its LSN', async () => {
    FakeClient.failWith = {
      code: 'indeterminate', message: 'canceling wait for synchronous replication due to user request',
      detail: 'The transaction has already committed locally at 0/3000060, but might not have been replicated to the standby.', lsn: 0x3000060,
    };
    const result = await walship(['put', 'k', 'v', '--timeout', '1']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: the transaction committed locally at 0/3000060 but is not yet confirmed by the synchronous standbys');
    expect(result.stderr).toContain('DETAIL:  canceling wait for synchronous replication due to user request: The transaction has already committed locally');
    expect(result.stderr).toContain('walship wait-lsn --node STANDBY 0/3000060');
  });

  it('wait-lsn prints the status, or one JSON document', async () => {
    const plain = await walship(['wait-lsn', '0/100', '--mode', 'standby_flush']);
    expect(plain).toMatchObject({ code: 0, stdout: 'success\n' });
    const json = await walship(['wait-lsn', '0/100', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ status: 'success', mode: 'standby_replay', targetLsn: '0/100' });
    expect((await walship(['wait-lsn', '0/100', '--mode', 'replay'])).code).toBe(2);
    expect((await walship(['wait-lsn', 'zz'])).code).toBe(2);
  });

  it('picks the primary from a list of nodes for a write', async () => {
    let call = 0;
    FakeClient.status = {};
    const statusSpy = vi.spyOn(FakeClient.prototype, 'status').mockImplementation(async () => ({ role: call++ === 0 ? 'standby' : 'primary' }));
    const result = await walship(['put', 'k', 'v', '--node', 'a:1,b:2']);
    expect(result.code).toBe(0);
    expect(connections.map(({ host }) => host)).toEqual(['a', 'b']);
    statusSpy.mockRestore();
  });
});

  it('reads from the member --target-session-attrs asks for', async () => {
    FakeClient.store.set('k', { key: Buffer.from('k'), value: Buffer.from('v'), revision: 1 });
    const roles: Record<string, string> = { a: 'primary', b: 'standby', c: 'standby' };
    const hosts: string[] = [];
    const statusSpy = vi.spyOn(FakeClient.prototype, 'status').mockImplementation(async () => ({ role: roles[String(connections.at(-1)!.host)] }));
    const read = async (attrs: string | null, nodes = 'a:1,b:2,c:3') => {
      connections.length = 0;
      const result = await walship(['get', 'k', '--node', nodes, ...(attrs === null ? [] : ['--target-session-attrs', attrs])]);
      hosts.push(connections.map(({ host }) => host).join(''));
      return result;
    };
    expect((await read(null)).code).toBe(0); // any: the first that answers
    expect((await read('standby')).code).toBe(0); // the first standby
    expect((await read('prefer-standby', 'a:1')).code).toBe(0); // one node: that node
    expect((await read('prefer-standby')).code).toBe(0);
    expect(hosts).toEqual(['a', 'ab', 'a', 'ab']);
    roles.b = 'primary';
    roles.c = 'primary';
    const none = await read('read-only');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no standby among the given nodes');
    expect(none.stderr).toContain('prefer-standby');
    statusSpy.mockRestore();
  });

  it('refuses an unknown --target-session-attrs', async () => {
    const result = await walship(['get', 'k', '--target-session-attrs', 'master']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Allowed choices are any, read-write, primary, read-only, standby, prefer-standby');
  });

describe('scan', () => {
  beforeEach(async () => {
    for (let index = 0; index < 1203; index++) {
      await new FakeClient().put(Buffer.from(`k${String(index).padStart(4, '0')}`), Buffer.from(`v${index}`));
    }
    await new FakeClient().put(Buffer.from('other'), Buffer.from('x'));
  });

  it('lists a prefix in key order, page by page', async () => {
    const result = await walship(['scan', '--prefix', 'k']);
    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(1203);
    expect(lines[0]).toBe('k0000\tv0');
    expect(lines[1202]).toBe('k1202\tv1202');
    expect(FakeClient.rangeLimits).toEqual([500, 500, 500]);
  });

  it('prints the JSON document, and says when --limit cut it short', async () => {
    const result = await walship(['scan', '--start', 'k0010', '--end', 'k0013', '--json']);
    expect(JSON.parse(result.stdout)).toEqual({
      entries: [
        { key: 'k0010', value: 'v10', revision: expect.stringMatching(/^0\/[0-9A-F]+$/) },
        { key: 'k0011', value: 'v11', revision: expect.stringMatching(/^0\/[0-9A-F]+$/) },
        { key: 'k0012', value: 'v12', revision: expect.stringMatching(/^0\/[0-9A-F]+$/) },
      ],
      more: false,
    });
    const limited = JSON.parse((await walship(['scan', '--prefix', 'k', '--limit', '2', '--json'])).stdout) as { entries: unknown[]; more: boolean };
    expect(limited.entries.length).toBe(2);
    expect(limited.more).toBe(true);
    const empty = JSON.parse((await walship(['scan', '--prefix', 'zzz', '--json'])).stdout) as unknown;
    expect(empty).toEqual({ entries: [], more: false });
  });
});

describe('load', () => {
  it('writes generated keys from several sessions', async () => {
    const result = await walship(['load', '--count', '250', '--value-size', '32', '--prefix', 'user:', '--clients', '3', '--json']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ written: 250, clients: 3, valueSizeBytes: 32 });
    expect(FakeClient.store.size).toBe(250);
    expect(FakeClient.store.get('user:000')!.value.length).toBe(32);
    expect(FakeClient.store.has('user:249')).toBe(true);
    expect(connections.length).toBe(3);
    expect(result.stderr).toBe(''); // no progress when stderr is not a terminal
  });

  it('reads KEY VALUE lines from stdin, later lines of a key winning', async () => {
    const stdin = 'a 1\nb two words\n\na 3\n';
    const result = await walship(['load', '-', '--clients', '2'], { stdin });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^loaded 3 keys in /);
    expect(FakeClient.store.get('a')!.value.toString()).toBe('3');
    expect(FakeClient.store.get('b')!.value.toString()).toBe('two words');
  });

  it('stops at a line that is not KEY VALUE', async () => {
    const result = await walship(['load', '-'], { stdin: 'a 1\nlonely\n' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: line 2 of standard input is not "KEY VALUE"');
  });

  it('draws progress on stderr with --progress', async () => {
    const result = await walship(['load', '--count', '10', '--progress']);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^loading: \d+\/10 keys/);
  });
});

describe('status, checkpoint, set --node, bench', () => {
  it('prints the status document as it comes, or as text', async () => {
    FakeClient.status = {
      role: 'primary',
      systemId: '7300000000000000001',
      timeline: 2,
      insertLsn: '0/3000060',
      flushLsn: '0/3000060',
      receiveLsn: null,
      replayLsn: null,
      lastCheckpointLsn: '0/3000028',
      replication: [
        { applicationName: 's1', clientAddr: '127.0.0.1', state: 'streaming', sentLsn: '0/3000060', writeLsn: '0/3000060', flushLsn: '0/3000060', replayLsn: '0/3000000', writeLagMs: 0.412, flushLagMs: 2, replayLagMs: null, syncPriority: 1, syncState: 'sync', slotName: null },
      ],
      walReceiver: null,
      slots: [{ name: 's1', restartLsn: '0/3000000', walStatus: 'reserved', active: true }],
      syncWaiters: { count: 0, oldestMs: 0 },
    };
    const json = await walship(['status', '--json']);
    expect(JSON.parse(json.stdout)).toEqual(FakeClient.status);
    const text = await walship(['status']);
    expect(text.stdout).toMatch(/^role: +primary\n/);
    expect(text.stdout).toMatch(/timeline: +2\n/);
    expect(text.stdout).toContain('replication (1 standby):');
    expect(text.stdout).toMatch(/s1 +\| 127\.0\.0\.1 +\| streaming/);
    // Lags to the microsecond, as ms with three decimals; a NULL lag is a dash.
    expect(text.stdout).toMatch(/\| 0\.412 ms +\| 2\.000 ms +\| - +\|/);
    expect(text.stdout).toContain('commits waiting for synchronous standbys: 0');
  });

  it('runs a checkpoint', async () => {
    expect(await walship(['checkpoint'])).toMatchObject({ code: 0, stdout: 'CHECKPOINT 0/1000128 (redo 0/10000F0)\n' });
  });

  it('sets a setting through the node after checking it locally', async () => {
    const result = await walship(['set', '--node', '127.0.0.1:6001', 'wal_sender_timeout', '90s']);
    expect(result).toMatchObject({ code: 0, stdout: 'wal_sender_timeout = 90s\n' });
    expect(result.stderr).toContain('reloaded');
    const bad = await walship(['set', '--node', '127.0.0.1:6001', 'wal_sender_timeout', 'soon']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('invalid value for parameter "wal_sender_timeout": "soon"');
    expect(connections.length).toBe(1);
  });

  it('benchmarks and prints the documented keys', async () => {
    FakeClient.status = { role: 'primary', cpuMicros: 1000 };
    let cpu = 1000;
    const statusSpy = vi.spyOn(FakeClient.prototype, 'status').mockImplementation(async () => ({ role: 'primary', cpuMicros: (cpu += 50_000) }));
    const result = await walship(['bench', '--clients', '2', '--duration', '0.2', '--keys', '10', '--json']);
    statusSpy.mockRestore();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown> & { latencyMs: Record<string, number>; commits: number };
    expect(report.clients).toBe(2);
    expect(report.commits).toBeGreaterThan(0);
    expect(report.commitsPerSecond).toBeGreaterThan(0);
    expect(Object.keys(report.latencyMs).sort()).toEqual(['max', 'p50', 'p99']);
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
    expect(report.latencyMs.p99).toBeLessThanOrEqual(report.latencyMs.max);
    expect(report.cpuMicrosPerCommit).toBeCloseTo(50_000 / report.commits, 0);
    expect([...FakeClient.store.keys()].every((key) => /^bench:\d$/.test(key))).toBe(true);
  });

  it("writes the keys walship load writes: 'bench:' and the index zero-padded to the key count's width", () => {
    for (const [index, width] of [[0, 1], [7, 1], [0, 5], [42, 5], [99_999, 5], [123_456, 6], [2 ** 31 + 5, 10]] as const) {
      expect(benchKey(index, width).toString('ascii')).toBe(`bench:${String(index).padStart(width, '0')}`);
    }
  });

  it('leaves the warm-up out of the figures: its commits are counted apart, and the CPU is read from its end', async () => {
    let cpu = 1000;
    const statusSpy = vi.spyOn(FakeClient.prototype, 'status').mockImplementation(async () => ({ role: 'primary', cpuMicros: (cpu += 50_000) }));
    let puts = 0;
    const put = FakeClient.prototype.put;
    const putSpy = vi.spyOn(FakeClient.prototype, 'put').mockImplementation(async function (this: FakeClient, key, value) {
      puts++;
      // A real commit waits for the node: let timers run between commits as they would.
      await new Promise((resolve) => setImmediate(resolve));
      return put.call(this, key, value);
    });
    // This process's CPU as bench reads it: one busy core, its CPU time the time passed, so that
    // the figure says which window it covers (the measured 200 ms, not the 400 from the start).
    const cpuSpy = vi.spyOn(process, 'cpuUsage').mockImplementation((previous?: NodeJS.CpuUsage) => {
      const micros = Math.round(performance.now() * 1000);
      return { user: micros - (previous?.user ?? 0), system: 0 };
    });
    const result = await walship(['bench', '--clients', '1', '--warmup', '0.2', '--duration', '0.2', '--keys', '10', '--json']);
    cpuSpy.mockRestore();
    const statusReads = statusSpy.mock.calls.length;
    statusSpy.mockRestore();
    putSpy.mockRestore();
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { commits: number; warmupMs: number; warmupCommits: number; durationMs: number; cpuMicrosPerCommit: number; clientCpuMicrosPerCommit: number };
    expect(report.warmupMs).toBe(200);
    expect(report.warmupCommits).toBeGreaterThan(0);
    expect(report.commits).toBeGreaterThan(0);
    expect(report.commits + report.warmupCommits).toBe(puts);
    expect(report.durationMs).toBeLessThan(400);
    // Two status reads: at the warm-up's end and at the end, 50 ms of CPU apart.
    expect(statusReads).toBe(2);
    expect(report.cpuMicrosPerCommit).toBeCloseTo(50_000 / report.commits, 0);
    // The load generator's own CPU over the same window: not its start-up, not the warm-up.
    const ownCpuMicros = report.clientCpuMicrosPerCommit * report.commits;
    expect(ownCpuMicros).toBeGreaterThan(report.durationMs * 1000 * 0.8);
    expect(ownCpuMicros).toBeLessThan(report.durationMs * 1000 * 1.2);
    const bad = await walship(['bench', '--warmup', 'soon', '--json']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('"soon" is not a number of seconds, 0 or more.');
  });
});
