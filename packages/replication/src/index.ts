/**
 * @walship/replication: the public surface. So far the pure decision cores (see README.md); the
 * walsender and walreceiver components come next and will be built on these.
 */
export * from './constants.js';
export {
  createLagTracker, lagTrackerWrite, lagTrackerRead, processStandbyReplyLags, INITIAL_REPLY_LAG_STATE,
  type LagTracker, type LagHead, type ReplicationLags, type ReplyLagState, type StandbyReplyPositions,
} from './lag-tracker.js';
export {
  initialWalSourceState, stepWalSource, walReceiverStreaming, describeWalSourceAction,
  type WalSource, type WalReceiverState, type WalSourceConfig, type WalRequest, type WalSourceState,
  type WalSourceEvent, type WalSourceAction, type WalSourceTransition,
} from './wal-source.js';
export {
  parseConninfo, formatConninfo, quoteConninfoValue, conninfoHosts, conninfoConnectTimeoutMs, conninfoSslOptions,
  CONNINFO_KEYWORDS, SSL_MODES, TARGET_SESSION_ATTRS,
  type ConninfoKeyword, type ConninfoOptions, type ConninfoHost, type SslMode, type TargetSessionAttrs,
} from './conninfo.js';
export {
  substituteCommand, runShellCommand, archiveCommandOutcome, restoreCommandOutcome, describeShellResult,
  resultIsSignal, resultIsAnySignal,
  type CommandPlaceholders, type ShellCommandResult, type RunShellCommandOptions, type CommandOutcome,
} from './archive-command.js';
export {
  parseSynchronousStandbyNames, checkSynchronousStandbyNames, formatSyncRepConfig, quoteStandbyName, SyncRepConfigError,
  type SyncRepConfig, type SyncRepMethod, type SyncRepConfigErrorReason,
} from './sync-rep-config.js';
export {
  standbyPriority, syncRepGetCandidateStandbys, syncRepGetSyncRecPtr, syncStateOf, syncRepWaitMode, syncRepReleaseWaiters,
  SyncRepQueues, SYNC_REP_WAIT_MODES,
  type SyncRepWaitMode, type SyncRepPositions, type SyncRepStandby, type SyncState, type SyncRepWaiter, type SyncRepWaitState,
  type SyncRepWaitOutcome, type SyncRepWaitStats, type SyncRepQueuesOptions, type SyncRepRelease,
} from './sync-rep.js';
export { WalSender, WAL_SENDER_BUFFERED_BYTES_MAX, type WalSenderOptions, type WalSndDirectHooks, type WalSndDirectSlot, type DirectSocket, type WalSenderState, type LatchLike, type ReplicationSocket } from './walsender.js';
export { WalReceiver, newWalRcvData, type WalRcvData, type WalRcvState, type WalReceiverOptions } from './walreceiver.js';
export { ReplicationConnection, type ReplicationConnectOptions } from './replication-connection.js';
export { sendBaseBackup, type BaseBackupSource, type StartedBackup } from './base-backup.js';
export { receiveBaseBackup, type ReceivedBackup } from './base-backup-receiver.js';
export { standbyBackupSource, type StandbyBackupNode, type StandbyBackupRecovery } from './standby-backup.js';
