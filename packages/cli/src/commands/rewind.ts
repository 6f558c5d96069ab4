/**
 * `walship rewind -D DIR --source HOST:PORT [--dry-run] [--progress] [--quiet] [--json]`
 * (pg_rewind with a live source and -R): brings a data directory whose history forked from the
 * source's — an old primary after a failover — back as a standby of the source, copying only
 * the blocks that changed since the divergence instead of the whole database.
 *
 * The steps (POSTGRES-NOTES.md section 10; the decisions are @walship/engine/rewind's):
 *   1. The target must be shut down cleanly. One that crashed runs crash recovery here first, as
 *      pg_rewind runs a single-user server; a standby that crashed is refused.
 *   2. The divergence point, from both timeline histories (the source's by TIMELINE_HISTORY).
 *      If the target's WAL does not go past it, nothing needs copying: the target only gets
 *      its standby settings.
 *   3. The target's WAL from the last checkpoint before the divergence to its end: the blocks
 *      its records touched.
 *   4. The source writes its dirty buffers (flushBuffers), then its files are listed; the file
 *      map says what to copy, truncate or remove (readDataFile fetches the bytes).
 *   5. walship.conf: the source's, with the target's identity settings (port, application_name,
 *      its TLS and key files) and primary_conninfo pointing at the source; standby.signal.
 *   6. backup_label: replay starts at that checkpoint's redo point and must reach the source's
 *      WAL position at the end of the copy (BACKUP END LOCATION); the control file, the
 *      source's marked "in archive recovery" with that minimum recovery point, is written last.
 *
 * If the rewind fails half-way the target is unusable (as after a failed pg_rewind): run it
 * again, or take a new base backup.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { MAX_DATA_FILE_READ_BYTES } from '@walship/protocol/constants';
import type { ReplicationConnection } from '@walship/replication';
import { loadToolKeys } from '../encryption.js';
import { CliError, ExitCode } from '../cli-error.js';
import { resolveCredentials } from '../credentials.js';
import { sslConninfoPairs, sslOptions } from '../ssl-env.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, type NodeAddress } from '../options.js';
import { printJson } from '../output.js';
import { Progress } from '../progress.js';

export interface RewindOptions {
  dataDir: string;
  source: NodeAddress;
  dryRun?: boolean;
  progress?: boolean;
  quiet?: boolean;
  json?: boolean;
  timeout?: number;
}

/** Bytes asked for per readDataFile: the most one answer carries. */
const READ_CHUNK_BYTES = MAX_DATA_FILE_READ_BYTES;

/**
 * readDataFile requests in flight: enough to hide the round trip on a loopback or LAN link, few
 * enough that at most 8 MiB of answers are buffered.
 */
const READS_IN_FLIGHT_MAX = 8;

/** How long connecting may take (without --timeout). */
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Settings that belong to the node rather than to the cluster, kept from the target's own
 * walship.conf (DESIGN.md section 7), besides every TLS and key setting (IDENTITY_PATTERN).
 */
const IDENTITY_SETTINGS = ['listen_addresses', 'port', 'metrics_port', 'application_name', 'primary_conninfo', 'primary_slot_name'];
const IDENTITY_PATTERN = /^(ssl|tls)_|(key|cert|ca|crl)_file$|key_command$/;

/** Files of the data directory that are a node's own keys and certificates, by name. */
const OWN_FILE_PATTERN = /\.(key|crt|pem)$/;

type Engine = typeof import('@walship/engine');
type RewindModule = typeof import('@walship/engine/rewind');
type SettingsModule = typeof import('@walship/server/settings/index');

export interface RewindSummary {
  dataDir: string;
  source: string;
  rewound: boolean;
  /** Why nothing was copied, when nothing was. */
  reason: string | null;
  dryRun: boolean;
  sourceTimeline: number;
  targetTimeline: number;
  commonTimeline: number | null;
  divergenceLsn: string | null;
  checkpointLsn: string | null;
  redoLsn: string | null;
  endLsn: string | null;
  walRecordsRead: number;
  blocksChanged: number;
  blocksCopied: number;
  filesCopied: number;
  filesTruncated: number;
  filesRemoved: number;
  /** What was fetched from the source. */
  bytesCopied: number;
  /** The size of the source's data files: roughly what a base backup would have copied. */
  sourceBytes: number;
  elapsedMs: number;
}

