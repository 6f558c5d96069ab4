/**
 * The cluster toolkit's NodeControl port (`@walship/cluster`), done with this program's own node
 * commands run in-process: a cluster member is created, copied, started, promoted and rewound
 * exactly as `walship init`, `basebackup --standby`, `start`, `promote` and `rewind` do it by
 * hand, with their checks and their error messages. What those commands print on stdout is kept
 * from the cluster command's own output (its --json document stays the only one); what they
 * print on stderr (warnings, a dying server's log, base backup progress) passes through.
 */
import type { LeaseGrantOutcome, LeaseGrantRequest, NodeControl, NodeSession, NodeStatusView, SettingPairs } from '@walship/cluster';
import { connectClient } from './adapters.js';
import { CliError } from './cli-error.js';
import { resolveCredentials } from './credentials.js';
import { sslOptions } from './ssl-env.js';
import type { CliIo } from './io.js';
import { parseNodeAddress } from './options.js';

export interface NodeControlChoices {
  /** Draw base backup progress even when stderr is not a terminal. */
  progress?: boolean;
  /** No progress from the node commands. */
  quiet?: boolean;
}

/**
 * An io whose stdout is collected (the node command's result). Its stderr (warnings, the crash
 * recovery a rewind runs, base backup progress) reaches the caller's stderr when progress is
 * shown; otherwise it is kept and, if the command fails, added to the error's detail, where the
 * reason usually is (a server's last log lines when it dies during start).
 */
function capturingIo(io: CliIo, showStderr: boolean): { io: CliIo; stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  const text = (chunk: string | Uint8Array) => (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
  return {
    io: {
      stdout: { write: (chunk: string | Uint8Array) => (out.push(text(chunk)), true), isTTY: false },
      stderr: showStderr ? io.stderr : { write: (chunk: string | Uint8Array) => (err.push(text(chunk)), true), isTTY: false },
      stdin: io.stdin,
      env: io.env,
    },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}

/** Lines of a failed node command's stderr kept in the error's detail. */
const STDERR_LINES_IN_ERROR_MAX = 20;

/** Runs a node command; on failure, its hidden stderr joins the error's detail. */
async function runNodeCommand<T>(io: CliIo, showStderr: boolean, body: (captured: ReturnType<typeof capturingIo>) => Promise<T>): Promise<T> {
  const captured = capturingIo(io, showStderr);
  try {
    return await body(captured);
  } catch (error) {
    const hidden = captured.stderr().split('\n').filter((line) => line.trim() !== '' && !line.startsWith('walship: error:')).slice(-STDERR_LINES_IN_ERROR_MAX);
    if (hidden.length > 0 && error instanceof CliError) {
      throw new CliError(error.exitCode, error.message, { detail: [error.detail, ...hidden].filter((part) => part !== undefined && part !== '').join('\n'), hint: error.hint, cause: error });
    }
    throw error;
  }
}

/** The one JSON document a node command printed with --json. */
function jsonResult<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CliError(1, `${what} printed no JSON result`, { detail: text.slice(0, 500), hint: 'This is a bug in walship; report it.' });
  }
}

const pairs = (settings: SettingPairs): Array<[string, string]> => settings.map(([name, value]) => [name, value]);

/**
 * An encrypted member's init: the cluster's key settings (`encryption` in its config) become
 * `walship init --encrypt --key-file F` or `--key-command C`, as a person would type it (init
 * itself refuses them as plain --set: it writes them once the key opened the new keys).
 */
function initEncryption(settings: Array<[string, string]>): { set: Array<[string, string]>; encrypt?: true; keyFile?: string; keyCommand?: string } {
  const keyFile = settings.find(([name]) => name === 'cluster_key_file')?.[1] ?? '';
  const keyCommand = settings.find(([name]) => name === 'cluster_key_command')?.[1] ?? '';
  const set = settings.filter(([name]) => name !== 'cluster_key_file' && name !== 'cluster_key_command');
  if (keyFile !== '') return { set, encrypt: true, keyFile };
  if (keyCommand !== '') return { set, encrypt: true, keyCommand };
  return { set };
}

