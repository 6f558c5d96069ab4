/**
 * Failover drills (`walship drill SCENARIO -f FILE`): a write load from clients that follow the
 * primary, probes that write to every member directly (to see any member that acknowledges),
 * a fault, the cluster settling, and a check key by key (drill-check.ts) of what was
 * acknowledged against what every member holds. The report has DESIGN.md section 10's keys
 * (`verdict`, `ackedWrites`, `ackedWritesLost`, `indeterminateWrites`, `splitBrainMs`,
 * `detectionMs`, `promotionMs`, `unavailableMs`, `timelines`, `oldPrimaryRejoined`), and the
 * drill's artifacts (every write, the monitor's decisions, the report) stay in
 * DATA_ROOT/drills/<time>-<scenario>/.
 *
 * Scenarios: `kill-primary` (SIGKILL), `hang-primary` (SIGSTOP until a new primary is up, then
 * SIGCONT), `partition-primary` (the partition proxy cuts the primary off the monitor and the
 * standbys until a new primary is up, then heals: what was held reaches it late, as it would
 * after a real partition), `kill-sync-standby`, `slow-standby` (the synchronous standby's links
 * slowed by SLOW_STANDBY_LATENCY_MS for the whole load), `switchover`, `rejoin` (a failover, then
 * the old primary rejoined under the load). With `failover.mode: automatic` the monitor handles
 * the primary's faults; with manual the drill runs `cluster failover` itself right after the
 * fault. partition-primary and slow-standby need the partition proxy (`proxy: true`).
 *
 * The verdict fails on any split brain, any value nobody wrote, and any acknowledged write lost
 * where the toolkit promises none: always for a switchover and for a standby's death, and for a
 * primary's death when a standby was synchronous (the nodes reported one `sync` or `quorum`). A
 * loss with asynchronous replication is reported, with that reason, and does not fail the drill.
 */
import { clusterCredentials } from './cluster-auth.js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import { clusterUp } from './cluster-up.js';
import { findMember, memberAddress, type ClusterConfig, type MemberConfig } from './config.js';
import { waitUntil, type ClusterContext } from './context.js';
import { acksAfterLease, checkDrill, type DrillCheck, type ProbeAck, type WriteRecord } from './drill-check.js';
import { clusterFailover } from './failover.js';
import { memberAction } from './member-actions.js';
import { runningServer } from './member-files.js';
import { probeMember, probeMembers } from './members.js';
import { monitorLogPath } from './monitor-files.js';
import { setLinkControl, waitProxyApplied } from './proxy-control.js';
import { readClusterStateFor, type ClusterState } from './state.js';
import { clusterSwitchover } from './switchover.js';
import { clusterClientSsl } from './tls.js';

export const DRILL_SCENARIOS = ['kill-primary', 'hang-primary', 'partition-primary', 'kill-sync-standby', 'slow-standby', 'switchover', 'rejoin'] as const;
export type DrillScenario = (typeof DRILL_SCENARIOS)[number];

export interface DrillOptions {
  readonly scenario: DrillScenario;
  /** How long the load runs after the fault (the cluster must settle within it, or within settleTimeoutMs). */
  readonly durationMs?: number;
  /** Load writes per second, over all clients. */
  readonly rate?: number;
  readonly clients?: number;
  /** How long the cluster may take to have a new primary, or a standby to catch up. */
  readonly settleTimeoutMs?: number;
}

