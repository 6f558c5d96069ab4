/**
 * The cluster key (PostgreSQL TDE patches' key encryption key): 32 bytes that only wrap the data
 * keys (key-file.ts), never encrypt data. It lives outside the data directory, in a file named by
 * `cluster_key_file` or printed on stdout by `cluster_key_command`, written as base64 or hex.
 * Parsing is pure; reading the file or running the command is the small I/O part below.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, WalshipError } from '../errors.js';

/** AES-256: the cluster key and the WAL data key are 32 bytes. */
export const CLUSTER_KEY_BYTES = 32;
/** A key command that runs longer than this is stuck (a prompt nobody answers): refused. */
export const KEY_COMMAND_TIMEOUT_MS = 30_000;
/** More output than this from a key command is not a key. */
const KEY_TEXT_MAX_BYTES = 4096;

/** Where a node's cluster key comes from: walship.conf's cluster_key_file or cluster_key_command. */
export interface ClusterKeySource {
  keyFile?: string;
  keyCommand?: string;
}

/**
 * Parses a cluster key written as 64 hex digits or as base64 of 32 bytes (surrounding white space
 * allowed). Anything else is refused with what was found: a key of the wrong length silently
 * truncated or padded would be a weaker key than the operator believes.
 */
export function parseClusterKey(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  // Hex first: base64 of 32 bytes is 44 characters ending in '=', never hex digits only.
  if (/^[0-9a-fA-F]+$/.test(trimmed)) {
    if (trimmed.length === CLUSTER_KEY_BYTES * 2) return Buffer.from(trimmed, 'hex');
    throw badKey(origin, `It is ${trimmed.length} hex digits, not ${CLUSTER_KEY_BYTES * 2}.`);
  }
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) && trimmed.length % 4 === 0) {
    const bytes = Buffer.from(trimmed, 'base64');
    if (bytes.length === CLUSTER_KEY_BYTES) return bytes;
    throw badKey(origin, `It is base64 of ${bytes.length} bytes, not ${CLUSTER_KEY_BYTES}.`);
  }
  if (trimmed === '') throw badKey(origin, 'It is empty.');
  throw badKey(origin, 'It is neither hex nor base64.');
}

function badKey(origin: string, detail: string): WalshipError {
  return new WalshipError(ErrorCode.invalidParameter, `invalid cluster key from ${origin}`, {
    severity: 'FATAL',
    detail,
    hint: 'A cluster key is 32 random bytes written as 64 hex digits or as base64, e.g. "openssl rand -hex 32".',
  });
}

/** A relative cluster_key_file is relative to the data directory, as PostgreSQL's file settings are. */
export function resolveKeyFilePath(dataDir: string, keyFile: string): string {
  return path.isAbsolute(keyFile) ? keyFile : path.join(dataDir, keyFile);
}

/** Reads the cluster key from its file or its command. */
export function loadClusterKey(dataDir: string, source: ClusterKeySource): Buffer {
  if (source.keyFile !== undefined && source.keyFile !== '') {
    const file = resolveKeyFilePath(dataDir, source.keyFile);
    let text: string;
    try {
      const stat = fs.statSync(file);
      if (stat.size > KEY_TEXT_MAX_BYTES) throw new Error(`the file is ${stat.size} bytes long`);
      text = fs.readFileSync(file, 'utf8');
    } catch (error) {
      throw new WalshipError(ErrorCode.invalidParameter, `could not read cluster key file "${file}"`, {
        severity: 'FATAL',
        detail: (error as Error).message,
        hint: 'Check cluster_key_file in walship.conf (or --key-file) and that the file is readable by this user.',
      });
    }
    return parseClusterKey(text, `file "${file}"`);
  }
  if (source.keyCommand !== undefined && source.keyCommand !== '') return runKeyCommand(dataDir, source.keyCommand);
  throw new WalshipError(ErrorCode.invalidParameter, 'the data directory is encrypted but no cluster key is configured', {
    severity: 'FATAL',
    detail: `"${dataDir}" holds wrapped data keys, and neither cluster_key_file nor cluster_key_command is set.`,
    hint: 'Set cluster_key_file or cluster_key_command in walship.conf, or give --key-file / --key-command.',
  });
}

/**
 * Runs cluster_key_command with `sh -c` (%d is the data directory, %% a percent sign) and parses
 * what it prints. Its stderr goes to ours, so a command that asks on the terminal can.
 */
function runKeyCommand(dataDir: string, command: string): Buffer {
  const expanded = command.replace(/%[d%]/g, (token) => (token === '%d' ? dataDir : '%'));
  const result = spawnSync('/bin/sh', ['-c', expanded], {
    encoding: 'utf8', timeout: KEY_COMMAND_TIMEOUT_MS, stdio: ['inherit', 'pipe', 'inherit'], maxBuffer: KEY_TEXT_MAX_BYTES,
  });
  if (result.error !== undefined || result.status !== 0) {
    throw new WalshipError(ErrorCode.invalidParameter, 'cluster_key_command failed', {
      severity: 'FATAL',
      detail: result.error !== undefined ? result.error.message : `The command "${command}" exited with status ${result.status ?? result.signal}.`,
      hint: 'Run the command by hand: it must print the 32-byte key as hex or base64 on stdout and exit 0.',
    });
  }
  return parseClusterKey(result.stdout, 'cluster_key_command');
}
