/**
 * Cluster configs (`cluster-configs/*.yaml`, DESIGN.md section 8): reading, validating and
 * resolving one file into a ClusterConfig with absolute paths and final ports.
 *
 * Every mistake is refused before anything starts. The whole file is checked and every problem
 * is reported at once (ClusterConfigError), each with the file, line and column, the field path
 * and what is wrong: YAML syntax and duplicate keys, unknown keys (with the closest known one),
 * wrong types, ports and port offsets out of range or colliding (metrics ports included),
 * duplicate member names, an unknown upstream, upstream cycles, a synchronous_standby_names that
 * does not parse or names members the cluster does not have, settings the nodes would refuse,
 * settings the toolkit owns (port, application_name, primary_conninfo, ...), and bad failover
 * policy values, a `tls` that is not true or false, and an `encryption` that names no key or two. Relative paths are relative to the config file; `--data-root` is relative to
 * the working directory, as any command-line path.
 *
 * Pure apart from loadClusterConfig reading the file: parseClusterConfig takes the text.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { validateReplicationSlotName } from '@walship/protocol/replication-validate';
import { parseSynchronousStandbyNames, SyncRepConfigError, type SyncRepConfig } from '@walship/replication/sync-rep-config';
import { lookupSetting, parseSettingValue, SETTING_DEFINITIONS } from '@walship/server/settings/index';
import { ClusterConfigError, ClusterError, ClusterErrorCode, type ConfigProblem } from './cluster-error.js';
import {
  CLUSTER_NAME_PATTERN,
  DEFAULT_FAILOVER_MODE,
  DEFAULT_HEALTH_CHECK_INTERVAL_MS,
  DEFAULT_HOST,
  DEFAULT_MAXIMUM_LAG_ON_FAILOVER_BYTES,
  DEFAULT_MISSED_CHECKS,
  DEFAULT_PRIMARY_LEASE_MS,
  DEFAULT_PROXY_PORT_OFFSET,
  HEALTH_CHECK_INTERVAL_MAX_MS,
  MEMBER_NAME_PATTERN,
  MEMBERS_MAX,
  MISSED_CHECKS_MAX,
} from './constants.js';
import { parseDurationMs, parseSizeBytes } from './units.js';

export const SYNC_COMMIT_LEVELS = ['off', 'local', 'remote_write', 'on', 'remote_apply'] as const;
export type SyncCommitLevel = (typeof SYNC_COMMIT_LEVELS)[number];

export type FailoverMode = 'manual' | 'automatic';

export interface FailoverPolicy {
  readonly mode: FailoverMode;
  readonly healthCheckIntervalMs: number;
  /** Consecutive failed health checks after which the primary counts as down. */
  readonly missedChecks: number;
  /** How long the primary may acknowledge writes after its last contact with the monitor. */
  readonly primaryLeaseMs: number;
  /**
   * The members enforce the lease (require_primary_lease): a primary acknowledges commits only
   * while the monitor's lease holds, so the monitor's failover need not kill an old primary that
   * stopped answering. True by default with the automatic mode, and only possible with it (the
   * monitor grants the lease).
   */
  readonly enforceLease: boolean;
  /** A standby further behind than this is never promoted unless the failover is forced. */
  readonly maximumLagOnFailoverBytes: number;
  /** Members that may be promoted, in order of preference (ties between equally advanced standbys). */
  readonly candidates: readonly string[];
  /** Rewind and restart a fenced old primary as a standby when it is started again. */
  readonly autoRejoin: boolean;
  /**
   * What the monitor does when a synchronous standby is gone (Patroni's synchronous_mode):
   * `relaxed` repoints the primary's synchronous_standby_names at the standbys that stream (or
   * empties it when none does), so commits go on; `strict` leaves it, and commits wait until
   * the standby is back (PostgreSQL's behaviour).
   */
  readonly synchronousMode: SynchronousMode;
}

export type SynchronousMode = 'strict' | 'relaxed';

export interface MemberConfig {
  readonly name: string;
  readonly port: number;
  /** The offset from the base port, or null when the file gave an absolute `port`. */
  readonly portOffset: number | null;
  /** The member this one streams from while a standby; null: the current primary. */
  readonly upstream: string | null;
  /** The physical replication slot it uses on its upstream, or null. */
  readonly slot: string | null;
  /** Its own settings (the cluster-wide ones are in ClusterConfig.settings). */
  readonly settings: Readonly<Record<string, string>>;
  readonly dataDir: string;
  /** Where `/metrics` answers: metrics_port when set, else the member's port. */
  readonly metricsPort: number;
}

export interface ClusterConfig {
  /** The config file, absolute. */
  readonly file: string;
  readonly name: string;
  readonly host: string;
  /** null when every member has an absolute port. */
  readonly basePort: number | null;
  readonly dataRoot: string;
  /** The member initialized as primary by the first `cluster up`; later the state file decides. */
  readonly initialPrimary: string;
  /** As written, for the members' walship.conf; '' when replication is asynchronous. */
  readonly synchronousStandbyNames: string;
  /** The parsed form of synchronousStandbyNames; null when asynchronous. */
  readonly synchronous: SyncRepConfig | null;
  /** null: the nodes' default (on). */
  readonly synchronousCommit: SyncCommitLevel | null;
  /** Settings for every member, as text in walship.conf's units. */
  readonly settings: Readonly<Record<string, string>>;
  readonly members: readonly MemberConfig[];
  readonly failover: FailoverPolicy;
  /**
   * The partition proxy (proxy.ts), or null: with it, each member M has an inbound proxy on
   * `M.port + portOffset` (the monitor's health checks and lease grants reach M there) and an
   * outbound one on `M.port + 2 × portOffset` (M's primary_conninfo, forwarded to its current
   * upstream's inbound proxy), which `cluster partition` cuts or slows.
   */
  readonly proxy: ProxyConfig | null;
  /**
   * SCRAM-SHA-256 authentication (`auth: scram-sha-256`, or a mapping with `method`, `superuser`
   * and `replication_user`), or null (the nodes' trust default). With it, `cluster up` creates
   * every member with auth_method = scram-sha-256, the superuser and the replication user, their
   * passwords generated into the data root's passfile (cluster-auth.ts).
   */
  readonly auth: ClusterAuthConfig | null;
  /**
   * `tls: true`: the members serve TLS with certificates from a cluster CA in DATA_ROOT/tls, and
   * every connection in the cluster verifies them (sslmode verify-full; see tls.ts).
   */
  readonly tls: boolean;
  /**
   * Encryption at rest (`encryption: true`, or a mapping with `key_file` or `key_command`), or
   * null: the primary is initialized with --encrypt and the cluster key, standbys share its data
   * keys through their base backups, and every member's walship.conf names the key
   * (cluster-encryption.ts).
   */
  readonly encryption: ClusterEncryptionConfig | null;
}

