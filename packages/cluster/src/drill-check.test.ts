import { describe, expect, it } from 'vitest';
import { acksAfterLease, checkDrill, type DrillCheckInput, type WriteRecord } from './drill-check.js';

function write(key: string, outcome: WriteRecord['outcome'], answeredMs: number, member: string | null = 'n1', timeline: number | null = 1): WriteRecord {
  return {
    key, value: `v-${key}`, sentMs: answeredMs - 1, answeredMs, outcome,
    member: outcome === 'acknowledged' ? member : null, timeline: outcome === 'acknowledged' ? timeline : null, lsn: null,
    error: outcome === 'acknowledged' ? null : 'connection_lost',
  };
}

const entries = (...keys: string[]) => new Map(keys.map((key) => [key, `v-${key}`]));

function input(extra: Partial<DrillCheckInput>): DrillCheckInput {
  return {
    writes: [],
    probeAcks: [],
    faultMs: 1000,
    endMs: 3000,
    primary: { name: 's1', entries: new Map() },
    standbys: [],
    activeGapMs: 200,
    ...extra,
  };
}

describe('checkDrill', () => {
  it('passes a clean failover: every acknowledged write everywhere, indeterminate ones either way', () => {
    const writes = [write('a', 'acknowledged', 900), write('b', 'indeterminate', 1000), write('c', 'failed', 1100), write('d', 'acknowledged', 1600, 's1', 2)];
    const check = checkDrill(input({
      writes,
      primary: { name: 's1', entries: entries('a', 'b', 'd') },
      standbys: [{ name: 's2', entries: entries('a', 'b', 'd') }],
    }));
    expect(check).toMatchObject({
      ackedWrites: 2, failedWrites: 1, indeterminateWrites: 1, ackedWritesLost: 0, lost: [], unexpected: [], splitBrainMs: 0,
      timelines: [1, 2], acknowledgingMembers: ['n1', 's1'],
    });
    // From the fault at 1000 to the first ack after it (1600), then to the end (3000).
    expect(check.unavailableMs).toBe(1400);
  });

  it('counts an acknowledged write missing on the primary or on a standby as lost, once per key', () => {
    const writes = [write('a', 'acknowledged', 900), write('b', 'acknowledged', 950)];
    const check = checkDrill(input({ writes, primary: { name: 's1', entries: entries('a') }, standbys: [{ name: 's2', entries: entries('a') }] }));
    expect(check.ackedWritesLost).toBe(1);
    expect(check.lost).toEqual([{ key: 'b', member: 's1', found: null }, { key: 'b', member: 's2', found: null }]);
  });

  it('counts no loss against a primary that could not be read, only against the members that were', () => {
    const writes = [write('a', 'acknowledged', 900), write('b', 'acknowledged', 950)];
    const check = checkDrill(input({ writes, primary: null, standbys: [{ name: 's2', entries: entries('a') }] }));
    expect(check.ackedWritesLost).toBe(1);
    expect(check.lost).toEqual([{ key: 'b', member: 's2', found: null }]);
  });

  it('flags values nobody wrote, and a failed write that is there after all', () => {
    const writes = [write('a', 'acknowledged', 900), write('c', 'failed', 1000)];
    const primary = new Map([['a', 'v-a'], ['c', 'v-c'], ['x', 'from nowhere']]);
    const check = checkDrill(input({ writes, primary: { name: 's1', entries: primary } }));
    expect(check.unexpected.map((entry) => entry.key)).toEqual(['c', 'x']);
  });

  it('checks a key overwritten under the load: the last acknowledged value, or a later indeterminate one', () => {
    const put = (value: string, outcome: WriteRecord['outcome'], sentMs: number, answeredMs: number): WriteRecord => ({
      key: 'hot', value, sentMs, answeredMs, outcome, member: outcome === 'acknowledged' ? 's1' : null, timeline: 1, lsn: null, error: null,
    });
    const hotOn = (value: string, writes: WriteRecord[]) => checkDrill(input({ writes, primary: { name: 's1', entries: new Map([['hot', value]]) } }));
    const first = put('v1', 'acknowledged', 100, 110);
    const second = put('v2', 'acknowledged', 200, 210);
    // v1 was answered before v2 was sent: v2 committed after it, so v1 at the end lost v2.
    expect(hotOn('v2', [first, second])).toMatchObject({ ackedWritesLost: 0, unexpected: [] });
    expect(hotOn('v1', [first, second])).toMatchObject({ ackedWritesLost: 1, lost: [{ key: 'hot', member: 's1', found: 'v1' }] });
    // Acknowledged concurrently: either order is right.
    expect(hotOn('v1', [put('v1', 'acknowledged', 100, 300), put('v2', 'acknowledged', 200, 250)]).ackedWritesLost).toBe(0);
    // An indeterminate write may have committed after the last acknowledged one, even if sent before it.
    expect(hotOn('v3', [first, second, put('v3', 'indeterminate', 50, 3000)]).ackedWritesLost).toBe(0);
    // A refused write's value, or one nobody wrote, is unexpected (and the acknowledged ones lost).
    const refused = hotOn('v3', [first, second, put('v3', 'failed', 300, 310)]);
    expect(refused.unexpected).toEqual([{ key: 'hot', member: 's1', value: 'v3' }]);
    expect(refused.ackedWritesLost).toBe(1);
    expect(hotOn('zz', [first]).unexpected).toHaveLength(1);
  });

  it('measures a split brain as the overlap of two members acknowledging', () => {
    // n1 acks until 1500, s1 from 1200: 300 ms during which both acknowledged.
    const probeAcks = [...[1000, 1100, 1200, 1300, 1400, 1500].map((atMs) => ({ member: 'n1', atMs })), ...[1200, 1300, 1400, 1500, 1600].map((atMs) => ({ member: 's1', atMs }))];
    const check = checkDrill(input({ probeAcks }));
    expect(check.splitBrainMs).toBe(300);
    expect(check.splitBrainWindows).toEqual([{ members: ['n1', 's1'], fromMs: 1200, toMs: 1500 }]);
  });

  it('sees a lone acknowledgement by one member amid the other\'s: B acks at 1000, 1100, 1200, A once at 1150', () => {
    const writes = [write('b1', 'acknowledged', 1000, 'B', 2), write('b2', 'acknowledged', 1100, 'B', 2), write('b3', 'acknowledged', 1200, 'B', 2), write('a1', 'acknowledged', 1150, 'A', 1)];
    const check = checkDrill(input({ writes }));
    // A's ack happened between its sending (1149) and its answer (1150), inside B's active interval.
    expect(check.splitBrainWindows).toEqual([{ members: ['B', 'A'], fromMs: 1149, toMs: 1150 }]);
    expect(check.splitBrainMs).toBe(1);
    expect(check.conflictingAcks).toBe(1);
  });

  it('counts a split brain of zero measured length (sent and answered in one instant) as 1 ms', () => {
    const probeAcks = [...[1000, 1100, 1200].map((atMs) => ({ member: 'B', atMs })), { member: 'A', atMs: 1100 }];
    const check = checkDrill(input({ probeAcks }));
    expect(check.splitBrainMs).toBe(1);
    expect(check.conflictingAcks).toBe(2);
  });

  it('measures the overlap over the sent-to-answered spans: a slow write to the old primary overlapping the new one\'s acks', () => {
    // A's write was sent at 1000 and answered at 1400; B acknowledged from 1300: 100 ms during which both may have.
    const slow = { ...write('a1', 'acknowledged', 1400, 'A', 1), sentMs: 1000 };
    const probeAcks = [1300, 1350, 1400, 1450].map((atMs) => ({ member: 'B', atMs, sentMs: atMs - 10 }));
    const check = checkDrill(input({ writes: [slow], probeAcks }));
    expect(check.splitBrainWindows).toEqual([{ members: ['A', 'B'], fromMs: 1290, toMs: 1400 }]);
    expect(check.splitBrainMs).toBe(110);
    expect(check.conflictingAcks).toBe(4);
  });

  it('sees no split brain when the old primary stops before the new one starts', () => {
    const probeAcks = [...[1000, 1100, 1200].map((atMs) => ({ member: 'n1', atMs })), ...[1900, 2000, 2100].map((atMs) => ({ member: 's1', atMs }))];
    expect(checkDrill(input({ probeAcks })).splitBrainMs).toBe(0);
  });
});

