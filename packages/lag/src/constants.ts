/**
 * The lag monitor's limits and defaults, each with why it is that number.
 */

/**
 * Rates (WAL per second, replay per second) are measured over this window: long enough to
 * smooth the steps that group commit and heartbeats make, short enough that an ETA reacts to a
 * standby that stalls or resumes within seconds.
 */
export const RATE_WINDOW_MS = 10_000;

/** Positions kept per member for its rates: a 100 ms interval fills the window with 100. */
export const RATE_SAMPLES_MAX = 128;

/** A rate needs positions at least this far apart, or one flush would read as a huge rate. */
export const RATE_SPAN_MIN_MS = 200;

/** PostgreSQL's default wal_receiver_status_interval, for nodes that do not report theirs. */
export const DEFAULT_STATUS_INTERVAL_MS = 10_000;

/** PostgreSQL's default wal_sender_timeout, for a standby whose status interval is 0 (off). */
export const DEFAULT_WAL_SENDER_TIMEOUT_MS = 60_000;

/** A standby that has not replied in this many status intervals is disconnected (the rule). */
export const MISSED_REPLIES_MAX = 2;

/** Timeline changes a report carries: enough to show a failover and the switchover back. */
export const TIMELINE_CHANGES_MAX = 10;

/** Upstream chains longer than this are cut (a loop in what nodes report must not hang the view). */
export const CASCADE_DEPTH_MAX = 16;

/**
 * A streaming standby less than this much WAL behind (at the primary's current WAL rate) that is
 * not gaining is "keeping up", not "not gaining": under a steady load the one at the head of the
 * stream is always a few commits behind. One second: the live view's default refresh.
 */
export const KEEPING_UP_LAG_MS = 1_000;
