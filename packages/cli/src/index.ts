/**
 * The walship program as a library: `runCli(args, io)` runs a command line in-process (the tests
 * and the cluster tooling use it); `bin/walship.js` runs it as the `walship` executable.
 */
export { runCli, buildProgram, reportError } from './program.js';
export { CliError, ExitCode, formatErrorText, usageError, type ExitCodeValue } from './cli-error.js';
export { processIo, type CliIo, type OutputStream } from './io.js';
export { parseNodeAddress, parseNodeList, formatNodeAddress, DEFAULT_NODE, DEFAULT_PORT, type NodeAddress } from './options.js';
export { readPidFile, processIsAlive, pidFilePath, type PidFileInfo } from '@walship/server/pidfile';
// The cluster toolkit's NodeControl done with this program's node commands, for scripts that
// run @walship/cluster's operations themselves (scripts/start-demo.mjs).
export { createNodeControl, type NodeControlChoices } from './cluster-node-control.js';
// walship lag -f's view of a cluster, run in-process by scripts/start-demo.mjs with its own
// Ctrl-C, footer lines and a callback for each report.
export { runClusterLag, type LagOptions } from './commands/lag.js';
export type { LiveViewExtras } from './lag/live-view.js';