export interface DrillReport {
  readonly scenario: DrillScenario;
  readonly verdict: 'pass' | 'fail';
  /** Why the verdict is fail, or what the pass leaves out (a loss under asynchronous replication). */
  readonly reasons: readonly string[];
  readonly ackedWrites: number;
  readonly ackedWritesLost: number;
  readonly indeterminateWrites: number;
  readonly failedWrites: number;
  readonly splitBrainMs: number;
  /** From the fault to the monitor's verdict that the primary is gone; null when nothing had to be detected. */
  readonly detectionMs: number | null;
  /** The promotion itself; null when nobody was promoted. */
  readonly promotionMs: number | null;
  readonly unavailableMs: number;
  readonly timelines: readonly number[];
  readonly oldPrimaryRejoined: boolean | null;
  /**
   * Writes (the load's and the probes') the faulted primary acknowledged later than its lease
   * could have held after the fault (primary_lease): must be 0 (failover rule 1). Null when the
   * fault was not the primary's.
   */
  readonly oldPrimaryAcksAfterLease: number | null;
  /**
   * The old primary's acknowledgements answered after its lease but possibly decided before it
   * (sent before a SIGSTOP, delivered after the SIGCONT): reported, not a failure. Null as above.
   */
  readonly oldPrimaryAcksDeliveredLate: number | null;
  /** How the failover kept the old primary from acknowledging: killed, left to its expired lease, ... (null: no failover). */
  readonly oldPrimaryStopped: string | null;
  readonly failoverMode: 'manual' | 'automatic';
  readonly synchronousEnforced: boolean;
  readonly primaryBefore: string;
  readonly primaryAfter: string;
  readonly faultedMember: string;
  readonly durationMs: number;
  readonly artifacts: string;
  readonly lost: DrillCheck['lost'];
  readonly unexpected: DrillCheck['unexpected'];
  readonly splitBrainWindows: DrillCheck['splitBrainWindows'];
  /** Acknowledgements whose sent-to-answered span meets a split-brain window. */
  readonly conflictingAcks: number;
}

/** Defaults: short enough for CI, long enough to see a failover settle. */
const DEFAULT_DURATION_MS = 5_000;
const DEFAULT_RATE = 100;
const DEFAULT_CLIENTS = 4;
const DEFAULT_SETTLE_TIMEOUT_MS = 30_000;
/** Load before the fault, so that the drill starts from a cluster under writes. */
const WARM_UP_MS = 1_000;
/** Between two probe writes to one member: the resolution of the split-brain watch. */
const PROBE_INTERVAL_MS = 50;
/** Acks of one member further apart than this end an active interval (a few probe periods). */
const ACTIVE_GAP_MS = 250;
/** A write's own time limit: past it, it is indeterminate. */
const WRITE_TIMEOUT_MS = 2_000;
/** The drill's connections: as the cluster's superuser when the config has the auth key. */
function superuserOf(config: ClusterConfig): { user?: string; password?: string } {
  const credentials = clusterCredentials(config);
  return credentials === null ? {} : { user: credentials.superuser.name, password: credentials.superuser.password };
}

/** Reconnect pause of a writer that lost its node. */
const RECONNECT_PAUSE_MS = 50;
/**
 * slow-standby's added latency, each way: enough to make every commit wait twice as long as a
 * round trip takes on one machine hundreds of times over, well below the members' timeouts.
 */
const SLOW_STANDBY_LATENCY_MS = 100;
/**
 * Keys overwritten all along the load (each writer's every HOT_KEY_EVERY-th write goes to one of
 * them, writers interleaved), so that "overwritten only by a later acknowledged or indeterminate
 * write" is checked on keys that are overwritten, across the fault too.
 */
const HOT_KEYS = 4;
const HOT_KEY_EVERY = 5;
/** Load writes one drill may check: a drill is seconds of a light load, far fewer. */
const CONTENTS_MAX = 1_000_000;
/** Lost keys and unexpected values kept in the report (all are in the artifacts). */
const REPORT_LIST_MAX = 20;

type Client = import('@walship/client').WalshipClient;

interface ErrorFields {
  code?: string;
}

/** A write's outcome from the client's error: certainly not committed, or maybe. */
function outcomeOf(error: unknown): { outcome: 'failed' | 'indeterminate'; code: string } {
  const code = (error as ErrorFields).code ?? 'unknown';
  // Refused by a standby or by a primary without a lease, or never sent: not committed.
  if (code === 'read_only_transaction' || code === 'primary_lease_expired' || code === 'connection_failure' || code === 'too_many_requests' || code === 'cannot_connect_now') return { outcome: 'failed', code };
  return { outcome: 'indeterminate', code };
}


