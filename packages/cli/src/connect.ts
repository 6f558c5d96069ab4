/**
 * Sessions with nodes for the data and admin commands: connecting with the credentials from the
 * environment, choosing a node from a `--node a:1,b:2` list, and turning client errors into the
 * CLI's messages and exit statuses (3 when no node can be reached, 1 otherwise).
 */
import { clientErrorFields, CLIENT_WAIT_FOREVER_MS, connectClient, type NodeClient } from './adapters.js';
import { CliError, ExitCode } from './cli-error.js';
import { resolveCredentials } from './credentials.js';
import { sslOptions } from './ssl-env.js';
import type { CliIo } from './io.js';
import { formatNodeAddress, type NodeAddress, type TargetSessionAttrs } from './options.js';

export type { TargetSessionAttrs } from './options.js';

/** What a session is for: writes go to a primary; reads and admin calls to whichever node answers. */
export type SessionPurpose = 'read' | 'write' | 'admin';

export interface SessionOptions {
  purpose: SessionPurpose;
  /** For reads from a list of nodes (default `any`). */
  targetSessionAttrs?: TargetSessionAttrs;
  /** From --timeout; undefined waits as long as the operation does. */
  timeoutMs?: number;
  applicationName?: string;
}

/** Codes (client codes and socket errnos) that mean the node could not be reached at all. */
const UNREACHABLE_CODES = new Set([
  'connection_failure',
  'connection_refused',
  'connection_failed',
  'unreachable',
  'connect_timeout',
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
]);

const AUTHENTICATION_CODES = new Set(['invalid_password', 'authentication_failed']);

function connectionError(node: NodeAddress, error: unknown): CliError {
  const fields = clientErrorFields(error);
  if (fields.code !== undefined && AUTHENTICATION_CODES.has(fields.code)) {
    return new CliError(ExitCode.failed, `connection to node at ${formatNodeAddress(node)} failed: ${fields.message}`, {
      detail: fields.detail,
      hint: 'Give the password in WALSHIP_PASSWORD, or a password file in WALSHIP_PASSFILE (host:port:user:password lines).',
      cause: error,
    });
  }
  if (fields.code !== undefined && !UNREACHABLE_CODES.has(fields.code) && !fields.code.startsWith('E')) {
    // The node answered and refused the session (starting up, shutting down, too many clients).
    return new CliError(ExitCode.failed, `connection to node at ${formatNodeAddress(node)} failed: ${fields.message}`, {
      detail: fields.detail,
      hint: fields.hint ?? `Check the node's state with "walship isready --node ${formatNodeAddress(node)}", then try again.`,
      cause: error,
    });
  }
  return new CliError(ExitCode.unreachable, `could not connect to node at ${formatNodeAddress(node)}`, {
    detail: [fields.message, fields.detail].filter((part) => part !== undefined).join(' '),
    hint: `Is the node running and accepting connections on that address? Start it with "walship start -D DIR", or check --node and WALSHIP_NODE.`,
    cause: error,
  });
}

