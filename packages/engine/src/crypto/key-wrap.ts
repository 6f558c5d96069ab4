/**
 * AES-256 key wrap (RFC 3394, OpenSSL's id-aes256-wrap): the data keys are stored only wrapped
 * by the cluster key. The wrap carries a 64-bit integrity check, so unwrapping with a wrong
 * cluster key fails instead of yielding a wrong data key: that is how a node started with the
 * wrong key knows it before it reads or writes anything.
 */
import * as crypto from 'node:crypto';
import { assert } from '../errors.js';

const WRAP_CIPHER = 'id-aes256-wrap';
/** RFC 3394's default initial value, checked on unwrap. */
const WRAP_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

export function wrapKey(kek: Buffer, key: Buffer): Buffer {
  assert(kek.length === 32, 'the key encryption key is 32 bytes');
  assert(key.length >= 16 && key.length % 8 === 0, 'a wrapped key is a multiple of 8 bytes, at least 16');
  const cipher = crypto.createCipheriv(WRAP_CIPHER, kek, WRAP_IV);
  return Buffer.concat([cipher.update(key), cipher.final()]);
}

/** The key, or null when the integrity check fails (a wrong key encryption key, or a damaged wrap). */
export function unwrapKey(kek: Buffer, wrapped: Buffer): Buffer | null {
  assert(kek.length === 32, 'the key encryption key is 32 bytes');
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) return null;
  try {
    const decipher = crypto.createDecipheriv(WRAP_CIPHER, kek, WRAP_IV);
    return Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    return null;
  }
}
