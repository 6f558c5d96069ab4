export { Postmaster, type PostmasterOptions, type ShutdownMode } from './postmaster.js';
export type { Backend, NodeStatus, ServerState } from './backend.js';
export { startListener, resolveListenAddress, type Listener, type ListenerOptions } from './listener.js';
export { startMetricsServer, type MetricsServer } from './metrics-http.js';
export { PidFile, readPidFile, pidFilePath, processIsAlive, PID_FILE_NAME, type PidFileInfo, type PidStatus } from './pidfile.js';
export { Latch } from './latch.js';
export { Faults, type FaultName } from './faults.js';
export * from './settings/index.js';
