#!/usr/bin/env node
// walship against PostgreSQL 15 on this machine, in one run (issue 7's yardstick).
//
// Sets up, in a temporary directory, a walship primary with two streaming standbys (init, then
// basebackup --standby --slot, as the other scripts here do) and a PostgreSQL 15 primary with two
// streaming standbys (initdb, pg_basebackup with slots), with the same durability settings
// (fsync on, full_page_writes on, 16 MB WAL segments, shared_buffers 128MB, max_wal_size 8GB and
// checkpoint_timeout 1d so that the crash-recovery row has all its WAL since one checkpoint), then
// measures each row on both systems one after the other (walship, PostgreSQL, walship,
// PostgreSQL ...) over --rounds rounds, so that machine noise falls on both alike:
//
//  1. durable commits/s and latency p50/p99 at 1, 8, 32 clients: one-key upserts of a 100-byte
//     value into a 100 000-key table, asynchronous standbys (walship bench; PostgreSQL: pgbench
//     -M prepared with an INSERT ... ON CONFLICT DO UPDATE script, percentiles from its -l logs),
//     each run after --warmup seconds of the same load left out of the figures (walship bench
//     --warmup; a pgbench run of that length just before), so that both are measured warm: a Node
//     process spends its first seconds of a new workload interpreted and compiling;
//  2. the same with s1 as the synchronous standby (FIRST 1 (s1)) at synchronous_commit on and
//     remote_apply;
//  3. replay lag p50/p99/max and byte lag per standby, sampled every 200 ms from the primary's
//     pg_stat_replication while 8 clients of (1) run, after the same warm-up (inside the one
//     walship bench process that is sampled; sampling starts once the warm-up has run);
//  4. catch-up: s2 stopped while --wal-mb of WAL is written, then started: WAL MB/s and
//     transactions/s from its start until it has replayed everything;
//  5. crash recovery: the primary SIGKILLed with that WAL since its last checkpoint: the redo
//     loop's MB/s and transactions/s (each system's own log line) and the time to ready;
//  6. base backup of the database (--db-mb of 1000-byte values, plus the other tables): MB/s;
//  7. promotion: a standby made from that backup, its primary stopped: from the promote request
//     to the first accepted write (fresh sessions trying an upsert);
//  8. beside them: fdatasync/s of the data directory's disk (pg_test_fsync), commits per WAL
//     fdatasync (walship's walFsyncs; PostgreSQL's pg_stat_wal.wal_sync) and CPU microseconds per
//     commit (/proc/PID/stat of the primary's processes; of all three nodes; and, for context, of
//     the load generator, walship bench or pgbench, which shares the cores: over the measured run
//     alone, walship bench's own process.cpuUsage and the measured pgbench process's).
//
// The WAL written for (4) and (5) is the same: transactions of 100 upserts of fresh 1000-byte
// values into a table of about 64 MB, from 8 sessions, until --wal-mb of WAL is written.
//
// Prints a table of both systems' medians, the walship/PostgreSQL ratio oriented so that above 1
// means walship is ahead, and each system's min-max over the rounds; --json prints one document
// with rows { name, walship, postgres, ratio, unit } (and more keys). --markdown FILE puts the
// table, dated, at the top of FILE's history (docs/benchmarks.md). Every process it starts is
// stopped at the end, also on Ctrl-C, SIGTERM or a failure; the directory is removed (--keep
// keeps it).
//
// --no-standbys measures row 1 on two lone primaries instead: whether a gap is the single node's
// commit path or replication's (the same rows with and without standbys, side by side).
//
//   npm run bench:pg [-- --quick] [--json] [--rounds 3] [--duration 10] [--markdown docs/benchmarks.md]
//   node scripts/bench/compare-postgres.mjs --help
import { spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { cli, firstAcceptedWriteMs, median, parseLsn, parseWalshipRedoDone, percentile, root, sleep, waitReplayed, walship } from './lib/common.mjs';
import { DEFAULT_PG_BIN, findPostgres, makePgOwnedDir, parsePgRedo, PgServer, runPg, runPgbench } from './lib/postgres.mjs';
import { diskTotals, installCleanupHandlers, machineCpuTicks, onCleanup, reapedChildrenCpuMicros, runCleanups, spawnGroup, stopping, treeCpuMicros } from './lib/processes.mjs';
import { WalshipServer } from './lib/walship-nodes.mjs';
import { parseScriptArgs, usageError as scriptUsageError } from '../lib/script-args.mjs';

const USAGE = `usage: npm run bench:pg -- [options]   (node scripts/bench/compare-postgres.mjs [options])
  --quick              1 round, 3 s runs, 128 MB of data and of WAL: under 4 minutes
  --json               one JSON document on stdout (progress stays on stderr)
  --rounds N           rounds, each measuring every row on both systems (default 3; --quick 1)
  --duration S         seconds per commits run (default 10; --quick 3)
  --lag-seconds S      seconds of load while replay lag is sampled (default 10; --quick 3)
  --warmup S           whole seconds of unmeasured load before each commits and lag run, on both
                       systems (default 3; --quick 1; 0 for none)
  --clients LIST       client counts (default 1,8,32)
  --db-mb N            size of the base-backup table in MB (default 1024; --quick 128)
  --wal-mb N           WAL written for catch-up and crash recovery, MB (default 1024; --quick 128)
  --rows LIST          rows to measure: commits,sync,lag,backup,promotion,wal (default all)
  --no-standbys        both primaries alone, no standbys: the commit rows only (the default rows
                       then); tells a gap in the single node's commit path from one in replication
                       (not for --markdown)
  --port-base N        walship uses N..N+3, PostgreSQL N+10..N+13 (default 24400)
  --pg-bin DIR         PostgreSQL 15's programs (default ${DEFAULT_PG_BIN}; when they are missing
                       there, Debian's postgresql package is installed, as root, before the run)
  --fsync-seconds S    pg_test_fsync's seconds per test (default 2; --quick 1)
  --time-limit S       give up (stopping everything) after S seconds (default none; --quick 225)
  --markdown FILE      put the dated table at the top of FILE's history (e.g. docs/benchmarks.md)
  --keep               keep the temporary directory (servers are stopped all the same)`;

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    'lag-seconds': { type: 'string' },
    warmup: { type: 'string' },
    clients: { type: 'string', default: '1,8,32' },
    'db-mb': { type: 'string' },
    'wal-mb': { type: 'string' },
    rows: { type: 'string' },
    'port-base': { type: 'string', default: '24400' },
    'pg-bin': { type: 'string', default: DEFAULT_PG_BIN },
    'fsync-seconds': { type: 'string' },
    'time-limit': { type: 'string' },
    markdown: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'no-standbys': { type: 'boolean', default: false },
  },
}, USAGE);

function usageError(message) {
  scriptUsageError(import.meta.url, message, USAGE);
}
function positiveNumber(name, fallback) {
  const text = args[name] ?? String(fallback);
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) usageError(`--${name} ${text}: expected a positive number`);
  return value;
}

/** A whole number of seconds, 0 allowed (pgbench -T takes whole seconds). */
function wholeSeconds(name, fallback) {
  const text = args[name] ?? String(fallback);
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) usageError(`--${name} ${text}: expected a whole number of seconds, 0 or more`);
  return value;
}

