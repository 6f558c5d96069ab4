/**
 * Limits and fixed values of the client wire protocol. Each limit says why it has its value.
 */
import { MAX_RECORD_BYTES, XLOG_BLCKSZ } from '@walship/engine/constants';

/** The client protocol version carried in `startup`. Bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1;

/** WebSocket path of client sessions on a node's port. */
export const CLIENT_PATH = '/client';

/** WebSocket path reserved for replication connections (walsender); not served yet. */
export const REPLICATION_PATH = '/replication';

/** The user name a session runs as when `startup` names none. */
export const DEFAULT_USER = 'walship';

/**
 * Largest WebSocket message either side accepts. A `txn` becomes exactly one WAL record, and a
 * record is at most MAX_RECORD_BYTES (64 MiB), so a transaction's keys and values fit in that
 * much; the frame adds msgpack framing per field (a map header, the field names, a bin header:
 * about 30 bytes per operation), which for MAX_TXN_OPERATIONS operations is about 2 MiB. 4 MiB of
 * slack covers that with room to spare. Anything larger could never commit, so the receiver
 * refuses it before buffering it (ws `maxPayload`). Replies are held to the same limit: a range
 * whose encoded reply would exceed it is answered with an error asking for a `limit`.
 */
export const MAX_FRAME_BYTES = MAX_RECORD_BYTES + 4 * 1024 * 1024;

/**
 * Compares, and operations per branch, of one `txn`. etcd allows 128 by default; walship allows
 * bulk loads through one transaction, but bounds the count so that validating a frame and the
 * `counts` array of the reply stay bounded independently of byte sizes.
 */
export const MAX_TXN_OPERATIONS = 65_536;

/**
 * Requests a session executes at once (sent but not yet answered). Beyond it the server stops
 * reading the session's socket (TCP backpressure) until replies go out, and the client library
 * keeps further requests in its own queue. 256 keeps a pipelined `load` busy while bounding what
 * one session can make the node hold in memory.
 */
export const MAX_IN_FLIGHT_REQUESTS = 256;

/**
 * Longest wait a request may ask the server for (`timeoutMs` of get/range with a minLsn): one
 * day. Clients asked to wait longer clamp to it; more is a bug, not a wait.
 */
export const MAX_REQUEST_TIMEOUT_MS = 24 * 60 * 60 * 1000;

/**
 * Longest lease a `lease` request may grant: ten minutes. A lease is renewed every health check
 * (a fraction of a second to a few seconds); a longer one would only hold a failover back.
 */
export const MAX_LEASE_DURATION_MS = 10 * 60 * 1000;

/** Names: tables, settings, users, application names (PostgreSQL's NAMEDATALEN - 1). */
export const MAX_NAME_BYTES = 63;

/**
 * Free text fields: setting values, passwords, error messages, details and hints, versions.
 * 64 KiB is far more than any of them needs and keeps a hostile frame from smuggling megabytes
 * into a log line.
 */
export const MAX_TEXT_BYTES = 64 * 1024;

/**
 * Nesting depth of the free-form `status` document. The status views are two or three levels
 * deep; 16 leaves room while bounding the validator's recursion on hostile input.
 */
export const MAX_STATUS_DEPTH = 16;

// ---------------------------------------------------------------------------------------------
// Replication connections (`/replication`)

/**
 * Most WAL bytes in one XLogData frame (PostgreSQL's MAX_SEND_SIZE, walsender.c): 16 pages,
 * 128 kB. Large enough that the per-message overhead (a 25-byte header, a WebSocket frame, a
 * send call) is negligible while catching up; small enough that a keepalive or a reply request is
 * never stuck behind much data, that the sender's read buffer stays small, and that the standby
 * can flush and report progress often. The standby refuses larger XLogData frames.
 */
export const MAX_SEND_SIZE = 16 * XLOG_BLCKSZ;

/**
 * Most data in one `backupChunk` (1 MiB). Big files (WAL segments, table files) go in many
 * chunks, so neither end ever holds a whole file in memory; 1 MiB makes the msgpack framing
 * (about 100 bytes per chunk) vanish and is what `walship basebackup` reports progress by.
 */
