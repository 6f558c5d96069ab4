/**
 * @walship/cluster: clusters from cluster-configs/*.yaml (see README.md). The pure parts — the
 * config and its validation, the live state, the synchronous names a primary gets, the failover
 * decision — and the files in the data root (state, history, lock).
 */
export { ClusterConfigError, ClusterError, ClusterErrorCode, formatConfigProblem, type ClusterErrorCodeValue, type ConfigProblem } from './cluster-error.js';
export {
  findMember,
  loadClusterConfig,
  memberAddress,
  monitorAddress,
  parseClusterConfig,
  proxyPorts,
  streamAddress,
  SYNC_COMMIT_LEVELS,
  type ClusterConfig,
  type ConfigOverrides,
  type FailoverMode,
  type FailoverPolicy,
  type SynchronousMode,
  type MemberConfig,
  type ProxyConfig,
  type SyncCommitLevel,
} from './config.js';
export * from './constants.js';
export {
  decideFailover,
  type CandidateReasonCode,
  type CandidateVerdict,
  type DecisionReasonCode,
  type FailoverCandidate,
  type FailoverDecision,
  type FailoverDecisionInput,
  type FailoverThresholds,
  type ObservedSyncState,
  type Reason,
} from './failover-decision.js';
export { appendHistory, historyFilePath, readHistory, HISTORY_EVENTS, type HistoryEvent, type HistoryEventKind } from './history.js';
export { acquireClusterLock, type ClusterLock } from './lock.js';
export {
  effectiveUpstream,
  initialClusterState,
  readClusterState,
  readClusterStateFor,
  reconcileWithConfig,
  startOrder,
  stateFilePath,
  synchronousNamesInput,
  withMember,
  withNewPrimary,
  writeClusterState,
  MEMBER_ROLES,
  type ClusterState,
  type FenceRecord,
  type MemberRole,
  type MemberState,
  type ObservedStandby,
  type PrimaryObservation,
  type SynchronousNamesRecord,
} from './state.js';
export { synchronousStandbyNamesFor, type SynchronousNamesInput } from './synchronous-names.js';
export { promotionSynchronousNames, recordedSynchronousNames, unionSynchronousNames } from './synchronous-record.js';
export { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from './units.js';
export { clusterDown, type DownResult } from './cluster-down.js';
export { CLUSTER_PASSFILE_NAME, clusterCredentials, clusterPassfilePath, type ClusterCredentials } from './cluster-auth.js';
export { clusterUp, type UpOptions, type UpResult } from './cluster-up.js';
export { DEFAULT_OPERATION_TIMEOUT_MS, type ClusterContext } from './context.js';
export { clusterFailover, type FailoverOptions } from './failover.js';
export { memberAction, type MemberAction, type MemberActionResult } from './member-actions.js';
export { isDataDirectory, readControlSummary, runningServer, type ControlSummary } from './member-files.js';
export { formatMembersTable, memberRows, probeMember, probeMembers, PROBE_TIMEOUT_MS, type MemberProbe, type MemberRow, type MemberRunState } from './members.js';
export type { LeaseGrantOutcome, LeaseGrantRequest, NodeControl, NodeSession, NodeStatusView, ReplicationRowView, SettingPairs, StopMode, WalReceiverView } from './node-control.js';
export { grantLeaseAfterCommand, keepLease, leaseGrant, monotonicClockUs, type LeaseKeeper } from './lease.js';
export { clusterSwitchover, type PrimaryChangeResult } from './switchover.js';
export { clusterStatus, type StatusResult } from './cluster-status.js';
export { runMonitor, type MonitorOptions } from './monitor.js';
export { initialMonitorCore, monitorStep, retryAfterMs, type MonitorAction, type MonitorCore, type MonitorEvent, type MonitorPolicy } from './monitor-core.js';
export {
  appendMonitorLog,
  claimMonitorPidFile,
  monitorLogPath,
  monitorPidPath,
  removeMonitorPidFile,
  runningMonitor,
  stopRunningMonitor,
  updateMonitorPidFile,
  type MonitorLogEntry,
  type MonitorPidFile,
} from './monitor-files.js';
export { clusterLockOwner } from './lock.js';
export { NoCandidateError } from './promotion.js';
export { checkDrill, type DrillCheck, type DrillCheckInput, type ProbeAck, type SplitBrainWindow, type WriteOutcome, type WriteRecord } from './drill-check.js';
export { DRILL_SCENARIOS, runDrill, type DrillOptions, type DrillReport, type DrillScenario } from './drill.js';
export { runProxy, PROXY_POLL_MS, type ProxyOptions } from './proxy.js';
export {
  claimProxyPidFile,
  linkControl,
  readProxyControl,
  removeProxyPidFile,
  runningProxy,
  setLinkControl,
  stopRunningProxy,
  waitProxyApplied,
  PROXY_LATENCY_MAX_MS,
  type LinkControl,
  type ProxyControl,
  type ProxyPidFile,
} from './proxy-control.js';
export { clusterCaDir, clusterClientSsl, ensureMemberCertificate, memberHostNames } from './tls.js';