const quick = args.quick;
const config = {
  rounds: Math.round(positiveNumber('rounds', quick ? 1 : 3)),
  durationSeconds: Math.round(positiveNumber('duration', quick ? 3 : 10)),
  lagSeconds: Math.round(positiveNumber('lag-seconds', quick ? 3 : 10)),
  warmupSeconds: wholeSeconds('warmup', quick ? 1 : 3),
  clientCounts: args.clients.split(',').map(Number),
  dbMb: positiveNumber('db-mb', quick ? 128 : 1024),
  walMb: positiveNumber('wal-mb', quick ? 128 : 1024),
  fsyncSeconds: Math.round(positiveNumber('fsync-seconds', quick ? 1 : 2)),
  timeLimitSeconds: args['time-limit'] === undefined ? (quick ? 225 : null) : positiveNumber('time-limit', 1),
  // --no-standbys alone measures what it can: the commit rows.
  rows: new Set((args.rows ?? (args['no-standbys'] ? 'commits' : 'commits,sync,lag,backup,promotion,wal')).split(',')),
  portBase: Math.round(positiveNumber('port-base', 24400)),
  standbys: !args['no-standbys'],
};
if (config.clientCounts.some((c) => !Number.isInteger(c) || c < 1 || c > 64)) usageError(`--clients ${args.clients}: expected counts from 1 to 64`);
const ROW_GROUPS = ['commits', 'sync', 'lag', 'backup', 'promotion', 'wal'];
for (const row of config.rows) if (!ROW_GROUPS.includes(row)) usageError(`--rows: unknown row "${row}" (known: ${ROW_GROUPS.join(', ')})`);
// The promotion's standby is the base backup's copy.
if (config.rows.has('promotion')) config.rows.add('backup');
if (!config.standbys) {
  const needStandbys = [...config.rows].filter((row) => row !== 'commits');
  if (needStandbys.length > 0) usageError(`--no-standbys: ${needStandbys.length === 1 ? 'row' : 'rows'} ${needStandbys.join(', ')} ${needStandbys.length === 1 ? 'needs' : 'need'} standbys; measure --rows commits only`);
  if (args.markdown !== undefined) usageError('--no-standbys: the history in --markdown holds full runs with standbys; print the table instead');
}
/** The standbys each system gets: s1 and s2, or none with --no-standbys. */
const STANDBYS = config.standbys ? ['s1', 's2'] : [];

/** The workload of rows 1-3: one-key upserts of VALUE_BYTES into KEYS keys, as `walship bench --keys` draws them. */
const KEYS = 100_000;
const VALUE_BYTES = 100;
/** The base-backup table: values of FILL_VALUE_BYTES, as many as make --db-mb. */
const FILL_VALUE_BYTES = 1000;
/**
 * The WAL workload of rows 4-5: CHURN_BATCH upserts of CHURN_VALUE_BYTES per transaction over
 * CHURN_KEYS (about 64 MB: small enough that PostgreSQL's dead row versions stay bounded from
 * round to round), from CHURN_SESSIONS sessions. CHURN_KEYS is a multiple of CHURN_BATCH.
 */
const CHURN_KEYS = 64_000;
const CHURN_VALUE_BYTES = 1000;
const CHURN_BATCH = 100;
const CHURN_SESSIONS = 8;
/** Clients of the replay-lag row. */
const LAG_CLIENTS = 8;
const LAG_SAMPLE_MS = 200;
/** Both systems: the settings of issue 7 (PostgreSQL's defaults otherwise). */
const COMMON_SETTINGS = {
  fsync: 'on',
  full_page_writes: 'on',
  shared_buffers: '128MB',
  max_wal_size: '8GB',
  checkpoint_timeout: '1d',
  synchronous_commit: 'on',
};

const say = (text) => process.stderr.write(`${text}\n`);
const startedAt = Date.now();
const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(0)}s`;
const step = (text) => say(`[${elapsed()}] ${text}`);
const mb = (bytes) => bytes / 1048576;
const round1 = (x) => (x === null || x === undefined ? null : Math.round(x * 10) / 10);

// ---- preflight ---------------------------------------------------------------------------------

installCleanupHandlers();
let pg;
try {
  // Before the time limit starts: on a fresh machine apt-get takes a minute or more.
  pg = findPostgres(args['pg-bin'], { install: true });
} catch (error) {
  say(`compare-postgres: ${error.message}`);
  process.exit(1);
}
if (config.timeLimitSeconds !== null) {
  setTimeout(() => {
    say(`compare-postgres: still running after the time limit of ${config.timeLimitSeconds} s; stopping everything.`);
    say('Hint: a loaded machine runs slower; raise --time-limit, or measure fewer rows (--rows) or less (--db-mb, --wal-mb).');
    void runCleanups().finally(() => process.exit(1));
  }, config.timeLimitSeconds * 1000).unref();
}

if (pg.major !== 15) say(`compare-postgres: warning: ${args['pg-bin']} holds PostgreSQL ${pg.version}, not 15; measuring it anyway.`);
if (!fs.existsSync(cli) || !fs.existsSync(path.join(path.dirname(cli), '..', 'dist'))) {
  say('compare-postgres: walship is not built. Run `npm ci` (or `npm run build`) first.');
  process.exit(1);
}

const ports = {
  walship: { primary: config.portBase, s1: config.portBase + 1, s2: config.portBase + 2, copy: config.portBase + 3 },
  postgres: { primary: config.portBase + 10, s1: config.portBase + 11, s2: config.portBase + 12, copy: config.portBase + 13 },
};
await checkPorts([...Object.values(ports.walship), ...Object.values(ports.postgres)]);

async function checkPorts(list) {
  const [low] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const high = Math.max(...list);
  if (high >= low) {
    say(`compare-postgres: ports up to ${high} reach the kernel's ephemeral range (from ${low}), where outgoing connections may take them.`);
    say(`Hint: pass --port-base N with N + 13 below ${low}.`);
    process.exit(2);
  }
  for (const port of list) {
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) {
      say(`compare-postgres: port ${port} on 127.0.0.1 is in use (the benchmark needs ${config.portBase}..${config.portBase + 3} and ${config.portBase + 10}..${config.portBase + 13}).`);
      say('Hint: stop what listens there, or pass --port-base N for another range.');
      process.exit(2);
    }
  }
}

// ---- the temporary directory -------------------------------------------------------------------

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-vs-pg-'));
onCleanup(() => {
  if (args.keep) say(`kept ${base}`);
  else fs.rmSync(base, { recursive: true, force: true });
});
// The PostgreSQL side belongs to the postgres user: let it through the top directory.
fs.chmodSync(base, 0o711);
const dirs = {
  walship: path.join(base, 'walship'),
  postgres: path.join(base, 'pg'),
  socket: path.join(base, 'pg', 'socket'),
  work: path.join(base, 'work'),
};
fs.mkdirSync(dirs.walship, { mode: 0o700 });
fs.mkdirSync(dirs.work, { mode: 0o700 });
makePgOwnedDir(dirs.postgres);
makePgOwnedDir(dirs.socket);

/** The walship commit measured (and whether its packages had changes not committed), for the history. */
function walshipRevision() {
  const head = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', '--', 'packages'], { encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' with uncommitted changes in packages/'}`;
}

const machine = {
  walship: walshipRevision(),
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGb: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
  kernel: `${os.type()} ${os.release()}`,
  node: process.version,
  postgres: pg.version,
  loadAverageStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
};

// ---- the disk: pg_test_fsync ------------------------------------------------------------------

/**
 * pg_test_fsync's fdatasync figure (one 8kB write) for the disk under the data directories. It
 * is stopped (SIGINT, which it handles by removing its file) once that line is out: the rest of
 * its tests are not needed here.
 */
async function diskFdatasyncPerSecond() {
  const file = path.join(dirs.work, 'pg_test_fsync.out');
  const { child, done } = spawnGroup(path.join(pg.bin, 'pg_test_fsync'), ['-s', String(config.fsyncSeconds), '-f', file]);
  let figure = null;
  let text = '';
  child.stdout.on('data', (d) => {
    text += d;
    const m = /one 8kB write:[\s\S]*?\n\s*fdatasync\s+([\d.]+) ops\/sec/.exec(text);
    if (m && figure === null) {
      figure = Number(m[1]);
      child.kill('SIGINT');
    }
  });
  const { code, signal, stdout, stderr } = await done;
  if (figure === null) throw new Error(`pg_test_fsync gave no fdatasync figure (exit status ${code ?? signal}):\n${stdout}${stderr}`);
  return Math.round(figure);
}