export const MAX_BACKUP_CHUNK_BYTES = 1024 * 1024;

/**
 * A timeline history file's content (1 MiB). Each line (`tli<TAB>X/X<TAB>reason`) is well under
 * 100 bytes, so this holds more than ten thousand timeline switches, far beyond any cluster's
 * history; it bounds what a hostile sender can make a standby write into `pg_wal/`.
 */
export const MAX_TIMELINE_HISTORY_BYTES = 1024 * 1024;

/**
 * Largest WebSocket message of a replication connection (2 MiB), which both ends set as ws
 * `maxPayload`. The largest messages are a `backupChunk` (MAX_BACKUP_CHUNK_BYTES plus its path,
 * at most MAX_BACKUP_PATH_BYTES, and a few fields), a `timelineHistory` result
 * (MAX_TIMELINE_HISTORY_BYTES) and a slot listing (MAX_LISTED_REPLICATION_SLOTS entries of under
 * 200 bytes); XLogData is at most MAX_SEND_SIZE plus its header. 2 MiB holds each of them with
 * room to spare, and is far below the client protocol's MAX_FRAME_BYTES, which only a `txn`
 * needs.
 */
export const MAX_REPLICATION_FRAME_BYTES = 2 * 1024 * 1024;

/**
 * Slots in one `listReplicationSlots` result. PostgreSQL's default max_replication_slots is 10;
 * a node with thousands of standbys is far outside walship's design. 4096 entries of under 200
 * bytes each keep the result within MAX_REPLICATION_FRAME_BYTES.
 */
export const MAX_LISTED_REPLICATION_SLOTS = 4096;

/**
 * A backup path, relative to the data directory (PostgreSQL's MAXPGPATH - 1). The target
 * directory's own path is added by the receiver, so the whole stays within what file systems
 * accept (PATH_MAX is 4096 on Linux).
 */
export const MAX_BACKUP_PATH_BYTES = 1023;

/** One component of a backup path (NAME_MAX on Linux and macOS). */
export const MAX_BACKUP_PATH_COMPONENT_BYTES = 255;

/**
 * A base backup's label (PostgreSQL's limit: "backup label too long (max 1023 bytes)"). It goes
 * into the `backup_label` file and the logs, so it is short text.
 */
export const MAX_BACKUP_LABEL_BYTES = 1023;

/**
 * Bounds of `baseBackup`'s `maxRateBytes`, in bytes per second: PostgreSQL's MAX_RATE_LOWER (32
 * kB/s; slower would make a backup of even a small cluster take hours while holding WAL back)
 * and MAX_RATE_UPPER (1 GB/s; faster is no limit at all).
 */
export const BACKUP_MAX_RATE_LOWER_BYTES = 32 * 1024;
export const BACKUP_MAX_RATE_UPPER_BYTES = 1024 * 1024 * 1024;

/**
 * Most bytes one `readDataFile` answer carries (1 MiB, as a `backupChunk`): the frame stays well
 * inside MAX_REPLICATION_FRAME_BYTES, and `walship rewind` keeps a few of them in flight.
 */
export const MAX_DATA_FILE_READ_BYTES = 1024 * 1024;

/**
 * Files in one `listDataFiles` answer: a catalog and its tables, the WAL kept and a few small
 * files are far fewer; 16384 entries of under 100 bytes fit MAX_REPLICATION_FRAME_BYTES.
 */
export const MAX_LISTED_DATA_FILES = 16_384;

/**
 * Page CRCs in one `pageChecksums` answer: 65536 pages (512 MiB of relation with 8 KiB pages) in
 * 256 KiB of checksums, so a verify of a large table takes few round trips.
 */
export const MAX_PAGE_CHECKSUMS_PER_REQUEST = 65_536;

/** Relation numbers (the engine's MAX_RELNODE: 21 bits, so that a block tag fits a safe integer). */
export const MAX_WIRE_RELNODE = 0x1f_ffff;

/**
 * Longest wait `flushBuffers` may ask for (`timeoutMs`): one day, as for client requests. A
 * standby that has not replayed the position by then answers with a timeout error.
 */
export const MAX_FLUSH_WAIT_MS = 24 * 60 * 60 * 1000;
