/**
 * The failover monitor: the embedded automatic failover of a local cluster (DESIGN.md section
 * 8). A process of its own (`walship cluster monitor`, started by `cluster up` when the policy
 * is automatic, restarted by its supervisor if it dies), it checks the primary the cluster state
 * names every health_check_interval over one kept session, feeds each outcome to the decision
 * core (monitor-core.ts), and when the core says the primary is gone runs the same failover as
 * `cluster failover` (kill what is left of the old primary, decide, fence, promote, repoint).
 * With failover.enforce_lease it grants the primary its lease after every check the primary
 * answers (lease.ts), and its failover then leaves a primary that stopped answering alive: the
 * lease has run out before anyone is promoted. Every decision goes to monitor.log as one JSON
 * object (the failover's candidates, positions, thresholds and reasons included) and, for a
 * failover, to the cluster's history.
 *
 * It stops when its signal is aborted (SIGTERM from `cluster down`). A crash of the monitor
 * changes nothing in the cluster: its supervisor starts it again, and it starts counting anew.
 */
import { performance } from 'node:perf_hooks';
import { ClusterErrorCode } from './cluster-error.js';
import type { ClusterContext } from './context.js';
import { clusterFailover } from './failover.js';
import { leaseGrant, monotonicClockUs } from './lease.js';
import { clusterLockOwner, withClusterLockIfFree } from './lock.js';
import { monitorAddress, findMember } from './config.js';
import { errorBackoffMs, initialMonitorCore, monitorStep, type MonitorCore, type MonitorPolicy } from './monitor-core.js';
import { appendMonitorLog, type MonitorLogEntry } from './monitor-files.js';
import type { NodeSession, NodeStatusView } from './node-control.js';
import { NoCandidateError } from './promotion.js';
import { readClusterStateFor, type ClusterState } from './state.js';
import { changeSynchronousNames, recordNamesInForce } from './synchronous-change.js';
import { appendHistory } from './history.js';
import { probeMembers } from './members.js';
import { settleTransition } from './transition-settle.js';
import { leaseWithheldReason } from './transition.js';
import { memberAction } from './member-actions.js';
import { runningServer } from './member-files.js';
import { initialRestartCore, restartEnded, restartStep, type RestartCore } from './restart-core.js';
import { initialSynchronousModeCore, relaxedSynchronousNames, synchronousCandidates, synchronousModeStep, type SynchronousModeCore } from './synchronous-mode.js';

/**
 * Longest time between two observations of the primary kept in the state: the failover decision
 * measures lag against the last one, so it should be recent; each is a state file write (two
 * fsyncs), so not at every check.
 */
const OBSERVATION_REFRESH_MS = 1_000;

/** A restart of a dead member (its start, until it accepts connections) that takes longer than this has failed. */
const RESTART_TIMEOUT_MS = 30_000;

export interface MonitorOptions {
  readonly signal: AbortSignal;
  /** Each decision, after it was written to monitor.log (the CLI prints it for people). */
  readonly onEntry?: (entry: MonitorLogEntry) => void;
}

/** The core's clock: CLOCK_MONOTONIC in ms, the clock leases are counted on. */
const nowMs = () => monotonicClockUs() / 1000;

