/**
 * @walship/protocol: the wire messages of client sessions and their codec. Pure: no sockets, no
 * timers; the server's sessions and the client library both build on it. The one clock read is
 * getCurrentTimestamp, which makes the replication stamps the codec carries.
 */
export * from './constants.js';
export * from './messages.js';
export { ProtocolError, isProtocolError } from './protocol-error.js';
export { encodeMessage, decodeClientMessage, decodeServerMessage } from './codec.js';
export { normalizeClientMessage, normalizeServerMessage } from './validate.js';
export * from './convert.js';
export {
  getCurrentTimestamp, isTimestampTz, timestampTzFromMs, timestampTzToMs, timestampTzToIsoString, timeOffsetToMs,
  timestampDifferenceMs, USECS_PER_MSEC, MAX_TIMESTAMP_TZ, type TimestampTz,
} from './timestamp.js';

// Replication connections (`/replication`): walsender commands, the CopyBoth stream, base backups.
export * from './replication-messages.js';
export { encodeReplicationMessage, decodeReplicationFrame } from './replication-codec.js';
export {
  XLOG_DATA_TAG,
  XLOG_DATA_AS_STORED_TAG,
  KEEPALIVE_TAG,
  STANDBY_STATUS_UPDATE_TAG,
  XLOG_DATA_HEADER_BYTES,
  XLOG_DATA_AS_STORED_HEADER_BYTES,
  KEEPALIVE_BYTES,
  STANDBY_STATUS_UPDATE_BYTES,
  allocXLogDataFrame,
  allocXLogDataFrameAsStored,
  finishXLogDataFrame,
  writeXLogDataHeader,
  encodeXLogData,
  encodeKeepalive,
  encodeStandbyStatusUpdate,
  isBinaryReplicationFrame,
} from './replication-frames.js';
export {
  normalizeWalReceiverMessage,
  normalizeWalSenderMessage,
  validateReplicationSlotName,
  backupPathProblem,
  type WalReceiverControlMessage,
  type WalSenderControlMessage,
} from './replication-validate.js';
export { BackupStreamChecker } from './replication-backup-stream.js';
export {
  BACKUP_CHUNK_HEADER_MAX_BYTES,
  allocBackupChunkBuffer,
  backupChunkHeaderBytes,
  writeBackupChunkHeader,
} from './replication-backup-chunk.js';
export * from './scram.js';

// The client's side of TLS: sslmode and sslrootcert as libpq defines them.
export * from './ssl-mode.js';
