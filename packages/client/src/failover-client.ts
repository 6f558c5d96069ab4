/**
 * WalshipFailoverClient: a cluster's members in, writes to whichever is the primary now, across
 * failovers (libpq's multi-host connection string with `target_session_attrs=read-write`, plus
 * the retry a failover needs).
 *
 * Finding the primary: every member is asked for its status at once; of those that answer as a
 * primary, the one on the highest timeline wins (an old primary that a failover left running,
 * fenced, is on an older timeline than the one promoted in its place), ties going to the member
 * listed first. Its session is kept until a request fails in a way that says it is no longer the
 * one.
 *
 * Retrying: a request is sent again, to the primary found anew, only when it is certain that it
 * did nothing: refused by a standby (`read_only_transaction`), by a primary whose lease has run
 * out (`primary_lease_expired`), by a node shutting down or starting (`cannot_connect_now`,
 * `admin_shutdown`), or never sent (no connection). A write that was sent and then lost its
 * connection or its time is `indeterminate` and is never sent again: the caller decides, by
 * reading it back (as the failover drills do). Retries stop after `failoverTimeoutMs`.
 */
import type { Entry, RangeResult, TxnResult } from '@walship/engine';
import { WalshipClient } from './client.js';
import type {
  CallOptions, ClientTxnRequest, ConnectOptions, KeyLike, LsnLike, NodeStatus, RangeOptions, ReadOptions, WaitForLsnOptions, WaitForLsnResult, WriteOptions,
} from './client.js';
import { ClientErrorCode, WalshipClientError } from './client-error.js';
import type { NodeEndpoint } from './cluster-client.js';
import { DEFAULT_FAILOVER_TIMEOUT_MS, FAILOVER_RETRY_PAUSE_MS, PRIMARY_PROBE_TIMEOUT_MS } from './constants.js';
import { raceTimeout } from './race-timeout.js';

export interface FailoverConnectOptions extends Omit<ConnectOptions, 'host' | 'port' | 'reconnect'> {
  /** Every member of the cluster (any order; the first listed wins a tie). */
  members: NodeEndpoint[];
  /** How long a request may keep looking for a primary across a failover (default 30 s). */
  failoverTimeoutMs?: number;
  /** How a session with one member is opened (default WalshipClient.connect; a program may give its own). */
  connect?: (options: ConnectOptions) => Promise<WalshipClient>;
}

