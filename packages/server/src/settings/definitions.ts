/**
 * The table of settings (PostgreSQL's guc_tables.c): every setting a node knows, with its type,
 * default, range, base unit, context and a one-line description. Names, units and contexts are
 * PostgreSQL's, so that a reader can take a postgresql.conf habit to walship.conf unchanged.
 *
 * Ranges and defaults of numeric settings with a unit are in the setting's base unit (the unit a
 * bare number is read in), as in PostgreSQL: shared_buffers counts 8kB blocks, so its default is
 * 16384 (128MB). Typed values are bytes and milliseconds; see `parse.ts`.
 *
 * Differences from PostgreSQL, on purpose:
 * - `port` defaults to 5433, so that a node never collides with a PostgreSQL server on 5432.
 * - `wal_buffers` defaults to 16MB rather than -1 (-1 still means 1/32 of shared_buffers).
 * - `wal_segment_size` and `data_checksums` have context `init` (PostgreSQL's "internal"): they
 *   are chosen by `walship init` and recorded in the control file.
 * - `auth_method` (pg_hba.conf's method, one for every connection), `password`,
 *   `replication_password`, `heartbeat_interval`, `metrics_port` and `require_primary_lease` are
 *   walship's own.
 * - `ssl` needs a restart (PostgreSQL reloads it): the port is either a TLS listener or not. The
 *   SSL files are reloaded on SIGHUP, as PostgreSQL's are.
 */
import type { MemoryUnit, TimeUnit } from './units.js';
// The module alone, not the package: the CLI's set and show load this table.
import { checkSynchronousStandbyNames } from '@walship/replication/sync-rep-config';

/**
 * When a change takes effect (PostgreSQL's GucContext):
 * - `init`: fixed when the data directory is created; never changed afterwards.
 * - `postmaster`: read at server start; a change needs a restart.
 * - `sighup`: re-read on reload (SIGHUP, `walship set`).
 * - `user`: also settable per session or per request.
 */
export type SettingContext = 'init' | 'postmaster' | 'sighup' | 'user';

/** A check beyond the range: returns null when the value is good, or what is wrong with it. */
export type SettingCheck<T> = (value: T) => { detail: string; hint?: string } | null;

interface SettingBase {
  readonly context: SettingContext;
  readonly description: string;
  /** Masked in listings (`show` without a name). */
  readonly secret?: boolean;
}

export interface BoolDefinition extends SettingBase {
  readonly kind: 'bool';
  readonly default: boolean;
}

