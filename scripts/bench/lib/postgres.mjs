// PostgreSQL servers for the comparison benchmark: initdb, configuration, start and stop through
// pg_ctl, a SIGKILL of the whole server (postmaster and children), base backups, pgbench runs.
// PostgreSQL refuses to run as root: when this process is root, every server-side program runs as
// the `postgres` user through runuser, in directories that user owns. Servers listen on loopback
// TCP (the workload, replication) and on a socket directory of their own (control queries).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { aptInstall } from '../../lib/apt.mjs';
import { readPidFile, waitForPidFileReady } from './common.mjs';
import { PgSession } from './pg-wire.mjs';
import { alive, spawnGroup } from './processes.mjs';
import { ServerProcess } from './server-process.mjs';

export const DEFAULT_PG_BIN = '/usr/lib/postgresql/15/bin';

const asRoot = process.getuid?.() === 0;
/** The user PostgreSQL's programs run as: `postgres` when this process is root, else this user. */
export const PG_USER = asRoot ? 'postgres' : null;

function userIds(name) {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return { uid: Number(r.stdout), gid: Number(g.stdout) };
}

/** The programs the benchmark runs, all in Debian 12's postgresql package (PostgreSQL 15). */
export const POSTGRES_PROGRAMS = ['postgres', 'initdb', 'pg_ctl', 'pg_basebackup', 'pgbench', 'pg_test_fsync'];

/** The programs of POSTGRES_PROGRAMS that are not in bin. */
export function missingPostgresPrograms(bin = DEFAULT_PG_BIN) {
  return POSTGRES_PROGRAMS.filter((name) => !fs.existsSync(path.join(bin, name)));
}

/**
 * Installs Debian's postgresql package when programs are missing from the default directory
 * (apt-get as root, three tries: lib/apt.mjs); returns whether they are all there now. A
 * directory given with --pg-bin is the user's: nothing is installed for it.
 */
export function installPostgresIfMissing(bin = DEFAULT_PG_BIN, log = (line) => console.error(line)) {
  const missing = missingPostgresPrograms(bin);
  if (missing.length === 0) return true;
  if (path.resolve(bin) !== DEFAULT_PG_BIN) return false;
  aptInstall(['postgresql'], `the benchmark needs PostgreSQL 15 (${missing.join(', ')} in ${bin})`, log);
  return missingPostgresPrograms(bin).length === 0;
}

/**
 * Checks that the PostgreSQL programs are there and returns { bin, version, major }; throws an
 * error saying how to install them when they are not. With `install`, installs them first when
 * they are missing (installPostgresIfMissing).
 */
export function findPostgres(bin = DEFAULT_PG_BIN, { install = false } = {}) {
  if (install) installPostgresIfMissing(bin);
  const missing = missingPostgresPrograms(bin);
  if (missing.length > 0) {
    throw new Error(`PostgreSQL 15 is not installed: ${missing.join(', ')} not found in ${bin}.\n` +
      'Install it with `apt-get install -y --no-install-recommends postgresql` (Debian 12 ships PostgreSQL 15; as root),\n' +
      'or pass --pg-bin DIR naming the directory that holds postgres, initdb, pg_ctl, pg_basebackup, pgbench and pg_test_fsync.');
  }
  const r = spawnSync(path.join(bin, 'postgres'), ['--version'], { encoding: 'utf8' });
  const version = (r.stdout ?? '').trim().replace(/^postgres \(PostgreSQL\) /, '');
  const major = Number(version.split('.')[0]);
  if (asRoot && userIds('postgres') === null) {
    throw new Error('PostgreSQL refuses to run as root and there is no `postgres` user to run it as.\n' +
      'Create one (the postgresql package does: `apt-get install -y --no-install-recommends postgresql`) or run this script as a user other than root.');
  }
  return { bin, version, major };
}

/** Makes dir (and its parents) and gives it to the PostgreSQL user, mode 0700. */
export function makePgOwnedDir(dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (PG_USER !== null) {
    const ids = userIds(PG_USER);
    fs.chownSync(dir, ids.uid, ids.gid);
  }
}