/**
 * Where the members find the cluster key. `generated`: `encryption: true`, a key file in the
 * data root that the first `cluster up` writes (random, 0600), as it writes the passfile.
 */
export type ClusterEncryptionConfig =
  | { readonly keyFile: string; readonly generated: boolean }
  | { readonly keyCommand: string };

/** The key file `encryption: true` generates, in the data root. */
export const GENERATED_CLUSTER_KEY_FILE = 'cluster.key';

export interface ClusterAuthConfig {
  readonly method: 'scram-sha-256';
  /** Who the cluster's own commands (status, the monitor, drills, lag) connect as: every right. */
  readonly superuser: string;
  /** Who standbys stream as (primary_conninfo), and base backups, rewinds and slots connect as. */
  readonly replicationUser: string;
}

export const DEFAULT_CLUSTER_SUPERUSER = 'walship';
export const DEFAULT_CLUSTER_REPLICATION_USER = 'replicator';

export interface ProxyConfig {
  readonly portOffset: number;
}

export interface ConfigOverrides {
  /** --base-port: every member's port becomes this plus its offset. */
  basePort?: number;
  /** --data-root: relative to `cwd`. */
  dataRoot?: string;
  /** The directory --data-root is relative to (the process's working directory by default). */
  cwd?: string;
}

const TOP_LEVEL_KEYS = [
  'name',
  'host',
  'base_port',
  'data_root',
  'initial_primary',
  'synchronous_standby_names',
  'synchronous_commit',
  'settings',
  'failover',
  'proxy',
  'auth',
  'tls',
  'encryption',
  'nodes',
] as const;
const ENCRYPTION_KEYS = ['key_file', 'key_command'] as const;
const AUTH_KEYS = ['method', 'superuser', 'replication_user'] as const;
const AUTH_METHODS = ['scram-sha-256'] as const;
/** A user name: what walship_authid.json accepts, kept to plain characters in a config. */
const USER_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}$/;
const NODE_KEYS = ['name', 'port', 'port_offset', 'upstream', 'slot', 'settings'] as const;
const PROXY_KEYS = ['port_offset'] as const;
const FAILOVER_KEYS = [
  'mode',
  'health_check_interval',
  'missed_checks',
  'primary_lease',
  'enforce_lease',
  'maximum_lag_on_failover',
  'candidates',
  'auto_rejoin',
  'synchronous_mode',
] as const;

/**
 * Settings the toolkit writes itself, and where they come from instead. A config that set them
 * would be overwritten, or would break the members' identities (two members with one port).
 */
const MANAGED_SETTINGS: Readonly<Record<string, string>> = {
  port: 'each member\'s port comes from its "port" or "port_offset"',
  application_name: "a member's application_name is its name",
  primary_conninfo: 'a standby\'s primary_conninfo is written from its "upstream" (or the current primary)',
  primary_slot_name: 'a standby\'s primary_slot_name comes from its "slot"',
  synchronous_standby_names: 'set the top-level "synchronous_standby_names" key instead',
  synchronous_commit: 'set the top-level "synchronous_commit" key instead',
  require_primary_lease: 'it follows "failover.enforce_lease"',
  ssl: 'set the top-level "tls: true" instead: the toolkit makes the certificates and sets the ssl files',
  ssl_cert_file: 'set the top-level "tls: true" instead: the toolkit makes each member\'s certificate',
  ssl_key_file: 'set the top-level "tls: true" instead: the toolkit makes each member\'s key',
  ssl_ca_file: 'set the top-level "tls: true" instead: the toolkit makes the cluster\'s CA',
  cluster_key_file: 'set the top-level "encryption" key instead (true, or { key_file: PATH }): the toolkit names the key in every member\'s walship.conf',
  cluster_key_command: 'set the top-level "encryption" key instead ({ key_command: CMD }): the toolkit names the key in every member\'s walship.conf',
};

/** Settings fixed when the first member is created: standbys copy them, so one value holds for the cluster. */
const CLUSTER_WIDE_ONLY_SETTINGS = new Set(['wal_segment_size', 'data_checksums']);

/** Settings that must differ between members: one value for all would collide. */
const PER_MEMBER_ONLY_SETTINGS = new Set(['metrics_port']);

/** Reads and resolves a config file. Throws ClusterConfigError listing every problem. */
export function loadClusterConfig(file: string, overrides: ConfigOverrides = {}): ClusterConfig {
  const absolute = resolve(overrides.cwd ?? process.cwd(), file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ClusterError(ClusterErrorCode.configUnreadable, `could not read cluster config "${file}": ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`, {
      hint: code === 'ENOENT' ? 'Check the path given with -f; the examples are in cluster-configs/.' : 'Check that the file is readable.',
      cause: error,
    });
  }
  return parseClusterConfig(text, absolute, overrides);
}

/** Validates and resolves a config's text; `file` names it in problems and anchors relative paths. */
export function parseClusterConfig(text: string, file: string, overrides: ConfigOverrides = {}): ClusterConfig {
  const reader = new ConfigReader(text, file);
  const config = reader.read(overrides);
  if (reader.problems.length > 0 || config === null) throw new ClusterConfigError(file, sortProblems(reader.problems));
  return config;
}

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => (a.problem.line ?? 0) - (b.problem.line ?? 0) || a.index - b.index)
    .map(({ problem }) => problem);
}

type YamlNode = Node | null | undefined;

interface Field {
  node: YamlNode;
  /** The key's node: where a problem with the key itself is placed. */
  keyNode: YamlNode;
  path: string;
}

/** What a value of the wrong shape is called in a message. */
function describeNode(node: YamlNode): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const value = node.value;
    if (value === null) return 'null';
    if (typeof value === 'string') return `the string "${value}"`;
    return `${typeof value} ${String(value)}`;
  }
  return 'a value of another kind';
}

/** The known key closest to `key` (edit distance at most 3), for "did you mean". */
function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestDistance = 4;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

interface RawMember {
  index: number;
  path: string;
  node: YamlNode;
  name: string | null;
  nameNode: YamlNode;
  port: number | null;
  portOffset: number | null;
  portNode: YamlNode;
  upstream: string | null;
  upstreamNode: YamlNode;
  slot: string | null;
  settings: Map<string, { value: string; node: YamlNode }>;
}

