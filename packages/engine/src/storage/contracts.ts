/**
 * The contract between the storage layer (pages, buffer pool, tables) and the WAL layer
 * (transactions, generic page deltas, redo). Storage changes pages only inside a
 * `PageModifyContext`; the WAL layer turns the registered pages into one WAL record.
 */

/**
 * Page header layout shared by every relation page (after PostgreSQL's PageHeaderData). The WAL
 * layer relies on the first four fields; the rest belong to the storage layer.
 */
export const PageHeader = {
  /** LSN of the WAL record that last changed the page (u64 LE). */
  lsnOffset: 0,
  /** CRC-32C of the page, computed with this field zeroed, seeded with the block number (u32). */
  checksumOffset: 8,
  /** pd_lower (u16): end of the line pointer array. */
  lowerOffset: 12,
  /** pd_upper (u16): start of tuple space. [lower, upper) is the free hole, omitted from images. */
  upperOffset: 14,
  /** Bytes of the header. */
  size: 24,
} as const;

/** A pinned page in the buffer pool. `page` stays valid while pinned. */
export interface BufferHandle {
  readonly relNode: number;
  readonly blockNo: number;
  /** The page bytes (BLCKSZ), a view into the buffer pool. Valid only while pinned. */
  readonly page: Buffer;
}

/**
 * GenericXLogRegisterBuffer's role: storage calls `registerBuffer` before its first change to a
 * page inside a transaction, so the WAL layer can keep the pre-image and, at commit, log the
 * difference (or a full-page image). `isNew` is true for a page that was just allocated or
 * reused from the free list and will be fully rewritten (its old content does not matter).
 * Registering the same page twice is allowed and does nothing the second time.
 */
export interface PageModifyContext {
  registerBuffer(buffer: BufferHandle, isNew: boolean): void;
}