/** Runs a PostgreSQL program (as the postgres user when root) to its end; throws with its output when it fails. */
export function runPg(bin, program, args, { timeoutMs = 600_000 } = {}) {
  const command = path.join(bin, program);
  const r = PG_USER === null
    ? spawnSync(command, args, { encoding: 'utf8', timeout: timeoutMs })
    : spawnSync('runuser', ['-u', PG_USER, '--', command, ...args], { encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${program} ${args.join(' ')} failed (exit status ${r.status}${r.signal ? `, ${r.signal}` : ''}):\n${r.stdout}${r.stderr}${r.error?.message ?? ''}`);
  }
  return r.stdout;
}

/** A string as a postgresql.conf value. */
const confValue = (value) => `'${String(value).replaceAll("'", "''")}'`;

export class PgServer extends ServerProcess {
  /**
   * @param {{ bin: string, dir: string, port: number, socketDir: string, logFile: string, name: string }} options
   */
  constructor({ bin, dir, port, socketDir, logFile, name }) {
    super({ dir, port, name, logFile });
    this.bin = bin;
    this.socketDir = socketDir;
  }

  get socketPath() {
    return path.join(this.socketDir, `.s.PGSQL.${this.port}`);
  }

  /** initdb with trust authentication (loopback and a private socket directory only). */
  initdb({ walSegmentMb = 16 } = {}) {
    runPg(this.bin, 'initdb', ['-D', this.dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C',
      `--wal-segsize=${walSegmentMb}`, '--no-sync', '--no-instructions']);
  }

  /** Appends settings to postgresql.conf (later lines win). */
  configure(settings) {
    const lines = Object.entries(settings).map(([name, value]) => `${name} = ${typeof value === 'number' ? value : confValue(value)}`);
    fs.appendFileSync(path.join(this.dir, 'postgresql.conf'), `\n# walship compare-postgres\n${lines.join('\n')}\n`);
  }

  /** The settings that make this server itself: its port and socket directory, its standby role. */
  identity({ primaryPort = null, slot = null } = {}) {
    const settings = { listen_addresses: '127.0.0.1', port: this.port, unix_socket_directories: this.socketDir, cluster_name: this.name };
    if (primaryPort !== null) {
      settings.primary_conninfo = `host=127.0.0.1 port=${primaryPort} user=postgres application_name=${this.name}`;
      settings.primary_slot_name = slot ?? '';
      fs.writeFileSync(path.join(this.dir, 'standby.signal'), '');
    }
    this.configure(settings);
  }

  /**
   * Starts the server (pg_ctl start without waiting, then postmaster.pid polled every 5 ms):
   * resolves { readyMs } from the start request to accepting connections.
   */
  async start() {
    // A server killed with SIGKILL leaves its postmaster.pid behind: that pid is not the new one.
    const stalePid = readPidFile(this.dir)?.pid ?? null;
    const startedAt = performance.now();
    runPg(this.bin, 'pg_ctl', ['start', '-D', this.dir, '-l', this.logFile, '-W', '-s']);
    const isDead = () => {
      const file = readPidFile(this.dir);
      if (file === null || file.pid === stalePid) return performance.now() - startedAt > 15_000;
      return !alive(file.pid);
    };
    const ready = await waitForPidFileReady(this.dir, { stalePid, isDead, describe: `PostgreSQL ${this.name} (log: ${this.logFile})` })
      .catch((error) => { throw new Error(`${error.message}\n${this.logTail()}`); });
    this.lastPid = ready.pid;
    return { readyMs: performance.now() - startedAt };
  }

  /** pg_ctl stop -m MODE, waiting for the end. */
  stop(mode = 'fast') {
    runPg(this.bin, 'pg_ctl', ['stop', '-D', this.dir, '-m', mode, '-w', '-t', '120', '-s']);
  }

  stopImmediate() {
    runPg(this.bin, 'pg_ctl', ['stop', '-D', this.dir, '-m', 'immediate', '-w', '-t', '20', '-s'], { timeoutMs: 30_000 });
  }

  /** A session over the server's socket directory (control queries). */
  control() {
    return PgSession.connect({ path: this.socketPath, applicationName: 'compare-postgres control' });
  }

  /** A session over loopback TCP (the workload's path). */
  tcp(options = {}) {
    return PgSession.connect({ host: '127.0.0.1', port: this.port, applicationName: 'compare-postgres', ...options });
  }

  /** Runs SQL on a fresh control session. */
  async sql(text) {
    const session = await this.control();
    try {
      return await session.query(text);
    } finally {
      await session.close();
    }
  }

  logTail(lines = 20) {
    return this.logText().split('\n').slice(-lines).join('\n');
  }
}

/**
 * PostgreSQL's crash-recovery report in the log text after offset: `redo starts at A` and
 * `redo done at B ... elapsed: S s` → { bytes: B - A, seconds: S }, or null when it is missing.
 */
export function parsePgRedo(text, parseLsn) {
  const starts = [...text.matchAll(/redo starts at ([0-9A-F]+\/[0-9A-F]+)/g)].at(-1);
  const done = [...text.matchAll(/redo done at ([0-9A-F]+\/[0-9A-F]+) system usage: .*elapsed: ([\d.]+) s/g)].at(-1);
  if (starts === undefined || done === undefined) return null;
  return { bytes: parseLsn(done[1]) - parseLsn(starts[1]), seconds: Number(done[2]) };
}

/**
 * Runs pgbench against 127.0.0.1:port: `-M prepared`, the script file, C clients on one thread,
 * for D seconds, with per-transaction logs (-l) for the percentiles. PGOPTIONS carries session
 * settings (synchronous_commit). Resolves { transactions, tps, latenciesMs }.
 */
export async function runPgbench({ bin, port, clients, durationSeconds, scriptFile, logDir, pgOptions = '' }) {
  fs.rmSync(logDir, { recursive: true, force: true });
  fs.mkdirSync(logDir, { recursive: true });
  const prefix = path.join(logDir, 'pgbench');
  const args = ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-n', '-M', 'prepared', '-f', scriptFile,
    '-c', String(clients), '-j', '1', '-T', String(durationSeconds), '-l', `--log-prefix=${prefix}`, 'postgres'];
  const { done } = spawnGroup(path.join(bin, 'pgbench'), args, { cwd: logDir, env: { ...process.env, PGOPTIONS: pgOptions } });
  const { code, signal, stdout, stderr } = await done;
  if (code !== 0) throw new Error(`pgbench ${args.join(' ')} failed (exit status ${code ?? signal}):\n${stdout}${stderr}`);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1]);
  if (!Number.isFinite(transactions) || !Number.isFinite(tps)) throw new Error(`pgbench's output has no transaction count or tps:\n${stdout}`);
  // Log lines: client_id transaction_no time_us script_no time_epoch time_us_part.
  const latenciesMs = [];
  for (const file of fs.readdirSync(logDir)) {
    if (!file.startsWith('pgbench.')) continue;
    for (const line of fs.readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      const fields = line.split(' ');
      if (fields.length >= 3) latenciesMs.push(Number(fields[2]) / 1000);
    }
  }
  fs.rmSync(logDir, { recursive: true, force: true });
  return { transactions, tps, latenciesMs };
}
