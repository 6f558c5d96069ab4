/**
 * LagMonitor: samples a cluster's members and keeps the history between samples. The one piece
 * here that waits on anything: it asks each member for its status through `fetchStatus`, a port
 * the caller implements (the CLI with client sessions, the cluster toolkit with its own), and
 * bounds every answer by a timeout, so a stopped node (SIGSTOP) costs one timeout per sample,
 * never a stalled monitor.
 */
import { computeLag, EMPTY_HISTORY, type LagHistory, type MemberSample } from './compute-lag.js';
import type { LagReport } from './lag-report.js';
import { parseNodeStatus, type MemberAddress } from './snapshot.js';

/** Resolves with a member's status document (`WalshipClient.status()`), or rejects saying why not. */
export type FetchStatus = (member: MemberAddress, timeoutMs: number) => Promise<unknown>;

export interface LagMonitorOptions {
  /** How long each member has to answer a sample. */
  timeoutMs: number;
  /** The clock (Date.now by default). */
  now?: () => number;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** `promise`, or a rejection after `timeoutMs` (the promise is left to settle on its own). */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

export class LagMonitor {
  private history: LagHistory = EMPTY_HISTORY;
  private members: MemberAddress[];

  constructor(members: readonly MemberAddress[], private readonly fetchStatus: FetchStatus, private readonly options: LagMonitorOptions) {
    this.members = [...members];
  }

  /** Replaces the member list (a cluster config that changed); the history is kept. */
  setMembers(members: readonly MemberAddress[]): void {
    this.members = [...members];
  }

  /** Asks every member at once and computes the report; never rejects. */
  async sample(): Promise<LagReport> {
    const now = this.options.now ?? Date.now;
    // The sample's time is when the questions go out: the nodes take their snapshots right then.
    const timeMs = now();
    const samples = await Promise.all(this.members.map(async (address): Promise<MemberSample> => {
      try {
        const document = await withTimeout(this.fetchStatus(address, this.options.timeoutMs), this.options.timeoutMs);
        return { address, snapshot: parseNodeStatus(document), error: null };
      } catch (error) {
        return { address, snapshot: null, error: errorText(error) };
      }
    }));
    const { report, history } = computeLag({ timeMs, members: samples }, this.history);
    this.history = history;
    return report;
  }
}
