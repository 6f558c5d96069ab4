/**
 * The WAL key identifier: a short value derived from the WAL data key, by which a standby shows
 * its upstream that it holds the same key, without sending the key.
 *
 * Why: the WAL cipher (wal-cipher.ts) makes the bytes of a segment file a function of the key,
 * the timeline in the file's name, the position and the plaintext only. A standby made by base
 * backup has its primary's data keys, so the ciphertext in the primary's file of timeline T at
 * LSN L is exactly what the standby's receive thread would write into its own file of timeline T
 * after encrypting the same plaintext. With the same key the walsender can send the file's bytes
 * as they are stored, and neither side runs AES over them (replication README: "WAL sent as
 * stored"). The walsender must know the key is the same before it does: bytes sent encrypted to
 * a standby with another key would be written, and only found wrong at replay.
 *
 * The identifier is HMAC-SHA-256 keyed with the WAL key over a fixed label, cut to 16 bytes.
 * HMAC is a pseudorandom function: its output says nothing of the key, and finding a key with a
 * given output is a brute force of the 256-bit key. The label gives it its own domain, so the
 * value is used for nothing else. Who sees it: the upstream (an authenticated replication
 * connection, over TLS when configured). Someone who learnt it could ask for the WAL as stored,
 * which is ciphertext: less than the plaintext any replication user gets.
 */
import * as crypto from 'node:crypto';
import { assert } from '../errors.js';
import { dataKeysFor } from './registry.js';

export const WAL_KEY_ID_BYTES = 16;

const WAL_KEY_ID_LABEL = 'walship WAL key identifier, version 1';

/** The identifier of a WAL key. */
export function walKeyId(walKey: Buffer): Buffer {
  assert(walKey.length === 32, 'the WAL key is 32 bytes');
  return crypto.createHmac('sha256', walKey).update(WAL_KEY_ID_LABEL).digest().subarray(0, WAL_KEY_ID_BYTES);
}

/** The identifier of `dataDir`'s WAL key, or null when the directory is not encrypted. */
export function walKeyIdFor(dataDir: string): Buffer | null {
  const keys = dataKeysFor(dataDir);
  return keys === null ? null : walKeyId(keys.walKey);
}

/** Whether two identifiers are the same (compared in constant time; a wrong length is never the same). */
export function sameWalKeyId(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === WAL_KEY_ID_BYTES && b.length === WAL_KEY_ID_BYTES && crypto.timingSafeEqual(a, b);
}
