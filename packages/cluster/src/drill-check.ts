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
 *     standby, or overwritten only by a later acknowledged or indeterminate write. Most keys are
 *     written once; a few (the load's "hot" keys) are overwritten all along: the value found
 *     must be that of the last acknowledged write (or of one acknowledged concurrently with it),
 *     or of an indeterminate one, never one that was certainly followed by an acknowledged write.
 *   - No value may appear that no write carried; an indeterminate write may be there or not.
 *   - Split brain: two members acknowledging writes in overlapping time. An acknowledgement
 *     happened somewhere between the write's sending and its answer, so each one is that span,
 *     not a point; a member's spans form "active" intervals (spans closer than the gap limit are
 *     joined); where two members' intervals overlap, ends included (a lone acknowledgement by one
 *     member amid the other's counts), is a split-brain window. `splitBrainMs` is the length of
 *     the windows together, at least 1 ms when there is any (two acknowledgements at one instant,
 *     within the clock's resolution, are still two), and `conflictingAcks` counts the
 *     acknowledgements whose span meets a window. Times come from a monotonic clock.
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
  /** When the answer came. */
  readonly atMs: number;
  /** When the write was sent; absent: atMs. */
  readonly sentMs?: number;
}

export interface DrillCheckInput {
  readonly writes: readonly WriteRecord[];
  readonly probeAcks: readonly ProbeAck[];
  /** When the fault was injected (wall-clock ms). */
  readonly faultMs: number;
  /** When the drill stopped writing. */
  readonly endMs: number;
  /**
   * The primary's contents under the prefix at the end: key -> value; null when it could not be
   * read (the drill then fails on that, and no loss is counted against contents nobody saw).
   */
  readonly primary: { readonly name: string; readonly entries: ReadonlyMap<string, string> } | null;
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
  /** Keys whose acknowledged writes are missing or were overwritten by an earlier one, on some member. */
  readonly ackedWritesLost: number;
  readonly lost: ReadonlyArray<{ readonly key: string; readonly member: string; readonly found: string | null }>;
  /** Values present that no write carried. */
  readonly unexpected: ReadonlyArray<{ readonly key: string; readonly member: string; readonly value: string }>;
  readonly splitBrainMs: number;
  readonly splitBrainWindows: readonly SplitBrainWindow[];
  /** Acknowledgements (load writes and probes) whose sent-to-answered span meets a split-brain window. */
  readonly conflictingAcks: number;
  readonly unavailableMs: number;
  /** Timelines that acknowledged writes, in order of first appearance. */
  readonly timelines: readonly number[];
  /** Members that acknowledged writes, in order of first ack. */
  readonly acknowledgingMembers: readonly string[];
}

/** Spans joined where they overlap or lie at most `gapMs` apart. */
function activeIntervals(spans: ReadonlyArray<readonly [number, number]>, gapMs: number): Array<[number, number]> {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  const intervals: Array<[number, number]> = [];
  for (const [from, to] of sorted) {
    const last = intervals.at(-1);
    if (last !== undefined && from - last[1] <= gapMs) last[1] = Math.max(last[1], to);
    else intervals.push([from, to]);
  }
  return intervals;
}

const meets = (a: readonly [number, number], b: readonly [number, number]) => a[0] <= b[1] && b[0] <= a[1];

/**
 * Whether the value a member holds for a key keeps every acknowledged write to it: it must be
 * the value of a write that was not refused (X), and no acknowledged write may have certainly
 * committed after X did: X acknowledged, and answered before that other write was even sent.
 * So the final value is the last acknowledged one, one acknowledged concurrently with it, or an
 * indeterminate one (which may have committed at any time after it was sent).
 */
function finalValueKeeps(writes: readonly WriteRecord[], found: string | undefined): boolean {
  if (found === undefined) return false;
  const final = writes.find((write) => write.value === found);
  if (final === undefined || final.outcome === 'failed') return false;
  if (final.outcome === 'indeterminate') return true;
  return !writes.some((other) => other !== final && other.outcome === 'acknowledged' && final.answeredMs < other.sentMs);
}

