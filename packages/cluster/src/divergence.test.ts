import { describe, expect, it } from 'vitest';
import { divergedFromPrimary, timelineHistoryOf } from './divergence.js';

// The primary on timeline 4, whose history left timeline 2 at 0x3000 and timeline 3 at 0x5000.
const primary = { timeline: 4, history: [{ timeline: 2, switchLsn: 0x3000 }, { timeline: 3, switchLsn: 0x5000 }] };

describe('divergedFromPrimary', () => {
  it('lets a standby on the primary\'s timeline, or behind the fork on an ancestor, follow', () => {
    expect(divergedFromPrimary({ timeline: 4, replayLsn: 0x9000 }, primary)).toBeNull();
    expect(divergedFromPrimary({ timeline: 3, replayLsn: 0x4fff }, primary)).toBeNull();
    // Up to the switch point exactly is the primary's own history.
    expect(divergedFromPrimary({ timeline: 3, replayLsn: 0x5000 }, primary)).toBeNull();
    expect(divergedFromPrimary({ timeline: 3, replayLsn: null }, primary)).toBeNull();
  });

  it('says why a standby that replayed past the fork, or left the history, cannot', () => {
    expect(divergedFromPrimary({ timeline: 3, replayLsn: 0x5001 }, primary)).toBe('it replayed timeline 3 to 0/5001, past 0/5000 where the primary\'s timeline 4 forked from it');
    expect(divergedFromPrimary({ timeline: 2, replayLsn: 0x3100 }, primary)).toMatch(/past 0\/3000/);
    expect(divergedFromPrimary({ timeline: 1, replayLsn: 0x100 }, primary)).toBe('its timeline 1 is not in the primary\'s history');
    expect(divergedFromPrimary({ timeline: 5, replayLsn: 0x100 }, primary)).toBe('it is on timeline 5, above the primary\'s 4');
  });
});

describe('timelineHistoryOf', () => {
  it('reads the status field, and refuses a malformed one rather than guess', () => {
    expect(timelineHistoryOf({ timelineHistory: [{ timeline: 1, switchLsn: '0/3000148' }] })).toEqual([{ timeline: 1, switchLsn: 0x3000148 }]);
    expect(timelineHistoryOf({})).toBeNull();
    expect(timelineHistoryOf({ timelineHistory: [{ timeline: 1, switchLsn: 'nope' }] })).toBeNull();
  });
});
