/**
 * The lag monitor's sessions: one client session per member, kept open from one sample to the
 * next and reopened after a failure, so a refresh every second costs one status request per
 * member, not a connection and a handshake. A member that hangs (SIGSTOP) keeps at most one
 * connection attempt in flight; the monitor bounds how long each sample waits for it.
 */
import { Readable } from 'node:stream';
import type { FetchStatus, MemberAddress } from '@walship/lag';
import { clientErrorFields, connectClient, type NodeClient } from '../adapters.js';
import { sslOptions } from '../ssl-env.js';
import { resolveCredentials } from '../credentials.js';
import type { CliIo } from '../io.js';

interface Session {
  client: NodeClient | null;
  connecting: Promise<NodeClient> | null;
}

async function closeQuietly(client: NodeClient): Promise<void> {
  try {
    await client.close();
  } catch {
    // Best effort: the session is being dropped either way.
  }
}

export class StatusSessions {
  private readonly sessions = new Map<string, Session>();
  private closed = false;
  /**
   * Credentials come from the environment only: the live view owns the terminal, so a node
   * that wants a password gets it from WALSHIP_PASSWORD or WALSHIP_PASSFILE, never a prompt.
   */
  private readonly credentialsIo: CliIo;

  constructor(io: CliIo) {
    this.credentialsIo = { ...io, stdin: Readable.from([]) };
  }

  private connect(member: MemberAddress, session: Session, timeoutMs: number): Promise<NodeClient> {
    if (session.connecting !== null) return session.connecting;
    const connecting = connectClient({
      host: member.host, port: member.port, applicationName: 'walship-lag', timeoutMs,
      ...resolveCredentials(this.credentialsIo, member),
      ...sslOptions(this.credentialsIo),
    });
    session.connecting = connecting;
    connecting.then(
      (client) => {
        session.connecting = null;
        if (this.closed) void closeQuietly(client);
        else session.client = client;
      },
      () => {
        session.connecting = null;
      },
    );
    return connecting;
  }

  /** The monitor's port: a member's status document, or a rejection saying why not. */
  readonly fetch: FetchStatus = async (member, timeoutMs) => {
    const key = `${member.host}:${member.port}`;
    let session = this.sessions.get(key);
    if (session === undefined) {
      session = { client: null, connecting: null };
      this.sessions.set(key, session);
    }
    const cached = session.client;
    if (cached !== null) {
      try {
        return await cached.status({ timeoutMs });
      } catch (error) {
        // A session that failed once is not trusted again.
        if (session.client === cached) session.client = null;
        void closeQuietly(cached);
        // A node that hangs would only hang again: report it. One that restarted (its old
        // session is gone) is asked again at once on a new session, so it costs no sample.
        if (clientErrorFields(error).code === 'timeout') throw new Error(clientErrorFields(error).message);
      }
    }
    let client: NodeClient;
    try {
      client = await this.connect(member, session, timeoutMs);
    } catch (error) {
      throw new Error(clientErrorFields(error).message);
    }
    try {
      return await client.status({ timeoutMs });
    } catch (error) {
      if (session.client === client) session.client = null;
      void closeQuietly(client);
      throw new Error(clientErrorFields(error).message);
    }
  };

  async close(): Promise<void> {
    this.closed = true;
    const clients = [...this.sessions.values()].flatMap((session) => (session.client === null ? [] : [session.client]));
    this.sessions.clear();
    await Promise.all(clients.map(closeQuietly));
  }
}