export function checkDrill(input: DrillCheckInput): DrillCheck {
  const writesOf = new Map<string, WriteRecord[]>();
  for (const write of input.writes) {
    const list = writesOf.get(write.key) ?? [];
    list.push(write);
    writesOf.set(write.key, list);
  }
  const acked = input.writes.filter((write) => write.outcome === 'acknowledged');
  const ackedKeys = [...new Set(acked.map((write) => write.key))];

  // Every acknowledged write on every member, or overwritten only by a write that may have
  // committed after it; nothing never written.
  const lost: Array<{ key: string; member: string; found: string | null }> = [];
  const unexpected: Array<{ key: string; member: string; value: string }> = [];
  for (const member of input.primary === null ? input.standbys : [input.primary, ...input.standbys]) {
    for (const key of ackedKeys) {
      const found = member.entries.get(key);
      if (!finalValueKeeps(writesOf.get(key)!, found)) lost.push({ key, member: member.name, found: found ?? null });
    }
    for (const [key, value] of member.entries) {
      const write = writesOf.get(key)?.find((candidate) => candidate.value === value);
      if (write === undefined || write.outcome === 'failed') unexpected.push({ key, member: member.name, value });
    }
  }

  // Split brain: overlapping active intervals of two members, ends included.
  const ackSpans = new Map<string, Array<[number, number]>>();
  const addAck = (member: string, sentMs: number, answeredMs: number) => {
    const spans = ackSpans.get(member) ?? [];
    spans.push([Math.min(sentMs, answeredMs), answeredMs]);
    ackSpans.set(member, spans);
  };
  for (const write of acked) addAck(write.member ?? '?', write.sentMs, write.answeredMs);
  for (const ack of input.probeAcks) addAck(ack.member, ack.sentMs ?? ack.atMs, ack.atMs);
  const intervals = [...ackSpans].map(([member, spans]) => ({ member, intervals: activeIntervals(spans, input.activeGapMs) }));
  const windows: SplitBrainWindow[] = [];
  for (let i = 0; i < intervals.length; i++) {
    for (let j = i + 1; j < intervals.length; j++) {
      for (const a of intervals[i]!.intervals) {
        for (const b of intervals[j]!.intervals) {
          if (meets(a, b)) windows.push({ members: [intervals[i]!.member, intervals[j]!.member], fromMs: Math.max(a[0], b[0]), toMs: Math.min(a[1], b[1]) });
        }
      }
    }
  }
  // Windows may overlap one another: count each moment once.
  const merged = activeIntervals(windows.map((window) => [window.fromMs, window.toMs] as const), 0);
  const overlapMs = merged.reduce((sum, [from, to]) => sum + (to - from), 0);
  const splitBrainMs = windows.length === 0 ? 0 : Math.max(1, Math.ceil(overlapMs));
  let conflictingAcks = 0;
  for (const [member, spans] of ackSpans) {
    for (const span of spans) {
      if (windows.some((window) => window.members.includes(member) && meets(span, [window.fromMs, window.toMs]))) conflictingAcks++;
    }
  }

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
    splitBrainMs,
    splitBrainWindows: windows,
    conflictingAcks,
    unavailableMs: Math.round(unavailableMs),
    timelines,
    acknowledgingMembers: members,
  };
}

/** Acknowledgements of the old primary judged against its lease (see acksAfterLease). */
export interface AcksAfterLease {
  /** Decided after the lease ended, whatever the delivery: failover rule 1 broken. */
  readonly certain: number;
  /**
   * Answered after the lease ended but possibly decided before it: sent before the node was
   * frozen (SIGSTOP), so the decision may have been made in time and only its delivery waited for
   * SIGCONT. Reported, not a failure: the lease is checked when the node decides, and a node
   * cannot decide while frozen.
   */
  readonly deliveredLate: number;
}

/**
 * Counts the old primary's acknowledgements that came after its lease could have held.
 *
 * An acknowledgement was decided somewhere between its write's sending and its answer. While the
 * node was frozen it decided nothing, so a write sent before the freeze was decided either before
 * it (in time) or after the thaw (when the lease had ended: the node must have refused); one sent
 * during the freeze was decided after the thaw. The earliest possible decision is therefore the
 * sending, moved to the thaw when the write was sent during the freeze; only when that is past the
 * lease's end is the acknowledgement certainly late.
 */
export function acksAfterLease(input: {
  readonly writes: readonly WriteRecord[];
  readonly probeAcks: readonly ProbeAck[];
  readonly member: string;
  readonly leaseEndMs: number;
  /** When the node was frozen (SIGSTOP) and thawed (SIGCONT); null when it never was. */
  readonly frozen: { readonly fromMs: number; readonly toMs: number } | null;
}): AcksAfterLease {
  let certain = 0;
  let deliveredLate = 0;
  const judge = (sentMs: number, answeredMs: number): void => {
    if (answeredMs <= input.leaseEndMs) return;
    const frozen = input.frozen;
    const earliestDecisionMs = frozen !== null && sentMs >= frozen.fromMs && sentMs <= frozen.toMs ? frozen.toMs : sentMs;
    // Not frozen: the answer on loopback is the decision, give or take a delivery nobody held.
    const decidedLate = frozen === null ? true : earliestDecisionMs > input.leaseEndMs;
    if (decidedLate) certain++;
    else deliveredLate++;
  };
  for (const write of input.writes) {
    if (write.outcome === 'acknowledged' && write.member === input.member) judge(write.sentMs, write.answeredMs);
  }
  for (const ack of input.probeAcks) {
    if (ack.member === input.member) judge(ack.sentMs ?? ack.atMs, ack.atMs);
  }
  return { certain, deliveredLate };
}
