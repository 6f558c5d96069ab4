/**
 * Limits of the replication package. Each says why it has its value and where PostgreSQL has the
 * same one.
 */

/**
 * Samples in a walsender's lag tracker ring (walsender.c's LAG_TRACKER_BUFFER_SIZE). One sample is
 * taken per send with new WAL, so 8192 covers minutes of a busy primary; a standby slower than
 * that makes the slowest read head overflow (see lag-tracker.ts), not the tracker grow.
 * 8192 × 2 × 8 bytes = 128 KiB per walsender.
 */
export const LAG_TRACKER_BUFFER_SIZE = 8192;

/**
 * How long a walreceiver may stay STARTING after the startup component asked for it before the
 * request counts as failed (walreceiverfuncs.c's WALRCV_STARTUP_TIMEOUT, 10 s): long enough for
 * the postmaster to start it, short enough that a lost start request does not stall recovery.
 */
export const WAL_RECEIVER_STARTUP_TIMEOUT_MS = 10_000;

/**
 * Longest single wait on the recovery latch while streaming. PostgreSQL (since 14) waits with no
 * timeout and relies on the walreceiver's WakeupRecovery; walship re-polls the walreceiver every
 * 5 s (PostgreSQL 9.x–13's value), so that a lost wake-up costs seconds, not a stuck standby.
 */
export const STREAM_WAIT_MAX_MS = 5_000;

/**
 * Most state-machine transitions one event may cause before it must emit an action that waits
 * for a result. Every cycle of WaitForWALToBecomeAvailable passes through such an action within
 * four transitions; the bound turns a logic error into an assertion instead of a hang.
 */
export const WAL_SOURCE_TRANSITIONS_MAX = 16;

/** Longest primary_conninfo (walreceiver.h's MAXCONNINFO, 1024 bytes). */
export const MAX_CONNINFO_BYTES = 1024;

/**
 * Output kept from an archive or restore command (stdout and stderr each): enough for any error
 * message, bounded so that a chatty command cannot grow the node's memory.
 */
export const SHELL_COMMAND_OUTPUT_MAX_BYTES = 64 * 1024;

/**
 * Suggested timeout for archive_command and restore_command. PostgreSQL has none (system()
 * blocks); walship bounds every wait. Ten minutes is far beyond copying one 16 MiB segment to a
 * slow network store, and still ends a hung command.
 */
export const SHELL_COMMAND_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * Largest count synchronous_standby_names may ask for: a C int, the type of PostgreSQL's num_sync.
 * PostgreSQL reads the count with atoi(), which wraps a larger number into an arbitrary one (on
 * 64-bit Linux, 4294967297 becomes 1); walship refuses it instead. No real cluster comes near it.
 */
export const SYNC_REP_NUM_SYNC_MAX = 2_147_483_647;
