import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterConfigError, ClusterError, formatConfigProblem, type ConfigProblem } from './cluster-error.js';
import { findMember, loadClusterConfig, parseClusterConfig, type ConfigOverrides } from './config.js';

const FILE = '/configs/test.yaml';

const VALID = `
name: test
base_port: 6000
data_root: ../data/test
synchronous_standby_names: FIRST 1 (s1)
synchronous_commit: on
failover:
  mode: manual
  health_check_interval: 250ms
  missed_checks: 4
  primary_lease: 3s
  maximum_lag_on_failover: 8MB
  candidates: [s1, s2, n1]
  auto_rejoin: false
settings:
  wal_segment_size: 1MB
  shared_buffers: 8MB
nodes:
  - name: n1
    port_offset: 0
  - name: s1
    port_offset: 1
    slot: true
  - name: s2
    port_offset: 2
    settings:
      recovery_min_apply_delay: 10ms
`;

function problemsOf(text: string, overrides: ConfigOverrides = {}): ConfigProblem[] {
  try {
    parseClusterConfig(text, FILE, overrides);
  } catch (error) {
    if (error instanceof ClusterConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('the config was accepted');
}

/** The one problem of `text`, checked to name the file and a line. */
function onlyProblem(text: string, overrides: ConfigOverrides = {}): ConfigProblem {
  const problems = problemsOf(text, overrides);
  expect(problems.map(formatConfigProblem)).toHaveLength(1);
  const problem = problems[0]!;
  expect(problem.file).toBe(FILE);
  return problem;
}

/** VALID with one line replaced (the replacement may span lines). */
function edit(from: string, to: string): string {
  expect(VALID).toContain(from);
  return VALID.replace(from, to);
}

describe('a valid config', () => {
  it('resolves ports, paths, settings and the policy', () => {
    const config = parseClusterConfig(VALID, FILE);
    expect(config.name).toBe('test');
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataRoot).toBe('/data/test');
    expect(config.initialPrimary).toBe('n1');
    expect(config.members.map((m) => [m.name, m.port, m.portOffset, m.dataDir, m.slot])).toEqual([
      ['n1', 6000, 0, '/data/test/n1', null],
      ['s1', 6001, 1, '/data/test/s1', 's1'],
      ['s2', 6002, 2, '/data/test/s2', null],
    ]);
    expect(config.members[2]!.settings).toEqual({ recovery_min_apply_delay: '10ms' });
    expect(config.settings).toEqual({ wal_segment_size: '1MB', shared_buffers: '8MB' });
    expect(config.synchronous).toEqual({ method: 'priority', numSync: 1, memberNames: ['s1'] });
    expect(config.synchronousCommit).toBe('on');
    expect(config.failover).toEqual({
      mode: 'manual',
      healthCheckIntervalMs: 250,
      missedChecks: 4,
      primaryLeaseMs: 3000,
      enforceLease: false,
      maximumLagOnFailoverBytes: 8 * 1024 * 1024,
      candidates: ['s1', 's2', 'n1'],
      autoRejoin: false,
      synchronousMode: 'relaxed',
    });
    expect(config.members[0]!.metricsPort).toBe(6000);
  });

  it('takes defaults for the policy, host and initial primary', () => {
    const config = parseClusterConfig('name: c\ndata_root: /tmp/x\nnodes:\n  - {name: a, port: 7000}\n  - {name: b, port: 7001, upstream: a}\n', FILE);
    expect(config.basePort).toBeNull();
    expect(config.initialPrimary).toBe('a');
    expect(config.failover.candidates).toEqual(['a', 'b']);
    expect(config.failover.mode).toBe('automatic');
    expect(config.synchronous).toBeNull();
    expect(config.synchronousStandbyNames).toBe('');
    expect(config.synchronousCommit).toBeNull();
  });

  it('moves every port with --base-port and the data root with --data-root (relative to the working directory)', () => {
    const config = parseClusterConfig(VALID, FILE, { basePort: 7100, dataRoot: 'copy', cwd: '/work' });
    expect(config.members.map((m) => m.port)).toEqual([7100, 7101, 7102]);
    expect(config.dataRoot).toBe('/work/copy');
    expect(config.members[1]!.dataDir).toBe('/work/copy/s1');
  });

  it('keeps an absolute data_root as written', () => {
    expect(parseClusterConfig(edit('data_root: ../data/test', 'data_root: /srv/walship'), FILE).dataRoot).toBe('/srv/walship');
  });

  it('accepts synchronous_commit written as a YAML boolean, and per-member metrics ports', () => {
    const text = edit('synchronous_commit: on', 'synchronous_commit: true').replace('    slot: true', '    slot: true\n    settings:\n      metrics_port: 6100');
    const config = parseClusterConfig(text, FILE);
    expect(config.synchronousCommit).toBe('on');
    expect(config.members[1]!.metricsPort).toBe(6100);
  });

  it('reads a file and names it in errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-config-'));
    try {
      const path = join(dir, 'c.yaml');
      writeFileSync(path, VALID);
      expect(loadClusterConfig(path).dataRoot).toBe(join(dir, '..', 'data', 'test').replace(/\/[^/]+\/\.\.\//, '/'));
      writeFileSync(path, 'name: [');
      expect(() => loadClusterConfig(path)).toThrow(ClusterConfigError);
      expect(() => loadClusterConfig(join(dir, 'missing.yaml'))).toThrow(/could not read cluster config .*missing\.yaml.*no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refused configs name the file, the line, the field and the problem', () => {
  it('YAML syntax errors', () => {
    const problem = onlyProblem('name: test\nnodes: [\n');
    expect(problem.message).toMatch(/YAML syntax error/);
    expect(problem.line).not.toBeNull();
  });

  it('a key given twice', () => {
    const problem = onlyProblem(edit('name: test', 'name: test\nname: other'));
    expect(problem.message).toMatch(/appears twice/);
    expect(problem.line).toBe(3);
  });

  it('an empty file, and a file that is not a mapping', () => {
    expect(onlyProblem('').message).toMatch(/empty/);
    expect(onlyProblem('- a\n- b\n').message).toMatch(/must be a mapping/);
  });

  it('unknown keys at each level, with the closest known key', () => {
    const top = onlyProblem(edit('base_port: 6000', 'base_prot: 6000\nbase_port: 6000'));
    expect(top).toMatchObject({ path: 'base_prot', line: 3, column: 1, hint: 'did you mean "base_port"?' });
    const node = onlyProblem(edit('    slot: true', '    slot: true\n    upsteam: n1'));
    expect(node).toMatchObject({ path: 'nodes[1].upsteam', hint: 'did you mean "upstream"?' });
    const policy = onlyProblem(edit('  auto_rejoin: false', '  auto_rejoin: false\n  lease: 2s'));
    expect(policy.path).toBe('failover.lease');
    expect(formatConfigProblem(policy)).toMatch(/^\/configs\/test\.yaml:\d+:3: failover\.lease: unknown key "lease"/);
  });

  it('missing required keys', () => {
    expect(onlyProblem(edit('name: test\n', '')).path).toBe('name');
    expect(onlyProblem(edit('data_root: ../data/test\n', '')).path).toBe('data_root');
    expect(onlyProblem('name: a\ndata_root: x\n').path).toBe('nodes');
    expect(onlyProblem(edit('  - name: s2\n    port_offset: 2', '  - port_offset: 2')).path).toBe('nodes[2].name');
  });

  it('wrong types', () => {
    expect(onlyProblem(edit('base_port: 6000', 'base_port: "6000"')).message).toMatch(/base_port must be a whole number from 1 to 65535 \(got the string "6000"\)/);
    expect(onlyProblem('name: a\ndata_root: x\nnodes: {a: 1}\nfailover: {candidates: [a]}\n').message).toMatch(/must be a list of members .*\(got a mapping\)/);
    expect(onlyProblem(edit('  auto_rejoin: false', '  auto_rejoin: maybe')).message).toMatch(/must be true or false/);
    expect(onlyProblem(edit('  candidates: [s1, s2, n1]', '  candidates: s1')).message).toMatch(/must be a list of member names/);
  });

  it('bad ports and port offsets', () => {
    expect(onlyProblem(edit('base_port: 6000', 'base_port: 70000')).message).toMatch(/base_port 70000 is out of range \(1 \.\. 65535\)/);
    expect(onlyProblem(edit('    port_offset: 1', '    port_offset: -1'))).toMatchObject({ path: 'nodes[1].port_offset' });
    const beyond = onlyProblem(edit('base_port: 6000', 'base_port: 65534'));
    expect(beyond).toMatchObject({ path: 'nodes[2].port_offset' });
    expect(beyond.message).toMatch(/65536, beyond the last port/);
    expect(onlyProblem(edit('    port_offset: 2', '    port_offset: 2\n    port: 7000')).message).toMatch(/either "port" or "port_offset", not both/);
    expect(onlyProblem(edit('    port_offset: 2\n', '')).message).toMatch(/has no port/);
  });

  it('port offsets without a base port', () => {
    const problems = problemsOf(edit('base_port: 6000\n', ''));
    expect(problems).toHaveLength(3);
    expect(problems[0]!.message).toMatch(/needs "base_port"/);
  });

  it('port collisions, metrics ports included', () => {
    const same = onlyProblem(edit('    port_offset: 2', '    port_offset: 1'));
    expect(same).toMatchObject({ path: 'nodes[2].port_offset' });
    expect(same.message).toMatch(/port 6001 of member s2 is also the port of member s1/);
    const metrics = onlyProblem(edit('      recovery_min_apply_delay: 10ms', '      metrics_port: 6000'));
    expect(metrics.path).toBe('nodes[2].settings.metrics_port');
    expect(metrics.message).toMatch(/port 6000 of the metrics port of member s2 is also the port of member n1/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: 8MB\n  metrics_port: 9000')).message).toMatch(/must differ between members/);
  });

  it('--base-port cannot move an absolute port', () => {
    const text = 'name: c\ndata_root: /tmp/x\nnodes:\n  - {name: a, port: 7000}\n';
    expect(onlyProblem(text, { basePort: 8000 }).message).toMatch(/--base-port cannot move member a/);
  });

  it('bad and duplicate member names', () => {
    expect(onlyProblem(edit('  - name: s2', '  - name: S-2')).message).toMatch(/"S-2" is not a valid name/);
    const duplicate = onlyProblem(edit('  - name: s2', '  - name: s1'));
    expect(duplicate).toMatchObject({ path: 'nodes[2].name' });
    expect(duplicate.message).toMatch(/used twice \(also nodes\[1\]\)/);
  });

  it('unknown upstreams, self upstreams, an upstream on the initial primary, and cycles', () => {
    expect(onlyProblem(edit('    port_offset: 2\n', '    port_offset: 2\n    upstream: s9\n')).message).toMatch(/upstream "s9" is not a member/);
    expect(onlyProblem(edit('    port_offset: 2\n', '    port_offset: 2\n    upstream: s2\n')).message).toMatch(/names itself/);
    expect(onlyProblem(edit('    port_offset: 0\n', '    port_offset: 0\n    upstream: s1\n')).message).toMatch(/initial primary and cannot have an upstream/);
    const cycle = problemsOf(
      'name: c\nbase_port: 7000\ndata_root: x\nnodes:\n  - {name: p, port_offset: 0}\n  - {name: a, port_offset: 1, upstream: b}\n  - {name: b, port_offset: 2, upstream: c}\n  - {name: c, port_offset: 3, upstream: a}\n',
    );
    expect(cycle).toHaveLength(1);
    expect(cycle[0]!.message).toBe('upstreams form a cycle: a -> b -> c -> a');
    expect(cycle[0]!.path).toBe('nodes[1].upstream');
  });

  it('an unknown initial_primary', () => {
    expect(onlyProblem(edit('name: test', 'name: test\ninitial_primary: s7')).message).toMatch(/"s7" is not a member/);
  });

  it('bad slots', () => {
    expect(onlyProblem(edit('    slot: true', '    slot: Bad-Slot')).message).toMatch(/contains invalid character/);
    expect(onlyProblem(edit('    port_offset: 2\n', '    port_offset: 2\n    slot: s1\n')).message).toMatch(/slot "s1" is also the slot of member s1/);
  });

  it('synchronous_standby_names that does not parse, names non-members, names a cascading standby, or can never be met', () => {
    expect(onlyProblem(edit('FIRST 1 (s1)', 'FIRST 1 (s1')).message).toMatch(/syntax error/);
    const stranger = onlyProblem(edit('FIRST 1 (s1)', 'FIRST 1 (s1, s7)'));
    expect(stranger).toMatchObject({ path: 'synchronous_standby_names' });
    expect(stranger.message).toMatch(/"s7" is not a member of the cluster/);
    expect(onlyProblem(edit('FIRST 1 (s1)', 'ANY 3 (s1, s2)')).message).toMatch(/3 synchronous standbys are required but only 2 members are named/);
    expect(onlyProblem(edit('FIRST 1 (s1)', 'FIRST 3 (*)')).message).toMatch(/only 2 standbys exist/);
    const cascading = onlyProblem(edit('FIRST 1 (s1)', 'FIRST 1 (s2)').replace('    port_offset: 2\n', '    port_offset: 2\n    upstream: s1\n'));
    expect(cascading.message).toMatch(/s2 streams from s1, not from the primary/);
    expect(parseClusterConfig(edit('FIRST 1 (s1)', '"ANY 1 (S1, s2)"'), FILE).synchronous?.method).toBe('quorum');
  });

  it('a bad synchronous_commit', () => {
    expect(onlyProblem(edit('synchronous_commit: on', 'synchronous_commit: always')).hint).toMatch(/off, local, remote_write, on, remote_apply/);
  });

  it('settings the nodes would refuse, and settings the toolkit owns', () => {
    const unknown = onlyProblem(edit('  shared_buffers: 8MB', '  shared_bufers: 8MB'));
    expect(unknown).toMatchObject({ path: 'settings.shared_bufers' });
    expect(unknown.hint).toMatch(/shared_buffers/);
    const badValue = onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: lots'));
    expect(badValue.message).toMatch(/shared_buffers/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  port: 5000')).message).toMatch(/"port" is set by the cluster toolkit/);
    expect(onlyProblem(edit('      recovery_min_apply_delay: 10ms', '      primary_conninfo: host=x')).hint).toMatch(/upstream/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  synchronous_standby_names: "*"')).hint).toMatch(/top-level/);
    expect(onlyProblem(edit('      recovery_min_apply_delay: 10ms', '      wal_segment_size: 2MB')).message).toMatch(/same on every member/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: [1]')).message).toMatch(/must be a string, a number or true\/false/);
  });

  it('invalid failover policy values', () => {
    expect(onlyProblem(edit('  mode: manual', '  mode: sometimes')).hint).toBe('use manual or automatic');
    expect(onlyProblem(edit('  health_check_interval: 250ms', '  health_check_interval: fast')).message).toMatch(/not a duration/);
    expect(onlyProblem(edit('  health_check_interval: 250ms', '  health_check_interval: 5lightyears')).message).toMatch(/not a time unit/);
    expect(onlyProblem(edit('  health_check_interval: 250ms', '  health_check_interval: 0ms')).message).toMatch(/more than 0/);
    expect(onlyProblem(edit('  missed_checks: 4', '  missed_checks: 0')).message).toMatch(/missed_checks 0 is out of range/);
    expect(onlyProblem(edit('  primary_lease: 3s', '  primary_lease: 200ms')).message).toMatch(/must be longer than health_check_interval/);
    expect(onlyProblem(edit('  maximum_lag_on_failover: 8MB', '  maximum_lag_on_failover: 8mb')).message).toMatch(/kB with a small k/);
    expect(onlyProblem(edit('  candidates: [s1, s2, n1]', '  candidates: [s1, s9]')).message).toMatch(/"s9" is not a member/);
    expect(onlyProblem(edit('  candidates: [s1, s2, n1]', '  candidates: [s1, s1]')).message).toMatch(/listed twice/);
    expect(onlyProblem(edit('  candidates: [s1, s2, n1]', '  candidates: []')).message).toMatch(/could never fail over/);
    const lease = onlyProblem(edit('  auto_rejoin: false', '  auto_rejoin: false\n  enforce_lease: true'));
    expect(lease).toMatchObject({ path: 'failover.enforce_lease' });
    expect(lease.message).toMatch(/needs mode: automatic/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  require_primary_lease: on')).hint).toMatch(/enforce_lease/);
  });

  it('reads the synchronous mode, relaxed by default', () => {
    expect(parseClusterConfig(edit('  auto_rejoin: false', '  auto_rejoin: false\n  synchronous_mode: strict'), FILE).failover.synchronousMode).toBe('strict');
    const bad = onlyProblem(edit('  auto_rejoin: false', '  auto_rejoin: false\n  synchronous_mode: lax'));
    expect(bad).toMatchObject({ path: 'failover.synchronous_mode', hint: 'use strict or relaxed' });
  });

  it('reads the auth key and refuses what it cannot use', () => {
    expect(parseClusterConfig(VALID, FILE).auth).toBeNull();
    const defaults = { method: 'scram-sha-256', superuser: 'walship', replicationUser: 'replicator' };
    expect(parseClusterConfig(edit('settings:', 'auth: scram-sha-256\nsettings:'), FILE).auth).toEqual(defaults);
    expect(parseClusterConfig(edit('settings:', 'auth: false\nsettings:'), FILE).auth).toBeNull();
    expect(parseClusterConfig(edit('settings:', 'auth: { method: scram-sha-256, superuser: admin, replication_user: repl }\nsettings:'), FILE).auth).toEqual({
      method: 'scram-sha-256', superuser: 'admin', replicationUser: 'repl',
    });
    expect(onlyProblem(edit('settings:', 'auth: md5\nsettings:')).message).toBe('unknown authentication method "md5"');
    expect(onlyProblem(edit('settings:', 'auth: { method: trust }\nsettings:')).path).toBe('auth.method');
    expect(onlyProblem(edit('settings:', 'auth: { superuser: x }\nsettings:')).message).toBe('auth needs a "method"');
    expect(onlyProblem(edit('settings:', 'auth: { method: scram-sha-256, users: [a] }\nsettings:')).message).toMatch(/unknown key "users" in auth/);
    expect(onlyProblem(edit('settings:', 'auth: { method: scram-sha-256, superuser: "a b" }\nsettings:')).path).toBe('auth.superuser');
    expect(onlyProblem(edit('settings:', 'auth: { method: scram-sha-256, superuser: x, replication_user: x }\nsettings:')).message).toMatch(/must not be the superuser/);
    expect(onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: 8MB\n  auth_method: scram-sha-256')).message).toMatch(/choose authentication with the top-level "auth" key/);
    expect(onlyProblem(edit('settings:', 'auth: scram-sha-256\nsettings:\n  replication_password: s3cret')).message).toMatch(/replication_password in settings is not used with auth: scram-sha-256/);
  });

  it('reads the partition proxy and refuses proxy ports that collide or do not exist', () => {
    expect(parseClusterConfig(VALID, FILE).proxy).toBeNull();
    const withProxy = parseClusterConfig(edit('settings:', 'proxy: true\nsettings:'), FILE);
    expect(withProxy.proxy).toEqual({ portOffset: 100 });
    expect(parseClusterConfig(edit('settings:', 'proxy: { port_offset: 10 }\nsettings:'), FILE).proxy).toEqual({ portOffset: 10 });
    expect(parseClusterConfig(edit('settings:', 'proxy: false\nsettings:'), FILE).proxy).toBeNull();
    // Offset 1: n1's inbound proxy would be s1's port.
    expect(onlyProblem(edit('settings:', 'proxy: { port_offset: 1 }\nsettings:')).message).toMatch(/inbound proxy port of member n1 \(6001\) is also the port of member s1/);
    expect(onlyProblem(edit('settings:', 'proxy: { port_offset: 0 }\nsettings:')).path).toBe('proxy.port_offset');
    expect(onlyProblem(edit('settings:', 'proxy: { port: 5 }\nsettings:')).message).toMatch(/unknown key "port"/);
    expect(onlyProblem(edit('settings:', 'proxy: true\nsettings:'), { basePort: 65400 }).message).toMatch(/beyond 65535/);
  });

  it('reads tls: true, and refuses other values and the ssl settings it owns', () => {
    expect(parseClusterConfig(VALID, FILE).tls).toBe(false);
    expect(parseClusterConfig(edit('settings:', 'tls: true\nsettings:'), FILE).tls).toBe(true);
    expect(parseClusterConfig(edit('settings:', 'tls: false\nsettings:'), FILE).tls).toBe(false);
    const notBoolean = onlyProblem(edit('settings:', 'tls: yes please\nsettings:'));
    expect(notBoolean.path).toBe('tls');
    expect(notBoolean.message).toMatch(/must be true or false/);
    const owned = onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: 8MB\n  ssl_cert_file: my.crt'));
    expect(owned.path).toBe('settings.ssl_cert_file');
    expect(owned.message).toBe('"ssl_cert_file" is set by the cluster toolkit');
    expect(owned.hint).toMatch(/tls: true/);
  });

  it('reads the encryption key and refuses what names no key, two keys, or the key settings it owns', () => {
    expect(parseClusterConfig(VALID, FILE).encryption).toBeNull();
    expect(parseClusterConfig(edit('settings:', 'encryption: false\nsettings:'), FILE).encryption).toBeNull();
    // true: a key generated into the data root (which --data-root moves, key and all).
    expect(parseClusterConfig(edit('settings:', 'encryption: true\nsettings:'), FILE).encryption).toEqual({ keyFile: '/data/test/cluster.key', generated: true });
    expect(parseClusterConfig(edit('settings:', 'encryption: true\nsettings:'), FILE, { dataRoot: '/elsewhere', cwd: '/' }).encryption).toEqual({ keyFile: '/elsewhere/cluster.key', generated: true });
    // A key file of the operator's: relative to the config file, as data_root is.
    expect(parseClusterConfig(edit('settings:', 'encryption: { key_file: keys/c.key }\nsettings:'), FILE).encryption).toEqual({ keyFile: '/configs/keys/c.key', generated: false });
    expect(parseClusterConfig(edit('settings:', 'encryption: { key_file: /k/c.key }\nsettings:'), FILE).encryption).toEqual({ keyFile: '/k/c.key', generated: false });
    expect(parseClusterConfig(edit('settings:', 'encryption: { key_command: "vault read -field=key secret/walship" }\nsettings:'), FILE).encryption).toEqual({ keyCommand: 'vault read -field=key secret/walship' });

    const word = onlyProblem(edit('settings:', 'encryption: aes\nsettings:'));
    expect(word).toMatchObject({ path: 'encryption', line: 15 });
    expect(word.message).toBe('encryption must be true, false or a mapping with key_file or key_command (got the string "aes")');
    expect(word.hint).toMatch(/encryption: true/);
    expect(onlyProblem(edit('settings:', 'encryption: {}\nsettings:')).message).toBe('encryption needs "key_file" or "key_command"');
    expect(onlyProblem(edit('settings:', 'encryption: { key_file: a, key_command: b }\nsettings:')).message).toBe('encryption takes "key_file" or "key_command", not both');
    const unknown = onlyProblem(edit('settings:', 'encryption: { keyfile: a }\nsettings:'));
    expect(unknown).toMatchObject({ path: 'encryption.keyfile', hint: 'did you mean "key_file"?' });
    expect(onlyProblem(edit('settings:', 'encryption: { key_file: "" }\nsettings:'))).toMatchObject({ path: 'encryption.key_file', message: 'must not be empty' });
    expect(onlyProblem(edit('settings:', 'encryption: { key_command: 5 }\nsettings:'))).toMatchObject({ path: 'encryption.key_command' });
    const owned = onlyProblem(edit('  shared_buffers: 8MB', '  shared_buffers: 8MB\n  cluster_key_file: /k'));
    expect(owned).toMatchObject({ path: 'settings.cluster_key_file', message: '"cluster_key_file" is set by the cluster toolkit' });
    expect(owned.hint).toMatch(/top-level "encryption" key/);
    expect(onlyProblem(edit('      recovery_min_apply_delay: 10ms', '      cluster_key_command: cat k')).message).toBe('"cluster_key_command" is set by the cluster toolkit');
  });

  it('enforces the lease by default in automatic mode only', () => {
    expect(parseClusterConfig(VALID, FILE).failover.enforceLease).toBe(false);
    expect(parseClusterConfig(edit('  mode: manual', '  mode: automatic'), FILE).failover.enforceLease).toBe(true);
    expect(parseClusterConfig(edit('  mode: manual', '  mode: automatic\n  enforce_lease: false'), FILE).failover.enforceLease).toBe(false);
  });

  it('lists every problem of a file at once, in file order', () => {
    const text = edit('base_port: 6000', 'base_port: 0').replace('  mode: manual', '  mode: often').replace('  - name: s2', '  - name: s1');
    const problems = problemsOf(text);
    expect(problems.map((p) => p.path)).toEqual(expect.arrayContaining(['base_port', 'failover.mode', 'nodes[2].name']));
    const lines = problems.map((p) => p.line ?? 0);
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
    const error = (() => {
      try {
        parseClusterConfig(text, FILE);
      } catch (e) {
        return e as ClusterConfigError;
      }
      return null;
    })();
    expect(error?.message).toMatch(/invalid cluster config "\/configs\/test\.yaml": \d+ problems/);
    expect(error?.hint).toMatch(/walship cluster validate/);
  });
});

describe('findMember', () => {
  it('names the members there are when the name is unknown', () => {
    const config = parseClusterConfig(VALID, FILE);
    expect(findMember(config, 's1').port).toBe(6001);
    expect(() => findMember(config, 'zz')).toThrow(ClusterError);
    expect(() => findMember(config, 'zz')).toThrow(/has no member "zz"/);
  });
});
