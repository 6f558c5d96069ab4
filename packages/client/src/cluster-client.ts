/**
 * WalshipClusterClient: one primary and its standbys, with reads routed for read-your-writes.
 *
 * Writes go to the primary, and the client remembers the highest commit LSN it has been given
 * (also the LSN of a write whose wait for synchronous standbys was cancelled: committed on the
 * primary all the same). A read says how fresh it must be:
 *
 * - `session` (the default): it must see every write this client made. It may go to a standby
 *   that has replayed the client's last commit LSN.
 * - `{ maxStalenessMs }`: it must see every write acknowledged more than that long ago, by
 *   anyone. The client needs the primary's flush position as of at most that long ago: any
 *   commit acknowledged before it asked is at or below it (acknowledged writes are flushed). It
 *   keeps one such sample and asks the primary again (WAIT FOR LSN 0/0 in mode `primary_flush`,
 *   which answers with the flush position) once the sample is older than the bound.
 * - `{ minLsn }`: it must see that LSN (a token handed over from another client).
 * - `primary`: from the primary, always.
 *
 * Given the LSN a read needs, a standby known to have replayed it serves it; otherwise every
 * connected standby is asked at once to wait up to `standbyWaitMs` for it (WAIT FOR LSN with
 * noThrow), and the first that gets there serves it. When none does, or the standby fails, the
 * read goes to the primary, which has everything. A standby that is reconnecting is skipped.
 *
 * Two ways to name the nodes: `primary` and `standbys`, fixed; or `members`, every member of a
 * cluster whose roles change under failovers. With members, writes and primary reads go through
 * a WalshipFailoverClient (whichever member is the primary now, sent again only when certainly not
 * done), every member is also a candidate for standby reads (the primary and a member that is down
 * drop out by themselves: WAIT FOR LSN there does not succeed), and a read that must see this
 * session's writes carries the timeline they were acknowledged on, so that a standby whose history
 * left that timeline before them (a write lost in an asynchronous failover) refuses at once
 * instead of serving a state without them.
 */
import type { Entry, Lsn, RangeResult, TxnResult } from '@walship/engine';
import { parseLsn } from '@walship/engine/lsn';
import { WalshipClient } from './client.js';
import type {
  CallOptions, ClientTxnRequest, ConnectOptions, KeyLike, LsnLike, RangeOptions, ReadOptions, WaitForLsnOptions, WaitForLsnResult, WriteOptions,
} from './client.js';
import { ClientErrorCode, WalshipClientError } from './client-error.js';
import { DEFAULT_STANDBY_WAIT_MS } from './constants.js';

/** How fresh a routed read must be. */
export type ReadFreshness = 'session' | 'primary' | { maxStalenessMs: number } | { minLsn: LsnLike };

export interface RoutedReadOptions extends Omit<ReadOptions, 'minLsn'> {
  /** Default `session`: see every write this client made. */
  freshness?: ReadFreshness;
}

export type RoutedRangeOptions = Omit<RangeOptions, 'minLsn'> & RoutedReadOptions;

export interface NodeEndpoint {
  host?: string;
  port: number;
}

export interface ClusterConnectOptions extends Omit<ConnectOptions, 'host' | 'port'> {
  /** The primary, fixed (give `primary` and `standbys`, or `members`). */
  primary?: NodeEndpoint;
  standbys?: NodeEndpoint[];
  /** Every member of a cluster whose primary may change: writes follow failovers. */
  members?: NodeEndpoint[];
  /** With `members`: how long a request may look for a primary across a failover (default 30 s). */
  failoverTimeoutMs?: number;
  /**
   * How long a standby may wait to replay what a read needs before the read goes to the primary
   * (default DEFAULT_STANDBY_WAIT_MS). 0 takes only standbys that are already there.
   */
  standbyWaitMs?: number;
}

/** Where the last routed read went, and why. */
export interface ReadRoute {
  node: 'primary' | 'standby';
  /** `host:port` of the node that served it. */
  address: string;
  /** The LSN the read had to see (0 when any state would do). */
  requiredLsn: Lsn;
}

/** What the cluster client asks of its primary: one fixed session, or a WalshipFailoverClient. */
export interface ClusterPrimary {
  txn(request: ClientTxnRequest, options?: CallOptions): Promise<TxnResult>;
  put(key: KeyLike, value: KeyLike, options?: WriteOptions): Promise<TxnResult>;
  del(key: KeyLike, options?: WriteOptions): Promise<TxnResult & { deleted: number }>;
  get(key: KeyLike, options?: ReadOptions): Promise<Entry | null>;
  range(options?: RangeOptions): Promise<RangeResult>;
  waitForLsn(lsn: LsnLike, options?: WaitForLsnOptions): Promise<WaitForLsnResult>;
  close(): Promise<void>;
}

interface Standby {
  client: WalshipClient;
  address: string;
  /** The highest replay position it has been seen at. */
  replayed: Lsn;
}

