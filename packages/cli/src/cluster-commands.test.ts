/**
 * The `walship cluster` commands that start nothing, run in-process: validate on the shipped
 * configs and on a broken one, the usage errors, and status/history of a cluster not created.
 * The commands that run processes are tested in test/cluster.test.ts.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './program.js';
import { memoryIo } from './test-support/memory-io.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const CONFIGS = join(ROOT, 'cluster-configs');
const dir = mkdtempSync(join(tmpdir(), 'walship-cluster-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function walship(args: string[]) {
  const io = memoryIo();
  const code = await runCli(args, io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText() };
}

describe('walship cluster validate', () => {
  it('accepts every shipped config', async () => {
    const files = readdirSync(CONFIGS).filter((name) => name.endsWith('.yaml'));
    expect(files).toEqual(expect.arrayContaining(['local-3node.yaml', 'cascade.yaml', 'quorum.yaml']));
    for (const file of files) {
      const result = await walship(['cluster', 'validate', '-f', join(CONFIGS, file)]);
      expect(result.code, `${file}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toMatch(/: valid\n/);
    }
  });

  it('describes local-3node: a primary, a synchronous and an asynchronous standby, moved by --base-port and --data-root', async () => {
    const result = await walship(['cluster', 'validate', '-f', join(CONFIGS, 'local-3node.yaml'), '--base-port', '7000', '--data-root', join(dir, 'copy'), '--json']);
    expect(result.code).toBe(0);
    const document = JSON.parse(result.stdout) as { valid: boolean; synchronousStandbyNames: string; dataRoot: string; members: Array<{ name: string; port: number; upstream: string | null }> };
    expect(document.valid).toBe(true);
    expect(document.synchronousStandbyNames).toBe('FIRST 1 (s1)');
    expect(document.dataRoot).toBe(join(dir, 'copy'));
    expect(document.members.map((m) => [m.name, m.port])).toEqual([['n1', 7000], ['s1', 7001], ['s2', 7002]]);
  });

  it('refuses a broken config with every problem, exit 1, and --json says so in one document', async () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'name: broken\nbase_port: 6000\ndata_root: x\nnodes:\n  - {name: a, port_offset: 0}\n  - {name: b, port_offset: 0, upstream: z}\n');
    const text = await walship(['cluster', 'validate', '-f', file]);
    expect(text.code).toBe(1);
    expect(text.stderr).toMatch(/walship: error: invalid cluster config ".*broken\.yaml": 2 problems/);
    expect(text.stderr).toMatch(/broken\.yaml:6:\d+: nodes\[1\]\.port_offset: port 6000 of member b is also the port of member a/);
    expect(text.stderr).toMatch(/broken\.yaml:6:\d+: nodes\[1\]\.upstream: upstream "z" is not a member/);
    expect(text.stderr).toMatch(/HINT: {2}Fix each field/);
    const json = await walship(['cluster', 'validate', '-f', file, '--json']);
    expect(json.code).toBe(1);
    const document = JSON.parse(json.stdout) as { valid: boolean; problems: Array<{ path: string; line: number }> };
    expect(document.valid).toBe(false);
    expect(document.problems.map((problem) => [problem.path, problem.line]).sort()).toEqual([['nodes[1].port_offset', 6], ['nodes[1].upstream', 6]]);
  });

  it('reports a missing file, and a missing -f as a usage error', async () => {
    const missing = await walship(['cluster', 'validate', '-f', join(dir, 'nope.yaml')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/could not read cluster config .*nope\.yaml.*: no such file/);
    expect((await walship(['cluster', 'validate'])).code).toBe(2);
    expect((await walship(['cluster', 'up', '-f', join(CONFIGS, 'local-3node.yaml'), '--base-port', 'x'])).code).toBe(2);
  });
});

describe('a cluster not created yet', () => {
  it('status says so, history is empty, stop refuses with what to do', async () => {
    const args = ['-f', join(CONFIGS, 'local-3node.yaml'), '--base-port', '7100', '--data-root', join(dir, 'never')];
    const status = await walship(['cluster', 'status', ...args, '--json']);
    expect(status.code).toBe(0);
    const document = JSON.parse(status.stdout) as { created: boolean; members: Array<{ state: string }> };
    expect(document.created).toBe(false);
    expect(document.members.map((m) => m.state)).toEqual(['not created', 'not created', 'not created']);
    expect((await walship(['cluster', 'history', ...args])).stdout).toMatch(/has no history yet/);
    const stop = await walship(['cluster', 'stop', ...args, 'n1']);
    expect(stop.code).toBe(1);
    expect(stop.stderr).toMatch(/has not been created/);
    expect(stop.stderr).toMatch(/HINT: {2}Create it with walship cluster up/);
    const unknown = await walship(['cluster', 'start', ...args, 'zz']);
    expect(unknown.stderr).toMatch(/cluster local-3node has no member "zz"/);
  });
});
