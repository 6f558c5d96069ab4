/**
 * Limits and defaults of the client library. Each says why it has its value.
 */

/** Every call's timeout unless the call or `connect` says otherwise (DESIGN section 10: 30 s). */
export const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * Node's timers hold at most 2^31 - 1 ms (about 24.8 days); a longer delay fires at once. A call
 * timeout at or above this means "no timeout": the call waits as long as the operation does.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** First wait before reconnecting after a lost connection; doubled on each failed attempt. */
export const RECONNECT_INITIAL_DELAY_MS = 100;

/**
 * Longest wait between reconnect attempts. 5 s notices a restarted node quickly without hammering
 * one that is down (a failover takes seconds, a crash recovery can take longer).
 */
export const RECONNECT_MAX_DELAY_MS = 5_000;

/**
 * Requests waiting in the client for a free in-flight slot or for a reconnect. Beyond it a call
 * fails at once instead of growing memory without bound; 65536 covers any sane pipeline.
 */
export const MAX_QUEUED_REQUESTS = 65_536;

/** Puts `load` keeps in flight unless told otherwise: enough to fill group commit. */
export const DEFAULT_LOAD_CONCURRENCY = 16;

/** How long `close()` waits for the server's half of the WebSocket closing handshake. */
export const CLOSE_TIMEOUT_MS = 1_000;

/**
 * A `get`/`range` with a `minLsn` asks the server to wait at most the call's timeout less this
 * margin, so that the server's own (more telling) timeout error usually arrives before the
 * client gives up on the call.
 */
export const SERVER_WAIT_MARGIN_MS = 250;

/**
 * How long WalshipClusterClient lets a standby catch up with what a read needs before sending the
 * read to the primary. A streaming standby on a LAN replays a commit within a millisecond or two;
 * 50 ms covers a busy one, and bounds what a lagging one adds to a read.
 */
export const DEFAULT_STANDBY_WAIT_MS = 50;

/**
 * How long WalshipFailoverClient keeps looking for a primary for one request: a failover on one
 * machine takes about 2 s, a partition's the lease plus the checks; 30 s (the calls' default
 * timeout) covers several.
 */
export const DEFAULT_FAILOVER_TIMEOUT_MS = 30_000;

/** Between two searches for a primary while none answers: a failover is a matter of a second or two. */
export const FAILOVER_RETRY_PAUSE_MS = 100;

/** How long one member may take to connect and say whether it is the primary, while searching. */
export const PRIMARY_PROBE_TIMEOUT_MS = 1_000;