describe('acksAfterLease', () => {
  // The old primary n1 was faulted at 1000 with a 1000 ms lease: it may decide nothing after 2000.
  const sent = (sentMs: number, answeredMs: number, member = 'n1'): WriteRecord => ({ ...write(`k${sentMs}`, 'acknowledged', answeredMs, member), sentMs });

  it('counts an acknowledgement answered after the lease as certain when the node was never frozen', () => {
    const writes = [sent(900, 950), sent(1990, 2010), sent(2100, 2101), sent(2100, 2101, 's1')];
    expect(acksAfterLease({ writes, probeAcks: [], member: 'n1', leaseEndMs: 2000, frozen: null })).toEqual({ certain: 2, deliveredLate: 0 });
  });

  it('lets a write sent before a SIGSTOP be answered after the SIGCONT (decided in time), never one sent during the freeze', () => {
    const frozen = { fromMs: 1000, toMs: 2600 };
    const writes = [sent(990, 2620), sent(1500, 2610)];
    const probeAcks = [{ member: 'n1', sentMs: 995, atMs: 2615 }, { member: 'n1', sentMs: 2700, atMs: 2701 }];
    expect(acksAfterLease({ writes, probeAcks, member: 'n1', leaseEndMs: 2000, frozen })).toEqual({ certain: 2, deliveredLate: 2 });
  });

  it('takes a thaw that never came as the end of time: a write sent during the freeze and answered is certain', () => {
    const writes = [sent(1500, 2610)];
    expect(acksAfterLease({ writes, probeAcks: [], member: 'n1', leaseEndMs: 2000, frozen: { fromMs: 1000, toMs: Number.POSITIVE_INFINITY } })).toEqual({ certain: 1, deliveredLate: 0 });
  });
});
