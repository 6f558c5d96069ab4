/**
 * Helpers for the storage layer's unit tests (not part of the public surface).
 *
 * `TestTransaction` is a stand-in for the WAL layer's PageModifyContext
 * (access/generic-xlog.ts): like the real one it pins every registered page until the
 * transaction ends, so the tests exercise the same pin pressure; at commit it stamps the pending
 * revisions and the page LSN with a made-up commit LSN, marks the pages dirty and releases them.
 * It writes no WAL.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeLsn, type Lsn } from '../lsn.js';
import type { BufferHandle, PageModifyContext } from './contracts.js';
import type { BufferPool } from './buffer-pool.js';
import { pendingRevisionOffsets } from './btree-page.js';

export interface Registration {
  relNode: number;
  blockNo: number;
  isNew: boolean;
}

export class TestTransaction implements PageModifyContext {
  readonly registrations: Registration[] = [];
  private readonly held = new Map<number, BufferHandle>();
  private readonly pool: BufferPool;

  constructor(pool: BufferPool) {
    this.pool = pool;
  }

  registerBuffer(handle: BufferHandle, isNew: boolean): void {
    const key = handle.relNode * 0x1_0000_0000 + handle.blockNo;
    if (this.held.has(key)) return;
    this.pool.pin(handle);
    this.held.set(key, handle);
    this.registrations.push({ relNode: handle.relNode, blockNo: handle.blockNo, isNew });
  }

  /** Pages registered and still pinned by this transaction. */
  get size(): number {
    return this.held.size;
  }

  commit(lsn: Lsn): void {
    for (const handle of this.held.values()) {
      for (const offset of pendingRevisionOffsets(handle.page)) writeLsn(handle.page, lsn, offset);
      writeLsn(handle.page, lsn, 0);
      this.pool.markDirty(handle);
      this.pool.release(handle);
    }
    this.held.clear();
  }
}

/** A fresh directory under the OS temp dir; remove it with `removeDir`. */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `walship-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