export async function run(options: RewindOptions, io: CliIo): Promise<number> {
  const dataDir = resolve(options.dataDir);
  const started = performance.now();
  const [engine, rewind, timeline, controlFile, xlogInternal, settings, pidfile, replication] = await Promise.all([
    import('@walship/engine'), import('@walship/engine/rewind'), import('@walship/engine/wal/timeline'),
    import('@walship/engine/control-file'), import('@walship/engine/wal/xlog-internal'), import('@walship/server/settings/index'),
    import('@walship/server/pidfile'), import('@walship/replication'),
  ]);
  const say = (line: string): void => {
    if (options.json !== true) io.stdout.write(`${line}\n`);
  };

  // 1. The target: not running, shut down cleanly.
  let control = engine.readControlFile(dataDir);
  const pid = pidfile.readPidFile(dataDir);
  if (pid !== null && pidfile.processIsAlive(pid.pid)) {
    throw new CliError(ExitCode.failed, 'target server must be shut down cleanly', {
      detail: `A server (PID ${pid.pid}) is running in "${dataDir}".`,
      hint: `Stop it with "walship stop -D ${dataDir}", then run walship rewind again.`,
    });
  }
  // An encrypted target: its own cluster key (walship.conf) unwraps the keys its WAL is read with.
  // The source shares the data keys; the blocks and WAL it sends are copied encrypted, as stored.
  await loadToolKeys(dataDir);
  if (existsSync(join(dataDir, 'backup_label'))) {
    throw new CliError(ExitCode.failed, `target data directory "${dataDir}" has a backup_label: a base backup or rewind that never finished`, {
      hint: `Start it once (walship start -D ${dataDir}) so that its recovery completes, stop it, and run walship rewind again; or take a new base backup.`,
    });
  }
  let knownCredentials: SourceCredentials | undefined;
  if (control.state !== engine.DbState.shutdowned && control.state !== engine.DbState.shutdownedInRecovery) {
    if (existsSync(join(dataDir, 'standby.signal'))) {
      throw new CliError(ExitCode.failed, 'target server must be shut down cleanly', {
        detail: `Its control file says "${engine.DB_STATE_NAMES[control.state]}", and it is a standby, whose recovery cannot be finished here.`,
        hint: `Start it with "walship start -D ${dataDir}", stop it with "walship stop -D ${dataDir}", then run walship rewind again.`,
      });
    }
    if (options.dryRun === true) {
      throw new CliError(ExitCode.failed, 'target server must be shut down cleanly', {
        detail: `Its control file says "${engine.DB_STATE_NAMES[control.state]}"; a dry run does not run crash recovery.`,
        hint: 'Run walship rewind without --dry-run (it runs crash recovery first), or start and stop the target once.',
      });
    }
    // The source's timeline first: an encrypted target whose crash left a torn WAL tail ends this
    // recovery on a new timeline (engine torn-wal-tail.ts), which must be above the source's.
    // The next free number would often be the source's own timeline (the promotion that made the
    // source took it): the two would share a keystream and look as if they had not diverged. A
    // connection of its own, closed during the recovery, which may take longer than the source
    // keeps an idle connection.
    const probe = await connectSource(replication, options, io);
    knownCredentials = probe.credentials;
    let sourceTimeline: number;
    try {
      sourceTimeline = (await probe.connection.request('identifySystem', {})).timeline;
    } finally {
      probe.connection.close();
    }
    say(`target was not shut down cleanly ("${engine.DB_STATE_NAMES[control.state]}"): running crash recovery first`);
    await ensureCleanShutdown(engine, settings, dataDir, io, sourceTimeline);
    control = engine.readControlFile(dataDir);
  }

  // 2. The source, and where the histories part.
  const { connection, credentials } = await connectSource(replication, options, io, knownCredentials);
  try {
    const identity = await connection.request('identifySystem', {});
    if (identity.systemId !== control.systemId.toString()) {
      throw new CliError(ExitCode.failed, 'source and target clusters are from different systems', {
        detail: `The source's system identifier is ${identity.systemId}; the target's is ${control.systemId}.`,
        hint: 'A rewind only brings back a node of the same cluster. Rebuild the target with walship basebackup.',
      });
    }
    const sourceTli = identity.timeline;
    const targetTli = Math.max(control.timeline, control.minRecoveryTimeline);
    const sourceHistory = sourceTli === 1
      ? timeline.singleTimelineHistory(1)
      : timeline.parseTimeLineHistory((await connection.request('timelineHistory', { timeline: sourceTli })).content, sourceTli);
    const targetHistory = timeline.readTimeLineHistory(dataDir, targetTli);
    const summary: RewindSummary = {
      dataDir, source: formatNodeAddress(options.source), rewound: false, reason: null, dryRun: options.dryRun === true,
      sourceTimeline: sourceTli, targetTimeline: targetTli, commonTimeline: null, divergenceLsn: null, checkpointLsn: null,
      redoLsn: null, endLsn: null, walRecordsRead: 0, blocksChanged: 0, blocksCopied: 0, filesCopied: 0, filesTruncated: 0,
      filesRemoved: 0, bytesCopied: 0, sourceBytes: 0, elapsedMs: 0,
    };
    const finish = (): number => {
      summary.elapsedMs = Math.round(performance.now() - started);
      if (options.json === true) printJson(io.stdout, summary);
      return ExitCode.ok;
    };
    const noRewind = (reason: string): number => {
      summary.reason = reason;
      say(`no rewind required: ${reason}`);
      if (options.dryRun !== true) {
        writeStandbySettings(settings, replication, dataDir, options, credentials, io, null);
        say(`standby.signal and primary_conninfo written; start the node with: walship start -D ${dataDir}`);
      }
      return finish();
    };

    if (sourceTli === targetTli) return noRewind(`source and target are on the same timeline (${sourceTli})`);
    const ancestor = rewind.findCommonAncestorTimeline(sourceHistory, targetHistory);
    if (ancestor === null) {
      throw new CliError(ExitCode.failed, "could not find common ancestor of the source and target cluster's timelines", {
        detail: `The source is on timeline ${sourceTli}, the target on timeline ${targetTli}, and their histories share no timeline.`,
        hint: 'Rebuild the target with walship basebackup.',
      });
    }
    summary.commonTimeline = ancestor.tli;
    summary.divergenceLsn = engine.formatLsn(ancestor.divergenceLsn);
    say(`servers diverged at WAL location ${summary.divergenceLsn} on timeline ${ancestor.tli}`);
    const wal = { dataDir, control, history: targetHistory };
    const targetEnd = rewind.targetWalEnd(wal);
    if (targetEnd <= ancestor.divergenceLsn) {
      return noRewind(`the target's WAL ends at ${engine.formatLsn(targetEnd)}, not past the divergence point`);
    }

    // 3. The blocks the target changed since the last common checkpoint.
    let checkpoint = rewind.findLastCheckpoint(wal, ancestor.divergenceLsn);
    const pageMap = rewind.extractPageMap(wal, checkpoint.lsn, targetEnd);
    summary.walRecordsRead = pageMap.records;
    summary.blocksChanged = [...pageMap.pages.values()].reduce((sum, blocks) => sum + blocks.length, 0);
    say(`rewinding from last common checkpoint at ${engine.formatLsn(checkpoint.lsn)} on timeline ${checkpoint.timeline}`);
    say(`read the target's WAL to ${engine.formatLsn(targetEnd)}: ${pageMap.records} records, ${summary.blocksChanged} blocks changed`);

    // 4. The source's pages on disk, its files, and the file map.
    const flushed = await connection.request('flushBuffers', {});
    const sourceBefore = controlFile.decodeControlFile(await fetchWholeFile(connection, rewind.CONTROL_FILE_PATH), 'global/control of the source');
    if (sourceBefore.walSegmentSize !== control.walSegmentSize) {
      throw new CliError(ExitCode.failed, 'source and target clusters use different WAL segment sizes', {
        detail: `The source's is ${sourceBefore.walSegmentSize} bytes, the target's ${control.walSegmentSize}.`,
      });
    }
    // A standby source may not have written pages as new as the common checkpoint: then replay
    // starts at its own restartpoint, which its pages are at least as new as (pg_rewind.c).
    if (sourceBefore.redoLsn < checkpoint.redo) {
      checkpoint = { lsn: sourceBefore.checkpointLsn, redo: sourceBefore.redoLsn, timeline: sourceBefore.timeline };
    }
    const sourceFiles = (await connection.request('listDataFiles', {})).files;
    const targetFiles = rewind.listDataFiles(dataDir);
    summary.sourceBytes = sourceFiles.reduce((sum, f) => sum + f.size, 0);
    const ownFiles = targetOwnFiles(settings, dataDir);
    const fileMap = rewind.decideFileActions({
      sourceFiles, targetFiles, pages: pageMap.pages, segmentSize: control.walSegmentSize, divergenceLsn: ancestor.divergenceLsn,
      replayStartLsn: checkpoint.redo, sourceWalEndLsn: engine.asLsn(engine.parseLsn(flushed.lsn) ?? 0),
      isTargetOwnFile: (p) => ownFiles.has(p) || OWN_FILE_PATTERN.test(p),
    });
    if (fileMap.missingWal.length > 0) {
      throw new CliError(ExitCode.failed, 'the WAL needed to replay from the last common checkpoint is no longer on either node', {
        detail: `Missing: ${fileMap.missingWal.slice(0, 5).join(', ')}${fileMap.missingWal.length > 5 ? ', ...' : ''}. Replay would start at ${engine.formatLsn(checkpoint.redo)}.`,
        hint: 'Keep more WAL on the source with wal_keep_size (or a replication slot), or rebuild the target with walship basebackup.',
      });
    }
    summary.checkpointLsn = engine.formatLsn(checkpoint.lsn);
    summary.redoLsn = engine.formatLsn(checkpoint.redo);
    summary.blocksCopied = fileMap.blocksToCopy;
    for (const action of fileMap.actions) {
      if (action.kind === 'copy') summary.filesCopied++;
      else if (action.kind === 'truncate') summary.filesTruncated++;
      else if (action.kind === 'remove') summary.filesRemoved++;
    }
    if (options.dryRun === true) {
      summary.bytesCopied = fileMap.bytesToCopy;
      for (const action of fileMap.actions) say(`  ${describeAction(action)}`);
      say(`dry run: would copy ${formatBytes(fileMap.bytesToCopy)} of the source's ${formatBytes(summary.sourceBytes)}; nothing was changed`);
      return finish();
    }

    // Execution: from here on the target is only usable once the rewind has finished.
    const progress = new Progress(io, options);
    const copied = await executeFileMap(connection, dataDir, fileMap, engine.BLCKSZ, (done) => progress.update(
      `${Math.round(done / 1024)}/${Math.round(fileMap.bytesToCopy / 1024)} kB (${fileMap.bytesToCopy > 0 ? Math.min(100, Math.floor((done / fileMap.bytesToCopy) * 100)) : 100}%) copied`,
    ));
    progress.done();

    // 5. Settings: the source's, with the target's identity; standby.signal.
    const sourceConfig = sourceFiles.some((f) => f.path === rewind.CONFIG_FILE_PATH)
      ? (await fetchWholeFile(connection, rewind.CONFIG_FILE_PATH)).toString('utf8')
      : null;
    summary.bytesCopied = copied + (sourceConfig === null ? 0 : Buffer.byteLength(sourceConfig));
    writeStandbySettings(settings, replication, dataDir, options, credentials, io, sourceConfig);

    // 6. Where replay must get to, the backup label, and the control file last.
    const endIdentity = await connection.request('identifySystem', {});
    const controlBytes = await fetchWholeFile(connection, rewind.CONTROL_FILE_PATH);
    summary.bytesCopied += controlBytes.length;
    const sourceAfter = controlFile.decodeControlFile(controlBytes, 'global/control of the source');
    let endLsn = engine.parseLsn(endIdentity.xlogPos) ?? 0;
    if (sourceAfter.state === engine.DbState.inArchiveRecovery) endLsn = Math.max(endLsn, sourceAfter.minRecoveryLsn);
    const endTli = endIdentity.timeline;
    summary.endLsn = engine.formatLsn(endLsn);
    const redoSegment = xlogInternal.xlogFileName(checkpoint.timeline, xlogInternal.segmentOf(checkpoint.redo, control.walSegmentSize), control.walSegmentSize);
    writeBackupLabel(dataDir, checkpoint, redoSegment, endTli, endLsn, engine.formatLsn);
    controlFile.writeControlFile(dataDir, {
      ...sourceAfter,
      state: engine.DbState.inArchiveRecovery,
      minRecoveryLsn: engine.asLsn(endLsn),
      minRecoveryTimeline: endTli,
      backupStartLsn: engine.asLsn(0),
      backupEndLsn: engine.asLsn(0),
    });
    summary.rewound = true;
    say(`copied ${formatBytes(summary.bytesCopied)} of the source's ${formatBytes(summary.sourceBytes)}: ${summary.blocksCopied} changed blocks, ${summary.filesCopied} files; ${summary.filesTruncated} truncated, ${summary.filesRemoved} removed`);
    say(`replay starts at ${summary.redoLsn} and must reach ${summary.endLsn} on timeline ${endTli}`);
    say(`Done! Start the node with: walship start -D ${dataDir} (a standby of ${summary.source})`);
    return finish();
  } catch (error) {
    if (error instanceof CliError) throw error;
    const known = error as { message?: string; detail?: string; hint?: string; name?: string };
    throw new CliError(ExitCode.failed, `rewind failed: ${known.message ?? String(error)}`, {
      ...(known.detail !== undefined ? { detail: known.detail } : {}),
      ...(known.hint !== undefined ? { hint: known.hint } : {}),
    });
  } finally {
    connection.close();
  }
}

