import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import { clusterFailover } from './failover.js';
import { readHistory } from './history.js';
import type { NodeControl, NodeStatusView } from './node-control.js';
import { initialClusterState, readClusterState, stateFilePath, withNewPrimary, writeClusterState, type ClusterState, type PrimaryTransition } from './state.js';
import { abandonTransition, completeTransition, judgeTransition, leaseWithheldReason } from './transition.js';
import { formatMembersTable } from './members.js';
import { settleTransition } from './transition-settle.js';
import { running, tempDataRoot } from './test-support.js';

const CONFIG = `
name: transition
base_port: 6200
data_root: /unused
failover: {mode: manual}
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
  - {name: s2, port_offset: 2}
`;

let dataRoot: string;
tempDataRoot('walship-transition-', (path) => (dataRoot = path));

const config = () => parseClusterConfig(CONFIG, '/configs/transition.yaml', { dataRoot });

const fence = { at: '2026-01-01T00:00:00.000Z', reason: 'failover to s1', timeline: 1, newPrimary: 's1' };
const transition: PrimaryTransition = { kind: 'failover', from: 'n1', to: 's1', fromTimeline: 1, startedAt: '2026-01-01T00:00:00.000Z', fence };

describe('judgeTransition', () => {
  it('completes when the target answers as the primary of a later timeline, or its control file is on one', () => {
    expect(judgeTransition(transition, { running: true, status: { role: 'primary', timeline: 2 }, controlTimeline: null })).toMatchObject({ kind: 'complete', timeline: 2 });
    expect(judgeTransition(transition, { running: false, status: null, controlTimeline: 2 })).toMatchObject({ kind: 'complete', timeline: 2 });
  });

  it('drops it when the target is still a standby of the old timeline: answering, or stopped (a stopped standby never promotes)', () => {
    expect(judgeTransition(transition, { running: true, status: { role: 'standby', timeline: 1 }, controlTimeline: null })).toMatchObject({ kind: 'abandon' });
    expect(judgeTransition(transition, { running: false, status: null, controlTimeline: 1 })).toMatchObject({ kind: 'abandon' });
    expect(judgeTransition(transition, { running: false, status: null, controlTimeline: null })).toMatchObject({ kind: 'abandon' });
  });

  it('waits while the target runs and does not answer', () => {
    expect(judgeTransition(transition, { running: true, status: null, controlTimeline: 1 })).toMatchObject({ kind: 'wait' });
  });
});

describe('the transition in the state', () => {
  const base = () => ({ ...running(initialClusterState(config())), transition });

  it('completed: the target is the primary, the old one fenced, the transition gone', () => {
    const done = completeTransition(base(), 2);
    expect(done).toMatchObject({ primary: 's1', previousPrimary: 'n1', timeline: 2, transition: null });
    expect(done.members.n1).toMatchObject({ role: 'fenced', fence });
    expect(done.members.s1).toMatchObject({ role: 'primary', timeline: 2 });
    // Without names in the transition (a state written before they were), nothing is recorded.
    expect(done.synchronousNames).toBeNull();
  });

  it('completed: the synchronous names the transition gave the target are its record (they were written before it got them)', () => {
    const done = completeTransition({ ...base(), transition: { ...transition, synchronousStandbyNames: 'FIRST 1 (n1)' } }, 2);
    expect(done.synchronousNames).toEqual({ primary: 's1', names: 'FIRST 1 (n1)' });
  });

  it('dropped: nothing else changes', () => {
    const before = base();
    expect(abandonTransition(before)).toEqual({ ...before, transition: null });
  });

  it('is written and read back, cleared by the state that names the new primary, and checked', () => {
    const written = writeClusterState(dataRoot, base());
    expect(readClusterState(dataRoot)!.transition).toEqual(transition);
    expect(withNewPrimary(written, 's1', 2, { fence }).transition).toBeNull();
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...written, transition: { ...transition, from: 's2' } }));
    expect(() => readClusterState(dataRoot)).toThrow(/"transition.from" is s2, but the primary is n1/);
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...written, transition: { ...transition, to: 'x9' } }));
    expect(() => readClusterState(dataRoot)).toThrow(/"transition.to" must name a member/);
  });
});

describe('cluster status', () => {
  it('shows a pending transition under the table', () => {
    const state = { ...running(initialClusterState(config())), transition };
    expect(formatMembersTable(config(), state, [])).toMatch(/! a failover from n1 to s1 \(timeline 1\), started 2026-01-01T00:00:00.000Z, was interrupted and is not settled yet: no lease is granted until it is/);
    expect(formatMembersTable(config(), { ...state, transition: null }, [])).not.toMatch(/interrupted/);
  });
});

