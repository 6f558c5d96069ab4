/**
 * Limits and fixed values of the client wire protocol. Each limit says why it has its value.
 */
import { MAX_RECORD_BYTES } from '@walship/engine';

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