/** The credentials a connection used: primary_conninfo carries them, as pg_basebackup -R writes them. */
interface SourceCredentials {
  user?: string;
  password?: string;
}

/** Connects to the source; `known`: the credentials an earlier connection used (a password is asked for once). */
async function connectSource(replication: typeof import('@walship/replication'), options: RewindOptions, io: CliIo, known?: SourceCredentials): Promise<{ connection: ReplicationConnection; credentials: SourceCredentials }> {
  let used: SourceCredentials;
  if (known !== undefined) {
    used = known;
  } else {
    const credentials = resolveCredentials(io, options.source);
    const password = typeof credentials.password === 'function' ? await credentials.password() : credentials.password;
    used = {
      ...(credentials.user !== undefined ? { user: credentials.user } : {}),
      ...(password !== undefined ? { password } : {}),
    };
  }
  try {
    const connection = await replication.ReplicationConnection.connect({
      host: options.source.host, port: options.source.port, applicationName: 'walship rewind', timeoutMs: options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...used,
      ...sslOptions(io),
    });
    return { connection, credentials: used };
  } catch (error) {
    const fields = error as { message: string; severity?: string; detail?: string; hint?: string };
    // The node answered and refused (TLS, a password, not ready): its reasons, exit 1.
    if (fields.severity === 'FATAL') throw new CliError(ExitCode.failed, fields.message, { detail: fields.detail, hint: fields.hint });
    throw new CliError(ExitCode.unreachable, fields.message, { hint: `Is the source node running at ${formatNodeAddress(options.source)}?` });
  }
}

