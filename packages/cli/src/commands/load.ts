/**
 * `walship load --node HOST:PORT [--count N] [--value-size B] [--prefix P] [--clients C]`: bulk
 * writes of generated keys (`P0000000` ...), one transaction each, from C concurrent sessions;
 * and `walship load --node HOST:PORT -`: `KEY VALUE` lines from stdin (the value is the rest of
 * the line), one transaction each, every key's lines applied in order (lines are spread over the
 * sessions by a hash of the key). Progress is drawn on stderr; the summary goes to stdout.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { NodeClient } from '../adapters.js';
import { CliError, ExitCode, usageError } from '../cli-error.js';
import { describeClientError, openSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, resolveNodes, type NodeAddress, type SyncCommitLevel } from '../options.js';
import { printJson } from '../output.js';
import { Progress } from '../progress.js';

export interface LoadOptions {
  node?: NodeAddress[];
  source?: string;
  count?: number;
  valueSize?: number;
  prefix?: string;
  clients?: number;
  syncCommit?: SyncCommitLevel;
  timeout?: number;
  table?: string;
  progress?: boolean;
  quiet?: boolean;
  json?: boolean;
}

const DEFAULT_COUNT = 10_000;
const DEFAULT_VALUE_SIZE_BYTES = 100;
const DEFAULT_PREFIX = 'key';
const DEFAULT_CLIENTS = 4;

/** Sessions at most: each is a connection (and a backend) on the node; max_connections defaults to 100. */
const CLIENTS_MAX = 64;

/**
 * Lines read from stdin but not yet written, across all sessions: reading pauses beyond this,
 * so a large input file is streamed rather than held in memory.
 */
const PENDING_LINES_MAX = 1024;

interface Session {
  client: NodeClient;
  node: NodeAddress;
}

interface Outcome {
  written: number;
  durationMs: number;
}

