/**
 * Limits and layout constants of the engine. Each limit says why it has its value.
 */

/**
 * The subdirectories of a data directory (DESIGN.md section 2). Here rather than in bootstrap.ts
 * (which re-exports it) so that `walship basebackup`'s receiving end can make them without
 * loading the database code.
 */
export const DATA_SUBDIRECTORIES: readonly string[] = ['global', 'pg_wal', 'pg_wal/archive_status', 'base', 'pg_replslot', 'log'];

/** Size of a relation page (PostgreSQL's BLCKSZ). */
export const BLCKSZ = 8192;

/** Size of a WAL page (PostgreSQL's XLOG_BLCKSZ). */
export const XLOG_BLCKSZ = 8192;

/** Default WAL segment size (16 MiB, as PostgreSQL); `init --set wal_segment_size=` changes it. */
export const DEFAULT_WAL_SEGMENT_SIZE = 16 * 1024 * 1024;
export const MIN_WAL_SEGMENT_SIZE = 1024 * 1024;
export const MAX_WAL_SEGMENT_SIZE = 1024 * 1024 * 1024;

/** Keys are bytes; 1 KiB keeps at least several keys per internal page of 8 KiB. */
export const MAX_KEY_BYTES = 1024;

/**
 * Values beyond what fits in a leaf page go to overflow pages (PostgreSQL's TOAST). 16 MiB is
 * well past the promised 1 MiB and still keeps one transaction's WAL record bounded.
 */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024;

/**
 * One transaction is one WAL record; its size is bounded so that the WAL buffers and the reader
 * never need to hold more than this. 64 MiB holds a few maximum-size values with their pages.
 */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Table names: printable, short, like PostgreSQL identifiers (NAMEDATALEN - 1). */
export const MAX_TABLE_NAME_BYTES = 63;

/** The table every node has, used when a request names none. */
export const DEFAULT_TABLE = 'default';

/**
 * Revision written into entries while a transaction is being applied, before its commit LSN is
 * known; replaced by the commit LSN before the WAL record is assembled. Never a real LSN.
 */
export const PENDING_REVISION = Number.MAX_SAFE_INTEGER;

/** Relation number of the catalog (table name -> relation number). */
export const CATALOG_RELNODE = 1;

/** First relation number handed to user tables. */
export const FIRST_USER_RELNODE = 16384;
