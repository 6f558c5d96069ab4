/**
 * `walship lag`'s command line, without nodes: option errors (usage errors, or UNKNOWN under
 * --check, as a monitoring plugin must), and an unreachable cluster.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './program.js';
import { memoryIo } from './test-support/memory-io.js';
import { membersFromNodes } from './commands/lag.js';

async function walship(args: string[]) {
  const io = memoryIo();
  const code = await runCli(args, io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText() };
}

describe('walship lag: the command line', () => {
  it('says UNKNOWN (3), on one line, for a bad threshold under --check', async () => {
    const result = await walship(['lag', '--node', '127.0.0.1:1', '--check', '--warn', '10']);
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('WALSHIP_REPLICATION_LAG UNKNOWN: --warn: "10" is neither a duration (500ms, 10s) nor a size (16MB) in threshold "10".\n');
  });

  it('makes a bad threshold or interval a usage error (2) otherwise', async () => {
    const threshold = await walship(['lag', '--node', '127.0.0.1:1', '--once', '--crit', '5 parsecs']);
    expect(threshold.code).toBe(2);
    expect(threshold.stderr).toContain('--crit: "5 parsecs" is neither a duration');
    expect(threshold.stderr).toContain('HINT:');
    const interval = await walship(['lag', '--node', '127.0.0.1:1', '--interval', '5']);
    expect(interval.code).toBe(2);
    expect(interval.stderr).toContain('--interval: interval 5 is below the minimum of 100 ms.');
  });

  it('refuses --html without --report, and --report with --node', async () => {
    expect((await walship(['lag', '--node', '127.0.0.1:1', '--html', 'out.html'])).code).toBe(2);
    const both = await walship(['lag', '--node', '127.0.0.1:1', '--report', 'rec.jsonl']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--report reads a recording; it takes no --node');
  });

  it('is UNKNOWN when no member answers, and exits 3 with --once', async () => {
    const check = await walship(['lag', '--node', '127.0.0.1:1', '--check', '--timeout', '1']);
    expect(check.code).toBe(3);
    expect(check.stdout).toMatch(/^WALSHIP_REPLICATION_LAG UNKNOWN: no member answers; lag cannot be measured\n$/);
    const once = await walship(['lag', '--node', '127.0.0.1:1', '--once', '--json', '--interval', '100', '--timeout', '1']);
    expect(once.code).toBe(3);
    const document = JSON.parse(once.stdout) as { members: Array<{ name: string; state: string; reachable: boolean }> };
    expect(document.members).toEqual([expect.objectContaining({ name: '127.0.0.1:1', state: 'unreachable', reachable: false })]);
    expect(once.stderr).toContain('could not reach any member (127.0.0.1:1)');
  });

  it('says UNKNOWN (3) under --check for any command line it cannot parse, not usage (2)', async () => {
    for (const args of [
      ['lag', '--node', '127.0.0.1:1', '--check', '--warn'],
      ['lag', '--node', '127.0.0.1:1', '--check', '--no-such-option'],
      ['lag', '--node', 'nohost', '--check'],
      ['lag', '--node', '127.0.0.1:1', '--check', '--timeout', 'soon'],
      ['lag', '-f', '/nonexistent/cluster.yaml', '--check'],
      ['lag', '--node', '127.0.0.1:1', '-f', 'x.yaml', '--check'],
    ]) {
      const result = await walship(args);
      expect(result.code, args.join(' ')).toBe(3);
      expect(result.stdout, args.join(' ')).toMatch(/^WALSHIP_REPLICATION_LAG UNKNOWN: \S.*\n$/);
    }
    const missing = await walship(['lag', '--node', '127.0.0.1:1', '--check', '--warn']);
    expect(missing.stdout).toBe("WALSHIP_REPLICATION_LAG UNKNOWN: option '--warn <threshold>' argument missing\n");
    // Without --check the same lines stay usage errors, and --help stays 0.
    expect((await walship(['lag', '--node', '127.0.0.1:1', '--warn'])).code).toBe(2);
    expect((await walship(['lag', '--check', '--help'])).code).toBe(0);
  });

  it('takes the members of a cluster config with -f, names exact, and refuses -f with --node', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-lag-f-'));
    try {
      const config = path.join(dir, 'c.yaml');
      fs.writeFileSync(config, 'name: lab\nbase_port: 5433\ndata_root: data\nnodes:\n  - name: alpha\n    port_offset: 0\n  - name: beta_2\n    port_offset: 1\n');
      // Port 1 and 2: nobody listens there; no state yet in the data root.
      const once = await walship(['lag', '-f', config, '--base-port', '1', '--once', '--json', '--interval', '100', '--timeout', '1']);
      expect(once.code).toBe(3);
      const document = JSON.parse(once.stdout) as { members: Array<{ name: string; port: number; state: string; clusterRole: string | null }>; cluster: { name: string; statePrimary: string | null }; problems: string[] };
      expect(document.members.map((m) => [m.name, m.port, m.state])).toEqual([['alpha', 1, 'unreachable'], ['beta_2', 2, 'unreachable']]);
      expect(document.cluster).toMatchObject({ name: 'lab', statePrimary: null });
      expect(document.problems).toContain('cluster lab has no live state yet: was it ever brought up (walship cluster up)?');
      expect(once.stderr).toContain('could not reach any member (127.0.0.1:1, 127.0.0.1:2)');
      expect(once.stderr).toContain(`walship cluster up -f ${config}`);
      const both = await walship(['lag', '-f', config, '--node', '127.0.0.1:1', '--once']);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('give the members with --node or -f, not both');
      expect((await walship(['lag', '--node', '127.0.0.1:1', '--base-port', '7000', '--once'])).code).toBe(2);
      const missing = await walship(['lag', '-f', path.join(dir, 'none.yaml'), '--once']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('no such file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('turns --node into the member list a cluster config will also give', () => {
    expect(membersFromNodes([{ host: 'a', port: 1 }, { host: 'b', port: 2 }])).toEqual([{ host: 'a', port: 1 }, { host: 'b', port: 2 }]);
  });
});