class ConfigReader {
  readonly problems: ConfigProblem[] = [];
  private basePortRefused = false;
  /**
   * False when some member has no readable name (or the list itself is unreadable): names given
   * elsewhere (candidates, synchronous_standby_names, initial_primary) are then not checked
   * against the members, so that one mistake is not reported again at every mention.
   */
  private membersComplete = true;
  private readonly lines = new LineCounter();
  private readonly document: Document.Parsed;

  constructor(text: string, private readonly file: string) {
    this.document = parseDocument(text, { lineCounter: this.lines, uniqueKeys: true, prettyErrors: false });
    for (const error of this.document.errors) {
      const { line, col } = this.lines.linePos(error.pos[0]);
      const message = error.code === 'DUPLICATE_KEY' ? 'a key appears twice in one mapping' : `YAML syntax error: ${error.message.split('\n')[0]}`;
      this.problems.push({ file, path: '', line, column: col, message, hint: error.code === 'DUPLICATE_KEY' ? 'keep one of them' : undefined });
    }
  }

  private report(path: string, node: YamlNode, message: string, hint?: string): void {
    let line: number | null = null;
    let column: number | null = null;
    if (node !== null && node !== undefined && node.range !== undefined && node.range !== null) {
      const position = this.lines.linePos(node.range[0]);
      line = position.line;
      column = position.col;
    }
    this.problems.push({ file: this.file, path, line, column, message, ...(hint === undefined ? {} : { hint }) });
  }

  private resolveAlias(node: YamlNode): YamlNode {
    if (isAlias(node)) return (node.resolve(this.document) as Node | undefined) ?? null;
    return node;
  }

