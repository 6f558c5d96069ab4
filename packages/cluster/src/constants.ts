/**
 * Limits and defaults of the cluster toolkit, each with why it has its value.
 */

/** Where members listen unless the config says otherwise: a local cluster stays on loopback. */
export const DEFAULT_HOST = '127.0.0.1';

/** Failover policy defaults: the embedded monitor watches a local cluster (DESIGN.md section 8). */
export const DEFAULT_FAILOVER_MODE = 'automatic';
/** Checks 300 ms apart, down after 3 missed: a dead primary is noticed within about a second. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 300;
export const DEFAULT_MISSED_CHECKS = 3;
/**
 * The primary's lease: a failover waits until it has run out (plus one check interval) since the
 * last contact. A second keeps the failover within the 2 s of a primary's death, and
 * lasts more than three renewals.
 */
export const DEFAULT_PRIMARY_LEASE_MS = 1_000;
/** Patroni's default maximum_lag_on_failover (1 MB). */
export const DEFAULT_MAXIMUM_LAG_ON_FAILOVER_BYTES = 1024 * 1024;

/** Most health checks that may be missed before a primary counts as down: beyond it, a dead primary waits too long for anyone's purpose. */
export const MISSED_CHECKS_MAX = 100;
/** Longest health-check interval: a minute between checks would let a dead primary go unnoticed for minutes. */
export const HEALTH_CHECK_INTERVAL_MAX_MS = 60_000;

/** Most members one config may have: a local cluster of more processes than this would not fit on one machine anyway. */
export const MEMBERS_MAX = 32;

/** Member names: lower-case letters, digits and _, starting with a letter; they are also application_name, slot and directory names. */
export const MEMBER_NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;

/** Cluster names: they appear in paths and in the state file. */
export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

/** The live state, the decision history and the lock, in the data root. */
export const STATE_FILE_NAME = 'cluster-state.json';
export const HISTORY_FILE_NAME = 'history.jsonl';
export const LOCK_FILE_NAME = 'cluster.lock';
/** The monitor's pid file (DESIGN.md section 10) and its structured log, in the data root. */
export const MONITOR_PID_FILE_NAME = 'monitor.pid';
export const MONITOR_LOG_FILE_NAME = 'monitor.log';

/** Version of the state file's layout; a file of another version is refused rather than misread. */
export const STATE_FILE_VERSION = 1;

/**
 * How long a cluster command waits for another one to release the data root's lock: long enough
 * to queue behind a switchover, short enough that a wedged command is reported, not waited on.
 */
export const LOCK_WAIT_MS = 30_000;

/**
 * The partition proxy's ports, by default: a member's inbound proxy on its port + 100, its
 * outbound one on + 200. Clear of clusters of up to 100 members' ports, and of a second copy
 * moved by --base-port 1000.
 */
export const DEFAULT_PROXY_PORT_OFFSET = 100;
/** The proxy's pid file and its control file (which links are cut or slowed), in the data root. */
export const PROXY_PID_FILE_NAME = 'proxy.pid';
export const PROXY_CONTROL_FILE_NAME = 'proxy.json';
