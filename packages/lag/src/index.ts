/**
 * @walship/lag: the replay-lag monitor's logic, shared by `walship lag`, the cluster toolkit
 * and drills. Pure: snapshots of nodes' status documents in, lag reports out; the callers do
 * the sockets (see `LagMonitor`'s `fetchStatus` port), the files and the terminal.
 */
export * from './units.js';
export * from './snapshot.js';
export * from './lag-report.js';
export * from './compute-lag.js';
export * from './cluster-view.js';
export * from './constants.js';
export * from './check.js';
export * from './render-text.js';
export * from './sparkline.js';
export * from './monitor.js';
export * from './recording.js';
export * from './report-text.js';
export * from './report-html.js';