  /** The fields of a mapping; unknown keys are reported. Null when the node is not a mapping. */
  private mapping(node: YamlNode, path: string, known: readonly string[], what: string): Map<string, Field> | null {
    node = this.resolveAlias(node);
    if (!isMap(node)) {
      this.report(path, node, `${what} must be a mapping of "key: value" lines (got ${describeNode(node)})`);
      return null;
    }
    const fields = new Map<string, Field>();
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode;
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof key !== 'string') {
        this.report(path, keyNode, `keys must be plain words (got ${describeNode(keyNode)})`);
        continue;
      }
      const fieldPath = path === '' ? key : `${path}.${key}`;
      if (!known.includes(key)) {
        const suggestion = closestKey(key, known);
        this.report(fieldPath, keyNode, `unknown key "${key}" in ${what}`, suggestion === null ? `known keys: ${known.join(', ')}` : `did you mean "${suggestion}"?`);
        continue;
      }
      fields.set(key, { node: this.resolveAlias(pair.value as YamlNode), keyNode, path: fieldPath });
    }
    return fields;
  }

  private scalar(field: Field): unknown {
    if (!isScalar(field.node)) return undefined;
    return field.node.value;
  }

  private string(field: Field | undefined, options: { pattern?: RegExp; patternText?: string; allowEmpty?: boolean } = {}): string | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    if (typeof value !== 'string') {
      this.report(field.path, field.node ?? field.keyNode, `must be a string (got ${describeNode(field.node)})`);
      return null;
    }
    if (value === '' && options.allowEmpty !== true) {
      this.report(field.path, field.node, 'must not be empty');
      return null;
    }
    if (options.pattern !== undefined && !options.pattern.test(value)) {
      this.report(field.path, field.node, `"${value}" is not a valid name`, options.patternText);
      return null;
    }
    return value;
  }

  private integer(field: Field | undefined, min: number, max: number, what: string): number | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.report(field.path, field.node ?? field.keyNode, `${what} must be a whole number from ${min} to ${max} (got ${describeNode(field.node)})`);
      return null;
    }
    if (value < min || value > max) {
      this.report(field.path, field.node, `${what} ${value} is out of range (${min} .. ${max})`);
      return null;
    }
    return value;
  }

  private boolean(field: Field | undefined): boolean | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    if (typeof value !== 'boolean') {
      this.report(field.path, field.node ?? field.keyNode, `must be true or false (got ${describeNode(field.node)})`);
      return null;
    }
    return value;
  }

  private duration(field: Field | undefined): number | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    if (typeof value !== 'string' && typeof value !== 'number') {
      this.report(field.path, field.node ?? field.keyNode, `must be a duration like 500ms or 2s (got ${describeNode(field.node)})`);
      return null;
    }
    const parsed = parseDurationMs(value);
    if (!parsed.ok) {
      this.report(field.path, field.node, parsed.problem);
      return null;
    }
    return parsed.value;
  }

  private size(field: Field | undefined): number | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    if (typeof value !== 'string' && typeof value !== 'number') {
      this.report(field.path, field.node ?? field.keyNode, `must be a size like 16MB (got ${describeNode(field.node)})`);
      return null;
    }
    const parsed = parseSizeBytes(value);
    if (!parsed.ok) {
      this.report(field.path, field.node, parsed.problem);
      return null;
    }
    return parsed.value;
  }

  read(overrides: ConfigOverrides): ClusterConfig | null {
    if (this.problems.length > 0) return null;
    const root = this.document.contents as YamlNode;
    if (root === null || root === undefined) {
      this.report('', null, 'the file is empty', 'a cluster config needs at least "name", "data_root" and "nodes"; see cluster-configs/local-3node.yaml');
      return null;
    }
    const top = this.mapping(root, '', TOP_LEVEL_KEYS, 'the cluster config');
    if (top === null) return null;

    const name = this.required(top, 'name', root) ? this.string(top.get('name'), { pattern: CLUSTER_NAME_PATTERN, patternText: 'letters, digits, _ . and -, starting with a letter or digit, at most 63' }) : null;
    const host = top.has('host') ? this.string(top.get('host')) : DEFAULT_HOST;
    const dataRoot = this.readDataRoot(top, root, overrides);
    let basePort = this.integer(top.get('base_port'), 1, 65535, 'base_port');
    // A base port that was given but refused is reported once, not again at every offset.
    this.basePortRefused = top.has('base_port') && basePort === null;
    if (overrides.basePort !== undefined) {
      basePort = overrides.basePort;
      this.basePortRefused = false;
    }

    const globalSettings = this.readSettings(top.get('settings'), 'the cluster-wide settings', 'cluster');
    const members = this.readMembers(top, root, basePort, overrides);
    const memberNames = members.map((member) => member.name).filter((memberName): memberName is string => memberName !== null);

    const initialPrimary = this.readInitialPrimary(top, members);
    this.checkUpstreams(members, initialPrimary);
    this.checkPorts(members, globalSettings);
    this.checkSlots(members);
    const synchronous = this.readSynchronous(top, members);
    const synchronousCommit = this.readSynchronousCommit(top.get('synchronous_commit'));
    const failover = this.readFailover(top.get('failover'), memberNames);
    const proxy = this.readProxy(top.get('proxy'), members);
    const auth = this.readAuth(top.get('auth'), globalSettings, members);
    const tls = this.boolean(top.get('tls'));
    const encryption = dataRoot === null ? undefined : this.readEncryption(top.get('encryption'), dataRoot);

    if (
      this.problems.length > 0 || name === null || host === null || dataRoot === null || initialPrimary === null || failover === null ||
      synchronous === undefined || proxy === undefined || auth === undefined || encryption === undefined
    ) {
      return null;
    }
    const settingsText = (settings: Map<string, { value: string }>) => Object.fromEntries([...settings].map(([key, { value }]) => [key, value]));
    const globalMetricsPort = globalSettings.get('metrics_port')?.value;
    return {
      file: this.file,
      name,
      host,
      basePort,
      dataRoot,
      initialPrimary,
      synchronousStandbyNames: synchronous.text,
      synchronous: synchronous.config,
      synchronousCommit,
      settings: settingsText(globalSettings),
      failover,
      proxy,
      auth,
      tls: tls ?? false,
      encryption,
      members: members.map((member) => {
        const metricsPort = Number(member.settings.get('metrics_port')?.value ?? globalMetricsPort ?? 0);
        return {
          name: member.name!,
          port: member.port!,
          portOffset: member.portOffset,
          upstream: member.upstream,
          slot: member.slot,
          settings: settingsText(member.settings),
          dataDir: join(dataRoot, member.name!),
          metricsPort: metricsPort === 0 ? member.port! : metricsPort,
        };
      }),
    };
  }

  private required(fields: Map<string, Field>, key: string, parent: YamlNode, where = ''): boolean {
    if (fields.has(key)) return true;
    this.report(where === '' ? key : `${where}.${key}`, parent, `"${key}" is missing`);
    return false;
  }

  private readDataRoot(top: Map<string, Field>, root: YamlNode, overrides: ConfigOverrides): string | null {
    if (overrides.dataRoot !== undefined) {
      // A command-line path: relative to where the command runs, as any path given on a command line.
      return resolve(overrides.cwd ?? process.cwd(), overrides.dataRoot);
    }
    if (!this.required(top, 'data_root', root)) return null;
    const text = this.string(top.get('data_root'));
    if (text === null) return null;
    return isAbsolute(text) ? resolve(text) : resolve(dirname(this.file), text);
  }

  private readMembers(top: Map<string, Field>, root: YamlNode, basePort: number | null, overrides: ConfigOverrides): RawMember[] {
    if (!this.required(top, 'nodes', root)) {
      this.membersComplete = false;
      return [];
    }
    const field = top.get('nodes')!;
    if (!isSeq(field.node)) {
      this.membersComplete = false;
      this.report('nodes', field.node ?? field.keyNode, `must be a list of members ("- name: ..." items) (got ${describeNode(field.node)})`);
      return [];
    }
    const items = field.node.items as YamlNode[];
    if (items.length === 0) {
      this.report('nodes', field.node, 'the cluster has no members', 'list at least the primary');
      return [];
    }
    if (items.length > MEMBERS_MAX) this.report('nodes', field.node, `${items.length} members is more than the ${MEMBERS_MAX} a config may have`);
    const members: RawMember[] = [];
    const seen = new Map<string, string>();
    items.forEach((item, index) => {
      const path = `nodes[${index}]`;
      const member: RawMember = {
        index, path, node: item, name: null, nameNode: item, port: null, portOffset: null, portNode: item,
        upstream: null, upstreamNode: item, slot: null, settings: new Map(),
      };
      members.push(member);
      const fields = this.mapping(item, path, NODE_KEYS, `member ${index + 1}`);
      if (fields === null) return;
      if (this.required(fields, 'name', item, path)) {
        member.nameNode = fields.get('name')!.node;
        member.name = this.string(fields.get('name'), {
          pattern: MEMBER_NAME_PATTERN,
          patternText: 'member names are lower-case letters, digits and _, starting with a letter, at most 63: they are also the application_name, the slot name and the data directory name',
        });
        if (member.name !== null) {
          const earlier = seen.get(member.name);
          if (earlier !== undefined) {
            this.report(`${path}.name`, member.nameNode, `member name "${member.name}" is used twice (also ${earlier})`, 'give each member a name of its own');
            member.name = null;
          } else {
            seen.set(member.name, path);
          }
        }
      }
      this.readMemberPort(member, fields, item, path, basePort, overrides);
      const upstream = fields.get('upstream');
      if (upstream !== undefined) {
        member.upstreamNode = upstream.node;
        member.upstream = this.string(upstream);
      }
      const slot = fields.get('slot');
      if (slot !== undefined) member.slot = this.readSlot(slot, member.name);
      member.settings = this.readSettings(fields.get('settings'), `the settings of member ${member.name ?? index + 1}`, 'member');
    });
    if (members.some((member) => member.name === null)) this.membersComplete = false;
    return members;
  }

  private readMemberPort(member: RawMember, fields: Map<string, Field>, item: YamlNode, path: string, basePort: number | null, overrides: ConfigOverrides): void {
    const portField = fields.get('port');
    const offsetField = fields.get('port_offset');
    if (portField !== undefined && offsetField !== undefined) {
      this.report(`${path}.port`, portField.keyNode, 'give either "port" or "port_offset", not both');
      return;
    }
    if (portField === undefined && offsetField === undefined) {
      this.report(`${path}.port_offset`, item, 'the member has no port: give "port_offset" (added to base_port) or "port"');
      return;
    }
    if (portField !== undefined) {
      member.portNode = portField.node;
      member.port = this.integer(portField, 1, 65535, 'port');
      if (member.port !== null && overrides.basePort !== undefined) {
        this.report(`${path}.port`, portField.node, `--base-port cannot move member ${member.name ?? path}: its port ${member.port} is absolute`, 'write "port_offset" instead of "port", so that two copies of the cluster can run side by side');
      }
      return;
    }
    member.portNode = offsetField!.node;
    member.portOffset = this.integer(offsetField, 0, 65534, 'port_offset');
    if (member.portOffset === null) return;
    if (basePort === null) {
      if (this.basePortRefused) return;
      this.report(`${path}.port_offset`, offsetField!.node, 'a port offset needs "base_port" at the top of the file (or --base-port)');
      return;
    }
    const port = basePort + member.portOffset;
    if (port > 65535) {
      this.report(`${path}.port_offset`, offsetField!.node, `base port ${basePort} plus offset ${member.portOffset} is ${port}, beyond the last port (65535)`, 'lower base_port or the offset');
      return;
    }
    member.port = port;
  }

  private readSlot(field: Field, memberName: string | null): string | null {
    const value = this.scalar(field);
    if (value === false) return null;
    let slot: string;
    if (value === true) {
      if (memberName === null) return null;
      slot = memberName;
    } else if (typeof value === 'string') {
      slot = value;
    } else {
      this.report(field.path, field.node ?? field.keyNode, `must be a slot name, or true for a slot named after the member (got ${describeNode(field.node)})`);
      return null;
    }
    const problem = validateReplicationSlotName(slot);
    if (problem !== null) {
      this.report(field.path, field.node, problem.message, problem.hint);
      return null;
    }
    return slot;
  }

  /** Settings as text in walship.conf's form, each checked against the nodes' settings table. */
  private readSettings(field: Field | undefined, what: string, scope: 'cluster' | 'member'): Map<string, { value: string; node: YamlNode }> {
    const settings = new Map<string, { value: string; node: YamlNode }>();
    if (field === undefined) return settings;
    const node = field.node;
    if (!isMap(node)) {
      this.report(field.path, node ?? field.keyNode, `${what} must be a mapping of "name: value" lines (got ${describeNode(node)})`);
      return settings;
    }
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode;
      const rawName = isScalar(keyNode) ? keyNode.value : undefined;
      if (typeof rawName !== 'string') {
        this.report(field.path, keyNode, `setting names must be plain words (got ${describeNode(keyNode)})`);
        continue;
      }
      const path = `${field.path}.${rawName}`;
      let name: string;
      try {
        name = lookupSetting(rawName);
      } catch (error) {
        const { message, hint } = error as { message: string; hint?: string };
        this.report(path, keyNode, message, hint?.replace(/ Run "walship show -D DIR" to list the settings\./, '') || undefined);
        continue;
      }
      const managed = MANAGED_SETTINGS[name];
      if (managed !== undefined) {
        this.report(path, keyNode, `"${name}" is set by the cluster toolkit`, managed);
        continue;
      }
      if (scope === 'member' && CLUSTER_WIDE_ONLY_SETTINGS.has(name)) {
        this.report(path, keyNode, `"${name}" is fixed when the cluster is created and the same on every member`, 'set it in the cluster-wide "settings"');
        continue;
      }
      if (scope === 'cluster' && PER_MEMBER_ONLY_SETTINGS.has(name)) {
        this.report(path, keyNode, `"${name}" must differ between members: one value for all would collide`, "set it in each member's own settings");
        continue;
      }
      const valueNode = this.resolveAlias(pair.value as YamlNode);
      const value = isScalar(valueNode) ? valueNode.value : undefined;
      let text: string;
      if (typeof value === 'string') text = value;
      else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
      else if (typeof value === 'boolean') text = value ? 'on' : 'off';
      else {
        this.report(path, valueNode ?? keyNode, `the value must be a string, a number or true/false (got ${describeNode(valueNode)})`);
        continue;
      }
      try {
        parseSettingValue(name, text);
      } catch (error) {
        const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
        this.report(path, valueNode, detail === undefined ? message : `${message}: ${detail}`, hint);
        continue;
      }
      if (SETTING_DEFINITIONS[name as keyof typeof SETTING_DEFINITIONS] === undefined) continue;
      settings.set(name, { value: text, node: valueNode });
    }
    return settings;
  }

  private readInitialPrimary(top: Map<string, Field>, members: RawMember[]): string | null {
    const field = top.get('initial_primary');
    if (field === undefined) {
      // The first member, as written: the common case needs no extra key.
      return members[0]?.name ?? null;
    }
    const name = this.string(field);
    if (name === null) return null;
    if (!members.some((member) => member.name === name)) {
      if (!this.membersComplete) return null;
      this.report(field.path, field.node, `"${name}" is not a member of the cluster`, `members: ${members.map((member) => member.name).filter(Boolean).join(', ')}`);
      return null;
    }
    return name;
  }

  private checkUpstreams(members: RawMember[], initialPrimary: string | null): void {
    const byName = new Map(members.filter((member) => member.name !== null).map((member) => [member.name!, member]));
    for (const member of members) {
      if (member.upstream === null) continue;
      const path = `${member.path}.upstream`;
      if (member.upstream === member.name) {
        this.report(path, member.upstreamNode, `member ${member.name} names itself as its upstream`, 'leave "upstream" out to follow the current primary');
        member.upstream = null;
        continue;
      }
      if (!byName.has(member.upstream)) {
        if (this.membersComplete) this.report(path, member.upstreamNode, `upstream "${member.upstream}" is not a member of the cluster`, `members: ${[...byName.keys()].join(', ')}`);
        member.upstream = null;
        continue;
      }
      if (member.name !== null && member.name === initialPrimary) {
        this.report(path, member.upstreamNode, `member ${member.name} is the initial primary and cannot have an upstream`, 'a primary that becomes a standby follows the new primary; remove "upstream" here');
        member.upstream = null;
      }
    }
    // Each member has at most one upstream, so a cycle is a chain that comes back to a member.
    const reported = new Set<string>();
    for (const start of members) {
      if (start.name === null || reported.has(start.name)) continue;
      const chain: string[] = [start.name];
      let current = start;
      while (current.upstream !== null) {
        const next = byName.get(current.upstream);
        if (next === undefined || next.name === null) break;
        const seenAt = chain.indexOf(next.name);
        if (seenAt >= 0) {
          const cycle = [...chain.slice(seenAt), next.name];
          if (!cycle.some((name) => reported.has(name))) {
            for (const name of cycle) reported.add(name);
            const first = byName.get(cycle[0]!)!;
            this.report(`${first.path}.upstream`, first.upstreamNode, `upstreams form a cycle: ${cycle.join(' -> ')}`, 'a chain of upstreams must end at a member that follows the primary (no "upstream")');
          }
          break;
        }
        chain.push(next.name);
        current = next;
      }
    }
  }

  private checkPorts(members: RawMember[], globalSettings: Map<string, { value: string; node: YamlNode }>): void {
    const owners = new Map<number, string>();
    const claim = (port: number, owner: string, path: string, node: YamlNode) => {
      const earlier = owners.get(port);
      if (earlier !== undefined) {
        this.report(path, node, `port ${port} of ${owner} is also the port of ${earlier}`, 'give every member (and every metrics_port) a port of its own');
        return;
      }
      owners.set(port, owner);
    };
    for (const member of members) {
      if (member.port !== null) claim(member.port, `member ${member.name ?? member.index + 1}`, `${member.path}.${member.portOffset === null ? 'port' : 'port_offset'}`, member.portNode);
    }
    for (const member of members) {
      const metrics = member.settings.get('metrics_port') ?? globalSettings.get('metrics_port');
      if (metrics === undefined || Number(metrics.value) === 0) continue;
      claim(Number(metrics.value), `the metrics port of member ${member.name ?? member.index + 1}`, `${member.path}.settings.metrics_port`, metrics.node);
    }
  }

  /**
   * `auth: scram-sha-256` or `auth: { method: scram-sha-256, superuser: NAME, replication_user:
   * NAME }`; absent: none. auth_method in settings is refused (the key chooses it, and creates the
   * users it needs), and so are the password settings with it (SCRAM does not use them).
   * Undefined when refused.
   */
  private readAuth(field: Field | undefined, globalSettings: Map<string, { value: string; node: YamlNode }>, members: RawMember[]): ClusterAuthConfig | null | undefined {
    const scopes = [{ where: 'settings', settings: globalSettings }, ...members.map((member) => ({ where: `the settings of member ${member.name ?? member.index + 1}`, settings: member.settings }))];
    for (const { where, settings } of scopes) {
      const method = settings.get('auth_method');
      if (method !== undefined) {
        this.report('', method.node, `auth_method in ${where}: choose authentication with the top-level "auth" key`, 'write "auth: scram-sha-256" (it also creates the superuser and the replication user), or leave it out for trust');
        return undefined;
      }
    }
    if (field === undefined) return null;
    let method: unknown;
    let superuser = DEFAULT_CLUSTER_SUPERUSER;
    let replicationUser = DEFAULT_CLUSTER_REPLICATION_USER;
    if (isScalar(field.node)) {
      method = field.node.value;
      if (method === false || method === null) return null;
    } else {
      const fields = this.mapping(field.node, 'auth', AUTH_KEYS, 'auth');
      if (fields === null) return undefined;
      if (!fields.has('method')) {
        this.report('auth', field.node, 'auth needs a "method"', 'method: scram-sha-256');
        return undefined;
      }
      method = this.scalar(fields.get('method')!);
      const names = { superuser: fields.get('superuser'), replication_user: fields.get('replication_user') };
      for (const [key, nameField] of Object.entries(names)) {
        if (nameField === undefined) continue;
        const value = this.string(nameField, { pattern: USER_NAME_PATTERN, patternText: 'letters, digits, _ . @ and -, starting with a letter, digit or _, at most 63' });
        if (value === null) return undefined;
        if (key === 'superuser') superuser = value;
        else replicationUser = value;
      }
      if (superuser === replicationUser) {
        this.report('auth.replication_user', fields.get('replication_user')?.node ?? field.node, `the replication user must not be the superuser "${superuser}"`, 'give the replication user a name of its own (default: replicator)');
        return undefined;
      }
    }
    if (typeof method !== 'string' || !(AUTH_METHODS as readonly string[]).includes(method)) {
      this.report(field.path === 'auth' && !isScalar(field.node) ? 'auth.method' : 'auth', field.node, `unknown authentication method ${typeof method === 'string' ? `"${method}"` : describeNode(field.node)}`, `use ${AUTH_METHODS.join(', ')}, or leave auth out for trust`);
      return undefined;
    }
    for (const { where, settings } of scopes) {
      for (const name of ['password', 'replication_password']) {
        const given = settings.get(name);
        if (given !== undefined && given.value !== '') {
          this.report('', given.node, `${name} in ${where} is not used with auth: ${method}`, 'remove it: members authenticate with SCRAM as the users of the auth key');
          return undefined;
        }
      }
    }
    return { method: 'scram-sha-256', superuser, replicationUser };
  }

  /**
   * `encryption: true` (a key generated into the data root), `encryption: { key_file: PATH }` (a
   * key file of the operator's, relative to the config file) or `encryption: { key_command: CMD
   * }` (walship.conf's cluster_key_command: `sh -c`, %d the data directory); absent or false:
   * none. The key file is not read here (the config stays text in, config out): `cluster up`
   * checks it before the primary is made. Undefined when refused.
   */
  private readEncryption(field: Field | undefined, dataRoot: string): ClusterEncryptionConfig | null | undefined {
    if (field === undefined) return null;
    const hint = 'write "encryption: true" (cluster up generates the key), "encryption: { key_file: PATH }" or "encryption: { key_command: CMD }", or leave it out';
    if (isScalar(field.node)) {
      if (field.node.value === false || field.node.value === null) return null;
      if (field.node.value === true) return { keyFile: join(dataRoot, GENERATED_CLUSTER_KEY_FILE), generated: true };
      this.report(field.path, field.node, `encryption must be true, false or a mapping with key_file or key_command (got ${describeNode(field.node)})`, hint);
      return undefined;
    }
    const problemsBefore = this.problems.length;
    const fields = this.mapping(field.node, 'encryption', ENCRYPTION_KEYS, 'encryption');
    // An unknown key (a misspelt key_file) is the one problem to report, not also a missing key.
    if (fields === null || this.problems.length > problemsBefore) return undefined;
    const keyFile = fields.get('key_file');
    const keyCommand = fields.get('key_command');
    if ((keyFile === undefined) === (keyCommand === undefined)) {
      this.report('encryption', field.node, keyFile === undefined ? 'encryption needs "key_file" or "key_command"' : 'encryption takes "key_file" or "key_command", not both', hint);
      return undefined;
    }
    if (keyFile !== undefined) {
      const text = this.string(keyFile);
      if (text === null) return undefined;
      return { keyFile: isAbsolute(text) ? resolve(text) : resolve(dirname(this.file), text), generated: false };
    }
    const command = this.string(keyCommand);
    if (command === null) return undefined;
    return { keyCommand: command };
  }

  /**
   * `proxy: true` (port offset DEFAULT_PROXY_PORT_OFFSET) or `proxy: { port_offset: N }`; absent
   * or false: none. Every proxy port must be free of the members', their metrics ports' and the
   * other proxies'. Undefined when refused.
   */
  private readProxy(field: Field | undefined, members: RawMember[]): ProxyConfig | null | undefined {
    if (field === undefined) return null;
    let portOffset: number;
    if (isScalar(field.node) && typeof field.node.value === 'boolean') {
      if (!field.node.value) return null;
      portOffset = DEFAULT_PROXY_PORT_OFFSET;
    } else {
      const fields = this.mapping(field.node, 'proxy', PROXY_KEYS, 'the proxy');
      if (fields === null) return undefined;
      const offset = this.integer(fields.get('port_offset'), 1, 30_000, 'proxy.port_offset');
      if (offset === null && fields.has('port_offset')) return undefined;
      portOffset = offset ?? DEFAULT_PROXY_PORT_OFFSET;
    }
    const taken = new Map<number, string>();
    for (const member of members) {
      if (member.port === null) continue;
      taken.set(member.port, `member ${member.name ?? member.index + 1}`);
      const metrics = member.settings.get('metrics_port');
      if (metrics !== undefined && Number(metrics.value) > 0) taken.set(Number(metrics.value), `the metrics port of member ${member.name ?? member.index + 1}`);
    }
    for (const member of members) {
      if (member.port === null) continue;
      for (const [port, what] of [[member.port + portOffset, 'inbound'], [member.port + 2 * portOffset, 'outbound']] as const) {
        const owner = taken.get(port);
        if (port > 65535) {
          this.report(field.path, field.node ?? field.keyNode, `the ${what} proxy port of member ${member.name} would be ${port}, beyond 65535`, 'use a smaller port_offset or lower ports');
          return undefined;
        }
        if (owner !== undefined) {
          this.report(field.path, field.node ?? field.keyNode, `the ${what} proxy port of member ${member.name} (${port}) is also the port of ${owner}`, 'choose a port_offset that keeps the proxy ports apart from the members\' (the default, 100, leaves room for 50 members)');
          return undefined;
        }
        taken.set(port, `the ${what} proxy of member ${member.name}`);
      }
    }
    return { portOffset };
  }

  private checkSlots(members: RawMember[]): void {
    const owners = new Map<string, string>();
    for (const member of members) {
      if (member.slot === null) continue;
      const earlier = owners.get(member.slot);
      if (earlier !== undefined) {
        this.report(`${member.path}.slot`, member.node, `slot "${member.slot}" is also the slot of member ${earlier}`, 'two standbys cannot share a slot; give each its own');
        continue;
      }
      owners.set(member.slot, member.name ?? String(member.index + 1));
    }
  }

  /** undefined when refused; { text: '' , config: null } when asynchronous. */
  private readSynchronous(top: Map<string, Field>, members: RawMember[]): { text: string; config: SyncRepConfig | null } | undefined {
    const field = top.get('synchronous_standby_names');
    if (field === undefined) return { text: '', config: null };
    const text = this.string(field, { allowEmpty: true });
    if (text === null) return undefined;
    let config: SyncRepConfig | null;
    try {
      config = parseSynchronousStandbyNames(text);
    } catch (error) {
      if (!(error instanceof SyncRepConfigError)) throw error;
      this.report(field.path, field.node, error.detail === undefined ? error.message : `${error.message}: ${error.detail}`, error.hint);
      return undefined;
    }
    if (config === null) return { text, config: null };
    const byName = new Map(members.filter((member) => member.name !== null).map((member) => [member.name!.toLowerCase(), member]));
    let ok = true;
    const named = new Set<string>();
    for (const memberName of config.memberNames) {
      if (memberName === '*') continue;
      const member = byName.get(memberName.toLowerCase());
      if (member === undefined) {
        if (this.membersComplete) this.report(field.path, field.node, `"${memberName}" is not a member of the cluster`, `synchronous standbys are named by member name; members: ${[...byName.keys()].join(', ')}`);
        ok = false;
        continue;
      }
      if (member.upstream !== null) {
        this.report(field.path, field.node, `member ${member.name} streams from ${member.upstream}, not from the primary, so it can never be a synchronous standby`, `remove it from synchronous_standby_names, or remove its "upstream"`);
        ok = false;
        continue;
      }
      named.add(member.name!);
    }
    const wildcard = config.memberNames.includes('*');
    const possible = wildcard ? Math.max(0, members.length - 1) : named.size;
    if (ok && config.numSync > possible) {
      this.report(
        field.path,
        field.node,
        `${config.numSync} synchronous standbys are required but only ${possible} ${wildcard ? 'standbys exist' : `member${possible === 1 ? ' is' : 's are'} named`}: no commit could ever be acknowledged`,
        'lower the number, or name more members',
      );
      ok = false;
    }
    return ok ? { text, config } : undefined;
  }

  private readSynchronousCommit(field: Field | undefined): SyncCommitLevel | null {
    if (field === undefined) return null;
    const value = this.scalar(field);
    // PostgreSQL takes the boolean spellings for on and off.
    const text = typeof value === 'boolean' ? (value ? 'on' : 'off') : value;
    const level = SYNC_COMMIT_LEVELS.find((candidate) => candidate === text);
    if (level === undefined) {
      this.report(field.path, field.node ?? field.keyNode, `${describeNode(field.node)} is not a synchronous_commit level`, `use one of ${SYNC_COMMIT_LEVELS.join(', ')}`);
      return null;
    }
    return level;
  }

  private readFailover(field: Field | undefined, memberNames: string[]): FailoverPolicy | null {
    const defaults: FailoverPolicy = {
      mode: DEFAULT_FAILOVER_MODE,
      healthCheckIntervalMs: DEFAULT_HEALTH_CHECK_INTERVAL_MS,
      missedChecks: DEFAULT_MISSED_CHECKS,
      primaryLeaseMs: DEFAULT_PRIMARY_LEASE_MS,
      enforceLease: DEFAULT_FAILOVER_MODE === 'automatic',
      maximumLagOnFailoverBytes: DEFAULT_MAXIMUM_LAG_ON_FAILOVER_BYTES,
      candidates: memberNames,
      autoRejoin: true,
      synchronousMode: 'relaxed',
    };
    if (field === undefined) return defaults;
    const fields = this.mapping(field.node, 'failover', FAILOVER_KEYS, 'the failover policy');
    if (fields === null) return null;
    const before = this.problems.length;

    let mode: FailoverMode = defaults.mode;
    const modeField = fields.get('mode');
    if (modeField !== undefined) {
      const value = this.scalar(modeField);
      if (value === 'manual' || value === 'automatic') mode = value;
      else this.report(modeField.path, modeField.node ?? modeField.keyNode, `${describeNode(modeField.node)} is not a failover mode`, 'use manual or automatic');
    }
    const interval = this.duration(fields.get('health_check_interval')) ?? defaults.healthCheckIntervalMs;
    const intervalField = fields.get('health_check_interval');
    if (intervalField !== undefined && (interval <= 0 || interval > HEALTH_CHECK_INTERVAL_MAX_MS)) {
      this.report(intervalField.path, intervalField.node, `health_check_interval must be more than 0 and at most ${HEALTH_CHECK_INTERVAL_MAX_MS / 1000}s`);
    }
    const missedChecks = this.integer(fields.get('missed_checks'), 1, MISSED_CHECKS_MAX, 'missed_checks') ?? defaults.missedChecks;
    const lease = this.duration(fields.get('primary_lease')) ?? defaults.primaryLeaseMs;
    const leaseField = fields.get('primary_lease');
    if (lease <= interval) {
      this.report(
        leaseField?.path ?? 'failover.primary_lease',
        leaseField?.node ?? intervalField?.node ?? field.node,
        `primary_lease (${lease}ms) must be longer than health_check_interval (${interval}ms): the primary would lose its lease between two renewals`,
        'make the lease at least two health-check intervals',
      );
    }
    const enforceLeaseField = fields.get('enforce_lease');
    const enforceLease = this.boolean(enforceLeaseField) ?? mode === 'automatic';
    if (enforceLease && mode !== 'automatic') {
      this.report(
        enforceLeaseField?.path ?? 'failover.enforce_lease',
        enforceLeaseField?.node ?? enforceLeaseField?.keyNode ?? field.node,
        'enforce_lease needs mode: automatic: the failover monitor is what grants the primary its lease',
        'set mode: automatic, or leave enforce_lease out (off in manual mode)',
      );
    }
    const maximumLag = this.size(fields.get('maximum_lag_on_failover')) ?? defaults.maximumLagOnFailoverBytes;
    const autoRejoin = this.boolean(fields.get('auto_rejoin')) ?? defaults.autoRejoin;
    let synchronousMode: SynchronousMode = defaults.synchronousMode;
    const synchronousModeField = fields.get('synchronous_mode');
    if (synchronousModeField !== undefined) {
      const value = this.scalar(synchronousModeField);
      if (value === 'strict' || value === 'relaxed') synchronousMode = value;
      else this.report(synchronousModeField.path, synchronousModeField.node ?? synchronousModeField.keyNode, `${describeNode(synchronousModeField.node)} is not a synchronous mode`, 'use strict or relaxed');
    }
    const candidates = this.readCandidates(fields.get('candidates'), memberNames) ?? defaults.candidates;
    if (this.problems.length > before) return null;
    return {
      mode,
      healthCheckIntervalMs: interval,
      missedChecks,
      primaryLeaseMs: lease,
      enforceLease,
      maximumLagOnFailoverBytes: maximumLag,
      candidates,
      autoRejoin,
      synchronousMode,
    };
  }

  private readCandidates(field: Field | undefined, memberNames: string[]): string[] | null {
    if (field === undefined) return null;
    if (!isSeq(field.node)) {
      this.report(field.path, field.node ?? field.keyNode, `must be a list of member names (got ${describeNode(field.node)})`);
      return null;
    }
    const candidates: string[] = [];
    (field.node.items as YamlNode[]).forEach((item, index) => {
      const path = `${field.path}[${index}]`;
      const value = isScalar(item) ? item.value : undefined;
      if (typeof value !== 'string') {
        this.report(path, item, `must be a member name (got ${describeNode(item)})`);
        return;
      }
      if (!memberNames.includes(value)) {
        if (this.membersComplete) this.report(path, item, `"${value}" is not a member of the cluster`, `members: ${memberNames.join(', ')}`);
        return;
      }
      if (candidates.includes(value)) {
        this.report(path, item, `member ${value} is listed twice`);
        return;
      }
      candidates.push(value);
    });
    if (candidates.length === 0 && (field.node.items as YamlNode[]).length === 0) {
      this.report(field.path, field.node, 'no member may be promoted: the cluster could never fail over', 'list at least one member, or leave "candidates" out to allow all');
    }
    return candidates;
  }
}

