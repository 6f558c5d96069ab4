/**
 * `walship bench --node HOST:PORT [--clients N] [--duration S] [--warmup S] [--value-size B]
 * [--keys K] [--json]`: N sessions each commit one-key writes back to back (keys drawn uniformly
 * from K) for S seconds; prints clients, commitsPerSecond and latencyMs {p50, p99, max} (DESIGN.md
 * section 10). When the node's status reports its CPU time, cpuMicrosPerCommit as well; and
 * clientCpuMicrosPerCommit, this process's own CPU per commit over the same measured window.
 *
 * With --warmup, the same sessions first write for that long unmeasured (as sysbench's
 * --warmup-time): a Node process runs its first seconds of a new workload interpreted and
 * compiling, at two to three times the CPU per commit, and a freshly started node or load
 * generator would otherwise have that in its figures.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { NodeClient } from '../adapters.js';
import { ExitCode, usageError } from '../cli-error.js';
import { describeClientError, openSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, resolveNodes, type NodeAddress, type SyncCommitLevel } from '../options.js';
import { formatPairs, printJson } from '../output.js';
import { Progress } from '../progress.js';

export interface BenchOptions {
  node?: NodeAddress[];
  clients?: number;
  duration?: number;
  /** Milliseconds of unmeasured writes before the measured ones. */
  warmup?: number;
  valueSize?: number;
  keys?: number;
  syncCommit?: SyncCommitLevel;
  table?: string;
  progress?: boolean;
  quiet?: boolean;
  json?: boolean;
}

const DEFAULT_CLIENTS = 8;
const DEFAULT_DURATION_MS = 10_000;
const DEFAULT_VALUE_SIZE_BYTES = 100;
const DEFAULT_KEYS = 10_000;

/** Sessions at most (max_connections defaults to 100, and the monitor needs some). */
const CLIENTS_MAX = 64;

/**
 * Latency samples kept (8 bytes each: 16 MiB). Past this, reservoir sampling keeps a uniform
 * sample, so percentiles stay right on long runs while memory stays bounded; the maximum is
 * tracked exactly.
 */
const LATENCY_SAMPLES_MAX = 2_000_000;

/** Latencies in milliseconds: a bounded uniform sample plus the exact count and maximum. */
export class LatencyRecorder {
  private samples = new Float64Array(1024);
  private stored = 0;
  count = 0;
  maxMs = 0;

  record(latencyMs: number): void {
    this.count++;
    if (latencyMs > this.maxMs) this.maxMs = latencyMs;
    if (this.stored < LATENCY_SAMPLES_MAX) {
      if (this.stored === this.samples.length) {
        const grown = new Float64Array(Math.min(this.samples.length * 2, LATENCY_SAMPLES_MAX));
        grown.set(this.samples);
        this.samples = grown;
      }
      this.samples[this.stored++] = latencyMs;
      return;
    }
    // Algorithm R: keep the new sample with probability stored/count.
    const slot = Math.floor(Math.random() * this.count);
    if (slot < this.stored) this.samples[slot] = latencyMs;
  }

  /** Nearest-rank percentile (0 < p <= 1); 0 when nothing was recorded. */
  percentile(p: number): number {
    if (this.stored === 0) return 0;
    const sorted = this.samples.slice(0, this.stored).sort();
    return sorted[Math.min(this.stored - 1, Math.max(0, Math.ceil(p * this.stored) - 1))]!;
  }
}

/**
 * The server's CPU time from its status: `cpuUserMicros + cpuSystemMicros` (what the node reports,
 * from process.cpuUsage()), or `cpuMicros`, or `cpu.userMicros + cpu.systemMicros`.
 */
export function serverCpuMicros(status: Record<string, unknown> | null): number | null {
  if (status === null) return null;
  if (typeof status.cpuMicros === 'number') return status.cpuMicros;
  if (typeof status.cpuUserMicros === 'number' && typeof status.cpuSystemMicros === 'number') {
    return status.cpuUserMicros + status.cpuSystemMicros;
  }
  const cpu = status.cpu;
  if (cpu !== null && typeof cpu === 'object') {
    const { userMicros, systemMicros } = cpu as { userMicros?: unknown; systemMicros?: unknown };
    if (typeof userMicros === 'number' && typeof systemMicros === 'number') return userMicros + systemMicros;
  }
  return null;
}

