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
  parseClusterConfig,
  SYNC_COMMIT_LEVELS,
  type ClusterConfig,
  type ConfigOverrides,
  type FailoverMode,
  type FailoverPolicy,
  type MemberConfig,
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
} from './state.js';
export { isSynchronousCandidate, synchronousStandbyNamesFor } from './synchronous-names.js';
export { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from './units.js';