/**
 * ensureCleanShutdown: crash recovery of a target that was not shut down cleanly, in this
 * process (pg_rewind runs `postgres --single` for it), ending with a shutdown checkpoint.
 */
async function ensureCleanShutdown(engine: Engine, settingsModule: SettingsModule, dataDir: string, io: CliIo, sourceTimeline: number): Promise<void> {
  const s = settingsModule.readConfigFile(dataDir);
  const db = await engine.Database.open({
    dataDir,
    sharedBuffersBytes: s.get('shared_buffers'),
    walBuffersBytes: 1024 * 1024,
    fsync: true,
    fullPageWrites: s.get('full_page_writes'),
    synchronousCommit: 'local',
    memberName: 'walship rewind',
    walKeepBytes: s.get('wal_keep_size'),
    newTimelineAbove: sourceTimeline,
    log: (level, message) => {
      if (level !== 'DEBUG') io.stderr.write(`${level}:  ${message}\n`);
    },
  });
  await db.shutdown();
}

/** A whole (small) file of the source: the control file, walship.conf. */
async function fetchWholeFile(connection: ReplicationConnection, path: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let offset = 0; ; ) {
    const answer = await connection.request('readDataFile', { path, offset, length: READ_CHUNK_BYTES });
    parts.push(answer.data);
    offset += answer.data.length;
    if (answer.data.length === 0 || offset >= answer.size) break;
  }
  return Buffer.concat(parts);
}

