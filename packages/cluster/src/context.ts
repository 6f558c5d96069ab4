/**
 * What every cluster operation shares: the config, the node-control port, a progress line
 * writer, and the helpers that turn the config and the state into a member's settings, its
 * upstream's connection string, bounded waits and member-named errors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { quoteConninfoValue } from '@walship/replication/conninfo';
import { defaultSettingValue, formatSettingValue, lookupSetting, parseSettingValue, SETTING_DEFINITIONS } from '@walship/server/settings/index';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { clusterCredentials } from './cluster-auth.js';
import { findMember, memberAddress, proxyPorts, type ClusterConfig, type MemberConfig } from './config.js';
import type { NodeControl, SettingPairs } from './node-control.js';
import { effectiveUpstream, synchronousNamesInput, type ClusterState } from './state.js';
import { synchronousStandbyNamesFor } from './synchronous-names.js';
import { conninfoSslPairs, memberSslSettings } from './tls.js';
import { memberKeySettings } from './cluster-encryption.js';

export interface ClusterContext {
  readonly config: ClusterConfig;
  readonly control: NodeControl;
  /** A line of progress for people (stderr); never the command's result. */
  readonly progress: (line: string) => void;
}

/** How long an operation waits for standbys to stream, a target to catch up, a node to answer, unless told otherwise. */
export const DEFAULT_OPERATION_TIMEOUT_MS = 60_000;

/** Between two looks at a condition being waited for: quick enough that a switchover is not slowed by it. */
const WAIT_POLL_MS = 50;

/**
 * The walship.conf settings of a member, for after it was created or copied: the cluster-wide
 * settings, its own, its name as application_name, the synchronous settings it needs as a primary
 * (now, or if promoted after the current primary), and — when its files were copied from
 * `copiedFrom` (a base backup or a rewind carries the source's walship.conf) — the source's own
 * settings put back to the cluster's value or the default. Settings fixed at init are left out:
 * they cannot change after it.
 */
export function memberSettings(config: ClusterConfig, state: ClusterState, member: MemberConfig, copiedFrom: MemberConfig | null): Array<[string, string]> {
  const pairs = new Map<string, string>();
  if (copiedFrom !== null) {
    for (const name of Object.keys(copiedFrom.settings)) {
      if (member.settings[name] !== undefined || config.settings[name] !== undefined) continue;
      const settingName = lookupSetting(name);
      pairs.set(name, formatSettingValue(settingName, defaultSettingValue(settingName)));
    }
  }
  for (const [name, value] of Object.entries(config.settings)) pairs.set(name, value);
  for (const [name, value] of Object.entries(member.settings)) pairs.set(name, value);
  pairs.set('application_name', member.name);
  // The auth key (cluster-auth.ts): every member authenticates its connections with SCRAM.
  if ((config.auth ?? null) !== null) pairs.set('auth_method', 'scram-sha-256');
  // tls: true: the member's certificate files (tls.ts writes them before each start).
  for (const [name, value] of memberSslSettings(config)) pairs.set(name, value);
  // The encryption key (cluster-encryption.ts): every member names the one cluster key.
  for (const [name, value] of memberKeySettings(config)) pairs.set(name, value);
  // The monitor's lease (lease.ts): a primary acknowledges commits only while it holds one.
  pairs.set('require_primary_lease', config.failover.enforceLease ? 'on' : 'off');
  if (config.synchronousCommit !== null) pairs.set('synchronous_commit', config.synchronousCommit);
  pairs.set('synchronous_standby_names', synchronousStandbyNamesFor(config, synchronousNamesInput(state, member.name)));
  return [...pairs].filter(([name]) => SETTING_DEFINITIONS[lookupSetting(name)].context !== 'init');
}

/** The settings a member gets at `walship init`: those of memberSettings, the init-time ones included. */
export function initSettings(config: ClusterConfig, state: ClusterState, member: MemberConfig): Array<[string, string]> {
  const fixedAtInit = Object.entries(config.settings).filter(([name]) => SETTING_DEFINITIONS[lookupSetting(name)].context === 'init');
  return [...fixedAtInit, ...memberSettings(config, state, member, null)];
}