// ---- walship: the cluster ----------------------------------------------------------------------

const { WalshipClient } = await import('@walship/client');

const wsNodes = {};
for (const name of ['primary', 's1', 's2']) {
  wsNodes[name] = new WalshipServer({ dir: path.join(dirs.walship, name), port: ports.walship[name], name, logFile: path.join(dirs.walship, `${name}.log`) });
}
let wsControl = null;
onCleanup(() => wsControl?.close().catch(() => undefined));

async function wsConnect(node, options = {}) {
  return WalshipClient.connect({ port: node.port, ...options });
}

/** Puts every [key, value] of the generator in transactions of `batch`, `sessions` at a time. */
async function wsLoad(node, table, count, batch, sessions, entryOf) {
  const clients = await Promise.all(Array.from({ length: sessions }, () => wsConnect(node)));
  let next = 0;
  try {
    await Promise.all(clients.map(async (client) => {
      for (;;) {
        const first = next;
        if (first >= count) return;
        next = Math.min(count, first + batch);
        const onSuccess = [];
        for (let i = first; i < next; i++) {
          const [key, value] = entryOf(i);
          onSuccess.push(table === undefined ? { kind: 'put', key, value } : { kind: 'put', table, key, value });
        }
        await client.txn({ onSuccess });
      }
    }));
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
  }
}

const benchKey = (i) => `bench:${String(i).padStart(String(KEYS - 1).length, '0')}`;
const rowKey = (i) => String(i).padStart(8, '0');
const fillRows = () => Math.round((config.dbMb * 1048576) / FILL_VALUE_BYTES);

async function wsWaitStreaming(names, { sync = null } = {}) {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const status = await wsControl.status().catch(() => null);
    const rows = status?.replication ?? [];
    const ok = names.every((name) => rows.some((r) => r.applicationName === name && r.state === 'streaming' &&
      (sync === null || (name === sync) === (r.syncState === 'sync'))));
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`walship: standbys ${names.join(', ')} not streaming after 120 s: ${JSON.stringify(rows)}`);
    await sleep(50);
  }
}

async function setupWalship() {
  step(`walship: init, load${config.standbys ? ', base backups for s1 and s2' : ''}...`);
  const primary = wsNodes.primary;
  walship('init', '-D', primary.dir, '--port', String(primary.port), '--set', 'wal_segment_size=16MB',
    ...Object.entries(COMMON_SETTINGS).flatMap(([name, value]) => ['--set', `${name}=${value}`]));
  await primary.start();
  wsControl = await wsConnect(primary, { reconnect: true });
  await wsControl.createTable('fill');
  await wsControl.createTable('churn');
  await wsLoad(primary, undefined, KEYS, 1000, 2, (i) => [benchKey(i), randomBytes(VALUE_BYTES / 2).toString('hex')]);
  await wsLoad(primary, 'churn', CHURN_KEYS, CHURN_BATCH, 4, (i) => [rowKey(i), randomBytes(CHURN_VALUE_BYTES)]);
  await wsLoad(primary, 'fill', fillRows(), 100, 8, (i) => [rowKey(i), randomBytes(FILL_VALUE_BYTES)]);
  await wsControl.checkpoint();
  for (const name of STANDBYS) {
    const node = wsNodes[name];
    walship('basebackup', '--from', primary.address, '-D', node.dir, '--standby', '--slot', name, '--port', String(node.port),
      '--set', `application_name=${name}`, '--quiet');
    await node.start();
  }
  await wsWaitStreaming(STANDBYS);
}

// ---- PostgreSQL: the cluster -------------------------------------------------------------------

const pgNodes = {};
for (const name of ['primary', 's1', 's2']) {
  pgNodes[name] = new PgServer({ bin: pg.bin, dir: path.join(dirs.postgres, name), port: ports.postgres[name], socketDir: dirs.socket, logFile: path.join(dirs.postgres, `${name}.log`), name });
}
let pgControl = null;
onCleanup(() => pgControl?.close().catch(() => undefined));

async function pgReconnectControl() {
  await pgControl?.close().catch(() => undefined);
  pgControl = await pgNodes.primary.control();
}

async function pgWaitStreaming(names, { sync = null } = {}) {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const rows = await pgControl.query('SELECT application_name, state, sync_state FROM pg_stat_replication');
    const ok = names.every((name) => rows.some(([app, state, syncState]) => app === name && state === 'streaming' &&
      (sync === null || (name === sync) === (syncState === 'sync'))));
    if (ok) return;
    if (performance.now() > deadline) throw new Error(`PostgreSQL: standbys ${names.join(', ')} not streaming after 120 s: ${JSON.stringify(rows)}`);
    await sleep(50);
  }
}

const pgUpsertScript = path.join(dirs.work, 'upsert.sql');
// Keys as walship bench draws them ('bench:' and five digits, uniform); values of 100 bytes whose
// first 4 change per write and the rest are fixed per client, as walship bench's are.
fs.writeFileSync(pgUpsertScript, [
  `\\set id random(0, ${KEYS - 1})`,
  '\\set r random(1000, 9999)',
  "INSERT INTO kv (k, v) VALUES ('bench:' || lpad(:id::text, 5, '0'), :r::text || substr(repeat(md5(:client_id::text), 3), 1, 96)) ON CONFLICT (k) DO UPDATE SET v = excluded.v;",
  '',
].join('\n'));

/** 1000 bytes of fresh random data per row, made by the server. */
const pgRandomValue = `substring(decode(repeat(md5(random()::text), ${Math.ceil(CHURN_VALUE_BYTES / 16)}), 'hex') from 1 for ${CHURN_VALUE_BYTES})`;

async function setupPostgres() {
  step(`PostgreSQL: initdb, load${config.standbys ? ', base backups for s1 and s2' : ''}...`);
  const primary = pgNodes.primary;
  primary.initdb({ walSegmentMb: 16 });
  primary.configure(COMMON_SETTINGS);
  primary.identity();
  await primary.start();
  await pgReconnectControl();
  await pgControl.query(`CREATE TABLE kv (k text PRIMARY KEY, v text);
    CREATE TABLE churn (k text PRIMARY KEY, v bytea);
    CREATE TABLE fill (k text PRIMARY KEY, v bytea);`);
  await pgControl.query(`INSERT INTO kv SELECT 'bench:' || lpad(i::text, 5, '0'), rpad(md5(i::text), ${VALUE_BYTES}, 'x') FROM generate_series(0, ${KEYS - 1}) i`);
  await pgControl.query(`INSERT INTO churn SELECT lpad(i::text, 8, '0'), ${pgRandomValue} FROM generate_series(0, ${CHURN_KEYS - 1}) i`);
  const rows = fillRows();
  for (let first = 0; first < rows; first += 100_000) {
    const last = Math.min(rows, first + 100_000) - 1;
    await pgControl.query(`INSERT INTO fill SELECT lpad(i::text, 8, '0'), substring(decode(repeat(md5(random()::text), ${Math.ceil(FILL_VALUE_BYTES / 16)}), 'hex') from 1 for ${FILL_VALUE_BYTES}) FROM generate_series(${first}, ${last}) i`);
  }
  await pgControl.query('VACUUM ANALYZE');
  await pgControl.query('CHECKPOINT');
  for (const name of STANDBYS) {
    const node = pgNodes[name];
    runPg(pg.bin, 'pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', node.dir,
      '-X', 'stream', '-c', 'fast', '-C', '-S', name]);
    node.identity({ primaryPort: primary.port, slot: name });
    await node.start();
  }
  await pgWaitStreaming(STANDBYS);
}