export async function runMonitor(ctx: ClusterContext, options: MonitorOptions): Promise<void> {
  const { config } = ctx;
  const policy: MonitorPolicy = config.failover;
  /** Writes a decision to monitor.log; a log that cannot be written goes to stderr and stops nothing. */
  const log = (entry: { event: string; [key: string]: unknown }): void => {
    try {
      options.onEntry?.(appendMonitorLog(config.dataRoot, entry));
    } catch (error) {
      process.stderr.write(`walship cluster monitor: could not write monitor.log (${(error as Error).message}): ${JSON.stringify(entry)}\n`);
    }
  };
  let core: MonitorCore = initialMonitorCore(nowMs());
  let session: { primary: string; session: NodeSession } | null = null;
  let paused: string | null = null;
  let failing = false;
  log({
    event: 'started', pid: process.pid,
    policy: { healthCheckIntervalMs: policy.healthCheckIntervalMs, missedChecks: policy.missedChecks, primaryLeaseMs: policy.primaryLeaseMs, enforceLease: config.failover.enforceLease },
  });

  /** Drops the session. A node that stopped answering would hold a polite close for seconds: it is not waited for. */
  const closeSession = async () => {
    const current = session;
    session = null;
    void current?.session.close();
  };

  let lastStatus: NodeStatusView | null = null;
  let observedAtMs = -Infinity;
  let observedSyncStates = '';

  /** One health check: the primary answers a status request as a primary within one interval. */
  const check = async (primary: string): Promise<boolean> => {
    if (session !== null && session.primary !== primary) await closeSession();
    if (session === null) {
      const member = findMember(config, primary);
      const opened = await ctx.control.openSession({ address: monitorAddress(config, member), timeoutMs: policy.healthCheckIntervalMs });
      if (opened === null) return false;
      session = { primary, session: opened };
    }
    const status = await session.session.status(policy.healthCheckIntervalMs);
    lastStatus = status;
    if (status === null) {
      await closeSession();
      return false;
    }
    return status.role === 'primary';
  };

  /** Why the last grant failed (logged once per change), or null while grants are taken. */
  let leaseProblem: string | null = null;
  /** Why leases are withheld (logged once per change), or null. */
  let leaseWithheld: string | null = null;

  /**
   * The highest timeline the members other than the primary report now (asked at once, each
   * within one check interval): a member promoted past the primary, however that happened,
   * means the primary gets no more lease (transition.ts).
   */
  const highestOtherTimeline = async (primary: string): Promise<{ member: string; timeline: number } | null> => {
    const probes = await probeMembers(ctx.control, config, policy.healthCheckIntervalMs, [primary]);
    let highest: { member: string; timeline: number } | null = null;
    for (const probe of probes) {
      const timeline = probe.status?.timeline;
      if (typeof timeline === 'number' && (highest === null || timeline > highest.timeline)) highest = { member: probe.member.name, timeline };
    }
    return highest;
  };

  /**
   * Grants the primary that just answered its lease (failover.enforce_lease). The core learns
   * of it before it is sent: whatever becomes of the request, the lease runs out by then. None
   * while a change of primary is unsettled, nor to a primary some member is past (transition.ts).
   */
  const renewLease = async (state: ClusterState, primary: string, timeline: number, highest: { member: string; timeline: number } | null): Promise<void> => {
    if (!config.failover.enforceLease || session === null || session.primary !== primary) return;
    const withheld = leaseWithheldReason({ transition: state.transition, primary, primaryTimeline: timeline, highest });
    if (withheld !== leaseWithheld) log(withheld === null ? { event: 'lease_resumed', primary, timeline } : { event: 'lease_withheld', primary, timeline, reason: withheld });
    leaseWithheld = withheld;
    if (withheld !== null) return;
    const grant = leaseGrant(ctx, findMember(config, primary), timeline, 'monitor');
    core = monitorStep(core, { kind: 'leaseSent', expiresAtMs: grant.issuedAtUs / 1000 + grant.durationMs }, policy).core;
    const outcome = await session.session.grantLease(grant, policy.healthCheckIntervalMs);
    const problem = outcome.granted ? null : (outcome.refused ?? 'no answer');
    if (problem !== leaseProblem) log(problem === null ? { event: 'lease_granted', primary, timeline } : { event: 'lease_refused', primary, timeline, reason: problem });
    leaseProblem = problem;
  };

  let synchronousCore: { primary: string; core: SynchronousModeCore } | null = null;
  let restartCore: RestartCore = initialRestartCore();
  /** A restart under way (runs beside the checks; it holds the data root's lock meanwhile). */
  let restarting: Promise<void> | null = null;
  /** The primary a failover found nobody to replace: the monitor may start it again. */
  let failoverRefusedFor: string | null = null;

  /**
   * Members that died (restart-core.ts): a standby is started again, with backoff, one at a
   * time, in the background. The primary only after a failover away from it was refused; a
   * fenced old primary or one a person stopped, never.
   */
  const restartDeadMembers = (state: ClusterState): void => {
    const seen = config.members.map((member) => {
      const memberState = state.members[member.name];
      return {
        name: member.name,
        role: memberState?.role ?? 'uninitialized',
        running: runningServer(member.dataDir) !== null,
        stoppedByCommand: memberState?.stoppedByCommand === true,
      };
    });
    const step = restartStep(restartCore, seen, { primaryFailoverRefused: failoverRefusedFor === state.primary }, nowMs());
    restartCore = step.core;
    const restart = step.restart;
    if (restart === null) return;
    log({ event: 'member_restart', member: restart.member, action: restart.action, attempt: restart.attempt });
    const began = Date.now();
    // Started, not waited for until it streams: the lock is let go as soon as it runs, so that
    // a failover needed meanwhile is not held for a standby's catching up (up to LOCK_WAIT_MS).
    restarting = memberAction(ctx, 'start', restart.member, { timeoutMs: RESTART_TIMEOUT_MS, settle: false })
      .then(
        (result) => {
          log({ event: 'member_restarted', member: restart.member, action: restart.action, pid: result.pid, durationMs: Date.now() - began });
          appendHistory(config.dataRoot, {
            at: new Date().toISOString(), event: 'restart', member: restart.member, from: null, timeline: result.state.timeline, lsn: null, durationMs: Date.now() - began,
            summary: `${restart.member} had died; started again by the monitor (attempt ${restart.attempt})`, decision: null, initiator: 'monitor',
          });
        },
        (error: unknown) => {
          const fields = error as { message?: string; detail?: string };
          log({ event: 'member_restart_failed', member: restart.member, action: restart.action, attempt: restart.attempt, message: fields.message ?? String(error), detail: fields.detail ?? null });
        },
      )
      // The success handler writes files too: whatever it throws is logged, never an unhandled
      // rejection (which would end the process).
      .catch((error: unknown) => {
        log({ event: 'error', where: 'member_restart', member: restart.member, message: (error as Error).message ?? String(error) });
      })
      .finally(() => {
        restartCore = restartEnded(restartCore, restart.member);
        restarting = null;
      });
  };

  /**
   * The relaxed synchronous mode (synchronous-mode.ts): after each check the primary answered,
   * counts which standbys stream, and when the setting the primary should run with differs from
   * the one in force, changes it (synchronous-change.ts).
   */
  const maintainSynchronousNames = async (state: ClusterState, status: NodeStatusView): Promise<void> => {
    if (config.synchronous === null || config.failover.synchronousMode !== 'relaxed') return;
    const inForce = typeof status.synchronousStandbyNames === 'string' ? status.synchronousStandbyNames : null;
    if (inForce === null) return;
    const current = synchronousCore?.primary === state.primary ? synchronousCore.core : initialSynchronousModeCore();
    const streaming = new Set((status.replication ?? []).filter((row) => row.state === 'streaming').map((row) => row.applicationName ?? ''));
    const core = synchronousModeStep(current, synchronousCandidates(config, state), streaming, policy.missedChecks);
    synchronousCore = { primary: state.primary, core };
    const wanted = relaxedSynchronousNames(config, state, core.gone);
    if (wanted === inForce) return;
    const change = await changeSynchronousNames(ctx, state.primary, status, inForce, wanted, core.gone).catch((error: Error) => {
      log({ event: 'synchronous_change_failed', primary: state.primary, from: inForce, to: wanted, message: error.message });
      return null;
    });
    if (change !== null) {
      log({ event: 'synchronous_names', primary: change.primary, from: change.from, to: change.to, gone: change.gone, releasedLsn: change.releasedLsn });
      observedSyncStates = '';
    }
  };

  /**
   * Keeps the primary's last report in the state (its position, its standbys' synchronous
   * states), which the failover decision reads once the primary is gone: when the states change,
   * and at least every OBSERVATION_REFRESH_MS. Skipped while anyone else holds the lock.
   */
  const observe = async (state: ClusterState): Promise<void> => {
    const status = lastStatus;
    if (status === null) return;
    const syncStates = JSON.stringify((status.replication ?? []).map((row) => [row.applicationName, row.syncState]));
    if (syncStates === observedSyncStates && performance.now() - observedAtMs < OBSERVATION_REFRESH_MS) return;
    await withClusterLockIfFree(config.dataRoot, 'walship cluster monitor (observation)', false, false, async () => {
      const fresh = readClusterStateFor(config);
      if (fresh === null || fresh.primary !== state.primary) return;
      const member = findMember(config, fresh.primary);
      await recordNamesInForce(ctx, fresh, [{ member, pid: null, dataDirectoryExists: true, status }]);
      observedAtMs = performance.now();
      observedSyncStates = syncStates;
    });
  };

  /** The last outcome of settling an interrupted transition (logged once per change). */
  let transitionNote: string | null = null;

  /**
   * An interrupted change of primary in the state (transition.ts): settled under the lock before
   * anything else; while it stays pending, no check is counted and no lease granted.
   */
  const settle = async (): Promise<void> => {
    await withClusterLockIfFree(config.dataRoot, 'walship cluster monitor (settling a transition)', true, true, async () => {
      const fresh = readClusterStateFor(config);
      if (fresh === null || fresh.transition === null || fresh.transition === undefined) return;
      const settled = await settleTransition(ctx, fresh, 'monitor');
      const note = `${settled.outcome}: ${settled.why}`;
      if (note !== transitionNote || settled.outcome !== 'pending') {
        log({ event: settled.outcome === 'pending' ? 'transition_pending' : 'transition_settled', outcome: settled.outcome, transition: fresh.transition, why: settled.why, warnings: settled.warnings, primary: settled.state.primary });
      }
      transitionNote = settled.outcome === 'pending' ? note : null;
    });
  };

  /** One turn of the loop: read the state, check, renew, observe, fail over if the core says so. */
  const iteration = async (): Promise<void> => {
    const state = readClusterStateFor(config);
    const owner = clusterLockOwner(config.dataRoot);
    if (state !== null && state.transition !== null && state.transition !== undefined && (owner === null || owner.pid === process.pid)) {
      // Not counted: the primary the state names may be the one being replaced.
      core = monitorStep(core, { kind: 'paused', atMs: nowMs() }, policy).core;
      await closeSession();
      await settle();
    } else if (state === null || (owner !== null && owner.changes && owner.pid !== process.pid)) {
      const reason = state === null ? 'the cluster has not been created yet' : `"${owner!.command}" (pid ${owner!.pid}) is changing the cluster`;
      if (paused !== reason) log({ event: 'paused', reason });
      paused = reason;
      core = monitorStep(core, { kind: 'paused', atMs: nowMs() }, policy).core;
      // A command that does not change who the primary is (up, a member's start or stop) may
      // take longer than a lease: the primary that answers keeps its lease meanwhile.
      if (state !== null && owner !== null && !owner.changesPrimary) {
        const scan = highestOtherTimeline(state.primary).catch(() => null);
        if (await check(state.primary)) await renewLease(state, state.primary, lastStatus!.timeline, await scan);
        else await scan;
      }
    } else {
      if (paused !== null) log({ event: 'resumed', primary: state.primary });
      paused = null;
      const scan = highestOtherTimeline(state.primary).catch(() => null);
      const ok = await check(state.primary);
      const highest = await scan;
      const step = monitorStep(core, { kind: 'check', primary: state.primary, ok, atMs: nowMs() }, policy);
      core = step.core;
      if (!ok && !failing) log({ event: 'check_failed', primary: state.primary });
      if (ok && failing) log({ event: 'primary_answers_again', primary: state.primary, missed: 0 });
      failing = !ok;
      if (ok) await renewLease(state, state.primary, lastStatus!.timeline, highest);
      if (ok) await observe(state);
      if (ok) await maintainSynchronousNames(state, lastStatus!);
      if (ok && failoverRefusedFor === state.primary) failoverRefusedFor = null;
      if (restarting === null) restartDeadMembers(state);
      if (step.action.kind === 'failover') {
        const action = step.action;
        log({ event: 'primary_down', primary: action.primary, missedChecks: action.missed, silentMs: Math.round(action.silentMs), waitedFor: action.waitedFor });
        await closeSession();
        try {
          // Tied to the primary judged gone, in the state it was judged in: if a person changed
          // the primary while this waited for the lock, nothing is done (failover-guard.ts).
          const result = await clusterFailover(ctx, {
            initiator: 'monitor',
            expected: { primary: action.primary, generation: state.generation },
            leaseTimedFor: action.primary,
          });
          log({
            event: 'failover', from: result.from, to: result.to, timeline: result.timeline, lsn: result.lsn,
            promotionMs: result.unavailableMs, durationMs: result.durationMs, detectedAfterMs: Math.round(action.silentMs), oldPrimaryStopped: result.oldPrimaryStopped,
            warnings: result.warnings, decision: result.decision,
          });
          core = monitorStep(core, { kind: 'failoverEnded', promoted: true, atMs: nowMs() }, policy).core;
          failing = false;
        } catch (error) {
          const fields = error as { message?: string; detail?: string; code?: string };
          if (fields.code === ClusterErrorCode.stateChanged) {
            // Nothing was done: the next check looks at the state as it is now (a new primary
            // starts a new count; the same one, still silent, is failed over then).
            log({ event: 'failover_abandoned', primary: action.primary, generation: state.generation, message: fields.message ?? String(error) });
          } else {
            log({
              event: 'failover_refused', primary: action.primary, code: fields.code ?? null, message: fields.message ?? String(error), detail: fields.detail ?? null,
              decision: error instanceof NoCandidateError ? error.decision : null,
            });
            core = monitorStep(core, { kind: 'failoverEnded', promoted: false, atMs: nowMs() }, policy).core;
            failoverRefusedFor = action.primary;
          }
        }
      }
    }
  };

  /** Errors in a row: each one logged, and the next turn waits longer (errorBackoffMs). */
  let consecutiveErrors = 0;

  try {
    while (!options.signal.aborted) {
      const started = performance.now();
      let backoffMs = 0;
      // An error in one turn (a damaged state file, a primary the config no longer lists, an I/O
      // error) is logged and the monitor carries on: dying would only have its supervisor start
      // it again into the same error, and give up after a few.
      try {
        await iteration();
        consecutiveErrors = 0;
      } catch (error) {
        consecutiveErrors++;
        backoffMs = errorBackoffMs(policy, consecutiveErrors);
        const fields = error as { message?: string; detail?: string; hint?: string; code?: string };
        log({ event: 'error', message: fields.message ?? String(error), code: fields.code ?? null, detail: fields.detail ?? null, hint: fields.hint ?? null, consecutive: consecutiveErrors, retryInMs: backoffMs });
        await closeSession();
      }
      const waitMs = Math.max(backoffMs, policy.healthCheckIntervalMs - (performance.now() - started));
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          options.signal.removeEventListener('abort', onAbort);
          resolve();
        }, waitMs);
        options.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  } finally {
    await closeSession();
    await restarting;
    log({ event: 'stopped', pid: process.pid });
  }
}