export interface IntegerDefinition extends SettingBase {
  readonly kind: 'integer';
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** A unit that input cannot carry, named for readers only (commit_delay's microseconds). */
  readonly unitLabel?: string;
}

export interface RealDefinition extends SettingBase {
  readonly kind: 'real';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}

export interface MemoryDefinition extends SettingBase {
  readonly kind: 'memory';
  readonly baseUnit: MemoryUnit;
  /** In base units. */
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** Receives bytes. */
  readonly check?: SettingCheck<number>;
}

export interface DurationDefinition extends SettingBase {
  readonly kind: 'duration';
  readonly baseUnit: TimeUnit;
  /** In base units. */
  readonly default: number;
  readonly min: number;
  readonly max: number;
}

export interface StringDefinition extends SettingBase {
  readonly kind: 'string';
  readonly default: string;
  readonly check?: SettingCheck<string>;
}

export interface EnumDefinition extends SettingBase {
  readonly kind: 'enum';
  /** The values SHOW prints and the hint lists. */
  readonly values: readonly string[];
  /** Also accepted, not listed (PostgreSQL's hidden enum entries: `true` for `on`). */
  readonly aliases?: Readonly<Record<string, string>>;
  readonly default: string;
}

export type SettingDefinition =
  | BoolDefinition
  | IntegerDefinition
  | RealDefinition
  | MemoryDefinition
  | DurationDefinition
  | StringDefinition
  | EnumDefinition;

export type SettingKind = SettingDefinition['kind'];

/** PostgreSQL's INT_MAX: the upper bound of its integer settings. */
const INT_MAX = 2_147_483_647;

/** PostgreSQL's MAX_KILOBYTES on 64-bit platforms. */
const MAX_KILOBYTES = INT_MAX;

/** NAMEDATALEN - 1: the longest identifier (application name, slot name). */
const MAX_IDENTIFIER_BYTES = 63;

const BOOLEAN_ALIASES = { true: 'on', false: 'off', yes: 'on', no: 'off', '1': 'on', '0': 'off' } as const;

function checkWalSegmentSize(bytes: number): { detail: string; hint?: string } | null {
  const isPowerOfTwo = bytes > 0 && (bytes & (bytes - 1)) === 0;
  if (isPowerOfTwo && bytes >= 1024 * 1024 && bytes <= 1024 * 1024 * 1024) return null;
  return {
    detail: 'The WAL segment size must be a power of two between 1MB and 1GB.',
    hint: 'Use 1MB, 2MB, 4MB, 8MB, 16MB, ..., 1GB.',
  };
}

function checkApplicationName(value: string): { detail: string; hint?: string } | null {
  if (!/^[\x20-\x7e]*$/.test(value)) {
    return { detail: 'An application name may contain only printable ASCII characters.' };
  }
  if (value.length > MAX_IDENTIFIER_BYTES) {
    return { detail: `An application name is at most ${MAX_IDENTIFIER_BYTES} characters long.` };
  }
  return null;
}

/** ReplicationSlotValidateName: lower-case letters, digits and underscores, at most 63. */
function checkSlotName(value: string): { detail: string; hint?: string } | null {
  if (value === '') return null;
  if (value.length > MAX_IDENTIFIER_BYTES) {
    return { detail: `Replication slot name "${value}" is too long.` };
  }
  if (!/^[a-z0-9_]+$/.test(value)) {
    return {
      detail: `Replication slot name "${value}" contains invalid character.`,
      hint: 'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
    };
  }
  return null;
}

function checkRecoveryTargetTimeline(value: string): { detail: string; hint?: string } | null {
  if (value === 'latest' || value === 'current') return null;
  if (/^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 0xffff_ffff) return null;
  return { detail: 'recovery_target_timeline is not a valid number.', hint: 'Use "latest", "current" or a timeline ID.' };
}

/**
 * The settings. Keep the order: it is the order of `walship show` and of the reference section
 * that `walship init` writes into walship.conf (grouped as postgresql.conf.sample is).
 */
export const SETTING_DEFINITIONS = {
  // Connections and authentication
  listen_addresses: {
    kind: 'string',
    default: 'localhost',
    context: 'postmaster',
    description: 'Sets the host name or IP address(es) to listen to.',
  },
  port: {
    kind: 'integer',
    default: 5433,
    min: 1,
    max: 65535,
    context: 'postmaster',
    description: 'Sets the TCP port the server listens on (5433: clear of PostgreSQL on 5432).',
  },
  max_connections: {
    kind: 'integer',
    default: 100,
    min: 1,
    max: 262143,
    context: 'postmaster',
    description: 'Sets the maximum number of concurrent client connections.',
  },
  auth_method: {
    kind: 'enum',
    values: ['trust', 'scram-sha-256'],
    default: 'trust',
    context: 'sighup',
    description: 'How connections authenticate: scram-sha-256 (users of walship_authid.json), or trust (loopback; password settings when set).',
  },
  scram_iterations: {
    kind: 'integer',
    default: 4096,
    min: 1,
    max: INT_MAX,
    context: 'user',
    description: 'Sets the iteration count of the SCRAM-SHA-256 verifiers walship user and init --auth write.',
  },
  password: {
    kind: 'string',
    default: '',
    context: 'sighup',
    secret: true,
    description: 'With auth_method = trust: password clients must give; empty trusts loopback connections.',
  },
  replication_password: {
    kind: 'string',
    default: '',
    context: 'sighup',
    secret: true,
    description: 'With auth_method = trust: password standbys must give to stream WAL; empty trusts loopback connections.',
  },
  metrics_port: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: 65535,
    context: 'postmaster',
    description: 'Port of the plain HTTP /metrics and /healthz listener; 0 serves them on port.',
  },
  application_name: {
    kind: 'string',
    default: '',
    context: 'postmaster',
    check: checkApplicationName,
    description: 'Sets the name this node reports to its upstream and in acknowledgements.',
  },