// ---- the rows, one system at a time --------------------------------------------------------------

/** CPU time of a node's processes, in microseconds. */
const cpuOf = (node) => treeCpuMicros(node.pid);
const clusterCpu = (nodes) => cpuOf(nodes.primary) + STANDBYS.reduce((sum, name) => sum + cpuOf(nodes[name]), 0);
/** The CPU read around a commits run: the primary's, the cluster's, and the load generators' reaped so far. */
const cpuSnapshot = (nodes) => ({ primary: cpuOf(nodes.primary), cluster: clusterCpu(nodes), client: reapedChildrenCpuMicros() });

/**
 * Row 8's figures of a commits run, from what was read around it: per commit of every commit it
 * made, warm-up included (the CPU and fdatasync counters were read around the warm-up too).
 */
function perCommitFigures(cpuBefore, cpuAfter, fsyncs, commits) {
  return {
    commitsPerFdatasync: fsyncs > 0 ? commits / fsyncs : null,
    cpuMicrosPerCommit: (cpuAfter.primary - cpuBefore.primary) / commits,
    clusterCpuMicrosPerCommit: (cpuAfter.cluster - cpuBefore.cluster) / commits,
    clientCpuMicrosPerCommit: (cpuAfter.client - cpuBefore.client) / commits,
  };
}

async function wsSetSync(level) {
  await wsControl.setSetting('synchronous_standby_names', level === 'async' ? '' : 'FIRST 1 (s1)');
  await wsWaitStreaming(STANDBYS, { sync: level === 'async' ? '' : 's1' });
}

async function pgSetSync(level) {
  await pgControl.query(`ALTER SYSTEM SET synchronous_standby_names = '${level === 'async' ? '' : 'FIRST 1 (s1)'}'`);
  await pgControl.query('SELECT pg_reload_conf()');
  await pgWaitStreaming(STANDBYS, { sync: level === 'async' ? '' : 's1' });
}

/** Row 1-2 on walship: `walship bench` with the node's WAL fsync counter and CPU read around it. */
async function wsCommits(level, clients) {
  const before = await wsControl.status();
  const cpuBefore = cpuSnapshot(wsNodes);
  const { done } = spawnGroup(process.execPath, [cli, 'bench', '--node', wsNodes.primary.address, '--clients', String(clients),
    '--duration', String(config.durationSeconds), '--warmup', String(config.warmupSeconds), '--keys', String(KEYS),
    '--value-size', String(VALUE_BYTES), ...(level === 'async' ? [] : ['--sync-commit', level]), '--json', '--quiet']);
  const { code, stdout, stderr } = await done;
  if (code !== 0) throw new Error(`walship bench failed (exit status ${code}): ${stderr}`);
  const cpuAfter = cpuSnapshot(wsNodes);
  const after = await wsControl.status();
  const out = JSON.parse(stdout);
  const fsyncs = after.walFsyncs - before.walFsyncs;
  return {
    commitsPerSecond: out.commitsPerSecond,
    p50Ms: out.latencyMs.p50,
    p99Ms: out.latencyMs.p99,
    commits: out.commits,
    ...perCommitFigures(cpuBefore, cpuAfter, fsyncs, out.commits + out.warmupCommits),
    // walship bench's own CPU over its measured window (process.cpuUsage): not Node's start-up.
    clientCpuMicrosPerCommit: out.clientCpuMicrosPerCommit ?? null,
  };
}

/** Row 1-2 on PostgreSQL: pgbench, with pg_stat_wal.wal_sync and the processes' CPU read around it. */
async function pgCommits(level, clients) {
  const syncsBefore = Number(await pgControl.value('SELECT wal_sync FROM pg_stat_wal'));
  const cpuBefore = cpuSnapshot(pgNodes);
  const run = (durationSeconds, logName) => runPgbench({
    bin: pg.bin, port: pgNodes.primary.port, clients, durationSeconds, scriptFile: pgUpsertScript,
    logDir: path.join(dirs.work, logName), pgOptions: level === 'async' ? '' : `-c synchronous_commit=${level}`,
  });
  // pgbench has no warm-up of its own: a run of that length just before, with the same clients.
  const warmup = config.warmupSeconds > 0 ? await run(config.warmupSeconds, 'pgbench-warmup-log') : { transactions: 0 };
  const clientBefore = reapedChildrenCpuMicros();
  const result = await run(config.durationSeconds, 'pgbench-log');
  const clientCpuMicros = reapedChildrenCpuMicros() - clientBefore;
  // The backends flush their WAL counters as they exit; the WAL writer's, within its next cycle.
  await sleep(1000);
  const cpuAfter = cpuSnapshot(pgNodes);
  const syncs = Number(await pgControl.value('SELECT wal_sync FROM pg_stat_wal')) - syncsBefore;
  return {
    commitsPerSecond: result.tps,
    p50Ms: percentile(result.latenciesMs, 0.5),
    p99Ms: percentile(result.latenciesMs, 0.99),
    commits: result.transactions,
    // Read around both pgbench runs, as walship's around its warm-up and run.
    ...perCommitFigures(cpuBefore, cpuAfter, syncs, warmup.transactions + result.transactions),
    // The load generator over the measured run alone, as walship bench reports its own.
    clientCpuMicrosPerCommit: result.transactions > 0 ? clientCpuMicros / result.transactions : null,
  };
}

function lagSummary(samples) {
  const out = {};
  for (const name of ['s1', 's2']) {
    const { lags, bytes, nulls } = samples[name];
    out[name] = {
      p50Ms: percentile(lags, 0.5), p99Ms: percentile(lags, 0.99), maxMs: lags.length ? Math.max(...lags) : null,
      bytesP50: percentile(bytes, 0.5), bytesP99: percentile(bytes, 0.99), samples: lags.length, nullSamples: nulls,
    };
  }
  return out;
}

/**
 * Samples every LAG_SAMPLE_MS with sample() (skipping a tick while one is still running) until done
 * settles, beginning after startAfterMs (a load's warm-up, not sampled).
 */
async function sampleWhile(done, sample, startAfterMs = 0) {
  let busy = false;
  let timer = null;
  const start = setTimeout(() => {
    timer = setInterval(() => {
      if (busy) return;
      busy = true;
      sample().catch(() => undefined).finally(() => { busy = false; });
    }, LAG_SAMPLE_MS);
  }, startAfterMs);
  try {
    return await done;
  } finally {
    clearTimeout(start);
    if (timer !== null) clearInterval(timer);
  }
}

/** Row 3 on walship: the primary's replication rows every 200 ms while `walship bench` runs 8 clients. */
async function wsLag() {
  const samples = { s1: { lags: [], bytes: [], nulls: 0 }, s2: { lags: [], bytes: [], nulls: 0 } };
  // One bench process warms up and then runs the measured load, as in the commit rows, so that
  // sampling does not begin on a freshly started (not yet compiled) load generator.
  const bench = spawnGroup(process.execPath, [cli, 'bench', '--node', wsNodes.primary.address, '--clients', String(LAG_CLIENTS),
    '--duration', String(config.lagSeconds), '--warmup', String(config.warmupSeconds), '--keys', String(KEYS), '--value-size', String(VALUE_BYTES),
    '--json', '--quiet']).done;
  const { code, stdout, stderr } = await sampleWhile(bench, async () => {
    const status = await wsControl.status();
    for (const row of status.replication ?? []) {
      const into = samples[row.applicationName];
      if (into === undefined) continue;
      if (row.replayLagMs === null || row.replayLagMs === undefined) into.nulls++;
      else into.lags.push(row.replayLagMs);
      if (row.replayLsn) into.bytes.push(Math.max(0, parseLsn(status.flushLsn) - parseLsn(row.replayLsn)));
    }
  }, config.warmupSeconds * 1000);
  if (code !== 0) throw new Error(`walship bench failed (exit status ${code}): ${stderr}`);
  return { commitsPerSecond: JSON.parse(stdout).commitsPerSecond, ...lagSummary(samples) };
}