/**
 * primary_conninfo as `walship basebackup --standby` writes it: the upstream's address (with the
 * proxy: the member's outbound proxy, which forwards to its current upstream), the member's
 * name, and with `tls: true` verify-full against the member's copy of the cluster CA (the config's
 * host is in every member's certificate, so it verifies through the proxy too).
 */
export function conninfoFor(config: ClusterConfig, upstream: MemberConfig, member: MemberConfig): string {
  const port = proxyPorts(config, member)?.outbound ?? upstream.port;
  const credentials = replicationCredentialsOf(config, upstream);
  return [
    `host=${quoteConninfoValue(config.host)}`, `port=${port}`, `application_name=${quoteConninfoValue(member.name)}`,
    ...(credentials?.user === undefined ? [] : [`user=${quoteConninfoValue(credentials.user)}`]),
    ...(credentials === null ? [] : [`password=${quoteConninfoValue(credentials.password)}`]),
    ...conninfoSslPairs(config),
  ].join(' ');
}

/**
 * The replication_password `member` requires of its standbys (its own setting, else the
 * cluster-wide one), or null when it trusts them: what a standby's primary_conninfo, a base
 * backup, a rewind and a slot creation from it must give.
 */
export function replicationPasswordOf(config: ClusterConfig, member: MemberConfig): string | null {
  const password = member.settings.replication_password ?? config.settings.replication_password ?? '';
  return password === '' ? null : password;
}

/**
 * Who a replication connection to `member` authenticates as: the auth key's replication user and
 * its password, else the replication_password it requires (no user), else null (it trusts).
 */
export function replicationCredentialsOf(config: ClusterConfig, member: MemberConfig): { user?: string; password: string } | null {
  const credentials = clusterCredentials(config);
  if (credentials !== null) return { user: credentials.replication.name, password: credentials.replication.password };
  const password = replicationPasswordOf(config, member);
  return password === null ? null : { password };
}

/** A setting's value as walship.conf's reader prints it (SHOW), for comparing a wanted value with the one in force. */
export function normalizedSetting(name: string, value: string): string {
  const settingName = lookupSetting(name);
  return formatSettingValue(settingName, parseSettingValue(settingName, value));
}

/** A standby's primary_conninfo and primary_slot_name for the upstream the state gives it. */
export function standbySettings(config: ClusterConfig, state: ClusterState, member: MemberConfig): { upstream: MemberConfig; settings: SettingPairs } {
  const upstreamName = effectiveUpstream(config, state, member);
  if (upstreamName === null) throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} is the primary and has no upstream`);
  const upstream = findMember(config, upstreamName);
  return {
    upstream,
    settings: [
      ['primary_conninfo', conninfoFor(config, upstream, member)],
      ['primary_slot_name', member.slot ?? ''],
    ],
  };
}

export function addressOf(ctx: ClusterContext, member: MemberConfig): string {
  return memberAddress(ctx.config, member);
}

/**
 * Runs one step on a member; a failure becomes a ClusterError naming the member and the step,
 * keeping the node command's detail and hint.
 */
export async function onMember<T>(member: MemberConfig, step: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof ClusterError) throw error;
    const fields = error as { message?: string; detail?: string; hint?: string };
    throw new ClusterError(ClusterErrorCode.memberOperationFailed, `${member.name}: ${step} failed: ${fields.message ?? String(error)}`, {
      detail: fields.detail,
      hint: fields.hint ?? `See the member's log: walship cluster logs -f FILE ${member.name}.`,
      cause: error,
    });
  }
}

/**
 * Waits until `check` returns a value (not null or false), looking every WAIT_POLL_MS, and fails
 * with a ClusterError naming `what` after `timeoutMs`; `explain` says what was last seen.
 */
export async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | null | false>, explain?: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== false) return value;
    if (Date.now() >= deadline) {
      throw new ClusterError(ClusterErrorCode.timeout, `timed out after ${timeoutMs / 1000} s waiting for ${what}`, {
        detail: explain?.(),
        hint: 'Look at the members with walship cluster status -f FILE and their logs with walship cluster logs -f FILE; raise --timeout if they are only slow.',
      });
    }
    await sleep(WAIT_POLL_MS);
  }
}
