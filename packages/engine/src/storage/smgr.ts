/**
 * The storage manager (PostgreSQL's smgr.c over md.c): the single layer through which relation
 * files are read, written, extended, synced and removed. A relation is one file,
 * `DATADIR/base/<relNode>`, of BLCKSZ pages.
 *
 * Reads and writes are synchronous (the buffer pool calls them from a transaction's apply step,
 * which must never await); `fsyncAll` is asynchronous on libuv's threads and is what checkpoints
 * call. An fsync failure is a PANIC: the kernel may have dropped the dirty pages, so the only
 * safe continuation is crash recovery from WAL (PostgreSQL's data_sync_retry = off). After one,
 * every later write or sync fails too.
 *
 * Page checksums are set and verified by the buffer pool (buffer-pool.ts); this layer moves
 * bytes. `faults` lets tests make reads, writes and syncs fail.
 *
 * Transparent data encryption sits here: in an encrypted data directory every page is encrypted
 * on its way to the file and decrypted on its way back (AES-256-XTS, crypto/page-cipher.ts), so
 * the buffer pool, its checksums and everything above see plaintext pages and no page ever
 * reaches the disk in the clear.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLCKSZ } from '../constants.js';
import { ErrorCode, WalshipError, assert, assertionFailed } from '../errors.js';
import type { PageCipher } from '../crypto/page-cipher.js';
import { pageCipherFor } from '../crypto/registry.js';

/**
 * Open relation files kept in the descriptor cache. Each relation is one file and a node has few
 * tables, so this is rarely reached; when it is, a file with no unsynced writes is closed.
 */
export const MAX_OPEN_RELATION_FILES = 256;

/** Fault injection for tests: return true to make the operation fail as the OS would. */
export interface SmgrFaults {
  failRead?: (relNode: number, blockNo: number) => boolean;
  failWrite?: (relNode: number, blockNo: number) => boolean;
  failFsync?: (relNode: number) => boolean;
}

interface RelationFile {
  fd: number;
  nblocks: number;
  /** fdatasyncs running on this descriptor; it is closed only when none are. */
  syncsInFlight: number;
  /** Unlinked or evicted while a sync was in flight: close when the sync ends. */
  closeWhenIdle: boolean;
}

const ZERO_PAGE = Buffer.alloc(BLCKSZ);

/** Relation numbers fit in 21 bits so that (relNode, blockNo) packs into one safe integer. */
export const MAX_RELNODE = 0x1f_ffff;

export class Smgr {
  readonly dataDir: string;
  readonly baseDir: string;
  faults: SmgrFaults = {};