/** Row 3 on PostgreSQL: pg_stat_replication every 200 ms while pgbench runs 8 clients. */
async function pgLag() {
  const samples = { s1: { lags: [], bytes: [], nulls: 0 }, s2: { lags: [], bytes: [], nulls: 0 } };
  const run = (durationSeconds, logName) => runPgbench({ bin: pg.bin, port: pgNodes.primary.port, clients: LAG_CLIENTS, durationSeconds,
    scriptFile: pgUpsertScript, logDir: path.join(dirs.work, logName) });
  if (config.warmupSeconds > 0) await run(config.warmupSeconds, 'pgbench-lag-warmup-log');
  const result = await sampleWhile(run(config.lagSeconds, 'pgbench-lag-log'), async () => {
    const rows = await pgControl.query(`SELECT application_name, extract(epoch FROM replay_lag) * 1000,
      pg_wal_lsn_diff(pg_current_wal_flush_lsn(), replay_lsn) FROM pg_stat_replication`);
    for (const [name, lag, bytes] of rows) {
      const into = samples[name];
      if (into === undefined) continue;
      if (lag === null) into.nulls++;
      else into.lags.push(Number(lag));
      if (bytes !== null) into.bytes.push(Math.max(0, Number(bytes)));
    }
  });
  return { commitsPerSecond: result.tps, ...lagSummary(samples) };
}

/** Bytes of the files under dir. */
function directoryBytes(dir) {
  let bytes = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) bytes += fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return bytes;
}

/** Row 6 on walship: `walship basebackup --standby` of the primary (the copy is row 7's standby). */
async function wsBaseBackup() {
  const copyDir = path.join(dirs.walship, 'copy');
  fs.rmSync(copyDir, { recursive: true, force: true });
  const began = performance.now();
  const { done } = spawnGroup(process.execPath, [cli, 'basebackup', '--from', wsNodes.primary.address, '-D', copyDir, '--standby',
    '--port', String(ports.walship.copy), '--set', 'application_name=copy', '--quiet']);
  const { code, stderr } = await done;
  const seconds = (performance.now() - began) / 1000;
  if (code !== 0) throw new Error(`walship basebackup failed (exit status ${code}): ${stderr}`);
  const bytes = directoryBytes(copyDir);
  return { megabytes: mb(bytes), seconds, megabytesPerSecond: mb(bytes) / seconds };
}

/** Row 6 on PostgreSQL: pg_basebackup -X stream -c fast of the primary over loopback TCP. */
async function pgBaseBackup() {
  const copyDir = path.join(dirs.postgres, 'copy');
  fs.rmSync(copyDir, { recursive: true, force: true });
  const command = path.join(pg.bin, 'pg_basebackup');
  const pgArgs = ['-h', '127.0.0.1', '-p', String(pgNodes.primary.port), '-U', 'postgres', '-D', copyDir, '-X', 'stream', '-c', 'fast'];
  const began = performance.now();
  const { done } = process.getuid?.() === 0
    ? spawnGroup('runuser', ['-u', 'postgres', '--', command, ...pgArgs])
    : spawnGroup(command, pgArgs);
  const { code, stdout, stderr } = await done;
  const seconds = (performance.now() - began) / 1000;
  if (code !== 0) throw new Error(`pg_basebackup failed (exit status ${code}): ${stdout}${stderr}`);
  const bytes = directoryBytes(copyDir);
  return { megabytes: mb(bytes), seconds, megabytesPerSecond: mb(bytes) / seconds };
}

/**
 * Row 7 on walship: the backup's copy started as a standby and caught up; the primary stopped;
 * then from the promote request (a session's, as pg_promote is) to the first write accepted by a
 * fresh session. Afterwards the copy is dropped and the primary started again.
 */
async function wsPromotion() {
  const copy = new WalshipServer({ dir: path.join(dirs.walship, 'copy'), port: ports.walship.copy, name: 'copy', logFile: path.join(dirs.walship, 'copy.log') });
  await copy.start();
  await wsWaitStreaming(['s1', 's2', 'copy']);
  const target = parseLsn((await wsControl.status()).flushLsn);
  const copyClient = await wsConnect(copy, { reconnect: true });
  while (parseLsn((await copyClient.status()).replayLsn) < target) await sleep(10);
  await wsControl.close();
  wsControl = null;
  wsNodes.primary.stop('fast');
  const began = performance.now();
  const promoted = copyClient.promote({ wait: true });
  const firstWriteMs = await firstAcceptedWriteMs(async () => {
    let writer = null;
    try {
      writer = await WalshipClient.connect({ port: copy.port, timeoutMs: 2000 });
      await writer.put(benchKey(0), 'after-promotion');
    } finally {
      await writer?.close().catch(() => undefined);
    }
  }, began);
  await promoted;
  await copyClient.close();
  if (firstWriteMs === null) throw new Error('walship: no write was accepted within 30 s of the promote request');
  copy.stop('immediate');
  fs.rmSync(copy.dir, { recursive: true, force: true });
  await wsNodes.primary.start();
  wsControl = await wsConnect(wsNodes.primary, { reconnect: true });
  await wsWaitStreaming(['s1', 's2']);
  return { firstWriteMs };
}

/** Row 7 on PostgreSQL: the same with the pg_basebackup copy, SELECT pg_promote() and INSERT ... ON CONFLICT. */
async function pgPromotion() {
  const copy = new PgServer({ bin: pg.bin, dir: path.join(dirs.postgres, 'copy'), port: ports.postgres.copy, socketDir: dirs.socket, logFile: path.join(dirs.postgres, 'copy.log'), name: 'copy' });
  copy.identity({ primaryPort: pgNodes.primary.port });
  await copy.start();
  await pgWaitStreaming(['s1', 's2', 'copy']);
  const target = parseLsn(await pgControl.value('SELECT pg_current_wal_flush_lsn()'));
  const admin = await copy.control();
  while (parseLsn(await admin.value('SELECT pg_last_wal_replay_lsn()')) < target) await sleep(10);
  await pgControl.close();
  pgControl = null;
  pgNodes.primary.stop('fast');
  const began = performance.now();
  const promoted = admin.query('SELECT pg_promote(true, 60)');
  const firstWriteMs = await firstAcceptedWriteMs(async () => {
    let writer = null;
    try {
      writer = await copy.tcp({ timeoutMs: 2000 });
      await writer.query("INSERT INTO kv (k, v) VALUES ('bench:00000', 'after-promotion') ON CONFLICT (k) DO UPDATE SET v = excluded.v", { timeoutMs: 2000 });
    } finally {
      await writer?.close().catch(() => undefined);
    }
  }, began);
  await promoted;
  await admin.close();
  if (firstWriteMs === null) throw new Error('PostgreSQL: no write was accepted within 30 s of pg_promote()');
  copy.stop('immediate');
  fs.rmSync(copy.dir, { recursive: true, force: true });
  await pgNodes.primary.start();
  await pgReconnectControl();
  await pgWaitStreaming(['s1', 's2']);
  return { firstWriteMs };
}

/**
 * Writes --wal-mb of WAL from CHURN_SESSIONS sessions, each transaction CHURN_BATCH upserts over
 * a random aligned run of the churn table's keys; writeBatch(session, first) does one.
 * Returns the transactions committed.
 */