/**
 * The io a node command runs with when the cluster knows the password its replication
 * connection needs (the upstream's replication_password): given as WALSHIP_PASSWORD, as a person
 * would, so that the command's own credential rules (and primary_conninfo's password) apply.
 */
function withPassword(io: CliIo, password: string | undefined, user?: string): CliIo {
  if (password === undefined) return io;
  return { ...io, env: { ...io.env, WALSHIP_PASSWORD: password, ...(user === undefined ? {} : { WALSHIP_USER: user }) } };
}

type NodeClient = Awaited<ReturnType<typeof connectClient>>;

/**
 * A session with a node for a probe or a lease grant, with the environment's credentials; null
 * when it cannot be opened. A prompt would hang a probe: only a password from the environment
 * is used here.
 */
async function connectProbe(io: CliIo, address: string, applicationName: string, timeoutMs: number): Promise<NodeClient | null> {
  const node = parseNodeAddress(address);
  const credentials = resolveCredentials(io, node);
  try {
    return await connectClient({
      host: node.host, port: node.port, applicationName, timeoutMs,
      ...sslOptions(io),
      ...(credentials.user === undefined ? {} : { user: credentials.user }),
      ...(typeof credentials.password === 'string' ? { password: credentials.password } : {}),
    });
  } catch {
    return null;
  }
}

/** A lease grant on an open session: refused with the node's message, or not answered (null). */
async function grantOn(client: NodeClient, grant: LeaseGrantRequest, timeoutMs: number): Promise<LeaseGrantOutcome> {
  try {
    const { expiresInMs } = await client.grantLease({ ...grant }, { timeoutMs });
    return { granted: true, expiresInMs };
  } catch (error) {
    const fields = error as { code?: string; message?: string };
    const answered = fields.code !== undefined && fields.code !== 'timeout' && fields.code !== 'connection_lost' && fields.code !== 'indeterminate';
    return { granted: false, refused: answered ? (fields.message ?? String(error)) : null };
  }
}

