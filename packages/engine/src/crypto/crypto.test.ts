import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BLCKSZ } from '../constants.js';
import { WalshipError } from '../errors.js';
import { loadClusterKey, parseClusterKey } from './cluster-key.js';
import { generateDataKeys, isEncryptedDataDir, previousKeyFilePath, readDataKeys, rotateClusterKey, writeKeyFile } from './key-file.js';
import { unwrapKey, wrapKey } from './key-wrap.js';
import { PageCipher, pageTweak } from './page-cipher.js';
import { dataKeysFor, registerDataKeys, unregisterDataKeys } from './registry.js';
import { WalCipher, walCounterBlock } from './wal-cipher.js';
import { WAL_KEY_ID_BYTES, sameWalKeyId, walKeyId, walKeyIdFor } from './wal-key-id.js';
import { Smgr } from '../storage/smgr.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-crypto-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) {
    unregisterDataKeys(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function refusal(fn: () => unknown): WalshipError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    return error as WalshipError;
  }
  throw new Error('expected a refusal');
}

describe('cluster key parsing', () => {
  const key = crypto.randomBytes(32);

  it('reads 64 hex digits and base64 of 32 bytes, with surrounding white space', () => {
    expect(parseClusterKey(key.toString('hex'), 'x').equals(key)).toBe(true);
    expect(parseClusterKey(`  ${key.toString('hex').toUpperCase()}\n`, 'x').equals(key)).toBe(true);
    expect(parseClusterKey(`${key.toString('base64')}\n`, 'x').equals(key)).toBe(true);
  });

  it('refuses wrong lengths and other text, saying what it found', () => {
    expect(refusal(() => parseClusterKey(key.subarray(0, 16).toString('hex'), 'file "k"')).detail).toBe('It is 32 hex digits, not 64.');
    expect(refusal(() => parseClusterKey(crypto.randomBytes(24).toString('base64'), 'x')).detail).toBe('It is base64 of 24 bytes, not 32.');
    expect(refusal(() => parseClusterKey('', 'x')).detail).toBe('It is empty.');
    const error = refusal(() => parseClusterKey('correct horse battery staple', 'file "k"'));
    expect(error.message).toBe('invalid cluster key from file "k"');
    expect(error.detail).toBe('It is neither hex nor base64.');
    expect(error.hint).toMatch(/openssl rand -hex 32/);
  });

  it('loads a key file and a key command; a failing command is refused', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'key'), key.toString('hex'));
    expect(loadClusterKey(dir, { keyFile: 'key' }).equals(key)).toBe(true);
    expect(loadClusterKey('/nowhere', { keyFile: path.join(dir, 'key') }).equals(key)).toBe(true);
    expect(loadClusterKey(dir, { keyCommand: `cat %d/key` }).equals(key)).toBe(true);
    expect(refusal(() => loadClusterKey(dir, { keyCommand: 'exit 3' })).message).toBe('cluster_key_command failed');
    expect(refusal(() => loadClusterKey(dir, { keyFile: 'missing' })).message).toMatch(/could not read cluster key file/);
    expect(refusal(() => loadClusterKey(dir, {})).message).toMatch(/no cluster key is configured/);
  });
});

describe('key wrap (RFC 3394)', () => {
  it('matches the RFC 3394 test vector 4.6 (256-bit data, 256-bit KEK)', () => {
    const kek = Buffer.from('000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', 'hex');
    const data = Buffer.from('00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F', 'hex');
    const wrapped = wrapKey(kek, data);
    expect(wrapped.toString('hex').toUpperCase()).toBe('28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21');
    expect(unwrapKey(kek, wrapped)!.equals(data)).toBe(true);
  });

  it('detects a wrong key and a damaged wrap', () => {
    const kek = crypto.randomBytes(32);
    const wrapped = wrapKey(kek, crypto.randomBytes(64));
    expect(unwrapKey(crypto.randomBytes(32), wrapped)).toBeNull();
    const damaged = Buffer.from(wrapped);
    damaged[5]! ^= 1;
    expect(unwrapKey(kek, damaged)).toBeNull();
    expect(unwrapKey(kek, wrapped.subarray(0, 20))).toBeNull();
  });
});

