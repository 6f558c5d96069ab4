/**
 * The storage layer's public surface: the storage manager, slotted pages, the buffer pool and
 * the B+tree store. See README.md in this directory.
 */
export * from './contracts.js';
export { Smgr, MAX_OPEN_RELATION_FILES, MAX_RELNODE, type SmgrFaults } from './smgr.js';
export {
  PAGE_HEADER_SIZE,
  PAGE_LAYOUT_VERSION,
  PageType,
  type PageTypeValue,
  pageGetLower,
  pageGetUpper,
  pageGetType,
  pageIsNew,
  pageSetChecksum,
  pageVerifyChecksum,
  pageHeaderIsSane,
} from './page.js';
export {
  BufferPool,
  BM_MAX_USAGE_COUNT,
  MIN_BUFFERS,
  type BufferPoolOptions,
  type BufferPoolStats,
  type BlockTag,
} from './buffer-pool.js';
export { Store, type TableInfo } from './store.js';
export { type ScanOptions, type RelationInfo, prefixEnd } from './btree.js';
export { type VacuumResult, MERGE_FILL_MAX } from './btree-vacuum.js';
export { pendingRevisionOffsets, LEAF_TUPLE_MAX_BYTES, LEAF_REVISION_AT } from './btree-page.js';
export { OVERFLOW_CHUNK_BYTES } from './overflow.js';
