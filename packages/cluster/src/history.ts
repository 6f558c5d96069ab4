/**
 * The cluster's history: `DATA_ROOT/history.jsonl`, one JSON object a line, appended and fsynced
 * by each command that changes who is primary or rebuilds a member (up, switchover, failover,
 * rejoin, reinit), with the failover decision as structured data. `cluster history` prints it.
 *
 * Append-only, so a crash can at most leave a torn last line; reading skips a line that does not
 * parse (and says so) instead of refusing the whole history.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HISTORY_FILE_NAME } from './constants.js';
import type { FailoverDecision } from './failover-decision.js';

export const HISTORY_EVENTS = ['bootstrap', 'switchover', 'failover', 'rejoin', 'reinit', 'fence', 'synchronous', 'restart', 'transition'] as const;
export type HistoryEventKind = (typeof HISTORY_EVENTS)[number];

export interface HistoryEvent {
  /** ISO time the event completed. */
  readonly at: string;
  readonly event: HistoryEventKind;
  /** The member the event was about (the new primary, the rejoined or rebuilt member). */
  readonly member: string;
  /** The primary before the event, when it changed. */
  readonly from: string | null;
  /** The timeline the cluster's primary is on after the event. */
  readonly timeline: number;
  /** Where the promoted member's WAL ended when it was promoted, or the member's position. */
  readonly lsn: string | null;
  readonly durationMs: number;
  /** One line for people. */
  readonly summary: string;
  /** For a failover (and a switchover that chose its target): the decision, as made. */
  readonly decision: FailoverDecision | null;
  /** Who made the change: a person's command, or the failover monitor. */
  readonly initiator?: 'command' | 'monitor';
}

export function historyFilePath(dataRoot: string): string {
  return join(dataRoot, HISTORY_FILE_NAME);
}

export function appendHistory(dataRoot: string, event: HistoryEvent): void {
  mkdirSync(dataRoot, { recursive: true });
  const fd = openSync(historyFilePath(dataRoot), 'a', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(event)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The events, oldest first, and how many lines could not be read. */
export function readHistory(dataRoot: string): { events: HistoryEvent[]; unreadableLines: number } {
  const path = historyFilePath(dataRoot);
  if (!existsSync(path)) return { events: [], unreadableLines: 0 };
  const events: HistoryEvent[] = [];
  let unreadableLines = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = JSON.parse(line) as HistoryEvent;
      if (typeof parsed === 'object' && parsed !== null && typeof parsed.event === 'string') events.push(parsed);
      else unreadableLines++;
    } catch {
      unreadableLines++;
    }
  }
  return { events, unreadableLines };
}
