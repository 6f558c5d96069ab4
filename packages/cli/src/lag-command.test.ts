/**
 * `walship lag`'s command line, without nodes: option errors (usage errors, or UNKNOWN under
 * --check, as a monitoring plugin must), and an unreachable cluster.
 */
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

  it('turns --node into the member list a cluster config will also give', () => {
    expect(membersFromNodes([{ host: 'a', port: 1 }, { host: 'b', port: 2 }])).toEqual([{ host: 'a', port: 1 }, { host: 'b', port: 2 }]);
  });
});