function address(endpoint: NodeEndpoint): string {
  return `${endpoint.host ?? '127.0.0.1'}:${endpoint.port}`;
}

function lsnOf(value: LsnLike): Lsn {
  const lsn = typeof value === 'number' ? (Number.isSafeInteger(value) && value >= 0 ? value : null) : parseLsn(value);
  if (lsn === null) {
    throw new WalshipClientError(ClientErrorCode.invalidParameter, `invalid minLsn "${String(value)}"`, { hint: "An LSN is written 'X/X' in hex, e.g. 0/16B3748." });
  }
  return lsn as Lsn;
}

export class WalshipClusterClient {
  /** The highest commit LSN this client was given: what `session` reads must see. */
  lastWrittenLsn = 0 as Lsn;
  /** The timeline `lastWrittenLsn` was acknowledged on (0 before the first write). */
  lastWrittenTimeline = 0;
  /** Where the last routed read went (for tests and diagnostics). */
  lastRoute: ReadRoute | null = null;
  private primarySample: { lsn: Lsn; askedAtMs: number } | null = null;
  private nextStandby = 0;

  private constructor(
    readonly primary: ClusterPrimary,
    private readonly primaryAddress: () => string,
    private readonly standbyNodes: Standby[],
    private readonly standbyWaitMs: number,
  ) {}

  /**
   * Connects to the primary (which must answer; with `members`, the one that is the primary now)
   * and to each standby (with reconnect, so that a standby that restarts comes back; one that
   * cannot be reached now is left out).
   */
  static async connect(options: ClusterConnectOptions): Promise<WalshipClusterClient> {
    const { primary, standbys = [], members, failoverTimeoutMs, standbyWaitMs = DEFAULT_STANDBY_WAIT_MS, ...shared } = options;
    if ((primary === undefined) === (members === undefined)) {
      throw new WalshipClientError(ClientErrorCode.invalidParameter, 'give either primary (with standbys) or members', {
        hint: 'members: every node of a cluster whose primary may change; primary and standbys: fixed roles.',
      });
    }
    const connectStandbys = async (endpoints: NodeEndpoint[]): Promise<Standby[]> => {
      const connected = await Promise.all(endpoints.map(async (endpoint): Promise<Standby | null> => {
        try {
          const client = await WalshipClient.connect({ ...shared, host: endpoint.host, port: endpoint.port, reconnect: true });
          return { client, address: address(endpoint), replayed: 0 as Lsn };
        } catch {
          return null;
        }
      }));
      return connected.filter((s): s is Standby => s !== null);
    };
    if (members !== undefined) {
      const { WalshipFailoverClient } = await import('./failover-client.js');
      const failover = await WalshipFailoverClient.connect({ ...shared, members, ...(failoverTimeoutMs === undefined ? {} : { failoverTimeoutMs }) });
      const first = address(members[0]!);
      return new WalshipClusterClient(failover, () => failover.primaryAddress ?? first, await connectStandbys(members), standbyWaitMs);
    }
    const primaryClient = await WalshipClient.connect({ ...shared, host: primary!.host, port: primary!.port });
    const primaryAddress = address(primary!);
    return new WalshipClusterClient(primaryClient, () => primaryAddress, await connectStandbys(standbys), standbyWaitMs);
  }

  /** The standbys' sessions, in the order given. */
  get standbys(): WalshipClient[] {
    return this.standbyNodes.map((standby) => standby.client);
  }

  // ---- writes: the primary ------------------------------------------------------------------

  async txn(request: ClientTxnRequest, options: CallOptions = {}): Promise<TxnResult> {
    return this.wrote(this.primary.txn(request, options));
  }

  async put(key: KeyLike, value: KeyLike, options: WriteOptions = {}): Promise<TxnResult> {
    return this.wrote(this.primary.put(key, value, options));
  }

  async del(key: KeyLike, options: WriteOptions = {}): Promise<TxnResult & { deleted: number }> {
    return this.wrote(this.primary.del(key, options));
  }

  // ---- reads: routed ------------------------------------------------------------------------

  async get(key: KeyLike, options: RoutedReadOptions = {}): Promise<Entry | null> {
    const { freshness, ...read } = options;
    return this.routed(freshness, (client, minLsn, timeline) => client.get(key, { ...read, ...readWait(minLsn, timeline) }));
  }

  async range(options: RoutedRangeOptions = {}): Promise<RangeResult> {
    const { freshness, ...read } = options;
    return this.routed(freshness, (client, minLsn, timeline) => client.range({ ...read, ...readWait(minLsn, timeline) }));
  }

  async close(): Promise<void> {
    await Promise.all([this.primary, ...this.standbys].map((client) => client.close().catch(() => undefined)));
  }

  // -------------------------------------------------------------------------------------------

  private async wrote<T extends TxnResult>(write: Promise<T>): Promise<T> {
    try {
      const result = await write;
      this.sawCommit(result.lsn, result.timeline);
      return result;
    } catch (error) {
      // Cancelled while waiting for synchronous standbys: committed on the primary, and visible
      // there; a read of this session must not go where it may be missing.
      if (error instanceof WalshipClientError && error.lsn !== undefined) this.sawCommit(error.lsn as Lsn, undefined);
      throw error;
    }
  }

