/**
 * The data keys and their file, `pg_cryptokeys/keys.json` (PostgreSQL TDE patches keep theirs in
 * `pg_cryptokeys/`): a random WAL key (AES-256-CTR, 32 bytes) and a random relation key
 * (AES-256-XTS, 64 bytes), each stored only wrapped by the cluster key (key-wrap.ts). Two keys,
 * so that the WAL's counter blocks and the pages' tweaks can never meet under one key.
 *
 * The file is written whole and durably (temporary file fsynced, renamed, directory fsynced):
 * at init, and when rotate-key wraps the same data keys under a new cluster key. It holds no user
 * data and nothing usable without the cluster key.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, WalshipError } from '../errors.js';
import { loadClusterKey, type ClusterKeySource } from './cluster-key.js';
import { unwrapKey, wrapKey } from './key-wrap.js';

export const KEY_DIRECTORY = 'pg_cryptokeys';
export const KEY_FILE = `${KEY_DIRECTORY}/keys.json`;
const KEY_FILE_VERSION = 1;
export const WAL_KEY_BYTES = 32;
/** AES-256-XTS takes two AES-256 keys. */
export const RELATION_KEY_BYTES = 64;

export interface DataKeys {
  walKey: Buffer;
  relationKey: Buffer;
}

interface KeyFileJson {
  version: number;
  algorithm: string;
  wal_key: string;
  relation_key: string;
}

export function keyFilePath(dataDir: string): string {
  return path.join(dataDir, KEY_FILE);
}

/** Whether the data directory was created with --encrypt (its wrapped data keys exist). */
export function isEncryptedDataDir(dataDir: string): boolean {
  return fs.existsSync(keyFilePath(dataDir));
}

export function generateDataKeys(): DataKeys {
  return { walKey: crypto.randomBytes(WAL_KEY_BYTES), relationKey: crypto.randomBytes(RELATION_KEY_BYTES) };
}

/** Writes the data keys wrapped by `clusterKey`, replacing the file atomically and durably. */
export function writeKeyFile(dataDir: string, clusterKey: Buffer, keys: DataKeys): void {
  const dir = path.join(dataDir, KEY_DIRECTORY);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const content: KeyFileJson = {
    version: KEY_FILE_VERSION,
    algorithm: 'wal: aes-256-ctr, relation: aes-256-xts, wrapped with id-aes256-wrap (RFC 3394)',
    wal_key: wrapKey(clusterKey, keys.walKey).toString('base64'),
    relation_key: wrapKey(clusterKey, keys.relationKey).toString('base64'),
  };
  const target = keyFilePath(dataDir);
  const temp = `${target}.tmp`;
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.writeSync(fd, `${JSON.stringify(content, null, 2)}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  const dirFd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/**
 * Unwraps the data keys with `clusterKey`. A key that does not unwrap them is refused here, before
 * anything of the data directory is read or written (the wrap's integrity check: wrong key).
 */
export function readDataKeys(dataDir: string, clusterKey: Buffer, keyOrigin = 'the configured cluster key'): DataKeys {
  const file = keyFilePath(dataDir);
  let parsed: KeyFileJson;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyFileJson;
  } catch (error) {
    throw new WalshipError(ErrorCode.dataCorrupted, `could not read data key file "${file}"`, {
      severity: 'FATAL',
      detail: (error as Error).message,
      hint: 'The wrapped data keys are needed to read this encrypted data directory; restore the file from a backup of this data directory.',
    });
  }
  if (parsed.version !== KEY_FILE_VERSION || typeof parsed.wal_key !== 'string' || typeof parsed.relation_key !== 'string') {
    throw new WalshipError(ErrorCode.dataCorrupted, `data key file "${file}" has an unknown format`, {
      severity: 'FATAL',
      detail: `Version ${String(parsed.version)}; this walship reads version ${KEY_FILE_VERSION}.`,
    });
  }
  let unwrapped = unwrapKeyFile(parsed, clusterKey);
  // A rotation stopped between writing the new wrapping and updating walship.conf: the previous
  // wrapping, kept until the end of the rotation, still opens with the key walship.conf names.
  const previous = previousKeyFilePath(dataDir);
  if (unwrapped === null && fs.existsSync(previous)) {
    try {
      unwrapped = unwrapKeyFile(JSON.parse(fs.readFileSync(previous, 'utf8')) as KeyFileJson, clusterKey);
    } catch {
      unwrapped = null;
    }
  }
  if (unwrapped === null) {
    throw new WalshipError(ErrorCode.invalidParameter, 'cluster key does not match the data directory', {
      severity: 'FATAL',
      detail: `The data keys in "${file}" could not be unwrapped with ${keyOrigin}.`,
      hint: 'Check cluster_key_file or cluster_key_command in walship.conf (or --key-file): it must give the key the data directory was created or last rotated with. Nothing was changed.',
    });
  }
  return unwrapped;
}

function unwrapKeyFile(parsed: KeyFileJson, clusterKey: Buffer): DataKeys | null {
  const walKey = unwrapKey(clusterKey, Buffer.from(parsed.wal_key, 'base64'));
  const relationKey = unwrapKey(clusterKey, Buffer.from(parsed.relation_key, 'base64'));
  if (walKey === null || relationKey === null || walKey.length !== WAL_KEY_BYTES || relationKey.length !== RELATION_KEY_BYTES) return null;
  return { walKey, relationKey };
}

/** The wrapping under the old cluster key while a rotation runs. */
export function previousKeyFilePath(dataDir: string): string {
  return `${keyFilePath(dataDir)}.old`;
}

/**
 * pg_alterckey's core: wraps the same data keys under `newClusterKey` (data never rewritten).
 * The steps, each durable: (1) the current file is kept as keys.json.old; (2) keys.json is
 * replaced by the new wrapping; (3) `updateSetting` points walship.conf at the new key;
 * (4) keys.json.old is removed. Stopped anywhere, the key walship.conf names still opens the
 * directory (readDataKeys falls back to keys.json.old), and running the rotation again finishes it.
 * After (4) the old cluster key opens nothing.
 */
export function rotateClusterKey(dataDir: string, oldClusterKey: Buffer, newClusterKey: Buffer, updateSetting: () => void): void {
  const keys = readDataKeys(dataDir, oldClusterKey, 'the current cluster key');
  const previous = previousKeyFilePath(dataDir);
  if (!fs.existsSync(previous)) {
    const temp = `${previous}.tmp`;
    fs.copyFileSync(keyFilePath(dataDir), temp);
    fsyncFile(temp);
    fs.renameSync(temp, previous);
  }
  writeKeyFile(dataDir, newClusterKey, keys);
  updateSetting();
  fs.rmSync(previous, { force: true });
  fsyncFile(path.join(dataDir, KEY_DIRECTORY));
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The cluster key from its source, then the data keys it unwraps. */
export function loadDataKeys(dataDir: string, source: ClusterKeySource): DataKeys {
  const clusterKey = loadClusterKey(dataDir, source);
  const origin = source.keyFile !== undefined && source.keyFile !== '' ? `the key in "${source.keyFile}"` : 'the key from cluster_key_command';
  return readDataKeys(dataDir, clusterKey, origin);
}