interface ReadJob {
  path: string;
  offset: number;
  length: number;
}

/**
 * Performs the file map: removals and truncations here, and every byte range to copy read from
 * the source (READS_IN_FLIGHT_MAX requests at a time) and written in place. Every file written
 * and every directory changed is fsynced at the end. Returns the bytes copied.
 */
async function executeFileMap(connection: ReplicationConnection, dataDir: string, fileMap: ReturnType<RewindModule['decideFileActions']>, blockSize: number, onProgress: (done: number) => void): Promise<number> {
  const jobs: ReadJob[] = [];
  const descriptors = new Map<string, number>();
  const touchedDirs = new Set<string>([dataDir]);
  const open = (path: string, truncate: boolean): number => {
    let fd = descriptors.get(path);
    if (fd === undefined) {
      if (truncate) mkdirSync(dirname(join(dataDir, ...path.split('/'))), { recursive: true, mode: 0o700 });
      fd = openSync(join(dataDir, ...path.split('/')), truncate ? 'w' : 'r+', 0o600);
      descriptors.set(path, fd);
      // The file's directory, and each one above it that may have been created, up to DIR.
      for (let dir = dirname(join(dataDir, ...path.split('/'))); ; dir = dirname(dir)) {
        touchedDirs.add(dir);
        if (dir === dataDir || dir === dirname(dir)) break;
      }
    }
    return fd;
  };
  const range = (path: string, from: number, to: number): void => {
    for (let offset = from; offset < to; offset += READ_CHUNK_BYTES) jobs.push({ path, offset, length: Math.min(READ_CHUNK_BYTES, to - offset) });
  };
  try {
    for (const action of fileMap.actions) {
      switch (action.kind) {
        case 'copy':
          open(action.path, true);
          range(action.path, 0, action.size);
          break;
        case 'copyTail':
          open(action.path, false);
          range(action.path, action.from, action.to);
          break;
        case 'truncate':
          ftruncateSync(open(action.path, false), action.size);
          break;
        case 'copyBlocks':
          open(action.path, false);
          for (const r of action.ranges) range(action.path, r.start * blockSize, (r.start + r.count) * blockSize);
          break;
        case 'remove': {
          const absolute = join(dataDir, ...action.path.split('/'));
          rmSync(absolute, { force: true });
          touchedDirs.add(dirname(absolute));
          if (action.fileKind === 'wal' || action.fileKind === 'history') {
            const name = basename(action.path);
            for (const suffix of ['.ready', '.done']) rmSync(join(dataDir, 'pg_wal', 'archive_status', `${name}${suffix}`), { force: true });
          }
          break;
        }
      }
    }
    let done = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        const answer = await connection.request('readDataFile', job);
        if (answer.data.length < job.length && job.offset + answer.data.length < answer.size) {
          throw new Error(`short read of "${job.path}" at ${job.offset} from the source`);
        }
        const fd = descriptors.get(job.path)!;
        for (let written = 0; written < answer.data.length; ) {
          written += writeSync(fd, answer.data, written, answer.data.length - written, job.offset + written);
        }
        done += answer.data.length;
        onProgress(done);
      }
    };
    await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT_MAX, jobs.length) }, worker));
    for (const fd of descriptors.values()) fsyncSync(fd);
    for (const dir of touchedDirs) fsyncDir(dir);
    return done;
  } finally {
    for (const fd of descriptors.values()) closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  if (!existsSync(dir)) return;
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Settings naming files of the target (TLS and key files), relative to its data directory. */
function targetOwnFiles(settingsModule: SettingsModule, dataDir: string): Set<string> {
  const own = new Set<string>();
  let current;
  try {
    current = settingsModule.readConfigFile(dataDir);
  } catch {
    return own;
  }
  for (const name of settingsModule.SETTING_NAMES) {
    if (!/_file$/.test(name) || !isIdentitySetting(name)) continue;
    const value = current.text(name);
    if (value === '') continue;
    const absolute = resolve(dataDir, value);
    if (absolute.startsWith(`${dataDir}/`)) own.add(absolute.slice(dataDir.length + 1));
  }
  return own;
}

function isIdentitySetting(name: string): boolean {
  return IDENTITY_SETTINGS.includes(name) || IDENTITY_PATTERN.test(name);
}

/**
 * walship.conf and standby.signal (pg_rewind -R): the source's settings when given, with the
 * target's own identity settings put back, and primary_conninfo pointing at the source.
 */
function writeStandbySettings(settingsModule: SettingsModule, replication: typeof import('@walship/replication'), dataDir: string, options: RewindOptions, credentials: SourceCredentials, io: CliIo, sourceConfig: string | null): void {
  const before = settingsModule.readConfigFile(dataDir);
  const own: Array<[string, string]> = [];
  for (const name of settingsModule.SETTING_NAMES) {
    if (isIdentitySetting(name) && name !== 'primary_conninfo' && before.source(name).kind === 'file') own.push([name, before.text(name)]);
  }
  if (sourceConfig !== null) {
    try {
      settingsModule.settingsFromConfigText(sourceConfig, "the source's walship.conf");
      settingsModule.writeFileDurably(settingsModule.configFilePath(dataDir), sourceConfig);
      for (const name of settingsModule.SETTING_NAMES) if (isIdentitySetting(name)) settingsModule.resetConfigValue(dataDir, name);
    } catch (error) {
      io.stderr.write(`walship: warning: kept the target's walship.conf: the source's could not be used (${(error as Error).message})\n`);
    }
  }
  const applicationName = before.source('application_name').kind === 'file' ? before.text('application_name') : basename(dataDir);
  const quote = replication.quoteConninfoValue;
  const conninfo = [
    `host=${quote(options.source.host)}`, `port=${options.source.port}`, `application_name=${quote(applicationName)}`,
    ...(credentials.user !== undefined ? [`user=${quote(credentials.user)}`] : []),
    ...(credentials.password !== undefined ? [`password=${quote(credentials.password)}`] : []),
    ...sslConninfoPairs(sslOptions(io), quote),
  ].join(' ');
  settingsModule.setConfigValues(dataDir, [...own, ['primary_conninfo', conninfo]]);
  writeFileSync(join(dataDir, 'standby.signal'), '', { mode: 0o600 });
  fsyncDir(dataDir);
}

/**
 * The backup label of the rewound node (pg_rewind.c's createBackupLabel, plus walship's BACKUP
 * END LOCATION). START TIMELINE is the source's timeline, the one replay follows: walship's
 * recovery takes its expected history from it (as recovery_target_timeline = latest would pick
 * the source's newest timeline), and the checkpoint, on an older timeline of that history, is
 * found in that timeline's segments.
 */
function writeBackupLabel(dataDir: string, checkpoint: { lsn: number; redo: number }, redoSegment: string, timelineId: number, endLsn: number, formatLsn: (lsn: number) => string): void {
  const text = [
    `START WAL LOCATION: ${formatLsn(checkpoint.redo)} (file ${redoSegment})`,
    `CHECKPOINT LOCATION: ${formatLsn(checkpoint.lsn)}`,
    'BACKUP METHOD: pg_rewind',
    'BACKUP FROM: standby',
    `START TIME: ${new Date().toISOString()}`,
    'LABEL: walship rewind',
    `START TIMELINE: ${timelineId}`,
    `BACKUP END LOCATION: ${formatLsn(endLsn)}`,
    '',
  ].join('\n');
  const path = join(dataDir, 'backup_label');
  const fd = openSync(path, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dataDir);
}

function describeAction(action: ReturnType<RewindModule['decideFileActions']>['actions'][number]): string {
  switch (action.kind) {
    case 'copy':
      return `copy ${action.path} (${formatBytes(action.size)})`;
    case 'copyTail':
      return `copy ${action.path} from ${action.from} to ${action.to}`;
    case 'truncate':
      return `truncate ${action.path} to ${action.size} bytes`;
    case 'remove':
      return `remove ${action.path}`;
    case 'copyBlocks':
      return `copy ${action.blocks} block${action.blocks === 1 ? '' : 's'} of ${action.path}: ${action.ranges.map((r) => (r.count === 1 ? `${r.start}` : `${r.start}-${r.start + r.count - 1}`)).join(', ')}`;
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} kB`;
  return `${(bytes / 1048576).toFixed(1)} MB`;
}
