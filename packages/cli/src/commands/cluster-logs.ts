/**
 * `walship cluster logs -f FILE [NODE] [-n N] [--follow]`: the last lines of each member's log
 * (its newest log file under DATADIR/log, else startup.log), each line prefixed with the
 * member's name; --follow keeps printing new lines until interrupted.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MemberConfig } from '@walship/cluster';
import { ExitCode } from '../cli-error.js';
import { loadConfig, type ClusterFileOptions } from '../cluster-options.js';
import type { CliIo } from '../io.js';

export interface ClusterLogsOptions extends ClusterFileOptions {
  member?: string;
  lines?: number;
  follow?: boolean;
}

const DEFAULT_LINES = 20;
/** Bytes read from the end of a log for its last lines: a log line is short, so this is many. */
const TAIL_BYTES_MAX = 256 * 1024;
const FOLLOW_POLL_MS = 250;

/** The member's newest log file: the logger's, else the start-up one. */
function logFile(member: MemberConfig): string | null {
  const directory = join(member.dataDir, 'log');
  if (!existsSync(directory)) return null;
  const files = readdirSync(directory).filter((name) => name.endsWith('.log') && name !== 'startup.log').sort();
  const newest = files.at(-1) ?? (existsSync(join(directory, 'startup.log')) ? 'startup.log' : undefined);
  return newest === undefined ? null : join(directory, newest);
}

function readRange(path: string, from: number, to: number): string {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(to - from);
    const read = readSync(fd, buffer, 0, buffer.length, from);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export async function run(options: ClusterLogsOptions, io: CliIo): Promise<number> {
  const config = await loadConfig(options);
  const { findMember } = await import('@walship/cluster');
  const members = options.member === undefined ? [...config.members] : [findMember(config, options.member)];
  const wanted = options.lines ?? DEFAULT_LINES;
  const offsets = new Map<string, { path: string; offset: number }>();
  for (const member of members) {
    const path = logFile(member);
    if (path === null) {
      io.stdout.write(`${member.name}| (no log yet in ${join(member.dataDir, 'log')})\n`);
      continue;
    }
    const size = statSync(path).size;
    const text = readRange(path, Math.max(0, size - TAIL_BYTES_MAX), size);
    for (const line of text.split('\n').filter((line) => line !== '').slice(-wanted)) io.stdout.write(`${member.name}| ${line}\n`);
    offsets.set(member.name, { path, offset: size });
  }
  if (options.follow !== true) return ExitCode.ok;
  for (;;) {
    await sleep(FOLLOW_POLL_MS);
    for (const member of members) {
      const path = logFile(member);
      if (path === null) continue;
      const known = offsets.get(member.name);
      const from = known === undefined || known.path !== path ? 0 : known.offset;
      const size = statSync(path).size;
      if (size <= from) continue;
      const text = readRange(path, from, size);
      const complete = text.lastIndexOf('\n') + 1;
      for (const line of text.slice(0, complete).split('\n').filter((line) => line !== '')) io.stdout.write(`${member.name}| ${line}\n`);
      offsets.set(member.name, { path, offset: from + complete });
    }
  }
}