const KEY_PREFIX = Buffer.from('bench:', 'ascii');

/**
 * `bench:` and `index` in `width` decimal digits, zero-padded (what `walship load --prefix bench:`
 * writes for the same key count). Written byte by byte into a small pooled buffer: the load
 * generator makes one per commit, and a string through Buffer.from was 1.8 us of its ~110.
 */
export function benchKey(index: number, width: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_PREFIX.length + width);
  for (let i = 0; i < KEY_PREFIX.length; i++) key[i] = KEY_PREFIX[i]!;
  let rest = index;
  for (let i = key.length - 1; i >= KEY_PREFIX.length; i--) {
    key[i] = 0x30 + (rest % 10);
    rest = Math.floor(rest / 10);
  }
  return key;
}

const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits;

/** What `walship bench` reports, in its JSON and (benchReportPairs) as text. */
export interface BenchResult {
  node: string;
  clients: number;
  durationMs: number;
  commits: number;
  commitsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  valueSizeBytes: number;
  keys: number;
  syncCommit: SyncCommitLevel | null;
  warmupMs: number;
  warmupCommits: number;
  cpuMicrosPerCommit?: number;
  clientCpuMicrosPerCommit?: number;
}

/**
 * The text report, one figure per line with a fixed number of decimals, as pgbench prints its
 * tps and latencies: a rate that happens to be whole still reads 3190.0, not 3190, so that runs
 * line up when compared.
 */
export function benchReportPairs(result: BenchResult): Array<[string, string]> {
  const pairs: Array<[string, string]> = [
    ['node', result.node],
    ['clients', String(result.clients)],
    ['duration', `${(result.durationMs / 1000).toFixed(1)} s`],
  ];
  if (result.warmupMs > 0) pairs.push(['warm-up', `${(result.warmupMs / 1000).toFixed(1)} s, ${result.warmupCommits} commits not counted`]);
  pairs.push(
    ['commits', String(result.commits)],
    ['commits per second', result.commitsPerSecond.toFixed(1)],
    ['latency p50', `${result.latencyMs.p50.toFixed(3)} ms`],
    ['latency p99', `${result.latencyMs.p99.toFixed(3)} ms`],
    ['latency max', `${result.latencyMs.max.toFixed(3)} ms`],
  );
  if (result.cpuMicrosPerCommit !== undefined) pairs.push(['server CPU per commit', `${result.cpuMicrosPerCommit.toFixed(1)} us`]);
  if (result.clientCpuMicrosPerCommit !== undefined) pairs.push(['bench CPU per commit', `${result.clientCpuMicrosPerCommit.toFixed(1)} us`]);
  return pairs;
}

