export * from './lsn.js';
export * from './errors.js';
export * from './constants.js';
export * from './types.js';
export { crc32c } from './crc32c.js';
export {
  readControlFile, writeControlFile, describeControlFile, DbState, DB_STATE_NAMES, CONTROL_VERSION, type ControlFileData,
} from './control-file.js';
export { Database, type DatabaseOptions, type LogFunction, type LogLevel } from './database.js';
export { PreparedWalIo } from './wal/xlog.js';
export { CheckpointFlags, describeCheckpoint, describeCheckpointFlags, isCheckpointOnSchedule, type CheckpointResult, type CheckpointSchedule, type CheckpointWriteDelay } from './checkpoint.js';
export { bootstrapDataDirectory, validateSegmentSize, DATA_SUBDIRECTORIES } from './bootstrap.js';
export { dumpWal, type DumpedRecord, type DumpEnd } from './waldump.js';
export { formatLsn as lsnToString } from './lsn.js';
export {
  isEncryptedDataDir, loadDataKeys, registerDataKeys, type ClusterKeySource, type DataKeys,
} from './crypto/index.js';