async function churn(label, sessions, writeBatch, walWritten) {
  const target = config.walMb * 1048576;
  let transactions = 0;
  let done = false;
  let lastTenth = -1;
  const watcher = setInterval(async () => {
    const written = await walWritten().catch(() => 0);
    const tenth = Math.floor((written / target) * 10);
    if (tenth > lastTenth) {
      lastTenth = tenth;
      say(`  ${label}: ${Math.round(mb(written))} of ${config.walMb} MB of WAL`);
    }
    if (written >= target) done = true;
  }, 250);
  let failure = null;
  try {
    await Promise.all(sessions.map(async (session) => {
      while (!done && failure === null) {
        try {
          await writeBatch(session, randomInt(CHURN_KEYS / CHURN_BATCH) * CHURN_BATCH);
        } catch (error) {
          failure ??= error;
          return;
        }
        transactions++;
      }
    }));
  } finally {
    clearInterval(watcher);
  }
  if (failure !== null) throw failure;
  return transactions;
}

/**
 * Rows 4 and 5 on walship: s2 stopped; a checkpoint; --wal-mb of WAL written; the primary
 * SIGKILLed and started again (its redo line gives the recovery rate); then s2 started and timed
 * until it has replayed up to the primary's flush position.
 */
async function wsWalRows() {
  const primary = wsNodes.primary;
  const s2 = wsNodes.s2;
  const catchFrom = parseLsn((await wsControl.status()).replication.find((r) => r.applicationName === 's2').replayLsn);
  s2.stop('fast');
  await wsControl.checkpoint();
  const startLsn = parseLsn((await wsControl.status()).flushLsn);
  const sessions = await Promise.all(Array.from({ length: CHURN_SESSIONS }, () => wsConnect(primary)));
  const transactions = await churn('walship', sessions, async (client, first) => {
    const onSuccess = [];
    for (let i = first; i < first + CHURN_BATCH; i++) onSuccess.push({ kind: 'put', table: 'churn', key: rowKey(i), value: randomBytes(CHURN_VALUE_BYTES) });
    await client.txn({ onSuccess });
  }, async () => parseLsn((await wsControl.status()).flushLsn) - startLsn);
  await Promise.all(sessions.map((c) => c.close().catch(() => undefined)));
  await wsControl.close();
  wsControl = null;
  await primary.kill9();
  const logOffset = primary.logText().length;
  const { readyMs } = await primary.start();
  const redo = parseWalshipRedoDone(primary.logText().slice(logOffset));
  if (redo === null) throw new Error(`walship: no "redo done" line in ${primary.logFile} after the restart`);
  wsControl = await wsConnect(primary, { reconnect: true });
  const target = parseLsn((await wsControl.status()).flushLsn);
  const began = performance.now();
  await s2.start();
  const s2Client = await wsConnect(s2, { reconnect: true });
  await waitReplayed(s2Client, target);
  const catchUpSeconds = (performance.now() - began) / 1000;
  await s2Client.close();
  await wsWaitStreaming(['s1', 's2']);
  return {
    recovery: { megabytes: redo.megabytes, seconds: redo.seconds, transactions, readyMs,
      megabytesPerSecond: redo.megabytes / redo.seconds, transactionsPerSecond: transactions / redo.seconds },
    catchUp: { megabytes: mb(target - catchFrom), seconds: catchUpSeconds, transactions,
      megabytesPerSecond: mb(target - catchFrom) / catchUpSeconds, transactionsPerSecond: transactions / catchUpSeconds },
  };
}

/** Rows 4 and 5 on PostgreSQL: the same, with CHECKPOINT, INSERT ... ON CONFLICT batches and the log's redo lines. */
async function pgWalRows() {
  const primary = pgNodes.primary;
  const s2 = pgNodes.s2;
  const catchFrom = parseLsn(await pgControl.value("SELECT replay_lsn FROM pg_stat_replication WHERE application_name = 's2'"));
  s2.stop('fast');
  await pgControl.query('CHECKPOINT');
  const startLsn = parseLsn(await pgControl.value('SELECT pg_current_wal_flush_lsn()'));
  const sessions = await Promise.all(Array.from({ length: CHURN_SESSIONS }, () => primary.tcp()));
  const transactions = await churn('PostgreSQL', sessions, async (session, first) => {
    await session.query(`INSERT INTO churn (k, v) SELECT lpad(i::text, 8, '0'), ${pgRandomValue} FROM generate_series(${first}, ${first + CHURN_BATCH - 1}) i
      ON CONFLICT (k) DO UPDATE SET v = excluded.v`);
  }, async () => parseLsn(await pgControl.value('SELECT pg_current_wal_flush_lsn()')) - startLsn);
  await Promise.all(sessions.map((s) => s.close().catch(() => undefined)));
  await pgControl.close();
  pgControl = null;
  await primary.kill9();
  const logOffset = primary.logText().length;
  const { readyMs } = await primary.start();
  const redo = parsePgRedo(primary.logText().slice(logOffset), parseLsn);
  if (redo === null) throw new Error(`PostgreSQL: no "redo starts at" / "redo done at" lines in ${primary.logFile} after the restart`);
  await pgReconnectControl();
  const target = parseLsn(await pgControl.value('SELECT pg_current_wal_flush_lsn()'));
  const began = performance.now();
  await s2.start();
  const s2Session = await s2.control();
  for (;;) {
    const replayed = await s2Session.value('SELECT pg_last_wal_replay_lsn()');
    if (replayed !== null && parseLsn(replayed) >= target) break;
    await sleep(20);
  }
  const catchUpSeconds = (performance.now() - began) / 1000;
  await s2Session.close();
  await pgWaitStreaming(['s1', 's2']);
  const megabytes = mb(redo.bytes);
  return {
    recovery: { megabytes, seconds: redo.seconds, transactions, readyMs,
      megabytesPerSecond: megabytes / redo.seconds, transactionsPerSecond: transactions / redo.seconds },
    catchUp: { megabytes: mb(target - catchFrom), seconds: catchUpSeconds, transactions,
      megabytesPerSecond: mb(target - catchFrom) / catchUpSeconds, transactionsPerSecond: transactions / catchUpSeconds },
  };
}

// ---- the run -------------------------------------------------------------------------------------

/** measurements[system][round] = { metric key: value }; details keep the raw figures. */
const measurements = { walship: [], postgres: [] };
const details = { walship: [], postgres: [] };

/** Measures one row on walship then on PostgreSQL; record(result) returns the metric keys to keep. */
async function both(round, label, fns, record) {
  for (const system of ['walship', 'postgres']) {
    const began = performance.now();
    const otherNodes = system === 'walship' ? pgNodes : wsNodes;
    const machineBefore = machineCpuTicks();
    const diskBefore = diskTotals();
    const otherBefore = clusterCpu(otherNodes);
    const result = await fns[system]();
    const seconds = (performance.now() - began) / 1000;
    const machine = machineShare(machineBefore, machineCpuTicks(), clusterCpu(otherNodes) - otherBefore, seconds, diskBefore, diskTotals());
    const metrics = record(result);
    Object.assign(measurements[system][round], metrics);
    details[system][round][label] = result;
    (details[system][round].machine ??= {})[label] = machine;
    const shown = Object.entries(metrics).slice(0, 3).map(([k, v]) => `${k.split('.').at(-1)} ${formatNumber(v)}`).join(', ');
    const other = system === 'walship' ? "PostgreSQL's" : "walship's";
    const disk = machine?.disk == null ? '' : `; disk ${machine.disk.megabytesWritten.toFixed(0)} MB written, ${machine.disk.flushes} flushes, busy ${machine.disk.busyPercent.toFixed(0)}%`;
    const seen = machine === null ? '' : `; steal ${machine.stealPercent.toFixed(1)}%, ${other} cluster ${machine.otherClusterCpuPercent.toFixed(0)}% of a core${disk}`;
    step(`round ${round + 1}/${config.rounds} ${label}: ${system === 'walship' ? 'walship   ' : 'PostgreSQL'} ${shown} (${seconds.toFixed(1)} s${seen})`);
  }
}