  private sawCommit(lsn: Lsn, timeline: number | undefined): void {
    // A later timeline's commit is later whatever its LSN: its history holds the earlier ones.
    const newer = timeline !== undefined && timeline > this.lastWrittenTimeline;
    if (lsn > this.lastWrittenLsn || newer) this.lastWrittenLsn = lsn;
    if (timeline !== undefined && timeline > this.lastWrittenTimeline) this.lastWrittenTimeline = timeline;
  }

  /** Runs `read` on a standby fresh enough for `freshness`, else on the primary. */
  private async routed<T>(freshness: ReadFreshness = 'session', read: (client: ClusterPrimary, minLsn: Lsn | null, timeline: number) => Promise<T>): Promise<T> {
    if (freshness === 'primary' || this.standbyNodes.length === 0) return this.onPrimary(read, 0 as Lsn);
    const required = await this.requiredLsn(freshness);
    const standby = await this.freshStandby(required);
    if (standby !== null) {
      try {
        const result = await read(standby.client, required === 0 ? null : required, freshness === 'session' ? this.lastWrittenTimeline : 0);
        this.lastRoute = { node: 'standby', address: standby.address, requiredLsn: required };
        return result;
      } catch (error) {
        // The standby fell behind (restarted) or went away: the primary has everything.
        if (!(error instanceof WalshipClientError) || !FALLBACK_CODES.has(error.code)) throw error;
      }
    }
    return this.onPrimary(read, required);
  }

  private async onPrimary<T>(read: (client: ClusterPrimary, minLsn: Lsn | null, timeline: number) => Promise<T>, required: Lsn): Promise<T> {
    const result = await read(this.primary, null, 0);
    this.lastRoute = { node: 'primary', address: this.primaryAddress(), requiredLsn: required };
    return result;
  }

  private async requiredLsn(freshness: Exclude<ReadFreshness, 'primary'>): Promise<Lsn> {
    if (freshness === 'session') return this.lastWrittenLsn;
    if ('minLsn' in freshness) return lsnOf(freshness.minLsn);
    const boundMs = freshness.maxStalenessMs;
    if (!Number.isFinite(boundMs) || boundMs < 0) {
      throw new WalshipClientError(ClientErrorCode.invalidParameter, `maxStalenessMs must be a non-negative number of milliseconds (got ${boundMs})`);
    }
    const sample = this.primarySample;
    if (sample !== null && performance.now() - sample.askedAtMs <= boundMs) return sample.lsn;
    // Taken before asking: the position the primary answers with covers everything acknowledged before now.
    const askedAtMs = performance.now();
    const { lsn } = await this.primary.waitForLsn(0, { mode: 'primary_flush' });
    if (this.primarySample === null || askedAtMs > this.primarySample.askedAtMs) this.primarySample = { lsn, askedAtMs };
    return lsn;
  }

  /**
   * A connected standby that has replayed `lsn`: one already seen there (round robin), else the
   * first of them all to get there within standbyWaitMs; null when none does.
   */
  private async freshStandby(lsn: Lsn): Promise<Standby | null> {
    const ready = this.standbyNodes.filter((standby) => standby.client.state === 'ready');
    if (ready.length === 0) return null;
    const count = ready.length;
    for (let i = 0; i < count; i++) {
      const standby = ready[(this.nextStandby + i) % count]!;
      if (standby.replayed >= lsn) {
        this.nextStandby = (this.nextStandby + i + 1) % count;
        return standby;
      }
    }
    const probes = ready.map(async (standby): Promise<Standby> => {
      let result: WaitForLsnResult;
      try {
        result = await standby.client.waitForLsn(lsn, { mode: 'standby_replay', timeoutMs: this.standbyWaitMs, noThrow: true });
      } catch {
        throw new Error('unavailable');
      }
      if (result.lsn > standby.replayed) standby.replayed = result.lsn;
      if (result.status !== 'success') throw new Error(result.status);
      return standby;
    });
    try {
      return await Promise.any(probes);
    } catch {
      return null;
    }
  }
}

/** Failures of a read on a standby after which the primary is asked instead. */
const FALLBACK_CODES: ReadonlySet<string> = new Set([
  ClientErrorCode.timeout, ClientErrorCode.connectionLost, ClientErrorCode.connectionFailure, 'cannot_connect_now',
  'object_not_in_prerequisite_state', 'lsn_not_on_timeline',
]);

/** A routed read's wait: the LSN it must see, with the timeline of the writes it stands for. */
function readWait(minLsn: Lsn | null, timeline: number): { minLsn?: Lsn; minLsnTimeline?: number } {
  if (minLsn === null) return {};
  return timeline > 0 ? { minLsn, minLsnTimeline: timeline } : { minLsn };
}