/** Codes that mean the request certainly did nothing, and that this node is not (or no longer) the primary to use. */
const NOT_THE_PRIMARY: ReadonlySet<string> = new Set(['read_only_transaction', 'primary_lease_expired', 'cannot_connect_now', 'admin_shutdown']);
/** WAIT FOR LSN in primary_flush mode refused by a standby: it changes nothing anywhere. */
const WAIT_ON_A_STANDBY: ReadonlySet<string> = new Set(['object_not_in_prerequisite_state']);
const NONE: ReadonlySet<string> = new Set();
/** Codes of a request that never reached a node. */
const NEVER_SENT: ReadonlySet<string> = new Set([ClientErrorCode.connectionFailure, ClientErrorCode.connectionLost, ClientErrorCode.timeout]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function address(endpoint: NodeEndpoint): string {
  return `${endpoint.host ?? '127.0.0.1'}:${endpoint.port}`;
}

export class WalshipFailoverClient {
  private current: { client: WalshipClient; address: string; timeline: number } | null = null;
  private finding: Promise<{ client: WalshipClient; address: string; timeline: number }> | null = null;
  private closed = false;
  /** Primaries found so far (a failover is one more). */
  primariesFound = 0;

  private constructor(private readonly options: FailoverConnectOptions) {}

  /** Finds the primary among `members` (waiting up to failoverTimeoutMs for one). */
  static async connect(options: FailoverConnectOptions): Promise<WalshipFailoverClient> {
    if (options.members.length === 0) throw new WalshipClientError(ClientErrorCode.invalidParameter, 'no cluster member given', { hint: 'Give every member of the cluster.' });
    const client = new WalshipFailoverClient(options);
    await client.primary(Date.now() + (options.failoverTimeoutMs ?? DEFAULT_FAILOVER_TIMEOUT_MS));
    return client;
  }

  /** `host:port` of the primary in use (null between a failure and the next request). */
  get primaryAddress(): string | null {
    return this.current?.address ?? null;
  }

  put(key: KeyLike, value: KeyLike, options: WriteOptions = {}): Promise<TxnResult> {
    return this.retrying((client) => client.put(key, value, options));
  }

  del(key: KeyLike, options: WriteOptions = {}): Promise<TxnResult & { deleted: number }> {
    return this.retrying((client) => client.del(key, options));
  }

  txn(request: ClientTxnRequest, options: CallOptions = {}): Promise<TxnResult> {
    return this.retrying((client) => client.txn(request, options));
  }

  /** Reads go to the primary too: it has every acknowledged write. */
  get(key: KeyLike, options: ReadOptions = {}): Promise<Entry | null> {
    return this.retrying((client) => client.get(key, options));
  }

  range(options: RangeOptions = {}): Promise<RangeResult> {
    return this.retrying((client) => client.range(options));
  }

  status(options: CallOptions = {}): Promise<NodeStatus> {
    return this.retrying((client) => client.status(options));
  }

  /**
   * WAIT FOR LSN on the primary (mode `primary_flush`: its flush position). A member promoted or
   * demoted under the call answers "recovery is in progress": asked again on the primary found anew.
   */
  waitForLsn(lsn: LsnLike, options: WaitForLsnOptions = {}): Promise<WaitForLsnResult> {
    return this.retrying((client) => client.waitForLsn(lsn, options), WAIT_ON_A_STANDBY);
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = null;
    await current?.client.close().catch(() => undefined);
  }

  /** Runs `call` on the primary; again on the primary found anew when it certainly did nothing. */
  private async retrying<T>(call: (client: WalshipClient) => Promise<T>, alsoNotThePrimary: ReadonlySet<string> = NONE): Promise<T> {
    const deadline = Date.now() + (this.options.failoverTimeoutMs ?? DEFAULT_FAILOVER_TIMEOUT_MS);
    for (;;) {
      const primary = await this.primary(deadline);
      try {
        return await call(primary.client);
      } catch (error) {
        const code = (error as { code?: string }).code ?? '';
        if (!NOT_THE_PRIMARY.has(code) && !NEVER_SENT.has(code) && !alsoNotThePrimary.has(code)) throw error;
        this.forget(primary.client);
        if (Date.now() >= deadline) throw error;
        await sleep(FAILOVER_RETRY_PAUSE_MS);
      }
    }
  }

  private forget(client: WalshipClient): void {
    if (this.current?.client !== client) return;
    this.current = null;
    void client.close().catch(() => undefined);
  }

  /** The primary's session: the one kept, or one found now (one search at a time). */
  private async primary(deadline: number): Promise<{ client: WalshipClient; address: string; timeline: number }> {
    if (this.closed) throw new WalshipClientError(ClientErrorCode.connectionLost, 'the client is closed');
    if (this.current !== null) return this.current;
    this.finding ??= this.find(deadline).finally(() => {
      this.finding = null;
    });
    return this.finding;
  }

  private async find(deadline: number): Promise<{ client: WalshipClient; address: string; timeline: number }> {
    const { members, failoverTimeoutMs: _failoverTimeoutMs, connect = (options: ConnectOptions) => WalshipClient.connect(options), ...shared } = this.options;
    for (;;) {
      const answers = await Promise.all(members.map(async (endpoint, index) => {
        // A frozen member would hold the search for the whole connect timeout: it is not waited for.
        const connecting = connect({ ...shared, host: endpoint.host, port: endpoint.port });
        const client = await raceTimeout(connecting, PRIMARY_PROBE_TIMEOUT_MS).catch(() => null);
        if (client === null) {
          connecting.then((late) => late.close(), () => undefined).catch(() => undefined);
          return null;
        }
        try {
          const status = await client.status({ timeoutMs: PRIMARY_PROBE_TIMEOUT_MS });
          if (status.role === 'primary') return { client, address: address(endpoint), timeline: Number.isSafeInteger(status.timeline) ? status.timeline : 0, index };
        } catch {
          // Not answering: not a primary to use.
        }
        void client.close().catch(() => undefined);
        return null;
      }));
      const primaries = answers.filter((answer): answer is NonNullable<typeof answer> => answer !== null).sort((a, b) => b.timeline - a.timeline || a.index - b.index);
      const [chosen, ...others] = primaries;
      for (const other of others) void other.client.close().catch(() => undefined);
      if (chosen !== undefined) {
        this.current = { client: chosen.client, address: chosen.address, timeline: chosen.timeline };
        this.primariesFound++;
        return this.current;
      }
      if (Date.now() >= deadline || this.closed) {
        throw new WalshipClientError(ClientErrorCode.connectionFailure, `no primary among ${members.map(address).join(', ')}`, {
          hint: 'Every member answered as a standby or not at all: a failover may be under way, or the cluster is down (walship cluster status -f FILE).',
        });
      }
      await sleep(FAILOVER_RETRY_PAUSE_MS);
    }
  }
}
