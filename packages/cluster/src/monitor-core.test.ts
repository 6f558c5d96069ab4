import { describe, expect, it } from 'vitest';
import { initialMonitorCore, monitorStep, retryAfterMs, type MonitorAction, type MonitorCore, type MonitorEvent, type MonitorPolicy } from './monitor-core.js';

const POLICY: MonitorPolicy = { healthCheckIntervalMs: 300, missedChecks: 3, primaryLeaseMs: 1000 };

/** Runs events through the core; returns the actions, one per event. */
function run(events: MonitorEvent[], policy = POLICY, start: MonitorCore = initialMonitorCore(0)): { core: MonitorCore; actions: MonitorAction[] } {
  let core = start;
  const actions: MonitorAction[] = [];
  for (const event of events) {
    const step = monitorStep(core, event, policy);
    core = step.core;
    actions.push(step.action);
  }
  return { core, actions };
}

const check = (atMs: number, ok: boolean, primary = 'n1'): MonitorEvent => ({ kind: 'check', primary, ok, atMs });
const kinds = (actions: MonitorAction[]) => actions.map((action) => action.kind);

describe('the failover monitor core', () => {
  it('does nothing while the primary answers', () => {
    const { core, actions } = run([check(0, true), check(300, true), check(600, true)]);
    expect(kinds(actions)).toEqual(['none', 'none', 'none']);
    expect(core).toMatchObject({ primary: 'n1', missed: 0, lastContactMs: 600 });
  });

  it('fails over after the missed checks and the lease plus one interval since the last contact', () => {
    // Last contact at 0; checks fail from 300. 3 missed at 900, but the lease (1000 + 300) holds until 1300.
    const { actions } = run([check(0, true), check(300, false), check(600, false), check(900, false), check(1200, false), check(1500, false)]);
    expect(kinds(actions)).toEqual(['none', 'none', 'none', 'none', 'none', 'failover']);
    expect(actions[5]).toEqual({ kind: 'failover', primary: 'n1', missed: 5, silentMs: 1500, waitedFor: 'lease' });
  });

  it('waits only for the missed checks when they take longer than the lease', () => {
    const policy = { healthCheckIntervalMs: 500, missedChecks: 4, primaryLeaseMs: 1000 };
    const { actions } = run([check(0, true), check(500, false), check(1000, false), check(1500, false), check(2000, false)], policy);
    expect(actions.at(-1)).toEqual({ kind: 'failover', primary: 'n1', missed: 4, silentMs: 2000, waitedFor: 'missed_checks' });
  });

  it('starts counting again when the primary answers between failures', () => {
    const { actions, core } = run([check(0, true), check(300, false), check(600, false), check(900, true), check(1200, false), check(1500, false)]);
    expect(kinds(actions)).not.toContain('failover');
    expect(core).toMatchObject({ missed: 2, lastContactMs: 900 });
  });

  it('counts a primary never seen from when the monitor began watching it', () => {
    const { actions } = run([check(5000, false), check(5300, false), check(5600, false), check(5900, false), check(6200, false), check(6500, false)], POLICY, initialMonitorCore(5000));
    expect(actions.findIndex((action) => action.kind === 'failover')).toBe(5);
  });

  it('does not count while another command holds the cluster, and counts from the first check after it', () => {
    const { actions, core } = run([check(0, true), check(300, false), check(600, false), { kind: 'paused', atMs: 900 }, check(1200, false), check(1500, false)]);
    expect(kinds(actions)).not.toContain('failover');
    // The command may have granted the primary a lease until it let go: the count starts at 1200.
    expect(core).toMatchObject({ missed: 2, lastContactMs: 1200, paused: false });
    const later = run([check(1800, false), check(2400, false), check(2500, false)], POLICY, core);
    expect(kinds(later.actions)).toEqual(['none', 'none', 'failover']);
  });

  it('waits for the last lease it sent to run out, counted from its sending, plus one interval', () => {
    // Contact at 0, then a lease sent at 50 (until 1050): the contact alone would allow 1300.
    const events: MonitorEvent[] = [check(0, true), { kind: 'leaseSent', expiresAtMs: 1050 }, check(300, false), check(600, false), check(900, false), check(1200, false), check(1320, false), check(1350, false)];
    const { actions } = run(events);
    expect(kinds(actions)).toEqual(['none', 'none', 'none', 'none', 'none', 'none', 'none', 'failover']);
    // A late lease never shortens the wait.
    const again = run([{ kind: 'leaseSent', expiresAtMs: 500 }], POLICY, run(events.slice(0, 2)).core);
    expect(again.core.leaseExpiresMs).toBe(1050);
  });

  it('starts a new count for a new primary', () => {
    const { actions, core } = run([check(0, false), check(300, false), check(600, false, 's1'), check(900, false, 's1')]);
    expect(kinds(actions)).not.toContain('failover');
    expect(core).toMatchObject({ primary: 's1', missed: 2, lastContactMs: 600 });
  });

  it('after a failover that promoted nobody, tries again only after a while; after one that did, watches afresh', () => {
    const failing = [check(0, true), check(300, false), check(600, false), check(900, false), check(1200, false), check(1500, false)];
    const first = run(failing);
    expect(first.actions.at(-1)!.kind).toBe('failover');
    const refused = run([{ kind: 'failoverEnded', promoted: false, atMs: 1600 }, check(1800, false), check(1600 + retryAfterMs(POLICY), false)], POLICY, first.core);
    expect(kinds(refused.actions)).toEqual(['none', 'none', 'failover']);
    const promoted = run([{ kind: 'failoverEnded', promoted: true, atMs: 1600 }, check(1900, false, 's1')], POLICY, first.core);
    expect(promoted.core).toMatchObject({ primary: 's1', missed: 1, lastContactMs: 1900 });
  });
});