  // SSL
  ssl: {
    kind: 'bool',
    default: false,
    context: 'postmaster',
    description: 'Enables SSL connections: the port serves wss:// (a restart turns it on or off).',
  },
  ssl_cert_file: {
    kind: 'string',
    default: 'server.crt',
    context: 'sighup',
    description: 'Location of the SSL server certificate file (relative to the data directory).',
  },
  ssl_key_file: {
    kind: 'string',
    default: 'server.key',
    context: 'sighup',
    description: 'Location of the SSL server private key file (relative to the data directory).',
  },
  ssl_ca_file: {
    kind: 'string',
    default: '',
    context: 'sighup',
    description: 'Location of the SSL certificate authority file: client certificates presented must be signed by it.',
  },

  // Resource usage
  shared_buffers: {
    kind: 'memory',
    baseUnit: '8kB',
    default: 16384,
    min: 16,
    max: Math.floor(INT_MAX / 2),
    context: 'postmaster',
    description: 'Sets the number of shared memory buffers used by the server.',
  },
  bgwriter_delay: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 200,
    min: 10,
    max: 10000,
    context: 'sighup',
    description: 'Background writer sleep time between rounds.',
  },
  bgwriter_lru_maxpages: {
    kind: 'integer',
    default: 100,
    min: 0,
    max: Math.floor(INT_MAX / 2),
    context: 'sighup',
    description: 'Background writer maximum number of LRU pages to flush per round.',
  },
  bgwriter_lru_multiplier: {
    kind: 'real',
    default: 2.0,
    min: 0,
    max: 10,
    context: 'sighup',
    description: 'Multiple of the average buffer usage to free per round.',
  },

  // Write-ahead log
  wal_segment_size: {
    kind: 'memory',
    baseUnit: 'B',
    default: 16 * 1024 * 1024,
    min: 1024 * 1024,
    max: 1024 * 1024 * 1024,
    context: 'init',
    check: checkWalSegmentSize,
    description: 'Shows the size of write ahead log segments (fixed by walship init).',
  },
  data_checksums: {
    kind: 'bool',
    default: true,
    context: 'init',
    description: 'Shows whether data checksums are turned on for this cluster (fixed by walship init).',
  },
  fsync: {
    kind: 'bool',
    default: true,
    context: 'sighup',
    description: 'Forces synchronization of updates to disk.',
  },
  synchronous_commit: {
    kind: 'enum',
    values: ['off', 'local', 'remote_write', 'on', 'remote_apply'],
    aliases: BOOLEAN_ALIASES,
    default: 'on',
    context: 'user',
    description: "Sets the current transaction's synchronization level.",
  },
  full_page_writes: {
    kind: 'bool',
    default: true,
    context: 'sighup',
    description: 'Writes full pages to WAL when first modified after a checkpoint.',
  },
  wal_buffers: {
    kind: 'memory',
    baseUnit: '8kB',
    default: 2048,
    min: -1,
    max: Math.floor(INT_MAX / 8192),
    context: 'postmaster',
    description: 'Sets the number of disk-page buffers in shared memory for WAL (-1: 1/32 of shared_buffers).',
  },
  wal_writer_delay: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 200,
    min: 1,
    max: 10000,
    context: 'sighup',
    description: 'Time between WAL flushes performed in the WAL writer.',
  },
  wal_writer_flush_after: {
    kind: 'memory',
    baseUnit: '8kB',
    default: 128,
    min: 0,
    max: INT_MAX,
    context: 'sighup',
    description: 'Amount of WAL written out by WAL writer that triggers a flush.',
  },
  commit_delay: {
    kind: 'integer',
    default: 0,
    min: 0,
    max: 100000,
    unitLabel: 'us',
    context: 'user',
    description: 'Sets the delay in microseconds between transaction commit and flushing WAL to disk.',
  },

  // Checkpoints
  checkpoint_timeout: {
    kind: 'duration',
    baseUnit: 's',
    default: 300,
    min: 30,
    max: 86400,
    context: 'sighup',
    description: 'Sets the maximum time between automatic WAL checkpoints.',
  },
  checkpoint_completion_target: {
    kind: 'real',
    default: 0.9,
    min: 0,
    max: 1,
    context: 'sighup',
    description: 'Time spent flushing dirty buffers during checkpoint, as fraction of checkpoint interval.',
  },
  max_wal_size: {
    kind: 'memory',
    baseUnit: 'MB',
    default: 1024,
    min: 2,
    max: MAX_KILOBYTES,
    context: 'sighup',
    description: 'Sets the WAL size that triggers a checkpoint.',
  },
  min_wal_size: {
    kind: 'memory',
    baseUnit: 'MB',
    default: 80,
    min: 2,
    max: MAX_KILOBYTES,
    context: 'sighup',
    description: 'Sets the minimum size to shrink the WAL to.',
  },

  // Archiving
  archive_mode: {
    kind: 'enum',
    values: ['always', 'on', 'off'],
    aliases: BOOLEAN_ALIASES,
    default: 'off',
    context: 'postmaster',
    description: 'Allows archiving of WAL files using archive_command.',
  },
  cluster_key_file: {
    kind: 'string',
    default: '',
    context: 'postmaster',
    description: 'File holding the cluster key (32 bytes as hex or base64) that unwraps the data encryption keys.',
  },
  cluster_key_command: {
    kind: 'string',
    default: '',
    context: 'postmaster',
    description: 'Shell command that prints the cluster key on stdout (%d is the data directory).',
  },
  archive_command: {
    kind: 'string',
    default: '',
    context: 'sighup',
    description: 'Sets the shell command that will be called to archive a WAL file (%p path, %f file name).',
  },
  restore_command: {
    kind: 'string',
    default: '',
    context: 'sighup',
    description: 'Sets the shell command that will be called to retrieve an archived WAL file.',
  },

  // Replication: sending servers
  wal_sender_timeout: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 60000,
    min: 0,
    max: INT_MAX,
    context: 'sighup',
    description: 'Sets the maximum time to wait for WAL replication.',
  },
  wal_keep_size: {
    kind: 'memory',
    baseUnit: 'MB',
    default: 0,
    min: 0,
    max: MAX_KILOBYTES,
    context: 'sighup',
    description: 'Sets the size of WAL files held for standby servers.',
  },
  max_slot_wal_keep_size: {
    kind: 'memory',
    baseUnit: 'MB',
    default: -1,
    min: -1,
    max: MAX_KILOBYTES,
    context: 'sighup',
    description: 'Sets the maximum WAL size that can be reserved by replication slots (-1: no limit).',
  },
  synchronous_standby_names: {
    kind: 'string',
    default: '',
    context: 'sighup',
    check: checkSynchronousStandbyNames,
    description: 'Number of synchronous standbys and list of names of potential synchronous ones.',
  },
  require_primary_lease: {
    kind: 'bool',
    default: false,
    context: 'sighup',
    description: 'A primary acknowledges commits only while it holds an unexpired lease from the failover monitor (lease.ts).',
  },
  heartbeat_interval: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 1000,
    min: 0,
    max: 3_600_000,
    context: 'sighup',
    description: 'Sets the interval of the primary\'s heartbeat WAL record while no other WAL is written (0 turns it off).',
  },

  // Replication: standby servers
  primary_conninfo: {
    kind: 'string',
    default: '',
    context: 'sighup',
    description: 'Sets the connection string to be used to connect to the sending server.',
  },
  primary_slot_name: {
    kind: 'string',
    default: '',
    context: 'sighup',
    check: checkSlotName,
    description: 'Sets the name of the replication slot to use on the sending server.',
  },
  hot_standby: {
    kind: 'bool',
    default: true,
    context: 'postmaster',
    description: 'Allows connections and queries during recovery.',
  },
  recovery_target_timeline: {
    kind: 'string',
    default: 'latest',
    context: 'postmaster',
    check: checkRecoveryTargetTimeline,
    description: 'Specifies the timeline to recover into ("latest", "current" or an ID).',
  },
  recovery_min_apply_delay: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 0,
    min: 0,
    max: INT_MAX,
    context: 'sighup',
    description: 'Sets the minimum delay for applying changes during recovery.',
  },
  wal_receiver_timeout: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 60000,
    min: 0,
    max: INT_MAX,
    context: 'sighup',
    description: 'Sets the maximum wait time to receive data from the sending server.',
  },
  wal_receiver_status_interval: {
    kind: 'duration',
    baseUnit: 's',
    default: 10,
    min: 0,
    max: Math.floor(INT_MAX / 1000),
    context: 'sighup',
    description: 'Sets the maximum interval between WAL receiver status reports to the sending server.',
  },
  wal_retrieve_retry_interval: {
    kind: 'duration',
    baseUnit: 'ms',
    default: 5000,
    min: 1,
    max: INT_MAX,
    context: 'sighup',
    description: 'Sets the time to wait before retrying to retrieve WAL after a failed attempt.',
  },

  // Autovacuum
  autovacuum: {
    kind: 'bool',
    default: true,
    context: 'sighup',
    description: 'Starts the autovacuum subprocess.',
  },
  autovacuum_naptime: {
    kind: 'duration',
    baseUnit: 's',
    default: 60,
    min: 1,
    max: Math.floor(INT_MAX / 1000),
    context: 'sighup',
    description: 'Time to sleep between autovacuum runs.',
  },

  // Reporting and logging
  log_min_messages: {
    kind: 'enum',
    values: ['debug5', 'debug4', 'debug3', 'debug2', 'debug1', 'info', 'notice', 'warning', 'error', 'log', 'fatal', 'panic'],
    default: 'warning',
    context: 'sighup',
    description: 'Sets the message levels that are logged.',
  },
  log_directory: {
    kind: 'string',
    default: 'log',
    context: 'sighup',
    description: 'Sets the destination directory for log files (relative to the data directory).',
  },
  log_rotation_age: {
    kind: 'duration',
    baseUnit: 'min',
    default: 1440,
    min: 0,
    max: Math.floor(INT_MAX / 60),
    context: 'sighup',
    description: 'Sets the amount of time to wait before forcing log file rotation.',
  },
  log_rotation_size: {
    kind: 'memory',
    baseUnit: 'kB',
    default: 10240,
    min: 0,
    max: Math.floor(INT_MAX / 1024),
    context: 'sighup',
    description: 'Sets the maximum size a log file can reach before being rotated.',
  },
} as const satisfies Record<string, SettingDefinition>;

export type SettingName = keyof typeof SETTING_DEFINITIONS;

type ValueOfDefinition<D> = D extends { kind: 'bool' }
  ? boolean
  : D extends { kind: 'enum'; values: readonly (infer V)[] }
    ? V
    : D extends { kind: 'string' }
      ? string
      : number;

/**
 * The typed value of each setting: `boolean` for bool, the union of its values for an enum,
 * `string` for strings, and `number` for the rest (bytes for memory, milliseconds for durations,
 * microseconds for commit_delay).
 */
export type SettingValues = { [N in SettingName]: ValueOfDefinition<(typeof SETTING_DEFINITIONS)[N]> };

export const SETTING_NAMES: readonly SettingName[] = Object.keys(SETTING_DEFINITIONS) as SettingName[];

export function isSettingName(name: string): name is SettingName {
  return Object.prototype.hasOwnProperty.call(SETTING_DEFINITIONS, name);
}

export function settingDefinition(name: SettingName): SettingDefinition {
  return SETTING_DEFINITIONS[name];
}