/**
 * The drill's clock: monotonic (performance.now(), so a wall-clock step cannot open or close a
 * split-brain window), anchored to the wall clock once at load time, so that its readings stay
 * comparable with the times in monitor.log.
 */
const clockAnchorWallMs = Date.now();
const clockAnchorMonotonicMs = performance.now();
const nowMs = () => clockAnchorWallMs + (performance.now() - clockAnchorMonotonicMs);

export async function runDrill(ctx: ClusterContext, options: DrillOptions): Promise<DrillReport> {
  const { config } = ctx;
  const durationMs = options.durationMs ?? DEFAULT_DURATION_MS;
  const rate = options.rate ?? DEFAULT_RATE;
  const clients = options.clients ?? DEFAULT_CLIENTS;
  const settleTimeoutMs = options.settleTimeoutMs ?? DEFAULT_SETTLE_TIMEOUT_MS;
  const { WalshipClient } = await import('@walship/client');
  const started = Date.now();
  const artifacts = join(config.dataRoot, 'drills', `${new Date(started).toISOString().replace(/[:.]/g, '-')}-${options.scenario}`);
  mkdirSync(artifacts, { recursive: true });

  // The cluster, as it is, then up (idempotent: a stopped member is started, a fenced one rejoined).
  let state = (await clusterUp(ctx)).state;
  const primaryBefore = state.primary;
  const primaryStatus = (await probeMember(ctx.control, config, findMember(config, primaryBefore))).status;
  const synchronousEnforced = (primaryStatus?.replication ?? []).some((row) => row.syncState === 'sync' || row.syncState === 'quorum');

  const prefix = `drill-${started.toString(36)}-`;
  const writes: WriteRecord[] = [];
  const probeAcks: ProbeAck[] = [];
  let running = true;

  // Where writes go: the primary the state names now, re-read after every failure.
  const currentPrimary = (): MemberConfig | null => {
    const now = readClusterStateFor(config);
    return now === null ? null : findMember(config, now.primary);
  };
  const connect = async (member: MemberConfig): Promise<Client | null> => {
    try {
      return await WalshipClient.connect({ host: config.host, port: member.port, timeoutMs: WRITE_TIMEOUT_MS, ...superuserOf(config), ...clusterClientSsl(ctx.config) });
    } catch {
      return null;
    }
  };

  const writer = async (id: number): Promise<void> => {
    const pauseMs = (clients * 1000) / rate;
    let client: Client | null = null;
    for (let seq = 0; running; seq++) {
      const began = nowMs();
      if (client === null) {
        const member = currentPrimary();
        client = member === null ? null : await connect(member);
        if (client === null) {
          await sleep(RECONNECT_PAUSE_MS);
          continue;
        }
      }
      const hot = seq % HOT_KEY_EVERY === 0;
      const key = hot ? `${prefix}h${(id + seq / HOT_KEY_EVERY) % HOT_KEYS}` : `${prefix}w${id}-${seq}`;
      // Unique per write, hot keys included: the value tells which write it was.
      const value = `${prefix}w${id}-${seq}@${Math.round(began)}`;
      try {
        const ack = await client.put(key, value, { timeoutMs: WRITE_TIMEOUT_MS });
        writes.push({ key, value, sentMs: began, answeredMs: nowMs(), outcome: 'acknowledged', member: ack.member, timeline: ack.timeline, lsn: formatLsn(ack.lsn), error: null });
      } catch (error) {
        const { outcome, code } = outcomeOf(error);
        writes.push({ key, value, sentMs: began, answeredMs: nowMs(), outcome, member: null, timeline: null, lsn: null, error: code });
        // Not waited for: a hung node would hold a polite close for seconds.
        void client.close().catch(() => undefined);
        client = null;
      }
      await sleep(Math.max(0, pauseMs - (nowMs() - began)));
    }
    void client?.close().catch(() => undefined);
  };

  // A probe per member: writes to it directly, to see whether it acknowledges writes at all.
  const probe = async (member: MemberConfig): Promise<void> => {
    let client: Client | null = null;
    for (let seq = 0; running; seq++) {
      if (client === null) client = await connect(member);
      if (client !== null) {
        const sentMs = nowMs();
        try {
          const ack = await client.put(`${prefix}probe-${member.name}-${seq}`, 'probe', { timeoutMs: PROBE_INTERVAL_MS * 4 });
          probeAcks.push({ member: ack.member, sentMs, atMs: nowMs() });
        } catch (error) {
          const code = (error as ErrorFields).code;
          if (code !== 'read_only_transaction' && code !== 'primary_lease_expired') {
            void client.close().catch(() => undefined);
            client = null;
          }
        }
      }
      await sleep(PROBE_INTERVAL_MS);
    }
    void client?.close().catch(() => undefined);
  };

  const load = [...Array.from({ length: clients }, (_, id) => writer(id)), ...config.members.map(probe)];
  await sleep(WARM_UP_MS);

  // The fault.
  const faultMs = nowMs();
  const primary = findMember(config, primaryBefore);
  let faultedMember = primaryBefore;
  let promotionMs: number | null = null;
  let oldPrimaryRejoined: boolean | null = null;
  let oldPrimaryStopped: string | null = null;
  const reasons: string[] = [];
  const primaryFault = options.scenario === 'kill-primary' || options.scenario === 'hang-primary' || options.scenario === 'partition-primary' || options.scenario === 'rejoin';
  let hungPid: number | null = null;
  let thawedMs: number | null = null;
  let partitioned: string | null = null;
  /** Cuts or slows a member's links through the proxy, and waits until the proxy has. */
  const setLinks = async (member: string | null, link: { cut: boolean; latencyMs: number }): Promise<void> => {
    const control = setLinkControl(config.dataRoot, member, link);
    if (!(await waitProxyApplied(config.dataRoot, control.generation ?? 0))) throw new Error('the partition proxy does not run (cluster up starts it)');
  };
  try {
    if ((options.scenario === 'partition-primary' || options.scenario === 'slow-standby') && config.proxy === null) {
      throw new Error(`${options.scenario} needs the partition proxy: add "proxy: true" to ${config.file} and run walship cluster up`);
    }
    if (primaryFault) {
      const pid = runningServer(primary.dataDir)?.pid ?? null;
      if (pid === null) throw new Error(`the primary ${primaryBefore} is not running`);
      if (options.scenario === 'hang-primary') {
        process.kill(pid, 'SIGSTOP');
        hungPid = pid;
      } else if (options.scenario === 'partition-primary') {
        partitioned = primaryBefore;
        await setLinks(primaryBefore, { cut: true, latencyMs: 0 });
      } else {
        process.kill(pid, 'SIGKILL');
      }
      if (config.failover.mode === 'manual') {
        const result = await clusterFailover(ctx, {});
        promotionMs = result.unavailableMs;
        oldPrimaryStopped = result.oldPrimaryStopped;
      }
      state = await waitForNewPrimary(ctx, primaryBefore, settleTimeoutMs);
      if (hungPid !== null) {
        try {
          process.kill(hungPid, 'SIGCONT');
          thawedMs = nowMs();
        } catch {
          // The failover killed it (STONITH): nothing to wake.
        }
      }
      // Healed under the load: what the partition held (the monitor's stale lease grants, its
      // old standbys' last replies) reaches the old primary now, late, and must not make it
      // acknowledge anything.
      if (partitioned !== null) {
        await setLinks(partitioned, { cut: false, latencyMs: 0 });
        partitioned = null;
      }
      if (options.scenario === 'rejoin') {
        state = (await memberAction(ctx, 'rejoin', primaryBefore)).state;
        oldPrimaryRejoined = true;
      }
    } else if (options.scenario === 'kill-sync-standby') {
      faultedMember = synchronousStandby(ctx, state, primaryStatus?.replication ?? []);
      process.kill(runningServer(findMember(config, faultedMember).dataDir)!.pid, 'SIGKILL');
    } else if (options.scenario === 'slow-standby') {
      faultedMember = synchronousStandby(ctx, state, primaryStatus?.replication ?? []);
      partitioned = faultedMember;
      await setLinks(faultedMember, { cut: false, latencyMs: SLOW_STANDBY_LATENCY_MS });
    } else {
      const result = await clusterSwitchover(ctx, {});
      promotionMs = result.unavailableMs;
      oldPrimaryStopped = result.oldPrimaryStopped;
      state = result.state;
      oldPrimaryRejoined = result.oldPrimary === 'standby';
    }
  } catch (error) {
    reasons.push(`the cluster did not settle: ${(error as Error).message}`);
  }

  // The load goes on for the rest of the drill, then stops.
  await sleep(Math.max(0, faultMs + durationMs - nowMs()));
  running = false;
  await Promise.all(load);
  const endMs = nowMs();

  // Put back what the fault took: links heal, the old primary rejoins, a killed standby starts again.
  try {
    if (partitioned !== null) {
      await setLinks(partitioned, { cut: false, latencyMs: 0 });
      partitioned = null;
    }
    if (options.scenario === 'kill-primary' || options.scenario === 'hang-primary' || options.scenario === 'partition-primary') {
      state = (await memberAction(ctx, config.failover.autoRejoin ? 'start' : 'rejoin', primaryBefore)).state;
      oldPrimaryRejoined = state.members[primaryBefore]?.role === 'standby';
    } else if (options.scenario === 'kill-sync-standby') {
      state = (await memberAction(ctx, 'start', faultedMember)).state;
    }
  } catch (error) {
    if (oldPrimaryRejoined === null && primaryFault) oldPrimaryRejoined = false;
    reasons.push(`${faultedMember} could not be brought back: ${(error as Error).message}`);
  }
  state = readClusterStateFor(config) ?? state;

  // What every member holds, once the standbys have replayed all the primary wrote.
  const contents = await readContents(ctx, state, prefix, settleTimeoutMs).catch((error: Error) => {
    reasons.push(`could not read the members: ${error.message}`);
    return null;
  });
  for (const member of contents?.unread ?? []) reasons.push(`could not read ${member}`);
  const check = checkDrill({
    writes,
    probeAcks,
    faultMs,
    endMs,
    primary: contents?.primary ?? null,
    standbys: contents?.standbys ?? [],
    activeGapMs: ACTIVE_GAP_MS,
  });

  // The monitor's view: when it saw the primary gone, how long the promotion took.
  const monitorEvents = readMonitorEvents(config.dataRoot, started);
  const down = monitorEvents.find((entry) => entry.event === 'primary_down');
  const failover = monitorEvents.find((entry) => entry.event === 'failover');
  const detectionMs = primaryFault ? (config.failover.mode === 'manual' ? 0 : down === undefined ? null : Math.round(Date.parse(String(down.at)) - faultMs)) : null;
  if (promotionMs === null && typeof failover?.promotionMs === 'number') promotionMs = failover.promotionMs;

  const leaseEndMs = faultMs + config.failover.primaryLeaseMs;
  const afterLease = primaryFault
    ? acksAfterLease({
      writes, probeAcks, member: primaryBefore, leaseEndMs,
      frozen: hungPid === null ? null : { fromMs: faultMs, toMs: thawedMs ?? Number.POSITIVE_INFINITY },
    })
    : null;
  const oldPrimaryAcksAfterLease = afterLease?.certain ?? null;
  if (oldPrimaryAcksAfterLease !== null && oldPrimaryAcksAfterLease > 0) {
    reasons.push(`the old primary ${primaryBefore} acknowledged ${oldPrimaryAcksAfterLease} write(s) after its lease had run out`);
  }
  if (check.splitBrainMs > 0) reasons.push(`two members acknowledged writes at the same time for ${check.splitBrainMs} ms (${check.conflictingAcks} acknowledgement(s) in the window)`);
  if (check.unexpected.length > 0) reasons.push(`${check.unexpected.length} value(s) that no write carried, or that was refused, are there`);
  const lossBreaksAPromise = !primaryFault || synchronousEnforced;
  if (check.ackedWritesLost > 0) {
    reasons.push(
      lossBreaksAPromise
        ? `${check.ackedWritesLost} acknowledged write(s) lost`
        : `${check.ackedWritesLost} acknowledged write(s) lost with asynchronous replication (no standby was synchronous), which promises nothing more`,
    );
  }
  const failed = check.splitBrainMs > 0 || (oldPrimaryAcksAfterLease ?? 0) > 0 || check.unexpected.length > 0 || (check.ackedWritesLost > 0 && lossBreaksAPromise) || reasons.some((reason) => reason.startsWith('the cluster did not settle') || reason.startsWith('could not read'));

  const report: DrillReport = {
    scenario: options.scenario,
    verdict: failed ? 'fail' : 'pass',
    reasons,
    ackedWrites: check.ackedWrites,
    ackedWritesLost: check.ackedWritesLost,
    indeterminateWrites: check.indeterminateWrites,
    failedWrites: check.failedWrites,
    splitBrainMs: check.splitBrainMs,
    detectionMs,
    promotionMs,
    unavailableMs: check.unavailableMs,
    timelines: check.timelines,
    oldPrimaryRejoined,
    oldPrimaryAcksAfterLease,
    oldPrimaryAcksDeliveredLate: afterLease?.deliveredLate ?? null,
    oldPrimaryStopped: typeof failover?.oldPrimaryStopped === 'string' ? failover.oldPrimaryStopped : oldPrimaryStopped,
    failoverMode: config.failover.mode,
    synchronousEnforced,
    primaryBefore,
    primaryAfter: state.primary,
    faultedMember,
    durationMs: Date.now() - started,
    artifacts,
    lost: check.lost.slice(0, REPORT_LIST_MAX),
    unexpected: check.unexpected.slice(0, REPORT_LIST_MAX),
    splitBrainWindows: check.splitBrainWindows,
    conflictingAcks: check.conflictingAcks,
  };
  writeFileSync(join(artifacts, 'writes.jsonl'), writes.map((write) => JSON.stringify(write)).join('\n') + '\n');
  writeFileSync(join(artifacts, 'monitor-events.jsonl'), monitorEvents.map((entry) => JSON.stringify(entry)).join('\n') + (monitorEvents.length > 0 ? '\n' : ''));
  writeFileSync(join(artifacts, 'check.json'), `${JSON.stringify({ lost: check.lost, unexpected: check.unexpected, splitBrainWindows: check.splitBrainWindows }, null, 2)}\n`);
  writeFileSync(join(artifacts, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/** Waits until the state names a primary other than `old` and it accepts connections as a primary. */
async function waitForNewPrimary(ctx: ClusterContext, old: string, timeoutMs: number): Promise<ClusterState> {
  return waitUntil(`a primary other than ${old}`, timeoutMs, async () => {
    const state = readClusterStateFor(ctx.config);
    if (state === null || state.primary === old) return null;
    const status = (await probeMember(ctx.control, ctx.config, findMember(ctx.config, state.primary))).status;
    return status?.role === 'primary' ? state : null;
  });
}

/** The synchronous standby: the one the primary reports `sync`, else the first its names list that is a running standby. */
function synchronousStandby(ctx: ClusterContext, state: ClusterState, rows: ReadonlyArray<{ applicationName?: string; syncState?: string | null }>): string {
  const reported = rows.find((row) => row.syncState === 'sync')?.applicationName;
  if (reported !== undefined) return reported;
  const names = ctx.config.synchronous?.memberNames ?? [];
  const standby = ctx.config.members.find((member) => state.members[member.name]?.role === 'standby' && names.some((name) => name === '*' || name.toLowerCase() === member.name))
    ?? ctx.config.members.find((member) => state.members[member.name]?.role === 'standby');
  if (standby === undefined) throw new Error('the cluster has no standby');
  return standby.name;
}

/**
 * The entries under the load's prefixes on the primary, and on every standby once it has replayed
 * as far; `unread` names the members the state calls standbys that could not be read.
 */
async function readContents(
  ctx: ClusterContext,
  state: ClusterState,
  prefix: string,
  timeoutMs: number,
): Promise<{ primary: { name: string; entries: Map<string, string> } | null; standbys: Array<{ name: string; entries: Map<string, string> }>; unread: string[] }> {
  const { WalshipClient } = await import('@walship/client');
  // The load's keys: written once (w...) and overwritten all along (h...); not the probes'.
  const loadPrefixes = [`${prefix}w`, `${prefix}h`];
  const read = async (member: MemberConfig, minLsn: string | null) => {
    const address = memberAddress(ctx.config, member);
    const client = await WalshipClient.connect({ host: ctx.config.host, port: member.port, timeoutMs, ...superuserOf(ctx.config), ...clusterClientSsl(ctx.config) });
    try {
      const entries = new Map<string, string>();
      for (const loadPrefix of loadPrefixes) {
        const page = await client.range({ prefix: loadPrefix, limit: CONTENTS_MAX, ...(minLsn === null ? {} : { minLsn }) });
        if (page.more) throw new Error(`more than ${CONTENTS_MAX} drill writes: lower --rate or --duration`);
        for (const entry of page.entries) entries.set(entry.key.toString(), entry.value.toString());
      }
      return entries;
    } catch (error) {
      throw new Error(`${member.name} (${address}): ${(error as Error).message}`);
    } finally {
      await client.close().catch(() => undefined);
    }
  };
  const primary = findMember(ctx.config, state.primary);
  const unread: string[] = [];
  const primaryStatus = (await probeMember(ctx.control, ctx.config, primary)).status;
  const flushLsn = primaryStatus?.flushLsn ?? null;
  // Each member read on its own: one that cannot be read is said, and what the others hold is
  // still checked (a loss is never counted against contents that were not read).
  const primaryEntries = await read(primary, null).catch((error: Error) => {
    unread.push(error.message);
    return null;
  });
  const standbys: Array<{ name: string; entries: Map<string, string> }> = [];
  const probes = await probeMembers(ctx.control, ctx.config);
  for (const probe of probes) {
    if (probe.member.name === state.primary || state.members[probe.member.name]?.role !== 'standby') continue;
    // A standby by the state that is not one now holds nothing the drill can vouch for: said, not skipped.
    if (probe.status?.role !== 'standby') {
      unread.push(`${probe.member.name}, a standby by the cluster state, ${probe.status === null ? (probe.pid === null ? 'is not running' : 'does not answer') : `answers as a ${probe.status.role}`}`);
      continue;
    }
    const entries = await read(probe.member, flushLsn !== null && parseLsn(flushLsn) !== null ? flushLsn : null).catch((error: Error) => {
      unread.push(error.message);
      return null;
    });
    if (entries !== null) standbys.push({ name: probe.member.name, entries });
  }
  return { primary: primaryEntries === null ? null : { name: primary.name, entries: primaryEntries }, standbys, unread };
}

function readMonitorEvents(dataRoot: string, sinceMs: number): Array<{ at: string; event: string; [key: string]: unknown }> {
  let text: string;
  try {
    text = readFileSync(monitorLogPath(dataRoot), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        const entry = JSON.parse(line) as { at: string; event: string };
        return Date.parse(entry.at) >= sinceMs ? [entry] : [];
      } catch {
        return [];
      }
    });
}
