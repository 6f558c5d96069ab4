/**
 * `walship cluster validate -f FILE [--base-port N] [--data-root DIR] [--json]`: checks a cluster
 * config without starting anything. A valid one is summed up (members, ports, upstreams, the
 * synchronous rule, the failover policy); an invalid one exits 1 with every problem, each with
 * the file, line, field and what is wrong (with --json: `{"valid": false, "problems": [...]}`).
 */
import { join } from 'node:path';
import type { ClusterConfig } from '@walship/cluster';
import { ExitCode } from '../cli-error.js';
import { loadConfig, type ClusterFileOptions } from '../cluster-options.js';
import type { CliIo } from '../io.js';
import { formatTable, printJson } from '../output.js';

function describe(config: ClusterConfig, address: (port: number) => string): Record<string, unknown> {
  return {
    valid: true,
    file: config.file,
    name: config.name,
    dataRoot: config.dataRoot,
    basePort: config.basePort,
    initialPrimary: config.initialPrimary,
    synchronousStandbyNames: config.synchronousStandbyNames,
    synchronousCommit: config.synchronousCommit,
    failover: config.failover,
    auth: config.auth ?? null,
    tls: config.tls,
    settings: config.settings,
    members: config.members.map((member) => ({
      name: member.name,
      address: address(member.port),
      port: member.port,
      metricsPort: member.metricsPort,
      upstream: member.upstream,
      slot: member.slot,
      dataDir: member.dataDir,
      settings: member.settings,
    })),
  };
}

export async function run(options: ClusterFileOptions, io: CliIo): Promise<number> {
  const { ClusterConfigError, formatDurationMs, formatSizeBytes } = await import('@walship/cluster');
  let config: ClusterConfig;
  try {
    config = await loadConfig(options);
  } catch (error) {
    if (options.json === true && error instanceof ClusterConfigError) {
      printJson(io.stdout, { valid: false, file: error.file, problems: error.problems });
      return ExitCode.failed;
    }
    throw error;
  }
  const address = (port: number) => (config.host.includes(':') ? `[${config.host}]:${port}` : `${config.host}:${port}`);
  if (options.json === true) {
    printJson(io.stdout, describe(config, address));
    return ExitCode.ok;
  }
  const policy = config.failover;
  io.stdout.write(`${options.file}: valid\n\n`);
  io.stdout.write(`cluster ${config.name}: ${config.members.length} members, data in ${config.dataRoot}\n`);
  io.stdout.write(
    formatTable(
      ['member', 'address', 'first role', 'upstream', 'slot'],
      config.members.map((member) => [
        member.name,
        address(member.port),
        member.name === config.initialPrimary ? 'primary' : 'standby',
        member.name === config.initialPrimary ? '' : (member.upstream ?? '(the primary)'),
        member.slot ?? '',
      ]),
    ),
  );
  io.stdout.write(`synchronous_standby_names: ${config.synchronousStandbyNames === '' ? "'' (asynchronous)" : config.synchronousStandbyNames}`);
  io.stdout.write(config.synchronousCommit === null ? '\n' : `, synchronous_commit: ${config.synchronousCommit}\n`);
  io.stdout.write(
    `failover: ${policy.mode}; health check every ${formatDurationMs(policy.healthCheckIntervalMs)}, down after ${policy.missedChecks} missed; ` +
      `primary lease ${formatDurationMs(policy.primaryLeaseMs)}; maximum_lag_on_failover ${formatSizeBytes(policy.maximumLagOnFailoverBytes)}; ` +
      `candidates ${policy.candidates.join(', ')}; auto_rejoin ${policy.autoRejoin ? 'on' : 'off'}\n`,
  );
  const auth = config.auth ?? null;
  io.stdout.write(auth === null ? 'auth: trust (loopback)\n' : `auth: ${auth.method}; superuser ${auth.superuser}, replication user ${auth.replicationUser}; passwords in ${config.dataRoot}/passfile\n`);
  if (config.tls) io.stdout.write(`tls: on; certificates from the cluster CA in ${join(config.dataRoot, 'tls')}, verify-full on every connection\n`);
  return ExitCode.ok;
}
