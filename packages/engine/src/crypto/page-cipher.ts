/**
 * Relation page encryption: AES-256-XTS with the relation key, one data unit per page, the tweak
 * being the page's address (relation number, block number). Why XTS and not GCM:
 *
 *  - It needs no room in the page: the ciphertext is exactly BLCKSZ bytes, so the page layout,
 *    the buffer pool and the file sizes are the same with and without encryption. GCM would need
 *    a nonce and a tag stored in each page (28 bytes of reserved space) and a nonce that must
 *    never repeat across a node's whole life, standbys and rewinds included.
 *  - It is deterministic: a page with the same bytes at the same address encrypts to the same
 *    ciphertext on every node of the cluster (they share the relation key). `walship verify`
 *    keeps comparing pages as stored on disk, and a rewind copies encrypted blocks from its
 *    source as they are. What XTS gives away is only that a page was written again unchanged,
 *    which the WAL already implies.
 *
 * Checksums: the buffer pool computes the page checksum (CRC-32C, seeded with the block number)
 * over the plaintext before smgr encrypts, and verifies it after smgr decrypts. A flipped bit in
 * the ciphertext garbles its whole 16-byte XTS block once decrypted, and a torn write mixes two
 * versions of the page: either way the plaintext's checksum fails (a 2^-32 miss, as without
 * encryption), and the full-page image in WAL repairs a torn page in recovery.
 *
 * An all-zero page (PageIsNew: allocated, never initialized; smgr's zero-filled gaps) is stored
 * as zeros and read back as zeros without decryption, so that such pages compare equal on every
 * node. That says only which blocks are empty.
 */
import * as crypto from 'node:crypto';
import { BLCKSZ } from '../constants.js';
import { assert } from '../errors.js';

const PAGE_CIPHER = 'aes-256-xts';
const ZERO_PAGE = Buffer.alloc(BLCKSZ);

export function isZeroPage(page: Buffer): boolean {
  return page.equals(ZERO_PAGE);
}

/** The XTS tweak of a page: relation number and block number, little-endian, then zeros. */
export function pageTweak(relNode: number, blockNo: number, into: Buffer = Buffer.alloc(16)): Buffer {
  into.fill(0);
  into.writeUInt32LE(relNode >>> 0, 0);
  into.writeUInt32LE(blockNo >>> 0, 4);
  return into;
}

export class PageCipher {
  private readonly tweak = Buffer.alloc(16);

  constructor(private readonly key: Buffer) {
    assert(key.length === 64, 'the relation key is 64 bytes (AES-256-XTS)');
  }

  /** Encrypts `page` (BLCKSZ bytes) of block `blockNo` of `relNode` into `out`. */
  encrypt(relNode: number, blockNo: number, page: Buffer, out: Buffer): void {
    assert(out.length === BLCKSZ, 'a page is BLCKSZ bytes');
    this.encrypted(relNode, blockNo, page).copy(out);
  }

  /**
   * The same, as a buffer to write out and not modify (the cipher's own output, or a shared
   * zero page): smgr's write path, without copying the ciphertext into a buffer of its own.
   */
  encrypted(relNode: number, blockNo: number, page: Buffer): Buffer {
    assert(page.length === BLCKSZ, 'a page is BLCKSZ bytes');
    if (isZeroPage(page)) return ZERO_PAGE;
    return crypto.createCipheriv(PAGE_CIPHER, this.key, pageTweak(relNode, blockNo, this.tweak)).update(page);
  }

  /** Decrypts block `blockNo` of `relNode` in place. */
  decryptInPlace(relNode: number, blockNo: number, page: Buffer): void {
    assert(page.length === BLCKSZ, 'a page is BLCKSZ bytes');
    if (isZeroPage(page)) return;
    const decipher = crypto.createDecipheriv(PAGE_CIPHER, this.key, pageTweak(relNode, blockNo, this.tweak));
    decipher.update(page).copy(page);
  }
}