export function createNodeControl(io: CliIo, choices: NodeControlChoices = {}): NodeControl {
  const shown = choices.quiet !== true && (choices.progress === true || io.stderr.isTTY === true);
  const node = <T>(body: (captured: ReturnType<typeof capturingIo>) => Promise<T>) => runNodeCommand(io, shown, body);
  return {
    async init({ dataDir, port, settings, users }) {
      const { run } = await import('./commands/init.js');
      const encryption = initEncryption(pairs(settings));
      if (users === undefined) {
        await node((captured) => run({ dataDir, port, ...encryption }, captured.io));
        return;
      }
      // initdb -A scram-sha-256 with the superuser's password, then the replication user.
      const withoutMethod = encryption.set.filter(([name]) => name !== 'auth_method');
      await node((captured) => run({ dataDir, port, ...encryption, set: withoutMethod, auth: 'scram-sha-256', username: users.superuser.name }, withPassword(captured.io, users.superuser.password)));
      const [{ readUsersFile, writeUsersFile }, { buildScramVerifier, formatScramVerifier }] = await Promise.all([
        import('@walship/server/auth/users-file'),
        import('@walship/protocol'),
      ]);
      const file = readUsersFile(dataDir)!;
      file.users.set(users.replication.name, { rights: ['replication'], verifier: formatScramVerifier(buildScramVerifier(users.replication.password)) });
      writeUsersFile(dataDir, file);
    },

    async start({ dataDir, timeoutMs }) {
      const { run } = await import('./commands/start.js');
      await node((captured) => run({ dataDir, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) }, captured.io));
    },

    async stop({ dataDir, mode, timeoutMs }) {
      const { run } = await import('./commands/stop.js');
      await node((captured) => run({ dataDir, mode, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) }, captured.io));
    },

    async baseBackup({ from, dataDir, port, settings, slot, user, password }) {
      const { run } = await import('./commands/basebackup.js');
      return node(async (captured) => {
        await run(
          {
            from: parseNodeAddress(from), dataDir, standby: true, port, set: pairs(settings), json: true,
            ...(slot === null ? {} : { slot }), ...(choices.progress === true ? { progress: true } : {}), ...(shown ? {} : { quiet: true }),
          },
          withPassword(captured.io, password, user),
        );
        const summary = jsonResult<{ bytes: number; elapsedMs: number }>(captured.stdout(), 'walship basebackup');
        return { bytes: summary.bytes, elapsedMs: summary.elapsedMs };
      });
    },

    async promote({ dataDir, timeoutMs }) {
      const { run } = await import('./commands/promote.js');
      return node(async (captured) => {
        await run({ dataDir, wait: true, json: true, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) }, captured.io);
        return { timeline: jsonResult<{ timeline: number }>(captured.stdout(), 'walship promote').timeline };
      });
    },

    async rewind({ dataDir, source, user, password }) {
      const { run } = await import('./commands/rewind.js');
      return node(async (captured) => {
        await run({ dataDir, source: parseNodeAddress(source), json: true, quiet: true }, withPassword(captured.io, password, user));
        const summary = jsonResult<{ rewound: boolean; divergenceLsn: string | null }>(captured.stdout(), 'walship rewind');
        return { rewound: summary.rewound, divergenceLsn: summary.divergenceLsn };
      });
    },

    async setSettings({ dataDir, settings }) {
      const [{ setConfigValues }, { processIsAlive, readPidFile }] = await Promise.all([import('@walship/server/settings/index'), import('@walship/server/pidfile')]);
      setConfigValues(dataDir, settings);
      const pidFile = readPidFile(dataDir);
      if (pidFile === null || !processIsAlive(pidFile.pid)) return { reloaded: false };
      // A reload (pg_reload_conf), as walship set -D sends: primary_conninfo and the synchronous settings take effect without a restart.
      process.kill(pidFile.pid, 'SIGHUP');
      return { reloaded: true };
    },

    async createSlot({ address, name, user, password: replicationPassword }) {
      const node = parseNodeAddress(address);
      const { ReplicationConnection } = await import('@walship/replication');
      const credentials = resolveCredentials(withPassword(io, replicationPassword, user), node);
      const password = typeof credentials.password === 'function' ? undefined : credentials.password;
      const connection = await ReplicationConnection.connect({
        host: node.host, port: node.port, applicationName: 'walship cluster', timeoutMs: 10_000,
        ...(credentials.user === undefined ? {} : { user: credentials.user }), ...(password === undefined ? {} : { password }),
        ...sslOptions(io),
      });
      try {
        await connection.request('createReplicationSlot', { name, reserveWal: true });
        return { created: true };
      } catch (error) {
        if ((error as { code?: string }).code === 'duplicate_object') return { created: false };
        throw error;
      } finally {
        connection.close();
      }
    },

    async openSession({ address, timeoutMs }): Promise<NodeSession | null> {
      const client = await connectProbe(io, address, 'walship cluster monitor', timeoutMs);
      if (client === null) return null;
      return {
        status: async (callTimeoutMs) => {
          try {
            return (await client.status({ timeoutMs: callTimeoutMs })) as unknown as NodeStatusView;
          } catch {
            return null;
          }
        },
        grantLease: (grant, callTimeoutMs) => grantOn(client, grant, callTimeoutMs),
        close: () => client.close().catch(() => undefined),
      };
    },

    async grantLease({ address, grant, timeoutMs }): Promise<LeaseGrantOutcome> {
      const client = await connectProbe(io, address, 'walship cluster', timeoutMs);
      if (client === null) return { granted: false, refused: null };
      const outcome = await grantOn(client, grant, timeoutMs);
      void client.close().catch(() => undefined);
      return outcome;
    },

    async status({ address, timeoutMs }): Promise<NodeStatusView | null> {
      const client = await connectProbe(io, address, 'walship cluster', timeoutMs);
      if (client === null) return null;
      try {
        const status = (await client.status({ timeoutMs })) as unknown as NodeStatusView;
        await client.close().catch(() => undefined);
        return status;
      } catch {
        // A node that answers but cannot report (shutting down) counts as not answering. A hung
        // one would hold a polite close for seconds: it is not waited for.
        void client.close().catch(() => undefined);
        return null;
      }
    },
  };
}