/**
 * What else had the machine during a run: the hypervisor's steal (a share of all the machine's
 * CPU time, busy or not) and the other system's cluster, idle but for its background processes
 * (in percent of one core). A slow run with either high is the machine's noise, not the system's.
 * And the disk: what was written to it (the run's own WAL and data, and anything the kernel wrote
 * back meanwhile), its cache flushes, and the share of the run it had I/O in flight: a slow run
 * with far more written than its row's other runs shared the disk with something else.
 */
function machineShare(before, after, otherClusterMicros, seconds, diskBefore, diskAfter) {
  if (before === null || after === null || seconds <= 0) return null;
  const total = after.total - before.total;
  return {
    stealPercent: total > 0 ? (100 * (after.steal - before.steal)) / total : 0,
    otherClusterCpuPercent: Math.max(0, otherClusterMicros) / (seconds * 1e4),
    disk: diskBefore === null || diskAfter === null ? null : {
      megabytesWritten: ((diskAfter.sectorsWritten - diskBefore.sectorsWritten) * 512) / (1024 * 1024),
      flushes: diskAfter.flushes - diskBefore.flushes,
      busyPercent: (100 * (diskAfter.ioMs - diskBefore.ioMs)) / (seconds * 1000),
    },
  };
}

async function measureRound(round) {
  for (const system of ['walship', 'postgres']) {
    measurements[system][round] = {};
    details[system][round] = {};
  }
  const levels = [...(config.rows.has('commits') ? ['async'] : []), ...(config.rows.has('sync') ? ['on', 'remote_apply'] : [])];
  for (const level of levels) {
    await wsSetSync(level);
    await pgSetSync(level);
    for (const clients of config.clientCounts) {
      await both(round, `commits ${level} ${clients}`, { walship: () => wsCommits(level, clients), postgres: () => pgCommits(level, clients) }, (r) => ({
        [`commits.${level}.${clients}.commitsPerSecond`]: r.commitsPerSecond,
        [`commits.${level}.${clients}.p50Ms`]: r.p50Ms,
        [`commits.${level}.${clients}.p99Ms`]: r.p99Ms,
        [`commits.${level}.${clients}.commitsPerFdatasync`]: r.commitsPerFdatasync,
        [`commits.${level}.${clients}.cpuMicrosPerCommit`]: r.cpuMicrosPerCommit,
        [`commits.${level}.${clients}.clusterCpuMicrosPerCommit`]: r.clusterCpuMicrosPerCommit,
        [`commits.${level}.${clients}.clientCpuMicrosPerCommit`]: r.clientCpuMicrosPerCommit,
      }));
    }
  }
  await wsSetSync('async');
  await pgSetSync('async');
  if (config.rows.has('lag')) {
    await both(round, 'replay lag', { walship: wsLag, postgres: pgLag }, (r) => Object.fromEntries(['s1', 's2'].flatMap((s) => [
      [`lag.${s}.p50Ms`, r[s].p50Ms], [`lag.${s}.p99Ms`, r[s].p99Ms], [`lag.${s}.maxMs`, r[s].maxMs], [`lag.${s}.bytesP99`, r[s].bytesP99],
    ])));
  }
  if (config.rows.has('backup')) {
    await both(round, 'base backup', { walship: wsBaseBackup, postgres: pgBaseBackup }, (r) => ({ 'baseBackup.megabytesPerSecond': r.megabytesPerSecond, 'baseBackup.megabytes': r.megabytes }));
  }
  if (config.rows.has('promotion')) {
    await both(round, 'promotion', { walship: wsPromotion, postgres: pgPromotion }, (r) => ({ 'promotion.firstWriteMs': r.firstWriteMs }));
  }
  if (config.rows.has('wal')) {
    await both(round, 'crash recovery and catch-up', { walship: wsWalRows, postgres: pgWalRows }, (r) => ({
      'recovery.megabytesPerSecond': r.recovery.megabytesPerSecond,
      'recovery.transactionsPerSecond': r.recovery.transactionsPerSecond,
      'recovery.readySeconds': r.recovery.readyMs / 1000,
      'catchUp.megabytesPerSecond': r.catchUp.megabytesPerSecond,
      'catchUp.transactionsPerSecond': r.catchUp.transactionsPerSecond,
    }));
  }
}

// ---- the rows of the report ------------------------------------------------------------------------

/** Every row of the report: key (into measurements), name, unit, and whether higher or lower is better. */
function rowDefinitions() {
  const defs = [];
  const plural = (n) => `${n} client${n === 1 ? '' : 's'}`;
  const levelName = { async: config.standbys ? 'async standbys' : 'no standbys', on: 'sync standby, on', remote_apply: 'sync standby, remote_apply' };
  for (const level of ['async', 'on', 'remote_apply']) {
    for (const c of config.clientCounts) {
      const k = `commits.${level}.${c}`;
      defs.push({ key: `${k}.commitsPerSecond`, name: `commits/s, ${plural(c)}, ${levelName[level]}`, unit: 'commits/s', better: 'higher' });
      defs.push({ key: `${k}.p50Ms`, name: `latency p50, ${plural(c)}, ${levelName[level]}`, unit: 'ms', better: 'lower' });
      defs.push({ key: `${k}.p99Ms`, name: `latency p99, ${plural(c)}, ${levelName[level]}`, unit: 'ms', better: 'lower' });
    }
  }
  for (const s of ['s1', 's2']) {
    defs.push({ key: `lag.${s}.p50Ms`, name: `replay lag p50, ${s}, ${LAG_CLIENTS} clients`, unit: 'ms', better: 'lower' });
    defs.push({ key: `lag.${s}.p99Ms`, name: `replay lag p99, ${s}, ${LAG_CLIENTS} clients`, unit: 'ms', better: 'lower' });
    defs.push({ key: `lag.${s}.maxMs`, name: `replay lag max, ${s}, ${LAG_CLIENTS} clients`, unit: 'ms', better: 'lower' });
    defs.push({ key: `lag.${s}.bytesP99`, name: `byte lag p99, ${s}, ${LAG_CLIENTS} clients`, unit: 'bytes', better: 'lower' });
  }
  defs.push({ key: 'catchUp.megabytesPerSecond', name: `catch-up after ~${config.walMb} MB of WAL missed`, unit: 'MB/s', better: 'higher' });
  defs.push({ key: 'catchUp.transactionsPerSecond', name: 'catch-up, transactions replayed', unit: 'txn/s', better: 'higher' });
  defs.push({ key: 'recovery.megabytesPerSecond', name: `crash recovery, redo of ~${config.walMb} MB of WAL`, unit: 'MB/s', better: 'higher' });
  defs.push({ key: 'recovery.transactionsPerSecond', name: 'crash recovery, transactions replayed', unit: 'txn/s', better: 'higher' });
  defs.push({ key: 'recovery.readySeconds', name: 'crash recovery, start to ready', unit: 's', better: 'lower' });
  defs.push({ key: 'baseBackup.megabytesPerSecond', name: `base backup, ~${config.dbMb} MB database`, unit: 'MB/s', better: 'higher' });
  defs.push({ key: 'promotion.firstWriteMs', name: 'promotion, request to first write', unit: 'ms', better: 'lower' });
  for (const c of config.clientCounts) {
    defs.push({ key: `commits.async.${c}.commitsPerFdatasync`, name: `commits per WAL fdatasync, ${plural(c)}`, unit: 'commits', better: 'higher' });
  }
  for (const c of config.clientCounts) {
    defs.push({ key: `commits.async.${c}.cpuMicrosPerCommit`, name: `CPU per commit, primary, ${plural(c)}`, unit: 'µs', better: 'lower' });
  }
  // Without standbys the cluster is the primary: its row above says it all.
  for (const c of config.standbys ? config.clientCounts : []) {
    defs.push({ key: `commits.async.${c}.clusterCpuMicrosPerCommit`, name: `CPU per commit, 3 nodes, ${plural(c)}`, unit: 'µs', better: 'lower' });
  }
  // Not a server figure: the load generator (walship bench, pgbench) shares the machine's cores.
  for (const c of config.clientCounts) {
    defs.push({ key: `commits.async.${c}.clientCpuMicrosPerCommit`, name: `CPU per commit, load generator, ${plural(c)}`, unit: 'µs', better: 'lower' });
  }
  return defs;
}