export async function run(options: BenchOptions, io: CliIo): Promise<number> {
  const clients = options.clients ?? DEFAULT_CLIENTS;
  if (clients > CLIENTS_MAX) throw usageError(`--clients ${clients} is more than ${CLIENTS_MAX}`, `Use at most ${CLIENTS_MAX} sessions.`);
  const durationMs = options.duration ?? DEFAULT_DURATION_MS;
  const warmupMs = options.warmup ?? 0;
  const valueSize = options.valueSize ?? DEFAULT_VALUE_SIZE_BYTES;
  const keys = options.keys ?? DEFAULT_KEYS;
  const nodes = resolveNodes(options.node, io.env);
  const width = String(Math.max(0, keys - 1)).length;

  const sessions: Array<{ client: NodeClient; node: NodeAddress }> = [];
  const progress = new Progress(io, options);
  const latencies = new LatencyRecorder();
  let failure: unknown = null;
  let warmupCommits = 0;
  let elapsedMs = 0;
  let cpuBefore: number | null = null;
  let cpuAfter: number | null = null;
  let ownCpuMicros = 0;
  try {
    for (let index = 0; index < clients; index++) {
      sessions.push(await openSession(nodes, io, { purpose: 'write', applicationName: 'walship bench' }));
    }
    const admin = sessions[0]!;
    const readServerCpu = async () => serverCpuMicros(await admin.client.status().catch(() => null));
    const warmupStartedAt = performance.now();
    const startedAt = warmupStartedAt + warmupMs;
    const deadline = startedAt + durationMs;
    // The measured window's CPU starts when the warm-up ends, read while the sessions write on:
    // the node's, and this process's own. Its own leaves out Node's start-up and the module
    // loading (about 0.3 s of CPU, a fixed cost that a per-commit figure would spread over
    // however many commits the run made: 26 us per commit of a 13-s run at 1 client).
    let ownCpuAtStart = process.cpuUsage();
    const cpuAtStart = warmupMs === 0 ? readServerCpu() : new Promise<number | null>((resolve) => {
      // Unreferenced: a run that fails during the warm-up does not wait for it.
      setTimeout(() => {
        ownCpuAtStart = process.cpuUsage();
        resolve(readServerCpu());
      }, warmupMs).unref();
    });
    const worker = async ({ client, node }: { client: NodeClient; node: NodeAddress }) => {
      // One value per session, its first bytes changed per write so that no two values are equal.
      const value = Buffer.from(randomBytes(valueSize).toString('base64url').slice(0, valueSize), 'ascii');
      let sequence = 0;
      while (failure === null && performance.now() < deadline) {
        const key = benchKey(randomInt(keys), width);
        if (valueSize >= 4) value.writeUInt32LE(sequence++ >>> 0, 0);
        const begin = performance.now();
        try {
          await client.put(key, value, { table: options.table, syncCommit: options.syncCommit });
        } catch (error) {
          failure ??= describeClientError(error, node, { purpose: 'write' });
          return;
        }
        const end = performance.now();
        if (begin < startedAt) {
          warmupCommits++;
          if (progress.due()) progress.update(`bench: warm-up ${((end - warmupStartedAt) / 1000).toFixed(0)}/${(warmupMs / 1000).toFixed(0)} s, ${warmupCommits} commits`);
          continue;
        }
        latencies.record(end - begin);
        const seconds = (end - startedAt) / 1000;
        if (progress.due()) progress.update(`bench: ${seconds.toFixed(0)}/${(durationMs / 1000).toFixed(0)} s, ${latencies.count} commits, ${(latencies.count / seconds).toFixed(0)} commits/s`);
      }
    };
    await Promise.all(sessions.map(worker));
    elapsedMs = performance.now() - startedAt;
    const ownCpu = process.cpuUsage(ownCpuAtStart);
    ownCpuMicros = ownCpu.user + ownCpu.system;
    if (failure === null) {
      cpuBefore = await cpuAtStart;
      cpuAfter = await readServerCpu();
    }
  } finally {
    progress.done();
    await Promise.all(sessions.map(async ({ client }) => client.close()).map((closing) => closing.catch(() => undefined)));
  }
  if (failure !== null) throw failure;

  const commitsPerSecond = elapsedMs <= 0 ? 0 : round(latencies.count / (elapsedMs / 1000), 1);
  const latencyMs = { p50: round(latencies.percentile(0.5), 3), p99: round(latencies.percentile(0.99), 3), max: round(latencies.maxMs, 3) };
  const cpuMicrosPerCommit =
    cpuBefore !== null && cpuAfter !== null && latencies.count > 0 ? round((cpuAfter - cpuBefore) / latencies.count, 1) : undefined;
  const clientCpuMicrosPerCommit = latencies.count > 0 ? round(ownCpuMicros / latencies.count, 1) : undefined;
  const result: BenchResult = {
    node: formatNodeAddress(sessions[0]!.node),
    clients,
    durationMs: Math.round(elapsedMs),
    commits: latencies.count,
    commitsPerSecond,
    latencyMs,
    valueSizeBytes: valueSize,
    keys,
    syncCommit: options.syncCommit ?? null,
    warmupMs,
    warmupCommits,
    ...(cpuMicrosPerCommit === undefined ? {} : { cpuMicrosPerCommit }),
    ...(clientCpuMicrosPerCommit === undefined ? {} : { clientCpuMicrosPerCommit }),
  };
  if (options.json === true) {
    printJson(io.stdout, result);
    return ExitCode.ok;
  }
  io.stdout.write(formatPairs(benchReportPairs(result)));
  return ExitCode.ok;
}