describe('data key file', () => {
  it('round trips, refuses a wrong cluster key, and rotation re-wraps the same keys', () => {
    const dir = tempDir();
    const oldKey = crypto.randomBytes(32);
    const newKey = crypto.randomBytes(32);
    const keys = generateDataKeys();
    expect(isEncryptedDataDir(dir)).toBe(false);
    writeKeyFile(dir, oldKey, keys);
    expect(isEncryptedDataDir(dir)).toBe(true);
    const read = readDataKeys(dir, oldKey);
    expect(read.walKey.equals(keys.walKey) && read.relationKey.equals(keys.relationKey)).toBe(true);
    const wrong = refusal(() => readDataKeys(dir, crypto.randomBytes(32)));
    expect(wrong.message).toBe('cluster key does not match the data directory');
    expect(wrong.severity).toBe('FATAL');

    let settingUpdated = false;
    rotateClusterKey(dir, oldKey, newKey, () => {
      // Between the new wrapping and the end of the rotation, the old key still opens it.
      expect(readDataKeys(dir, oldKey).walKey.equals(keys.walKey)).toBe(true);
      settingUpdated = true;
    });
    expect(settingUpdated).toBe(true);
    expect(fs.existsSync(previousKeyFilePath(dir))).toBe(false);
    expect(readDataKeys(dir, newKey).relationKey.equals(keys.relationKey)).toBe(true);
    expect(refusal(() => readDataKeys(dir, oldKey)).message).toBe('cluster key does not match the data directory');
  });

  it('an encrypted directory whose keys were not registered is refused, never read as plaintext', () => {
    const dir = tempDir();
    expect(dataKeysFor(dir)).toBeNull();
    const keys = generateDataKeys();
    writeKeyFile(dir, crypto.randomBytes(32), keys);
    expect(refusal(() => dataKeysFor(dir)).message).toMatch(/is encrypted and its keys were not loaded/);
    registerDataKeys(dir, keys);
    expect(dataKeysFor(dir)).toBe(keys);
  });
});

describe('WAL cipher (AES-256-CTR)', () => {
  const cipher = new WalCipher(crypto.randomBytes(32));

  it('derives the counter block from the timeline and the 16-byte block of the LSN', () => {
    expect(walCounterBlock(1, 0x1234_5678_9a).toString('hex')).toBe('00000001000000000000000123456789');
    expect(walCounterBlock(2, 0x1234_5678_9a).equals(walCounterBlock(1, 0x1234_5678_9a))).toBe(false);
    expect(walCounterBlock(1, 0x1_0000_0000_00).toString('hex')).toBe('00000001000000000000001000000000');
    expect(walCounterBlock(7, 2 ** 52).toString('hex')).toBe('00000007000000000001000000000000');
  });

  it('round trips, at any byte offset: a write from the middle of a block gives the same bytes as a whole one', () => {
    const plain = crypto.randomBytes(20_000);
    const whole = Buffer.alloc(plain.length);
    cipher.apply(3, 0x100000, plain, 0, plain.length, whole, 0);
    expect(whole.equals(plain)).toBe(false);
    for (const start of [1, 15, 16, 17, 8191, 8192, 8200]) {
      const part = Buffer.from(plain);
      cipher.applyInPlace(3, 0x100000 + start, part, start, plain.length - start);
      expect(part.subarray(start).equals(whole.subarray(start))).toBe(true);
    }
    const back = Buffer.from(whole);
    cipher.applyInPlace(3, 0x100000, back, 0, back.length);
    expect(back.equals(plain)).toBe(true);
  });

  it('gives another keystream on another timeline at the same LSN, and at another LSN', () => {
    const zeros = Buffer.alloc(8192);
    const k1 = Buffer.alloc(8192);
    const k2 = Buffer.alloc(8192);
    const k3 = Buffer.alloc(8192);
    cipher.apply(1, 0x200000, zeros, 0, 8192, k1, 0);
    cipher.apply(2, 0x200000, zeros, 0, 8192, k2, 0);
    cipher.apply(1, 0x200000 + 8192, zeros, 0, 8192, k3, 0);
    expect(k1.equals(k2)).toBe(false);
    expect(k1.equals(k3)).toBe(false);
    // No 16-byte keystream block of timeline 1 appears in timeline 2's (no overlapping counters).
    const blocks = new Set<string>();
    for (let i = 0; i < 8192; i += 16) blocks.add(k1.subarray(i, i + 16).toString('hex'));
    for (let i = 0; i < 8192; i += 16) expect(blocks.has(k2.subarray(i, i + 16).toString('hex'))).toBe(false);
  });
});