/** FNV-1a over the key: the same key always goes to the same session, so its lines stay in order. */
function keyHash(key: Buffer): number {
  let hash = 0x811c9dc5;
  for (const byte of key) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/** A printable value of `size` bytes. */
function generateValue(size: number): Buffer {
  return Buffer.from(randomBytes(Math.ceil((size * 3) / 4) + 3).toString('base64url').slice(0, size), 'ascii');
}

function rateText(written: number, elapsedMs: number): string {
  return elapsedMs <= 0 ? '0' : (written / (elapsedMs / 1000)).toFixed(0);
}

async function openSessions(count: number, nodes: NodeAddress[], io: CliIo, timeoutMs: number | undefined): Promise<Session[]> {
  const sessions: Session[] = [];
  try {
    for (let index = 0; index < count; index++) {
      sessions.push(await openSession(nodes, io, { purpose: 'write', timeoutMs, applicationName: 'walship load' }));
    }
  } catch (error) {
    await closeSessions(sessions);
    throw error;
  }
  return sessions;
}

async function closeSessions(sessions: Session[]): Promise<void> {
  await Promise.all(sessions.map(async ({ client }) => client.close()).map((closing) => closing.catch(() => undefined)));
}

async function loadGenerated(sessions: Session[], options: LoadOptions, io: CliIo, progress: Progress): Promise<Outcome> {
  const count = options.count ?? DEFAULT_COUNT;
  const valueSize = options.valueSize ?? DEFAULT_VALUE_SIZE_BYTES;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const width = String(Math.max(0, count - 1)).length;
  const startedAt = Date.now();
  let next = 0;
  let written = 0;
  let failure: unknown = null;
  const worker = async ({ client, node }: Session) => {
    while (failure === null && next < count) {
      const index = next++;
      const key = Buffer.from(`${prefix}${String(index).padStart(width, '0')}`, 'utf8');
      try {
        await client.put(key, generateValue(valueSize), { table: options.table, syncCommit: options.syncCommit });
      } catch (error) {
        failure ??= describeClientError(error, node, { purpose: 'write', timeoutMs: options.timeout });
        return;
      }
      written++;
      const elapsed = Date.now() - startedAt;
      if (progress.due()) progress.update(`loading: ${written}/${count} keys (${Math.floor((written * 100) / count)}%), ${rateText(written, elapsed)} commits/s`);
    }
  };
  await Promise.all(sessions.map(worker));
  progress.done();
  if (failure !== null) throw withWrittenCount(failure, written);
  return { written, durationMs: Date.now() - startedAt };
}

function withWrittenCount(failure: unknown, written: number): unknown {
  if (!(failure instanceof CliError)) return failure;
  const detail = [failure.detail, `${written} writes were acknowledged before the error.`].filter((part) => part !== undefined).join(' ');
  return new CliError(failure.exitCode, failure.message, { detail, hint: failure.hint, cause: failure });
}

/** Splits `KEY VALUE`: the key up to the first blank, the value the rest of the line. */
export function parseLoadLine(line: string): { key: string; value: string } | null {
  const match = /^(\S+)[ \t](.*)$/.exec(line);
  return match === null ? null : { key: match[1]!, value: match[2]! };
}

async function loadFromStdin(sessions: Session[], options: LoadOptions, io: CliIo, progress: Progress): Promise<Outcome> {
  const startedAt = Date.now();
  const queues: Array<Array<{ key: Buffer; value: Buffer }>> = sessions.map(() => []);
  const wakeWorker: Array<(() => void) | null> = sessions.map(() => null);
  let wakeReader: (() => void) | null = null;
  let pending = 0;
  let ended = false;
  let written = 0;
  let failure: unknown = null;

  const worker = async ({ client, node }: Session, index: number) => {
    const queue = queues[index]!;
    for (;;) {
      if (failure !== null) return;
      const item = queue.shift();
      if (item === undefined) {
        if (ended) return;
        await new Promise<void>((resolve) => {
          wakeWorker[index] = resolve;
        });
        continue;
      }
      try {
        await client.put(item.key, item.value, { table: options.table, syncCommit: options.syncCommit });
      } catch (error) {
        failure ??= describeClientError(error, node, { purpose: 'write', timeoutMs: options.timeout });
        wakeReader?.();
        return;
      }
      written++;
      pending--;
      if (pending < PENDING_LINES_MAX / 2) wakeReader?.();
      if (progress.due()) progress.update(`loading: ${written} lines, ${rateText(written, Date.now() - startedAt)} commits/s`);
    }
  };
  const workers = sessions.map(worker);

  const lines = createInterface({ input: io.stdin, crlfDelay: Number.POSITIVE_INFINITY });
  let lineNumber = 0;
  try {
    for await (const rawLine of lines) {
      lineNumber++;
      if (failure !== null) break;
      if (rawLine.trim() === '') continue;
      const parsed = parseLoadLine(rawLine);
      if (parsed === null) {
        failure = new CliError(ExitCode.failed, `line ${lineNumber} of standard input is not "KEY VALUE"`, {
          detail: `The line is "${rawLine.length > 80 ? `${rawLine.slice(0, 80)}...` : rawLine}".`,
          hint: 'Write one key, a space or tab, and the value on each line.',
        });
        break;
      }
      const key = Buffer.from(parsed.key, 'utf8');
      const target = keyHash(key) % sessions.length;
      queues[target]!.push({ key, value: Buffer.from(parsed.value, 'utf8') });
      pending++;
      wakeWorker[target]?.();
      wakeWorker[target] = null;
      while (pending >= PENDING_LINES_MAX && failure === null) {
        await new Promise<void>((resolve) => {
          wakeReader = resolve;
        });
        wakeReader = null;
      }
    }
  } finally {
    lines.close();
    ended = true;
    for (const wake of wakeWorker) wake?.();
  }
  await Promise.all(workers);
  progress.done();
  if (failure !== null) throw withWrittenCount(failure, written);
  return { written, durationMs: Date.now() - startedAt };
}

export async function run(options: LoadOptions, io: CliIo): Promise<number> {
  const fromStdin = options.source === '-';
  if (options.source !== undefined && !fromStdin) {
    throw usageError(`unknown source "${options.source}"`, 'Give "-" to read KEY VALUE lines from standard input, or nothing to write generated keys.');
  }
  if (fromStdin && (options.count !== undefined || options.valueSize !== undefined || options.prefix !== undefined)) {
    throw usageError('--count, --value-size and --prefix apply to generated keys, not to lines read from standard input');
  }
  const clients = options.clients ?? (fromStdin ? 1 : DEFAULT_CLIENTS);
  if (clients > CLIENTS_MAX) throw usageError(`--clients ${clients} is more than ${CLIENTS_MAX}`, `Use at most ${CLIENTS_MAX} sessions.`);

  const nodes = resolveNodes(options.node, io.env);
  const sessions = await openSessions(clients, nodes, io, options.timeout);
  const progress = new Progress(io, options);
  let outcome: Outcome;
  try {
    outcome = fromStdin ? await loadFromStdin(sessions, options, io, progress) : await loadGenerated(sessions, options, io, progress);
  } finally {
    progress.done();
    await closeSessions(sessions);
  }
  const commitsPerSecond = outcome.durationMs <= 0 ? 0 : Math.round((outcome.written / (outcome.durationMs / 1000)) * 10) / 10;
  if (options.json === true) {
    printJson(io.stdout, {
      node: formatNodeAddress(sessions[0]!.node),
      written: outcome.written,
      clients,
      durationMs: outcome.durationMs,
      commitsPerSecond,
      ...(fromStdin ? {} : { valueSizeBytes: options.valueSize ?? DEFAULT_VALUE_SIZE_BYTES }),
    });
  } else {
    io.stdout.write(`loaded ${outcome.written} keys in ${(outcome.durationMs / 1000).toFixed(2)} s (${commitsPerSecond} commits/s, ${clients} client${clients === 1 ? '' : 's'})\n`);
  }
  return ExitCode.ok;
}
