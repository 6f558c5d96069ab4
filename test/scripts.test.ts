/**
 * The scripts under scripts/ (the benchmarks, the long loops, `npm start`, `npm test`), run as a
 * user runs them: `--help` prints the usage and exits 0, and a wrong argument is named with the
 * usage and exit status 2 (DESIGN.md section 10's usage error) before the script starts anything.
 * Before, parseArgs's stack trace came out for an unknown option, crash-loop took an option for
 * its number of cycles, and `npm start` with any argument brought the demo cluster up anyway.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './helpers/node.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function runScript(script: string, args: string[], env: Record<string, string> = {}): Run {
  const result = spawnSync(process.execPath, [path.join(ROOT, 'scripts', script), ...args], {
    cwd: ROOT, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const SCRIPTS = [
  'bench/ab.mjs', 'bench/catchup.mjs', 'bench/commits.mjs', 'bench/compare-postgres.mjs', 'bench/install-postgres.mjs', 'bench/promotion.mjs',
  'bench/recovery.mjs', 'bench/replication.mjs', 'auth-connect-bench.mjs', 'crash-loop.mjs', 'drill-loop.mjs',
  'start-demo.mjs', 'sync-failover-loop.mjs', 'run-tests.mjs',
];

describe('scripts: usage', () => {
  it.each(SCRIPTS)('%s: --help prints the usage and exits 0; an unknown option is named, with the usage, exit 2', (script) => {
    const help = runScript(script, ['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage:/);
    expect(help.stdout).toContain(path.basename(script));

    const wrong = runScript(script, ['--no-such-option']);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr.startsWith(`${path.basename(script, '.mjs')}: unknown option '--no-such-option'\nusage:`)).toBe(true);
    expect(wrong.stderr).not.toMatch(/\n\s+at /);
  });

  it('a wrong count or scenario is named instead of taken for a number', () => {
    const cycles = runScript('crash-loop.mjs', ['many']);
    expect(cycles.status).toBe(2);
    expect(cycles.stderr).toContain('crash-loop: CYCLES "many": expected a whole number of at least 1');

    const scenario = runScript('drill-loop.mjs', ['2', 'kill-everything']);
    expect(scenario.status).toBe(2);
    expect(scenario.stderr).toContain('drill-loop: unknown scenario "kill-everything" (known: kill-primary,');

    const extra = runScript('sync-failover-loop.mjs', ['3', '4']);
    expect(extra.status).toBe(2);
    expect(extra.stderr).toContain('sync-failover-loop: unexpected argument "4"');
  });

  it('npm start with an argument starts nothing', () => {
    const dataRoot = path.join(tempDir('demo-args'), 'cluster');
    const run = runScript('start-demo.mjs', ['--rate', '10'], { WALSHIP_DEMO_DATA_ROOT: dataRoot });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("start-demo: unknown option '--rate'");
    expect(run.stderr).toContain('WALSHIP_DEMO_RATE');
    expect(fs.existsSync(dataRoot)).toBe(false);
    fs.rmSync(path.dirname(dataRoot), { recursive: true, force: true });
  });
});

describe('scripts: the Debian programs npm test installs', () => {
  it('looks for each where its test does, the override first, and names the missing ones', async () => {
    const { TEST_TOOLS, missingTools } = (await import(path.join(ROOT, 'scripts', 'lib', 'test-tools.mjs'))) as {
      TEST_TOOLS: Array<{ name: string; override: string }>;
      missingTools: (tools: unknown[], env: Record<string, string | undefined>) => Array<{ name: string }>;
    };
    expect(TEST_TOOLS.map((tool) => tool.name).sort()).toEqual(['prometheus', 'tmux']);
    const dir = tempDir('test-tools');
    const present = path.join(dir, 'present');
    fs.writeFileSync(present, '');
    const absent = path.join(dir, 'absent');
    const names = (env: Record<string, string | undefined>) => missingTools(TEST_TOOLS, env).map((tool) => tool.name);
    expect(names({ PROMETHEUS: present, TMUX_BINARY: present })).toEqual([]);
    expect(names({ PROMETHEUS: absent, TMUX_BINARY: present })).toEqual(['prometheus']);
    expect(names({ PROMETHEUS: present, TMUX_BINARY: absent })).toEqual(['tmux']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('scripts: PostgreSQL for the benchmark', () => {
  it('names the programs missing from a directory, and installs nothing for a directory the user gave', async () => {
    const { POSTGRES_PROGRAMS, missingPostgresPrograms, installPostgresIfMissing } = (await import(path.join(ROOT, 'scripts', 'bench', 'lib', 'postgres.mjs'))) as {
      POSTGRES_PROGRAMS: string[];
      missingPostgresPrograms: (bin: string) => string[];
      installPostgresIfMissing: (bin: string, log: (line: string) => void) => boolean;
    };
    expect(POSTGRES_PROGRAMS).toEqual(['postgres', 'initdb', 'pg_ctl', 'pg_basebackup', 'pgbench', 'pg_test_fsync']);
    const dir = tempDir('pg-bin');
    for (const name of ['postgres', 'initdb', 'pg_ctl', 'pgbench']) fs.writeFileSync(path.join(dir, name), '');
    expect(missingPostgresPrograms(dir)).toEqual(['pg_basebackup', 'pg_test_fsync']);
    const said: string[] = [];
    expect(installPostgresIfMissing(dir, (line) => said.push(line))).toBe(false);
    expect(said).toEqual([]);
    for (const name of ['pg_basebackup', 'pg_test_fsync']) fs.writeFileSync(path.join(dir, name), '');
    expect(missingPostgresPrograms(dir)).toEqual([]);
    expect(installPostgresIfMissing(dir, (line) => said.push(line))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('scripts: what else had the machine during a benchmark run', () => {
  it("reads /proc/stat's CPU time: busy time grows while this process computes, and the parts add up", async () => {
    const { machineCpuTicks } = (await import(path.join(ROOT, 'scripts', 'bench', 'lib', 'processes.mjs'))) as {
      machineCpuTicks: () => { busy: number; idle: number; iowait: number; steal: number; total: number } | null;
    };
    const before = machineCpuTicks();
    expect(before).not.toBeNull();
    // 300 ms of computing is 30 ticks at 100 Hz on one CPU, counted as busy whatever else runs.
    const until = Date.now() + 300;
    let spins = 0;
    while (Date.now() < until) spins++;
    const after = machineCpuTicks()!;
    expect(spins).toBeGreaterThan(0);
    expect(after.busy - before!.busy).toBeGreaterThanOrEqual(20);
    expect(after.total).toBe(after.busy + after.idle + after.iowait + after.steal);
    expect(after.steal).toBeGreaterThanOrEqual(before!.steal);
  });

  it("reads /proc/diskstats: 4 MB written and fsynced show as sectors written and a cache flush", async () => {
    const { diskTotals } = (await import(path.join(ROOT, 'scripts', 'bench', 'lib', 'processes.mjs'))) as {
      diskTotals: () => { sectorsWritten: number; ioMs: number; flushes: number } | null;
    };
    const dir = tempDir('disk-totals');
    const before = diskTotals();
    expect(before).not.toBeNull();
    const fd = fs.openSync(path.join(dir, 'data'), 'w');
    fs.writeSync(fd, Buffer.alloc(4 * 1024 * 1024, 1));
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const after = diskTotals()!;
    expect(after.sectorsWritten - before!.sectorsWritten).toBeGreaterThanOrEqual((4 * 1024 * 1024) / 512);
    expect(after.flushes).toBeGreaterThan(before!.flushes);
    expect(after.ioMs).toBeGreaterThanOrEqual(before!.ioMs);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