describe('leaseWithheldReason', () => {
  it('withholds the lease while a transition is pending, and from a primary some member is past', () => {
    expect(leaseWithheldReason({ transition, primary: 'n1', primaryTimeline: 1, highest: null })).toMatch(/a failover from n1 to s1 .* is not settled/);
    expect(leaseWithheldReason({ transition: null, primary: 'n1', primaryTimeline: 1, highest: { member: 's1', timeline: 2 } })).toMatch(/s1 reports timeline 2, past n1's timeline 1/);
    expect(leaseWithheldReason({ transition: null, primary: 'n1', primaryTimeline: 2, highest: { member: 's1', timeline: 2 } })).toBeNull();
    expect(leaseWithheldReason({ transition: undefined, primary: 'n1', primaryTimeline: 1, highest: null })).toBeNull();
  });
});

describe('a failover that dies between the promotion and the state naming the new primary', () => {
  // Stand-in nodes: the crash of the failover right after it asked for the promotion cannot be
  // made on real processes at a chosen instant. s1 and s2 "run" as this test process (their
  // postmaster.pid names it); n1, the old primary, is dead.
  let promoted = false;
  const seenAtPromotion: { state: ClusterState | null; fenced: boolean } = { state: null, fenced: false };
  const status = (port: number): NodeStatusView => {
    const name = ['n1', 's1', 's2'][port - 6200]!;
    const primary = name === 's1' && promoted;
    return { role: primary ? 'primary' : 'standby', systemId: '1', timeline: primary ? 2 : 1, flushLsn: '0/3000', receiveLsn: '0/3000', replayLsn: '0/3000' };
  };
  const control = {
    status: async ({ address }: { address: string }) => status(Number(address.slice(address.lastIndexOf(':') + 1))),
    setSettings: async () => ({ reloaded: true }),
    createSlot: async () => ({ created: false }),
    promote: async () => {
      seenAtPromotion.state = readClusterState(dataRoot);
      seenAtPromotion.fenced = existsSync(join(dataRoot, 'n1', 'standby.signal'));
      throw new Error('the failover process died here (stand-in)');
    },
  } as unknown as NodeControl;
  const ctx = (): ClusterContext => ({ config: config(), control, progress: () => undefined });

  beforeEach(() => {
    promoted = false;
    for (const name of ['n1', 's1', 's2']) {
      mkdirSync(join(dataRoot, name, 'global'), { recursive: true });
      writeFileSync(join(dataRoot, name, 'global', 'control'), '');
      if (name !== 'n1') writeFileSync(join(dataRoot, name, 'postmaster.pid'), `${process.pid}\n${join(dataRoot, name)}\n`);
    }
    writeClusterState(dataRoot, running(initialClusterState(config())));
  });

  it('has recorded the intent and fenced the old primary before asking for the promotion', async () => {
    await expect(clusterFailover(ctx(), { to: 's1' })).rejects.toThrow(/died here/);
    expect(seenAtPromotion.fenced).toBe(true);
    expect(seenAtPromotion.state!.transition).toMatchObject({ kind: 'failover', from: 'n1', to: 's1', fromTimeline: 1 });
    expect(readClusterState(dataRoot)!).toMatchObject({ primary: 'n1', transition: { to: 's1' } });
  });

  it('is completed by whoever comes next when the target did become the primary', async () => {
    await expect(clusterFailover(ctx(), { to: 's1' })).rejects.toThrow(/died here/);
    promoted = true;
    const settled = await settleTransition(ctx(), readClusterState(dataRoot)!);
    expect(settled.outcome).toBe('completed');
    const state = readClusterState(dataRoot)!;
    expect(state).toMatchObject({ primary: 's1', timeline: 2, transition: null });
    expect(state.members.n1).toMatchObject({ role: 'fenced' });
    expect(readHistory(dataRoot).events.at(-1)).toMatchObject({ event: 'transition', member: 's1', from: 'n1' });
  });

  it('is dropped when the target is still a standby, leaving the old primary fenced; a new failover may go on', async () => {
    await expect(clusterFailover(ctx(), { to: 's1' })).rejects.toThrow(/died here/);
    const settled = await settleTransition(ctx(), readClusterState(dataRoot)!);
    expect(settled.outcome).toBe('abandoned');
    expect(readClusterState(dataRoot)!).toMatchObject({ primary: 'n1', transition: null });
    expect(existsSync(join(dataRoot, 'n1', 'standby.signal'))).toBe(true);
    expect(readFileSync(stateFilePath(dataRoot), 'utf8')).not.toMatch(/"transition": \{/);
  });

  it('refuses a failover while another member already answers as a primary past the state', async () => {
    promoted = true;
    await expect(clusterFailover(ctx(), { to: 's2' })).rejects.toThrow(/s1 already answers as a primary, on timeline 2/);
  });
});