describe('WAL key identifier', () => {
  it('is 16 bytes, fixed for a key (pinned: a standby and its upstream of different versions must agree), and another for another key', () => {
    const key = Buffer.alloc(32, 1);
    expect(walKeyId(key).toString('hex')).toBe('e845d3e2c0b8126c94daef443d9273db');
    const other = crypto.randomBytes(32);
    expect(walKeyId(other)).toHaveLength(WAL_KEY_ID_BYTES);
    expect(walKeyId(other).equals(walKeyId(Buffer.from(other)))).toBe(true);
    expect(walKeyId(other).equals(walKeyId(key))).toBe(false);
    // Nothing of the key in it.
    expect(other.includes(walKeyId(other).subarray(0, 4))).toBe(false);
  });

  it('of a data directory: null when it is not encrypted, the WAL key\'s when it is', () => {
    const plain = tempDir();
    expect(walKeyIdFor(plain)).toBeNull();
    const dir = tempDir();
    const keys = generateDataKeys();
    writeKeyFile(dir, crypto.randomBytes(32), keys);
    registerDataKeys(dir, keys);
    expect(walKeyIdFor(dir)!.equals(walKeyId(keys.walKey))).toBe(true);
  });

  it('compares equal only at 16 bytes each and the same bytes', () => {
    const id = walKeyId(crypto.randomBytes(32));
    expect(sameWalKeyId(id, Buffer.from(id))).toBe(true);
    const flipped = Buffer.from(id);
    flipped[15]! ^= 1;
    expect(sameWalKeyId(id, flipped)).toBe(false);
    expect(sameWalKeyId(id.subarray(0, 8), id.subarray(0, 8))).toBe(false);
    expect(sameWalKeyId(Buffer.alloc(0), Buffer.alloc(0))).toBe(false);
    expect(sameWalKeyId(Buffer.concat([id, Buffer.alloc(1)]), Buffer.concat([id, Buffer.alloc(1)]))).toBe(false);
  });
});

describe('page cipher (AES-256-XTS)', () => {
  const cipher = new PageCipher(crypto.randomBytes(64));

  it('round trips a page; the tweak is the address, so another block or relation encrypts differently', () => {
    const page = crypto.randomBytes(BLCKSZ);
    const a = Buffer.alloc(BLCKSZ);
    const b = Buffer.alloc(BLCKSZ);
    const c = Buffer.alloc(BLCKSZ);
    cipher.encrypt(5, 10, page, a);
    cipher.encrypt(5, 11, page, b);
    cipher.encrypt(6, 10, page, c);
    expect(a.equals(page) || a.equals(b) || a.equals(c)).toBe(false);
    const again = Buffer.alloc(BLCKSZ);
    cipher.encrypt(5, 10, page, again);
    expect(again.equals(a)).toBe(true);
    cipher.decryptInPlace(5, 10, a);
    expect(a.equals(page)).toBe(true);
    expect(pageTweak(5, 10).toString('hex')).toBe('050000000a0000000000000000000000');
  });

  it('a flipped ciphertext bit garbles its 16-byte block of plaintext (so the page checksum catches it)', () => {
    const page = crypto.randomBytes(BLCKSZ);
    const encrypted = Buffer.alloc(BLCKSZ);
    cipher.encrypt(1, 0, page, encrypted);
    encrypted[100]! ^= 0x01;
    cipher.decryptInPlace(1, 0, encrypted);
    expect(encrypted.subarray(96, 112).equals(page.subarray(96, 112))).toBe(false);
    expect(encrypted.subarray(0, 96).equals(page.subarray(0, 96))).toBe(true);
    expect(encrypted.subarray(112).equals(page.subarray(112))).toBe(true);
  });

  it('keeps all-zero pages zero both ways', () => {
    const out = Buffer.alloc(BLCKSZ, 1);
    cipher.encrypt(1, 3, Buffer.alloc(BLCKSZ), out);
    expect(out.equals(Buffer.alloc(BLCKSZ))).toBe(true);
    cipher.decryptInPlace(1, 3, out);
    expect(out.equals(Buffer.alloc(BLCKSZ))).toBe(true);
  });
});

describe('smgr in an encrypted data directory', () => {
  it('writes pages encrypted, reads them back in the clear, and keeps gaps and empty pages zero', () => {
    const dir = tempDir();
    const keys = generateDataKeys();
    writeKeyFile(dir, crypto.randomBytes(32), keys);
    registerDataKeys(dir, keys);
    const smgr = new Smgr(dir);
    const page = Buffer.alloc(BLCKSZ, 0x61); // "aaaa..."
    smgr.write(7, 2, page);
    smgr.write(7, 3, Buffer.alloc(BLCKSZ));
    const raw = fs.readFileSync(path.join(dir, 'base', '7'));
    expect(raw.length).toBe(4 * BLCKSZ);
    expect(raw.subarray(0, 2 * BLCKSZ).equals(Buffer.alloc(2 * BLCKSZ))).toBe(true); // the gap
    expect(raw.subarray(2 * BLCKSZ, 3 * BLCKSZ).includes(Buffer.alloc(16, 0x61))).toBe(false);
    expect(raw.subarray(3 * BLCKSZ).equals(Buffer.alloc(BLCKSZ))).toBe(true);
    const back = Buffer.alloc(BLCKSZ);
    smgr.read(7, 2, back);
    expect(back.equals(page)).toBe(true);
    smgr.read(7, 0, back);
    expect(back.equals(Buffer.alloc(BLCKSZ))).toBe(true);
    smgr.close();
    // Without the keys registered, the directory is refused rather than read as plaintext.
    unregisterDataKeys(dir);
    expect(() => new Smgr(dir)).toThrow(/is encrypted and its keys were not loaded/);
  });
});