function summarize(values) {
  const xs = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (xs.length === 0) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function buildRows() {
  const rows = [];
  for (const def of rowDefinitions()) {
    const w = summarize(measurements.walship.map((m) => m[def.key]));
    const p = summarize(measurements.postgres.map((m) => m[def.key]));
    if (w === null && p === null) continue;
    let ratio = null;
    if (w !== null && p !== null && w.median > 0 && p.median > 0) ratio = def.better === 'higher' ? w.median / p.median : p.median / w.median;
    rows.push({
      name: def.name,
      walship: w === null ? null : significant(w.median),
      postgres: p === null ? null : significant(p.median),
      ratio: ratio === null ? null : Math.round(ratio * 100) / 100,
      unit: def.unit,
      better: def.better,
      walshipMin: w === null ? null : significant(w.min),
      walshipMax: w === null ? null : significant(w.max),
      postgresMin: p === null ? null : significant(p.min),
      postgresMax: p === null ? null : significant(p.max),
    });
  }
  return rows;
}

/** Four significant digits at most, no more than three decimals. */
function significant(x) {
  if (x === 0) return 0;
  const digits = Math.max(0, Math.min(3, 3 - Math.floor(Math.log10(Math.abs(x)))));
  return Number(x.toFixed(digits));
}

function formatNumber(x) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US').replaceAll(',', ' ');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

const range = (min, max) => (min === null ? '-' : `${formatNumber(min)}–${formatNumber(max)}`);

function machineLines() {
  const m = machine;
  return [
    `machine: ${m.cpus} cores (${m.cpuModel}), ${m.memoryGb} GB memory, ${m.kernel}, Node ${m.node}, PostgreSQL ${m.postgres}; walship at ${m.walship}`,
    `disk: ${m.fdatasyncPerSecond ?? '-'} fdatasync/s (pg_test_fsync, one 8kB write, on ${os.tmpdir()}); load average ${m.loadAverageStart.join(' ')} at the start, ${m.loadAverageEnd.join(' ')} at the end`,
    `run: ${config.rounds} round${config.rounds === 1 ? '' : 's'}${quick ? ' (--quick)' : ''}${config.standbys ? '' : ', no standbys (--no-standbys)'}, ${config.durationSeconds} s per commits run, ${config.lagSeconds} s of lag sampling, ${config.warmupSeconds} s of warm-up before each, ` +
      `${config.dbMb} MB base-backup table, ${config.walMb} MB of WAL for catch-up and recovery; ${Math.round((Date.now() - startedAt) / 1000)} s in all`,
    ...stealLine(),
  ];
}

/** The hypervisor's steal over the runs (machineShare), and the run that had the most of it. */
function stealLine() {
  let worst = null;
  let sum = 0;
  let runs = 0;
  for (const system of ['walship', 'postgres']) {
    details[system].forEach((round, index) => {
      for (const [label, share] of Object.entries(round?.machine ?? {})) {
        if (share === null) continue;
        sum += share.stealPercent;
        runs++;
        if (worst === null || share.stealPercent > worst.percent) worst = { percent: share.stealPercent, system, round: index + 1, label };
      }
    });
  }
  if (worst === null) return [];
  const who = worst.system === 'walship' ? 'walship' : 'PostgreSQL';
  return [`steal: ${(sum / runs).toFixed(1)}% of the machine's CPU time in a run on average (the hypervisor ran someone else); ` +
    `at most ${worst.percent.toFixed(1)}%, in ${who}'s round ${worst.round} ${worst.label} run`];
}

function textTable(rows) {
  const header = ['row', 'walship', 'PostgreSQL', 'ratio', 'unit', 'walship min–max', 'PostgreSQL min–max'];
  const body = rows.map((r) => [r.name, formatNumber(r.walship), formatNumber(r.postgres), r.ratio === null ? '-' : r.ratio.toFixed(2),
    r.unit, range(r.walshipMin, r.walshipMax), range(r.postgresMin, r.postgresMax)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function markdownTable(rows) {
  const lines = ['| row | walship | PostgreSQL | walship/PostgreSQL | unit | walship min–max | PostgreSQL min–max |', '|---|---:|---:|---:|---|---:|---:|'];
  for (const r of rows) {
    const ratio = r.ratio === null ? '-' : r.ratio < 1 ? `**${r.ratio.toFixed(2)}**` : r.ratio.toFixed(2);
    lines.push(`| ${r.name} | ${formatNumber(r.walship)} | ${formatNumber(r.postgres)} | ${ratio} | ${r.unit} | ${range(r.walshipMin, r.walshipMax)} | ${range(r.postgresMin, r.postgresMax)} |`);
  }
  return lines.join('\n');
}

const HISTORY_MARK = '<!-- newest first: compare-postgres.mjs --markdown inserts each run below this line -->';

function writeMarkdown(file, rows) {
  const date = new Date().toISOString().replace('T', ' ').slice(0, 16);
  const section = [
    `## ${date} UTC${quick ? ' (--quick)' : ''}`,
    '',
    '`npm run bench:pg' + (process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : '') + '`',
    '',
    ...machineLines().map((l) => `- ${l}`),
    '',
    markdownTable(rows),
    '',
  ].join('\n');
  let text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : `# Benchmarks: walship and PostgreSQL 15\n\n${HISTORY_MARK}\n`;
  if (!text.includes(HISTORY_MARK)) text = `${text.trimEnd()}\n\n${HISTORY_MARK}\n`;
  text = text.replace(HISTORY_MARK, `${HISTORY_MARK}\n\n${section}`);
  fs.writeFileSync(file, text);
  step(`wrote the results into ${file}`);
}

// ---- main --------------------------------------------------------------------------------------

let exitCode = 0;
try {
  step(`walship against PostgreSQL ${pg.version} in ${base}; ${config.rounds} round(s)`);
  step('disk: pg_test_fsync...');
  machine.fdatasyncPerSecond = await diskFdatasyncPerSecond();
  step(`disk: ${machine.fdatasyncPerSecond} fdatasync/s`);
  await setupWalship();
  await setupPostgres();
  for (let round = 0; round < config.rounds; round++) await measureRound(round);
  machine.loadAverageEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const rows = buildRows();
  if (args.json) {
    console.log(JSON.stringify({
      date: new Date().toISOString(), quick, machine, config: { ...config, rows: [...config.rows], settings: COMMON_SETTINGS },
      rows, rounds: { walship: details.walship, postgres: details.postgres },
    }, null, 2));
  } else {
    console.log(machineLines().join('\n'));
    console.log(`medians over the rounds; ratio = walship/PostgreSQL, oriented so that above 1 means walship is ahead\n`);
    console.log(textTable(rows));
  }
  if (args.markdown !== undefined) writeMarkdown(path.resolve(args.markdown), rows);
} catch (error) {
  // After Ctrl-C or the time limit, the cleanups are already stopping everything and will exit.
  if (stopping()) await new Promise(() => undefined);
  say(`compare-postgres: failed: ${error?.stack ?? error}`);
  say(`The servers' logs are under ${base}${args.keep ? '' : ' (pass --keep to keep them)'}.`);
  exitCode = 1;
} finally {
  step('stopping every server...');
  await runCleanups();
}
process.exit(exitCode);