  private readonly files = new Map<number, RelationFile>();
  /** Relations written since the last fsyncAll. */
  private readonly unsynced = new Set<number>();
  /** Relations an fsyncAll in progress still has to sync (their descriptors must stay open). */
  private readonly syncing = new Set<number>();
  /** A file was created or removed in base/ since the last fsyncAll. */
  private directoryChanged = false;
  private failed: WalshipError | null = null;
  private closed = false;
  /** The data directory's page cipher, or null when it is not encrypted. */
  private readonly cipher: PageCipher | null;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
    this.cipher = pageCipherFor(dataDir);
    this.baseDir = path.join(dataDir, 'base');
    if (!fs.existsSync(this.baseDir)) {
      fs.mkdirSync(this.baseDir, { recursive: true });
      this.directoryChanged = true;
    }
  }

  relationPath(relNode: number): string {
    return path.join(this.baseDir, String(relNode));
  }

  exists(relNode: number): boolean {
    checkRelNode(relNode);
    return this.files.has(relNode) || fs.existsSync(this.relationPath(relNode));
  }

  /** Number of whole blocks in the relation's file (0 when it does not exist). */
  nblocks(relNode: number): number {
    checkRelNode(relNode);
    const file = this.open(relNode, false);
    return file === null ? 0 : file.nblocks;
  }

  /** Reads block `blockNo` into `into` (BLCKSZ bytes). Throws when the block is past the end. */
  read(relNode: number, blockNo: number, into: Buffer): void {
    this.checkUsable();
    checkRelNode(relNode);
    assert(into.length === BLCKSZ, 'smgr read buffer is one page');
    const file = this.open(relNode, false);
    if (file === null || blockNo >= file.nblocks) {
      throw new WalshipError(ErrorCode.ioError, `could not read block ${blockNo} in file "base/${relNode}"`, {
        detail: `The relation has ${file === null ? 0 : file.nblocks} blocks.`,
        hint: 'The data directory may be damaged; restore it from a base backup or a standby.',
      });
    }
    if (this.faults.failRead?.(relNode, blockNo) === true) {
      throw ioError('read', relNode, blockNo, new Error('injected read fault'));
    }
    let done = 0;
    try {
      while (done < BLCKSZ) {
        const n = fs.readSync(file.fd, into, done, BLCKSZ - done, blockNo * BLCKSZ + done);
        if (n === 0) throw new Error(`read only ${done} of ${BLCKSZ} bytes`);
        done += n;
      }
    } catch (error) {
      throw ioError('read', relNode, blockNo, error);
    }
    this.cipher?.decryptInPlace(relNode, blockNo, into);
  }

  /**
   * Writes `page` as block `blockNo`, creating the file if needed. Writing past the end extends
   * the file, filling any gap with zero pages (written, not sparse, so that a later write cannot
   * fail for lack of space in the gap).
   */
  write(relNode: number, blockNo: number, page: Buffer): void {
    this.checkUsable();
    checkRelNode(relNode);
    assert(page.length === BLCKSZ, 'smgr write buffer is one page');
    assert(Number.isInteger(blockNo) && blockNo >= 0 && blockNo < 0xffff_ffff, 'block number in range');
    if (this.faults.failWrite?.(relNode, blockNo) === true) {
      throw ioError('write', relNode, blockNo, new Error('injected write fault'));
    }
    const file = this.open(relNode, true)!;
    try {
      // Gap pages are all zero, which is also how an encrypted directory stores them.
      for (let gap = file.nblocks; gap < blockNo; gap++) writeFully(file.fd, ZERO_PAGE, gap);
      // Encrypted into a new buffer: the caller's page stays plaintext.
      writeFully(file.fd, this.cipher === null ? page : this.cipher.encrypted(relNode, blockNo, page), blockNo);
    } catch (error) {
      throw ioError('write', relNode, blockNo, error);
    }
    if (blockNo >= file.nblocks) file.nblocks = blockNo + 1;
    this.unsynced.add(relNode);
  }

  /** Removes the relation's file (mdunlink). Its pending sync is dropped. */
  unlink(relNode: number): void {
    this.checkUsable();
    checkRelNode(relNode);
    const file = this.files.get(relNode);
    if (file !== undefined) this.closeFile(relNode, file);
    this.unsynced.delete(relNode);
    this.syncing.delete(relNode);
    try {
      fs.unlinkSync(this.relationPath(relNode));
      this.directoryChanged = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new WalshipError(ErrorCode.ioError, `could not remove file "base/${relNode}"`, {
          detail: String(error),
          cause: error,
        });
      }
    }
  }

  /**
   * Makes every write since the last call durable: fdatasync of each relation file written, then
   * fsync of base/ when files were created or removed. Runs the syncs one at a time on libuv so
   * that they do not take every thread from the WAL. Any failure is a PANIC.
   */
  async fsyncAll(): Promise<void> {
    this.checkUsable();
    const relations = [...this.unsynced];
    this.unsynced.clear();
    for (const relNode of relations) this.syncing.add(relNode);
    const directoryChanged = this.directoryChanged;
    this.directoryChanged = false;
    for (const relNode of relations) {
      const file = this.files.get(relNode);
      // Not open any more: unlinked since it was written (eviction skips files to be synced).
      if (!this.syncing.delete(relNode) || file === undefined) continue;
      file.syncsInFlight++;
      try {
        if (this.faults.failFsync?.(relNode) === true) throw new Error('injected fsync fault');
        await new Promise<void>((resolve, reject) => {
          fs.fdatasync(file.fd, (error) => (error === null ? resolve() : reject(error)));
        });
      } catch (error) {
        throw this.panic(`could not fsync file "base/${relNode}"`, error);
      } finally {
        file.syncsInFlight--;
        if (file.closeWhenIdle && file.syncsInFlight === 0) fs.closeSync(file.fd);
      }
    }
    if (directoryChanged) {
      try {
        const fd = fs.openSync(this.baseDir, 'r');
        try {
          await new Promise<void>((resolve, reject) => {
            fs.fsync(fd, (error) => (error === null ? resolve() : reject(error)));
          });
        } finally {
          fs.closeSync(fd);
        }
      } catch (error) {
        throw this.panic(`could not fsync directory "base"`, error);
      }
    }
  }

  /** Closes every descriptor. Unsynced writes stay unsynced: call fsyncAll first to keep them. */
  close(): void {
    for (const [relNode, file] of this.files) this.closeFile(relNode, file);
    this.closed = true;
  }

  private checkUsable(): void {
    if (this.failed !== null) throw this.failed;
    assert(!this.closed, 'smgr used after close');
  }

  private panic(message: string, error: unknown): WalshipError {
    this.failed = new WalshipError(ErrorCode.ioError, message, {
      severity: 'PANIC',
      detail: error instanceof Error ? error.message : String(error),
      hint: 'Written data may have been lost by the operating system; the node must restart and recover from WAL.',
      cause: error,
    });
    return this.failed;
  }

  private open(relNode: number, create: boolean): RelationFile | null {
    const cached = this.files.get(relNode);
    if (cached !== undefined) {
      // Most recently used last, so eviction finds the coldest first.
      this.files.delete(relNode);
      this.files.set(relNode, cached);
      return cached;
    }
    const filePath = this.relationPath(relNode);
    let fd: number;
    try {
      fd = fs.openSync(filePath, 'r+');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new WalshipError(ErrorCode.ioError, `could not open file "base/${relNode}"`, {
          detail: String(error),
          cause: error,
        });
      }
      if (!create) return null;
      try {
        fd = fs.openSync(filePath, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
      } catch (createError) {
        throw new WalshipError(ErrorCode.ioError, `could not create file "base/${relNode}"`, {
          detail: String(createError),
          cause: createError,
        });
      }
      this.directoryChanged = true;
    }
    const file: RelationFile = {
      fd,
      nblocks: Math.floor(fs.fstatSync(fd).size / BLCKSZ),
      syncsInFlight: 0,
      closeWhenIdle: false,
    };
    this.evictDescriptors();
    this.files.set(relNode, file);
    return file;
  }

  /** Keeps the descriptor cache bounded, closing files without unsynced writes. */
  private evictDescriptors(): void {
    if (this.files.size < MAX_OPEN_RELATION_FILES) return;
    for (const [relNode, file] of this.files) {
      if (this.unsynced.has(relNode) || this.syncing.has(relNode)) continue;
      this.closeFile(relNode, file);
      if (this.files.size < MAX_OPEN_RELATION_FILES) return;
    }
  }

  private closeFile(relNode: number, file: RelationFile): void {
    this.files.delete(relNode);
    if (file.syncsInFlight > 0) file.closeWhenIdle = true;
    else fs.closeSync(file.fd);
  }
}

function checkRelNode(relNode: number): void {
  if (!Number.isInteger(relNode) || relNode <= 0 || relNode > MAX_RELNODE) assertionFailed(`relNode ${relNode} in range`);
}

function writeFully(fd: number, page: Buffer, blockNo: number): void {
  let done = 0;
  while (done < BLCKSZ) {
    done += fs.writeSync(fd, page, done, BLCKSZ - done, blockNo * BLCKSZ + done);
  }
}

function ioError(op: 'read' | 'write', relNode: number, blockNo: number, error: unknown): WalshipError {
  return new WalshipError(ErrorCode.ioError, `could not ${op} block ${blockNo} in file "base/${relNode}"`, {
    detail: error instanceof Error ? error.message : String(error),
    hint: op === 'write' ? 'Check free disk space and the file system.' : 'Check the file system and the disk.',
    cause: error,
  });
}
