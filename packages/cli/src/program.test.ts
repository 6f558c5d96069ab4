/**
 * The program without a server: argument parsing, usage errors (exit 2), the commands that work
 * on a data directory (init with the engine's bootstrap stubbed, show, set -D, stop, start's
 * checks), and the error format.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runCli } from './program.js';
import { memoryIo } from './test-support/memory-io.js';
import { VERSION } from './version.js';

vi.mock('./adapters.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('./adapters.js')>();
  return {
    ...original,
    // The engine's bootstrap, stubbed: the layout it makes, without WAL.
    bootstrapDataDirectory: vi.fn(async (dataDir: string, options: { walSegmentSize: number }) => {
      const { mkdirSync: mkdir, writeFileSync: write } = await import('node:fs');
      for (const sub of ['global', 'pg_wal', 'base']) mkdir(join(dataDir, sub), { recursive: true });
      write(join(dataDir, 'global', 'control'), `segment ${options.walSegmentSize}`);
      return { systemId: '7300000000000000001' };
    }),
  };
});

let root: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'walship-cli-'));
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

async function walship(args: string[], options: Parameters<typeof memoryIo>[0] = {}) {
  const io = memoryIo(options);
  const code = await runCli(args, io);
  return { code, stdout: io.stdoutText(), stderr: io.stderrText() };
}

describe('the program', () => {
  it('prints help and the version with exit 0', async () => {
    const help = await walship(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['init', 'start', 'stop', 'set', 'show', 'isready', 'checkpoint', 'status', 'put', 'get', 'del', 'scan', 'load', 'waldump', 'controldata', 'bench']) {
      expect(help.stdout).toMatch(new RegExp(`\\n  ${command} `));
    }
    expect(help.stdout).toContain('WALSHIP_PASSWORD');
    const commandHelp = await walship(['put', '--help']);
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toContain('--sync-commit <level>');
    const version = await walship(['--version']);
    expect(version).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
  });

  it('keeps its version equal to the package version', () => {
    const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(packageJson.version);
  });

  it('reports usage errors PostgreSQL-style with exit 2', async () => {
    const unknown = await walship(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^walship: error: unknown command 'frobnicate'/);
    expect(unknown.stderr).toContain('HINT:  Try "walship --help" for more information.');

    const noDir = await walship(['init']);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toContain("walship: error: required option '-D, --data-dir <dir>' not specified");
    expect(noDir.stderr).toContain('HINT:  Try "walship init --help" for more information.');

    expect((await walship(['init', '-D', root, '--port', '70000'])).code).toBe(2);
    expect((await walship(['init', '-D', root, '--port', 'abc'])).code).toBe(2);
    expect((await walship(['init', '-D', root, '--set', 'novalue'])).code).toBe(2);
    expect((await walship(['init', '-D', root, '--bogus'])).code).toBe(2);
    expect((await walship(['get'])).code).toBe(2);
    expect((await walship(['get', 'k', 'extra'])).code).toBe(2);
    expect((await walship(['put', 'k', 'v', '--sync-commit', 'sometimes'])).code).toBe(2);
    expect((await walship(['get', 'k', '--min-lsn', 'zz'])).code).toBe(2);
    expect((await walship(['put', 'k', 'v', '--node', 'host:notaport'])).code).toBe(2);
    expect((await walship(['put', 'k', 'v', '--timeout', '-1'])).code).toBe(2);
    expect((await walship(['stop', '-D', root, '--mode', 'gentle'])).code).toBe(2);
    expect((await walship(['scan', '--prefix', 'a', '--start', 'b'])).code).toBe(2);
    expect((await walship(['load', 'file.txt'])).code).toBe(2);
    expect((await walship(['load', '-', '--count', '5'])).code).toBe(2);
    expect((await walship(['bench', '--clients', '0'])).code).toBe(2);
  });

  it('exits 2 without a command', async () => {
    const result = await walship([]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('Usage: walship');
  });
});

describe('init', () => {
  it('creates the data directory and walship.conf, with the trust warning', async () => {
    const dataDir = join(root, 'n1');
    const result = await walship(['init', '-D', dataDir, '--port', '6001', '--set', 'wal_segment_size=1MB', '--set', 'Synchronous_Commit=remote_apply']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('The WAL segment size is 1MB.');
    expect(result.stdout).toContain('The database system identifier is 7300000000000000001.');
    expect(result.stdout).toContain(`    walship start -D ${dataDir}\n`);
    expect(result.stderr).toContain('initdb: warning: enabling "trust" authentication for local connections');
    expect(result.stderr).toContain('--auth');
    const adapters = await import('./adapters.js');
    expect(adapters.bootstrapDataDirectory).toHaveBeenLastCalledWith(dataDir, { walSegmentSize: 1024 * 1024 });
    const conf = readFileSync(join(dataDir, 'walship.conf'), 'utf8');
    expect(conf).toMatch(/\nport = 6001\nwal_segment_size = 1MB\nsynchronous_commit = remote_apply\n/);

    const shown = await walship(['show', '-D', dataDir, 'port']);
    expect(shown).toMatchObject({ code: 0, stdout: '6001\n' });
  });

  it('does not warn about trust when a password is set', async () => {
    const result = await walship(['init', '-D', join(root, 'n1'), '--set', 'password=secret']);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('trust');
  });

  it('checks --set values before creating anything', async () => {
    const dataDir = join(root, 'n1');
    const unknown = await walship(['init', '-D', dataDir, '--set', 'foo=1']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('walship: error: --set foo=1: unrecognized configuration parameter "foo"');
    const badUnit = await walship(['init', '-D', dataDir, '--set', 'shared_buffers=12XB']);
    expect(badUnit.code).toBe(2);
    expect(badUnit.stderr).toContain('invalid value for parameter "shared_buffers": "12XB"');
    expect(badUnit.stderr).toContain('HINT:  Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".');
    const badSegment = await walship(['init', '-D', dataDir, '--set', 'wal_segment_size=3MB']);
    expect(badSegment.code).toBe(2);
    const twice = await walship(['init', '-D', dataDir, '--port', '6001', '--set', 'port=6002']);
    expect(twice.code).toBe(2);
    expect(() => readFileSync(join(dataDir, 'walship.conf'))).toThrow();
  });

  it('refuses a directory that is not empty', async () => {
    const dataDir = join(root, 'full');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'something'), 'x');
    const result = await walship(['init', '-D', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`walship: error: directory "${dataDir}" exists but is not empty`);
    expect(result.stderr).toContain('HINT:  If you want to create a new data directory');
  });
});

describe('show and set -D', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = join(root, 'n1');
    mkdirSync(dataDir);
    writeFileSync(join(dataDir, 'walship.conf'), "# test\nport = 6001\nshared_buffers = 64MB  # small\npassword = 'hunter2'\n");
  });

  it('prints one value as postgres -C does, and exits 1 for an unknown name', async () => {
    expect(await walship(['show', '-D', dataDir, 'shared_buffers'])).toMatchObject({ code: 0, stdout: '64MB\n' });
    expect(await walship(['show', '-D', dataDir, 'checkpoint_timeout'])).toMatchObject({ code: 0, stdout: '5min\n' });
    const unknown = await walship(['show', '-D', dataDir, 'shared_bufers']);
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toContain('walship: error: unrecognized configuration parameter "shared_bufers"');
    expect(unknown.stderr).toContain('"shared_buffers"');
  });

  it('lists every setting with its source, masking passwords', async () => {
    const result = await walship(['show', '-D', dataDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^name +\| setting +\| context +\| source\n/);
    expect(result.stdout).toMatch(/\nport +\| 6001 +\| postmaster +\| walship\.conf line 2\n/);
    expect(result.stdout).toMatch(/\nwal_writer_delay +\| 200ms +\| sighup +\| default\n/);
    expect(result.stdout).toMatch(/\npassword +\| \*{8} /);
    expect(result.stdout).not.toContain('hunter2');
    const json = JSON.parse((await walship(['show', '-D', dataDir, '--json'])).stdout) as { settings: Array<Record<string, unknown>> };
    expect(json.settings.find((row) => row.name === 'shared_buffers')).toMatchObject({
      setting: '64MB',
      unit: '8kB',
      context: 'postmaster',
      source: 'file',
      sourceLine: 3,
    });
    const one = JSON.parse((await walship(['show', '-D', dataDir, 'port', '--json'])).stdout) as Record<string, unknown>;
    expect(one).toMatchObject({ name: 'port', setting: '6001' });
  });

  it('fails with the file and line of a broken walship.conf', async () => {
    writeFileSync(join(dataDir, 'walship.conf'), 'port = 6001\nshared_buffers = 12XB\n');
    const result = await walship(['show', '-D', dataDir, 'port']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: invalid value for parameter "shared_buffers": "12XB"');
    expect(result.stderr).toContain(`DETAIL:  The value is in file "${join(dataDir, 'walship.conf')}" line 2.`);
  });

  it('sets a value in walship.conf, keeping comments', async () => {
    const result = await walship(['set', '-D', dataDir, 'shared_buffers', '256MB']);
    expect(result).toMatchObject({ code: 0, stdout: 'shared_buffers = 256MB\n' });
    expect(readFileSync(join(dataDir, 'walship.conf'), 'utf8')).toContain('shared_buffers = 256MB\t# small\n');
    expect((await walship(['show', '-D', dataDir, 'shared_buffers'])).stdout).toBe('256MB\n');
  });

  it('refuses bad values, unknown names and settings fixed at init with exit 1', async () => {
    const bad = await walship(['set', '-D', dataDir, 'port', '70000']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('walship: error: 70000 is outside the valid range for parameter "port" (1 .. 65535)');
    expect((await walship(['set', '-D', dataDir, 'nope', '1'])).code).toBe(1);
    const fixed = await walship(['set', '-D', dataDir, 'wal_segment_size', '2MB']);
    expect(fixed.code).toBe(1);
    expect(fixed.stderr).toContain('parameter "wal_segment_size" cannot be changed');
  });

  it('needs exactly one of -D and --node', async () => {
    expect((await walship(['set', 'port', '1'])).code).toBe(2);
    expect((await walship(['set', '-D', dataDir, '--node', '127.0.0.1:1', 'port', '1'])).code).toBe(2);
  });

  it('warns that a postmaster setting needs a restart when a server is running', async () => {
    // This test process stands in for a running postmaster.
    writeFileSync(join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n0\n6001\n\n127.0.0.1\n\nready\n`);
    const result = await walship(['set', '-D', dataDir, 'port', '6002']);
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('walship: warning: parameter "port" cannot be changed without restarting the server');
  });
});

describe('start and stop', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = join(root, 'n1');
    mkdirSync(join(dataDir, 'global'), { recursive: true });
    writeFileSync(join(dataDir, 'global', 'control'), 'x');
  });

  it('stop says the PID file is missing and what to do', async () => {
    const result = await walship(['stop', '-D', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `walship: error: PID file "${join(dataDir, 'postmaster.pid')}" does not exist\nHINT:  Is the server running? Start it with "walship start -D ${dataDir}".\n`,
    );
  });

  it('stop reports a stale PID file', async () => {
    writeFileSync(join(dataDir, 'postmaster.pid'), '4194303\n');
    const result = await walship(['stop', '-D', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('could not send stop signal (PID: 4194303): No such process');
  });

  it('start refuses when another server is running', async () => {
    writeFileSync(join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n0\n6001\n\n127.0.0.1\n\nready\n`);
    const result = await walship(['start', '-D', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('walship: error: another server might be running');
  });

  it('start refuses a directory that is not a data directory', async () => {
    const result = await walship(['start', '-D', join(root, 'nothing')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('does not exist');
    mkdirSync(join(root, 'empty'));
    const empty = await walship(['start', '-D', join(root, 'empty')]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('is not a walship data directory');
  });
});
