/**
 * What a failover drill concludes from what it recorded: pure, so that the rules can be tested
 * on made-up histories.
 *
 * The inputs: every write the load attempted (a unique key and value each, the times it was sent
 * and answered, and the outcome: acknowledged with the member, timeline and LSN of the ack;
 * failed, when it was certainly not committed (refused, never sent); indeterminate, when it may
 * or may not have been), the acknowledgements of the probes that write to each member directly
 * (to see every member that acknowledges writes, not only the one the load follows), and what
 * the primary and each caught-up standby hold under the drill's key prefix at the end.
 *
 * The rules:
 *   - Every acknowledged write must be there, with its value, on the primary and on every
 *     standby (keys are unique per write, so nothing may overwrite it).
 *   - No value may appear that no write carried; an indeterminate write may be there or not.
 *   - Split brain: two members acknowledging writes in overlapping time. Each member's
 *     acknowledgements form "active" intervals (consecutive acks closer than the gap limit); the
 *     overlap of two members' intervals is the split-brain window.
 *   - Unavailability: the longest time without any acknowledged load write, from the fault on.
 */

export type WriteOutcome = 'acknowledged' | 'failed' | 'indeterminate';

export interface WriteRecord {
  readonly key: string;
  readonly value: string;
  /** Wall-clock ms when sent and when answered. */
  readonly sentMs: number;
  readonly answeredMs: number;
  readonly outcome: WriteOutcome;
  /** For an acknowledged write: who acknowledged it, on which timeline, at which commit LSN. */
  readonly member: string | null;
  readonly timeline: number | null;
  readonly lsn: string | null;
  /** For a failed or indeterminate write: the client's error code. */
  readonly error: string | null;
}

export interface ProbeAck {
  readonly member: string;
  readonly atMs: number;
}

export interface DrillCheckInput {
  readonly writes: readonly WriteRecord[];
  readonly probeAcks: readonly ProbeAck[];
  /** When the fault was injected (wall-clock ms). */
  readonly faultMs: number;
  /** When the drill stopped writing. */
  readonly endMs: number;
  /** The primary's contents under the prefix at the end: key -> value. */
  readonly primary: { readonly name: string; readonly entries: ReadonlyMap<string, string> };
  /** Each standby's contents once it has replayed up to the primary. */
  readonly standbys: ReadonlyArray<{ readonly name: string; readonly entries: ReadonlyMap<string, string> }>;
  /** Acks of one member further apart than this end one of its active intervals. */
  readonly activeGapMs: number;
}

export interface SplitBrainWindow {
  readonly members: readonly [string, string];
  readonly fromMs: number;
  readonly toMs: number;
}

export interface DrillCheck {
  readonly ackedWrites: number;
  readonly failedWrites: number;
  readonly indeterminateWrites: number;
  /** Acknowledged writes missing or changed, per member that lacks them. */
  readonly ackedWritesLost: number;
  readonly lost: ReadonlyArray<{ readonly key: string; readonly member: string; readonly found: string | null }>;
  /** Values present that no write carried. */
  readonly unexpected: ReadonlyArray<{ readonly key: string; readonly member: string; readonly value: string }>;
  readonly splitBrainMs: number;
  readonly splitBrainWindows: readonly SplitBrainWindow[];
  readonly unavailableMs: number;
  /** Timelines that acknowledged writes, in order of first appearance. */
  readonly timelines: readonly number[];
  /** Members that acknowledged writes, in order of first ack. */
  readonly acknowledgingMembers: readonly string[];
}

function activeIntervals(times: readonly number[], gapMs: number): Array<[number, number]> {
  const sorted = [...times].sort((a, b) => a - b);
  const intervals: Array<[number, number]> = [];
  for (const time of sorted) {
    const last = intervals.at(-1);
    if (last !== undefined && time - last[1] <= gapMs) last[1] = time;
    else intervals.push([time, time]);
  }
  return intervals;
}

export function checkDrill(input: DrillCheckInput): DrillCheck {
  const written = new Map<string, WriteRecord>(input.writes.map((write) => [write.key, write]));
  const acked = input.writes.filter((write) => write.outcome === 'acknowledged');

  // Every acknowledged write on every member; nothing never written.
  const lost: Array<{ key: string; member: string; found: string | null }> = [];
  const unexpected: Array<{ key: string; member: string; value: string }> = [];
  for (const member of [input.primary, ...input.standbys]) {
    for (const write of acked) {
      const found = member.entries.get(write.key);
      if (found !== write.value) lost.push({ key: write.key, member: member.name, found: found ?? null });
    }
    for (const [key, value] of member.entries) {
      const write = written.get(key);
      if (write === undefined || write.value !== value || write.outcome === 'failed') unexpected.push({ key, member: member.name, value });
    }
  }

  // Split brain: overlapping active intervals of two members.
  const ackTimes = new Map<string, number[]>();
  const addAck = (member: string, atMs: number) => {
    const times = ackTimes.get(member) ?? [];
    times.push(atMs);
    ackTimes.set(member, times);
  };
  for (const write of acked) addAck(write.member ?? '?', write.answeredMs);
  for (const ack of input.probeAcks) addAck(ack.member, ack.atMs);
  const intervals = [...ackTimes].map(([member, times]) => ({ member, intervals: activeIntervals(times, input.activeGapMs) }));
  const windows: SplitBrainWindow[] = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      for (const [aFrom, aTo] of intervals[i]!.intervals) {
        for (const [bFrom, bTo] of intervals[j]!.intervals) {
          const fromMs = Math.max(aFrom, bFrom);
          const toMs = Math.min(aTo, bTo);
          if (toMs > fromMs) windows.push({ members: [intervals[i]!.member, intervals[j]!.member], fromMs, toMs });
        }
      }
    }
  }
  // Windows may overlap one another: count each moment once.
  const merged = activeIntervals([], 0);
  for (const window of [...windows].sort((a, b) => a.fromMs - b.fromMs)) {
    const last = merged.at(-1);
    if (last !== undefined && window.fromMs <= last[1]) last[1] = Math.max(last[1], window.toMs);
    else merged.push([window.fromMs, window.toMs]);
  }
  const splitBrainMs = merged.reduce((sum, [from, to]) => sum + (to - from), 0);

  // Unavailability: the longest stretch without an acknowledged load write, from the fault on.
  const ackMoments = acked.map((write) => write.answeredMs).filter((time) => time >= input.faultMs).sort((a, b) => a - b);
  let unavailableMs = 0;
  let previous = input.faultMs;
  for (const moment of [...ackMoments, input.endMs]) {
    unavailableMs = Math.max(unavailableMs, moment - previous);
    previous = moment;
  }

  const timelines: number[] = [];
  const members: string[] = [];
  for (const write of [...acked].sort((a, b) => a.answeredMs - b.answeredMs)) {
    if (write.timeline !== null && !timelines.includes(write.timeline)) timelines.push(write.timeline);
    if (write.member !== null && !members.includes(write.member)) members.push(write.member);
  }

  return {
    ackedWrites: acked.length,
    failedWrites: input.writes.filter((write) => write.outcome === 'failed').length,
    indeterminateWrites: input.writes.filter((write) => write.outcome === 'indeterminate').length,
    ackedWritesLost: new Set(lost.map((entry) => entry.key)).size,
    lost,
    unexpected,
    splitBrainMs: Math.round(splitBrainMs),
    splitBrainWindows: windows,
    unavailableMs: Math.round(unavailableMs),
    timelines,
    acknowledgingMembers: members,
  };
}