/** A member by name, or a ClusterError naming the members there are. */
export function findMember(config: ClusterConfig, name: string): MemberConfig {
  const member = config.members.find((candidate) => candidate.name === name);
  if (member === undefined) {
    throw new ClusterError(ClusterErrorCode.unknownMember, `cluster ${config.name} has no member "${name}"`, {
      detail: `Its members are ${config.members.map((candidate) => candidate.name).join(', ')} (${config.file}).`,
      hint: 'Give one of those names.',
    });
  }
  return member;
}

/** A member's address as the nodes and the CLI write it. */
export function memberAddress(config: ClusterConfig, member: MemberConfig): string {
  return hostPort(config, member.port);
}

function hostPort(config: ClusterConfig, port: number): string {
  return config.host.includes(':') ? `[${config.host}]:${port}` : `${config.host}:${port}`;
}

/** The ports of a member's two proxies (null without the proxy): inbound (to it) and outbound (its stream from its upstream). */
export function proxyPorts(config: ClusterConfig, member: MemberConfig): { inbound: number; outbound: number } | null {
  return config.proxy === null ? null : { inbound: member.port + config.proxy.portOffset, outbound: member.port + 2 * config.proxy.portOffset };
}

/**
 * Where the failover monitor reaches a member: through its inbound proxy when there is one (so
 * that `cluster partition` cuts the monitor off it), else its own address.
 */
export function monitorAddress(config: ClusterConfig, member: MemberConfig): string {
  const ports = proxyPorts(config, member);
  return ports === null ? memberAddress(config, member) : hostPort(config, ports.inbound);
}

/** The address a standby's primary_conninfo names: its outbound proxy, or its upstream itself. */
export function streamAddress(config: ClusterConfig, member: MemberConfig, upstream: MemberConfig): string {
  const ports = proxyPorts(config, member);
  return ports === null ? memberAddress(config, upstream) : hostPort(config, ports.outbound);
}
