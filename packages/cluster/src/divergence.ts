/**
 * Whether a standby can still follow the primary's timeline. A standby that replayed past the
 * point where the primary's history left its timeline holds WAL the primary never had: its
 * startup process refuses the new timeline (xlogrecovery.c's rescanLatestTimeLine: "new timeline
 * N forked off current database system timeline M before current recovery point") and waits for
 * ever. Only a rewind brings it back. This happens to a standby that was stopped, or that went on
 * streaming from the old primary a moment after the promotion, further than the new primary got.
 */
import { formatLsn, parseLsn } from '@walship/engine/lsn';

export interface TimelineSwitch {
  /** An ancestor timeline of the primary's ... */
  readonly timeline: number;
  /** ... and the LSN where the primary's history left it. */
  readonly switchLsn: number;
}

/** The primary's ancestors from its status (`timelineHistory`, the server's monitoring fields). */
export function timelineHistoryOf(status: { readonly [key: string]: unknown }): TimelineSwitch[] | null {
  if (!Array.isArray(status.timelineHistory)) return null;
  const history: TimelineSwitch[] = [];
  for (const entry of status.timelineHistory as unknown[]) {
    const fields = entry as { timeline?: unknown; switchLsn?: unknown };
    const switchLsn = typeof fields.switchLsn === 'string' ? parseLsn(fields.switchLsn) : null;
    if (typeof fields.timeline !== 'number' || switchLsn === null) return null;
    history.push({ timeline: fields.timeline, switchLsn });
  }
  return history;
}

/**
 * Why the standby cannot follow the primary, or null when it can (or when nothing says it
 * cannot: an unknown replay position is not a divergence).
 */
export function divergedFromPrimary(
  standby: { readonly timeline: number; readonly replayLsn: number | null },
  primary: { readonly timeline: number; readonly history: readonly TimelineSwitch[] },
): string | null {
  if (standby.timeline === primary.timeline) return null;
  if (standby.timeline > primary.timeline) return `it is on timeline ${standby.timeline}, above the primary's ${primary.timeline}`;
  const ancestor = primary.history.find((entry) => entry.timeline === standby.timeline);
  if (ancestor === undefined) return `its timeline ${standby.timeline} is not in the primary's history`;
  if (standby.replayLsn !== null && standby.replayLsn > ancestor.switchLsn) {
    return `it replayed timeline ${standby.timeline} to ${formatLsn(standby.replayLsn)}, past ${formatLsn(ancestor.switchLsn)} where the primary's timeline ${primary.timeline} forked from it`;
  }
  return null;
}