async function connectOne(node: NodeAddress, io: CliIo, options: SessionOptions): Promise<NodeClient> {
  const credentials = resolveCredentials(io, node);
  try {
    return await connectClient({
      host: node.host,
      port: node.port,
      ...credentials,
      ...sslOptions(io),
      applicationName: options.applicationName ?? 'walship',
      timeoutMs: options.timeoutMs ?? CLIENT_WAIT_FOREVER_MS,
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw connectionError(node, error);
  }
}

async function closeQuietly(client: NodeClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // Closing is best effort: the command's outcome is already decided.
  }
}

/**
 * Connects to the first node of the list that answers (for a write, the first that is a
 * primary) and returns the session and its address.
 */
export async function openSession(nodes: NodeAddress[], io: CliIo, options: SessionOptions): Promise<{ client: NodeClient; node: NodeAddress }> {
  let lastError: CliError | null = null;
  const standbys: NodeAddress[] = [];
  const primaries: Array<{ client: NodeClient; node: NodeAddress }> = [];
  for (const node of nodes) {
    let client: NodeClient;
    try {
      client = await connectOne(node, io, options);
    } catch (error) {
      if (!(error instanceof CliError)) throw error;
      lastError = error;
      continue;
    }
    const wanted = wantedRole(options);
    if (wanted === null || nodes.length === 1) return { client, node };
    // target_session_attrs: skip members in the other role when a list was given.
    const status = await client.status().catch(() => null);
    if (status !== null && status.role === wanted) return { client, node };
    if (status !== null && status.role === 'primary') primaries.push({ client, node });
    else await closeQuietly(client);
    if (status === null || status.role === 'standby') standbys.push(node);
  }
  const fallback = primaries.shift();
  for (const other of primaries) await closeQuietly(other.client);
  if (fallback !== undefined && options.targetSessionAttrs === 'prefer-standby') return fallback;
  if (fallback !== undefined) await closeQuietly(fallback.client);
  if (wantedRole(options) === 'standby' && fallback !== undefined) {
    throw new CliError(ExitCode.failed, 'no standby among the given nodes', {
      detail: `Answering as primary: ${[fallback, ...primaries].map((p) => formatNodeAddress(p.node)).join(', ')}.`,
      hint: 'Give --target-session-attrs any or prefer-standby to read from the primary, or add a standby to the list.',
    });
  }
  if (standbys.length > 0 && standbys.length === nodes.length) {
    throw new CliError(ExitCode.failed, 'no primary among the given nodes: all are read-only standbys', {
      detail: `Standbys: ${standbys.map(formatNodeAddress).join(', ')}.`,
      hint: 'Add the primary to --node, or promote a standby with walship promote.',
    });
  }
  throw lastError ?? new CliError(ExitCode.usage, 'no node given', { hint: 'Give --node HOST:PORT.' });
}

/** The role a session from a list must have: writes and read-write reads a primary, standby reads a standby. */
function wantedRole(options: SessionOptions): 'primary' | 'standby' | null {
  if (options.purpose === 'write') return 'primary';
  switch (options.targetSessionAttrs) {
    case 'read-write':
    case 'primary':
      return 'primary';
    case 'read-only':
    case 'standby':
    case 'prefer-standby':
      return 'standby';
    default:
      return null;
  }
}

/** Runs `body` with a session and closes it afterwards, turning client errors into CLI errors. */
export async function withSession<T>(
  nodes: NodeAddress[],
  io: CliIo,
  options: SessionOptions,
  body: (client: NodeClient, node: NodeAddress) => Promise<T>,
): Promise<T> {
  const { client, node } = await openSession(nodes, io, options);
  try {
    return await body(client, node);
  } catch (error) {
    throw describeClientError(error, node, options);
  } finally {
    await closeQuietly(client);
  }
}

/** A client error during an operation, as the CLI reports it. */
export function describeClientError(error: unknown, node: NodeAddress, options: SessionOptions): unknown {
  if (error instanceof CliError) return error;
  const fields = clientErrorFields(error);
  const address = formatNodeAddress(node);
  switch (fields.code) {
    case 'indeterminate':
      if (fields.lsn !== undefined) {
        // The node ended the commit's wait for its synchronous standbys: committed there, not confirmed.
        return new CliError(ExitCode.failed, `the transaction committed locally at ${fields.lsn} but is not yet confirmed by the synchronous standbys`, {
          detail: [fields.message, fields.detail].filter((part) => part !== undefined).join(': '),
          hint: `The write is indeterminate: a failover could lose it. walship wait-lsn --node STANDBY ${fields.lsn} tells when a standby has it; walship status shows the synchronous standbys.`,
          cause: error,
        });
      }
      return new CliError(ExitCode.failed, 'the write may or may not have been committed', {
        detail: fields.message,
        hint: 'The connection or the wait ended before the commit was acknowledged; read the key back (walship get) to find out.',
        cause: error,
      });
    case 'timeout':
      return new CliError(ExitCode.failed, `the operation timed out${options.timeoutMs === undefined ? '' : ` after ${options.timeoutMs / 1000} s`}`, {
        detail: fields.message,
        hint:
          options.purpose === 'write'
            ? 'The write may or may not have been committed. If commits wait for synchronous standbys, check them with walship status; or raise --timeout.'
            : 'Raise --timeout, or check the node with walship status.',
        cause: error,
      });
    case 'read_only_transaction':
      return new CliError(ExitCode.failed, `cannot write to node at ${address}: read-only standby`, {
        detail: fields.message,
        hint: 'Send writes to the primary; walship status --node HOST:PORT shows the role of a node.',
        cause: error,
      });
    case 'connection_lost':
      if (options.purpose === 'write') {
        return new CliError(ExitCode.failed, 'the connection was lost: the write may or may not have been committed', {
          detail: fields.message,
          hint: 'Read the key back (walship get) to find out.',
          cause: error,
        });
      }
      return new CliError(ExitCode.unreachable, `lost the connection to node at ${address}`, {
        detail: fields.message,
        hint: `Check that the node is running (walship isready --node ${address}), then try again.`,
        cause: error,
      });
    default:
      if (fields.code !== undefined && UNREACHABLE_CODES.has(fields.code)) return connectionError(node, error);
      return new CliError(ExitCode.failed, fields.message, {
        detail: fields.detail,
        hint: fields.hint ?? 'See the node\'s log (DATADIR/log) for more.',
        cause: error,
      });
  }
}

/** The calls a read command makes: a session to one node, or the cluster's current primary. */
export type ReadClient = Pick<NodeClient, 'get' | 'range'>;

/**
 * A read command's session. One node, or a list read with target_session_attrs `any`, `standby`
 * (`read-only`) or `prefer-standby`: one member, as withSession picks it. A list read with
 * `read-write` (`primary`), as `-f CLUSTER.yaml` users expect when they want what was just
 * written: whichever member is the primary now, followed across a failover like a write, a read
 * being sent again whenever it failed for want of a primary.
 */
export async function withReadSession<T>(nodes: NodeAddress[], io: CliIo, options: SessionOptions, body: (client: ReadClient) => Promise<T>): Promise<T> {
  const attrs = options.targetSessionAttrs ?? 'any';
  if (nodes.length <= 1 || (attrs !== 'read-write' && attrs !== 'primary')) return withSession(nodes, io, options, body);
  return withFailoverClient(nodes, io, options, body);
}

/** The calls a write command makes: a session to one node, or the cluster's current primary. */
export type WriteClient = Pick<NodeClient, 'put' | 'del'>;

/**
 * A write command's session. One node: that node, as withSession (a standby refuses at once with
 * "read-only standby"). A list (`--node a:1,b:2`, or every member of `-f CLUSTER.yaml`): the
 * member that is the primary now, found and followed across a failover as libpq's
 * target_session_attrs=read-write (@walship/client's WalshipFailoverClient); the write is sent
 * again only when it certainly did nothing, for as long as --timeout allows (30 s without).
 */
export async function withWriteSession<T>(nodes: NodeAddress[], io: CliIo, options: SessionOptions, body: (client: WriteClient) => Promise<T>): Promise<T> {
  if (nodes.length <= 1) return withSession(nodes, io, options, body);
  return withFailoverClient(nodes, io, options, body);
}

/** Runs `body` on a WalshipFailoverClient over `nodes`, turning its errors into CLI errors. */
async function withFailoverClient<T>(nodes: NodeAddress[], io: CliIo, options: SessionOptions, body: (client: WriteClient & ReadClient) => Promise<T>): Promise<T> {
  const { WalshipFailoverClient } = await import('@walship/client');
  const credentials = resolveCredentials(io, nodes[0]!);
  let client: Awaited<ReturnType<typeof WalshipFailoverClient.connect>>;
  try {
    client = await WalshipFailoverClient.connect({
      members: nodes.map((node) => ({ host: node.host, port: node.port })),
      connect: connectClient,
      ...(credentials.user === undefined ? {} : { user: credentials.user }),
      ...(typeof credentials.password === 'string' ? { password: credentials.password } : {}),
      ...sslOptions(io),
      applicationName: options.applicationName ?? 'walship',
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs, failoverTimeoutMs: options.timeoutMs }),
    });
  } catch (error) {
    const fields = clientErrorFields(error);
    throw new CliError(ExitCode.unreachable, `no primary among ${nodes.map(formatNodeAddress).join(', ')}`, {
      detail: fields.message,
      hint: 'Every node answered as a standby or not at all: a failover may be under way (walship cluster status -f FILE), or give the right nodes.',
      cause: error,
    });
  }
  const where = (): NodeAddress => {
    const address = client.primaryAddress;
    const colon = address?.lastIndexOf(':') ?? -1;
    return address === null || colon < 0 ? nodes[0]! : { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
  };
  try {
    return await body(client as unknown as WriteClient & ReadClient);
  } catch (error) {
    throw describeClientError(error, where(), options);
  } finally {
    await client.close().catch(() => undefined);
  }
}
