/**
 * The postmaster (postmaster.c): one per node and one per OS process. It takes the data
 * directory lock, opens the listening port, runs the startup component (crash recovery), then
 * starts the other components and serves client sessions.
 *
 * Signals, as PostgreSQL's: SIGTERM smart shutdown (no new sessions; shut down once the last
 * one ends), SIGINT fast shutdown (end sessions, then the shutdown checkpoint), SIGQUIT
 * immediate shutdown (stop at once; crash recovery at the next start), SIGHUP reload of
 * walship.conf.
 *
 * Crash-restart: when a component crashes (its loop throws, the WAL cannot be written, an
 * assertion fails in a session), the postmaster ends every session, stops every component,
 * drops the whole database instance, runs crash recovery and starts everything again: every
 * piece of state is rebuilt from disk, nothing carried over.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WebSocket } from 'ws';
import { CheckpointFlags, Database, PreparedWalIo, DbState, ErrorCode, writeControlFile, WalshipError, formatLsn, readControlFile, type CheckpointResult, type DatabaseOptions, type LogFunction, type Lsn } from '@walship/engine';
import { createRestartPoint } from '@walship/engine/checkpoint';
import { walCipherFor } from '@walship/engine/crypto/registry';
import { prepareSwitchSpare } from '@walship/engine/promote';
import { STANDBY_SIGNAL_FILE, WalRecovery } from '@walship/engine/wal-recovery';
import { conninfoSslOptions, newWalRcvData, parseConninfo, sendBaseBackup, standbyBackupSource, type BaseBackupSource, type WalRcvData, type WalSndDirectSlot } from '@walship/replication';
import { historyFileName, readTimeLineHistory, type TimeLineHistoryEntry } from '@walship/engine/wal/timeline';
import { findSegmentTimeline } from '@walship/engine/wal/wal-files';
import { Startup, type StartupHost } from './components/startup.js';
import { WalReceiverComponent } from './components/wal-receiver.js';
import { startReplicationSession, type ReplicationBackend } from './replication-session.js';
import { WalSenders } from './walsenders.js';
import { SyncRep } from './sync-rep.js';
import { PrimaryLease } from './lease.js';
import { LsnWaiters } from './wait-lsn.js';
import { parseLsn } from '@walship/engine/lsn';
import { listDataFiles, readDataFileRange, readPageChecksums } from '@walship/engine/rewind';
import { MAX_LISTED_DATA_FILES, backupPathProblem } from '@walship/protocol';
import { ReplicationSlots, slotsOnPrimary } from './slots.js';
import { Component } from './component.js';
import { AutoVacuum } from './components/autovacuum.js';
import { Archiver, ArchiverExit, PGARCH_RESTART_INTERVAL_MS, archiverStatusView, newArchiverStats } from './components/archiver.js';
import { archiveStatusAtPromotion, xlogArchiveNotify } from '@walship/engine/wal/archive-status';
import { BgWriter } from './components/bg-writer.js';
import { Heartbeat } from './components/heartbeat.js';
import { Checkpointer } from './components/checkpointer.js';
import { WalWriter } from './components/wal-writer.js';
import type { ServerState } from './backend.js';
import { Faults } from './faults.js';
import { loadEncryptionKeys } from './encryption.js';
import { resolveListenAddress, startListener, type Listener, type ListenerTls } from './listener.js';
import { loadSslFiles } from './ssl/ssl-files.js';
import { startMetricsServer, type MetricsServer } from './metrics-http.js';
import { collectNodeMetrics, renderNodeMetrics } from './metrics.js';
import { authSettingsOf, type SessionAuth } from './session.js';
import { AuthThrottle } from './auth/auth-throttle.js';
import type { AuthMethodSetting } from './auth/client-authentication.js';
import { USERS_FILE_NAME, UsersFileCache } from './auth/users-file.js';
import { Logger } from './logger.js';
import { NodeBackend } from './node-backend.js';
import { PidFile } from './pidfile.js';
import { changedSettings, readConfigFile, setConfigValue, lookupSetting, settingDefinition, type Settings } from './settings/index.js';

export type ShutdownMode = 'smart' | 'fast' | 'immediate';

/** pmsignal.h's reasons a component signals the postmaster for. */
export type PMSignalReason = 'PMSIGNAL_START_WALRECEIVER' | 'PMSIGNAL_BEGIN_HOT_STANDBY';

/**
 * Bytes of a base backup handed to the socket and not yet written: enough to keep a fast link
 * busy, little enough that a slow receiver cannot make the node buffer the whole database.
 */
const BASE_BACKUP_BUFFERED_BYTES_MAX = 16 * 1024 * 1024;

/** The file `walship promote -D` writes before signalling the postmaster (pg_ctl promote's). */
export const PROMOTE_SIGNAL_FILE = 'promote';

export interface PostmasterOptions {
  dataDir: string;
  foreground: boolean;
}

export class Postmaster {
  readonly dataDir: string;
  settings: Settings;
  state: ServerState = 'starting';
  database: Database | null = null;
  /** primary, or standby while `standby.signal` holds (until promotion). */
  role: 'primary' | 'standby' = 'primary';
  /** The standby's recovery (null on a primary). */
  recovery: WalRecovery | null = null;
  /** WalRcvData: the walreceiver's shared state. */
  walRcv: WalRcvData = newWalRcvData();
  /** Walreceivers started in answer to PMSIGNAL_START_WALRECEIVER (the status view shows it). */
  walReceiverStarts = 0;
  readonly walSenders: WalSenders;
  private startup: Startup | null = null;
  private walReceiver: WalReceiverComponent | null = null;
  private readonly pendingPmSignals = new Set<PMSignalReason>();
  /** Cascading walsenders' wake-ups, served on the walreceiver's flush and on replay. */
  private readonly cascadeWakeups = new Set<() => void>();
  /** Sessions waiting for a WAL position (WAIT FOR LSN, reads with a minimum LSN). */
  readonly lsnWaiters = new LsnWaiters({
    standbyPositions: () => this.standbyPositions(),
    primaryFlush: () => (this.recovery === null ? (this.database?.xlog.getFlushRecPtr() ?? null) : null),
  });
  /** A primary instance's synchronous replication (null on a standby and between instances). */
  syncRep: SyncRep | null = null;
  /** The primary's lease from the failover monitor (require_primary_lease); kept across crash-restarts, dropped at promotion. */
  readonly lease = new PrimaryLease((level, message) => this.log(level, message));
  /** pg_promote(wait => true) callers, told once the promoted node accepts writes. */
  private readonly promotionWaiters = new Set<() => void>();
  /** A standby's WAL I/O worker, started ahead of its promotion. */
  private preparedWalIo: PreparedWalIo | null = null;
  /** A primary's timeline history, read once per timeline (read-your-writes checks). */
  private historyCache: { tli: number; history: TimeLineHistoryEntry[] } | null = null;
  readonly startedAt = Date.now();
  crashRestarts = 0;
  private readonly logger: Logger;
  private readonly pidFile: PidFile;
  private listener: Listener | null = null;
  private metricsServer: MetricsServer | null = null;
  /**
   * Read by sessions at each handshake; a reload changes it in place. The users file is read
   * through its cache at each handshake, so `walship user` changes need no reload.
   */
  private readonly auth: SessionAuth;
  private readonly faults: Faults;
  private readonly foreground: boolean;
  private walWriter: WalWriter | null = null;
  private components: Component[] = [];
  private checkpointer: Checkpointer | null = null;
  private shuttingDown: ShutdownMode | null = null;
  /**
   * WalSndInitStopping: set once the shutdown checkpoint (a standby's shutdown restartpoint) is
   * written, never before, so that each walsender leaves only after its standby has flushed
   * everything, that record included (PostgreSQL's checkpointer signals the walsenders after
   * the shutdown checkpoint; WalSndDone).
   */
  private walSndsStopping = false;
  private smartWaitingForSessions = false;
  private restarting: Promise<void> | null = null;
  private exitResolve: ((code: number) => void) | null = null;
  private readonly backend = new NodeBackend(this);
  /** pg_stat_archiver's counters: the postmaster's, so that they outlive archiver restarts. */
  private readonly archiverStats = newArchiverStats();

  constructor(options: PostmasterOptions) {
    this.dataDir = options.dataDir;
    this.settings = readConfigFile(options.dataDir);
    // The data keys before anything else: a node given the wrong cluster key refuses here, having
    // written nothing (no log file, no postmaster.pid), as a bad walship.conf does.
    loadEncryptionKeys(this.dataDir, this.settings);
    this.logger = new Logger({
      dataDir: this.dataDir,
      directory: this.settings.get('log_directory'),
      rotationSizeBytes: this.settings.get('log_rotation_size'),
      rotationAgeMs: this.settings.get('log_rotation_age'),
      minLevel: this.settings.get('log_min_messages'),
      toStderr: true,
    });
    this.pidFile = new PidFile(this.dataDir, this.settings.get('port'), this.listenAddress());
    this.faults = new Faults(process.env.WALSHIP_FAULTS);
    this.foreground = options.foreground;
    this.auth = { users: new UsersFileCache(this.dataDir), throttle: new AuthThrottle() };
    this.lease.required = this.settings.get('require_primary_lease');
    this.walSenders = new WalSenders({
      dataDir: this.dataDir,
      log: (level, message) => this.log(level, message),
      segmentSize: () => this.controlData().walSegmentSize,
      systemId: () => this.controlData().systemId,
      timeline: () => this.currentTimeline(),
      sendLimit: () => this.sendLimit(),
      readWalBuffers: (into, offset, startLsn, length) => this.database?.xlog.readFromBuffers(into, offset, startLsn, length) ?? false,
      walSenderTimeoutMs: () => this.settings.get('wal_sender_timeout'),
      isStopping: () => this.walSndsStopping,
      registerWakeup: (wakeup) => this.registerWalSndWakeup(wakeup),
      walSndDirect: { arm: (fd, sentLsn) => this.armWalSndDirect(fd, sentLsn) },
    });
    this.applyAuth();
  }

  private applyAuth(): void {
    this.auth.method = this.settings.get('auth_method') as AuthMethodSetting;
    this.auth.password = this.settings.get('password');
    this.auth.replicationPassword = this.settings.get('replication_password');
    if (this.auth.method !== 'scram-sha-256') return;
    const ignored = (['password', 'replication_password'] as const).filter((name) => this.settings.get(name) !== '');
    if (ignored.length > 0) {
      this.log('WARNING', `${ignored.join(' and ')} ${ignored.length > 1 ? 'are' : 'is'} ignored: auth_method is scram-sha-256, so connections authenticate as users of ${USERS_FILE_NAME}`);
    }
    try {
      const users = this.auth.users?.current() ?? null;
      if (users === null || users.users.size === 0) {
        this.log('WARNING', `auth_method is scram-sha-256 but ${USERS_FILE_NAME} has no users: every connection will be refused`);
        this.log('HINT', `Add one with "walship user add -D ${this.dataDir} NAME --rights all".`);
      }
    } catch (error) {
      this.reportFatal(error);
    }
  }

  get log(): LogFunction {
    return this.logger.log;
  }

  get memberName(): string {
    return this.settings.get('application_name') || `walship-${this.settings.get('port')}`;
  }

  private listenAddress(): string {
    return resolveListenAddress(this.settings.get('listen_addresses'));
  }

  /** Runs the node until it shuts down; resolves with the process exit code. */
  async run(): Promise<number> {
    const exited = new Promise<number>((resolve) => { this.exitResolve = resolve; });
    try {
      this.pidFile.acquire();
    } catch (error) {
      this.reportFatal(error);
      return 1;
    }
    this.installSignalHandlers();
    try {
      // Like the postmaster's checks of the data directory: a missing or corrupt control file
      // is reported before the port is taken.
      readControlFile(this.dataDir);
      if (this.faults.active.length > 0) this.log('WARNING', `fault injection is on: ${this.faults.active.join(', ')}`);
      const port = this.settings.get('port');
      // be_tls_init at postmaster start: a bad SSL file refuses the start, before the port is taken.
      const tls = this.settings.get('ssl') ? this.loadSsl() : null;
      this.listener = await startListener({
        port, host: this.listenAddress(), backend: this.backend, auth: this.auth, tls,
        maxConnections: this.settings.get('max_connections'),
        replication: (socket, peer) => startReplicationSession(socket, peer, this.replicationBackend()),
        log: (level, message) => this.log(level as 'LOG', message),
      });
      const metricsPort = this.settings.get('metrics_port');
      if (metricsPort > 0) {
        this.metricsServer = await startMetricsServer({ port: metricsPort, host: this.listenAddress(), backend: this.backend, log: this.log });
        this.log('LOG', `serving /metrics and /healthz on ${this.listenAddress()}:${metricsPort}`);
      }
      await this.startInstance();
      if (!this.foreground) this.logger.toStderr = false;
    } catch (error) {
      this.reportFatal(error);
      await this.teardown();
      return 1;
    }
    return exited;
  }

  /** Reads and checks the SSL files the settings name (ssl/ssl-files.ts); throws a FATAL error naming the file. */
  private loadSsl(): ListenerTls {
    const files = loadSslFiles(this.dataDir, {
      certFile: this.settings.get('ssl_cert_file'), keyFile: this.settings.get('ssl_key_file'), caFile: this.settings.get('ssl_ca_file'),
    });
    for (const warning of files.warnings) this.log('WARNING', warning);
    this.log('LOG', `SSL certificate "${files.certPath}" for ${files.subject}, valid until ${files.validTo}${files.caPath === null ? '' : `; client certificates checked against "${files.caPath}"`}`);
    return { cert: files.cert, key: files.key, ca: files.ca };
  }

  /** PostgreSQL reloads the SSL files at each SIGHUP; a bad one keeps the files in use. */
  private reloadSsl(): void {
    if (this.listener === null || !this.listener.tls) return;
    let tls: ListenerTls;
    try {
      tls = this.loadSsl();
    } catch (error) {
      this.reportError(error, 'LOG');
      this.log('LOG', 'SSL configuration was not reloaded: the files in use stay');
      return;
    }
    this.listener.reloadTls(tls);
  }

  private reportError(error: unknown, level: 'LOG' | 'FATAL'): void {
    if (error instanceof WalshipError) {
      this.log(level, error.message);
      if (error.detail) this.log('DETAIL', error.detail);
      if (error.hint) this.log('HINT', error.hint);
    } else {
      this.log(level, error instanceof Error ? error.message : String(error));
    }
  }

  private reportFatal(error: unknown): void {
    if (error instanceof WalshipError) {
      this.log(error.severity === 'PANIC' ? 'PANIC' : 'FATAL', error.message);
      if (error.detail) this.log('DETAIL', error.detail);
      if (error.hint) this.log('HINT', error.hint);
    } else {
      this.log('FATAL', error instanceof Error ? (error.stack ?? error.message) : String(error));
    }
  }

  /**
   * The startup component's work, then the other components: crash recovery and a primary's
   * components, or, with `standby.signal`, continuous replay with the standby's components.
   */
  private async startInstance(): Promise<void> {
    this.state = 'recovery';
    if (fs.existsSync(path.join(this.dataDir, STANDBY_SIGNAL_FILE))) {
      this.startStandby();
      return;
    }
    const db = await Database.open(this.databaseOptions());
    this.becomePrimary(db);
  }

  private databaseOptions(): DatabaseOptions {
    const s = this.settings;
    return {
      dataDir: this.dataDir,
      sharedBuffersBytes: s.get('shared_buffers'),
      walBuffersBytes: this.walBuffersBytes(),
      fsync: s.get('fsync'),
      fullPageWrites: s.get('full_page_writes'),
      synchronousCommit: s.get('synchronous_commit'),
      memberName: this.memberName,
      walKeepBytes: s.get('wal_keep_size'),
      log: this.log,
      onAsyncCommit: () => this.walWriter?.wakeForAsyncCommit(),
      syncRepWait: (lsn, level, wait) => this.syncRep?.wait(lsn, level, wait) ?? Promise.resolve(),
      ...(this.preparedWalIo !== null ? { preparedWalIo: this.preparedWalIo } : {}),
    };
  }

  /** A primary's components, around a database open for writes. */
  private becomePrimary(db: Database): void {
    const s = this.settings;
    const promoted = this.role === 'standby';
    if (promoted) this.lease.reset();
    this.role = 'primary';
    this.database = db;
    db.xlog.onFailure((error) => this.crash('wal writer', error));
    // StartupReplicationSlots: the slots in pg_replslot/ hold back WAL removal at checkpoints,
    // along with running base backups (Database.keepWalFrom); slots past max_slot_wal_keep_size
    // are invalidated there and their walsenders terminated.
    const slots = ReplicationSlots.startup({
      dataDir: this.dataDir, segmentSize: db.control.walSegmentSize, log: this.log,
      writeLsn: () => db.xlog.getWriteRecPtr(), redoLsn: () => db.xlog.redoRecPtr,
      settings: () => ({
        maxWalSizeBytes: this.settings.get('max_wal_size'), maxSlotWalKeepBytes: this.settings.get('max_slot_wal_keep_size'), walKeepBytes: this.settings.get('wal_keep_size'),
      }),
      terminateWalSender: (name) => this.walSenders.terminateSlotUser(name),
    });
    this.walSenders.attachSlots(slots);
    db.replicationSlotsKeep = (at) => slots.checkpoint(at);
    // XLogArchiveNotify from XLogWrite's end of segment, and from checkpoints' XLogArchiveCheckDone.
    db.xlog.archiveMode = s.get('archive_mode');
    db.xlog.onArchiveNotify = (fileName, error) => this.archiveNotified(fileName, error);
    if (promoted) this.archiveStatusAtPromotion(db);
    else if (db.timelineSwitchedAfterCrash !== null && s.get('archive_mode') !== 'off') this.archiveHistoryAfterCrashSwitch(db);
    this.syncRep = SyncRep.start(this.walSenders, this.log, s.get('synchronous_standby_names'));
    db.xlog.registerWalSndWakeup(() => this.lsnWaiters.wakeup());
    const checkpointer = new Checkpointer({
      checkpoint: (flags, writeDelay) => db.checkpoint(flags, writeDelay),
      walSinceRedo: () => db.walSinceRedo(),
      walPosition: () => db.xlog.getWriteRecPtr(),
    }, this.checkpointerSettings());
    db.xlog.onWritten(() => checkpointer.walAdvanced());
    this.checkpointer = checkpointer;
    this.walWriter = new WalWriter(db, s.get('wal_writer_delay'), this.faults);
    this.components = [
      this.walWriter,
      checkpointer,
      new BgWriter(db, s.get('bgwriter_delay'), s.get('bgwriter_lru_maxpages'), s.get('bgwriter_lru_multiplier')),
      new AutoVacuum(db, s.get('autovacuum_naptime'), s.get('autovacuum'), this.log),
      new Heartbeat(db, () => this.settings.get('heartbeat_interval')),
    ];
    for (const component of this.components) this.startChild(component);
    if (s.get('archive_mode') !== 'off') this.startArchiver();
    this.state = 'ready';
    this.pidFile.setStatus('ready');
    for (const waiter of [...this.promotionWaiters]) waiter();
    this.promotionWaiters.clear();
  }

  /** A standby: the startup component replays continuously; restartpoints instead of checkpoints. */
  private startStandby(): void {
    const recovery = WalRecovery.open({ dataDir: this.dataDir, sharedBuffersBytes: this.settings.get('shared_buffers'), log: this.log });
    this.role = 'standby';
    this.recovery = recovery;
    this.walRcv = newWalRcvData();
    const checkpointer = new Checkpointer({
      checkpoint: (_flags, writeDelay) => createRestartPoint({
        dataDir: this.dataDir, control: recovery.control, pool: recovery.pool, smgr: recovery.smgr,
        lastCheckpointSeen: recovery.lastCheckpointSeen, segmentSize: recovery.segmentSize,
        walKeepBytes: this.settings.get('wal_keep_size'), log: this.log,
        archiveMode: this.settings.get('archive_mode'), onArchiveNotify: () => this.wakeArchiver(),
        keepWalFrom: () => recovery.oldestBackupStart(),
        ...(writeDelay !== undefined ? { writeDelay } : {}),
      }),
      walSinceRedo: () => recovery.replayEndLsn - recovery.control.redoLsn,
      walPosition: () => recovery.replayEndLsn,
      restartPoints: true,
    }, this.checkpointerSettings());
    this.checkpointer = checkpointer;
    this.preparedWalIo = new PreparedWalIo(this.dataDir, recovery.segmentSize, this.walBuffersBytes());
    // Encrypted: the zero-filled file promotion re-encrypts the switch segment into, made now in
    // the background rather than on the way to the first write (promote.ts).
    if (walCipherFor(this.dataDir) !== null) void prepareSwitchSpare(this.dataDir, recovery.segmentSize);
    this.startup = new Startup(recovery, this.startupHost());
    this.components = [this.startup, checkpointer];
    for (const component of this.components) this.startChild(component);
    // PgArchStartupAllowed: in recovery only with archive_mode = always.
    if (this.settings.get('archive_mode') === 'always') this.startArchiver();
  }

  /** What the startup component asks of the postmaster. */
  private startupHost(): StartupHost {
    return {
      log: this.log,
      settings: () => ({
        restoreCommand: this.settings.get('restore_command'),
        primaryConninfo: this.settings.get('primary_conninfo'),
        primarySlotName: this.settings.get('primary_slot_name'),
        walRetrieveRetryIntervalMs: this.settings.get('wal_retrieve_retry_interval'),
        targetTimelineLatest: this.settings.get('recovery_target_timeline') === 'latest',
        recoveryMinApplyDelayMs: this.settings.get('recovery_min_apply_delay'),
        archiveMode: this.settings.get('archive_mode'),
      }),
      wakeArchiver: () => this.wakeArchiver(),
      walRcv: this.walRcv,
      requestXLogStreaming: (startLsn, timeline, slotName, conninfo) => this.requestXLogStreaming(startLsn, timeline, slotName, conninfo),
      shutdownWalReceiver: () => this.shutdownWalReceiver(),
      forceWalReceiverReply: () => this.walReceiver?.receiver.forceReply(),
      beginHotStandby: () => this.sendPostmasterSignal('PMSIGNAL_BEGIN_HOT_STANDBY'),
      replayAdvanced: () => this.replayAdvanced(),
      promote: (recovery) => this.finishPromotion(recovery),
    };
  }

  /**
   * RequestXLogStreaming (walreceiverfuncs.c): records where to stream from; a stopped
   * walreceiver is marked STARTING and the postmaster gets PMSIGNAL_START_WALRECEIVER.
   */
  private requestXLogStreaming(startLsn: Lsn, timeline: number, slotName: string | null, conninfo: string): void {
    const w = this.walRcv;
    w.conninfo = conninfo;
    w.slotName = slotName ?? '';
    w.receiveStart = startLsn;
    w.receiveStartTli = timeline;
    w.flushedUpto = startLsn;
    w.receivedTli = timeline;
    if (this.walReceiver === null && w.status !== 'starting') {
      w.status = 'starting';
      w.startTime = Date.now();
      this.sendPostmasterSignal('PMSIGNAL_START_WALRECEIVER');
    }
  }

  /** SendPostmasterSignal: the postmaster handles it on its own turn, as its SIGUSR1 handler would. */
  sendPostmasterSignal(reason: PMSignalReason): void {
    this.pendingPmSignals.add(reason);
    setImmediate(() => this.processPmSignals());
  }

  /** sigusr1_handler: acts on the pending pmsignals. */
  private processPmSignals(): void {
    const pending = [...this.pendingPmSignals];
    this.pendingPmSignals.clear();
    for (const reason of pending) {
      if (reason === 'PMSIGNAL_START_WALRECEIVER') this.maybeStartWalReceiver();
      else if (reason === 'PMSIGNAL_BEGIN_HOT_STANDBY' && this.role === 'standby' && this.state === 'recovery') {
        this.log('LOG', 'database system is ready to accept read-only connections');
        this.state = 'ready';
        this.pidFile.setStatus('ready');
      }
    }
  }

  /** MaybeStartWalReceiver: only in recovery, only one, only when the startup component asked. */
  private maybeStartWalReceiver(): void {
    const recovery = this.recovery;
    if (recovery === null || this.walReceiver !== null || this.walRcv.status !== 'starting' || this.shuttingDown !== null) return;
    let target;
    try {
      target = parseConninfo(this.walRcv.conninfo);
    } catch (error) {
      this.log('LOG', `invalid primary_conninfo: ${(error as Error).message}`);
      this.walRcv.status = 'stopped';
      return;
    }
    const host = target.host ?? '127.0.0.1';
    const port = Number(target.port ?? 5433);
    this.walReceiverStarts++;
    this.log('LOG', `starting walreceiver for ${host}:${port} in answer to PMSIGNAL_START_WALRECEIVER`);
    const component = new WalReceiverComponent({
      shared: this.walRcv, host, port, applicationName: target.application_name ?? this.memberName,
      ...(target.user !== undefined ? { user: target.user } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      // A relative sslrootcert is the data directory's, as for PostgreSQL's walreceiver (its working directory).
      ...conninfoSslOptions(target, this.dataDir),
      dataDir: this.dataDir, segmentSize: recovery.segmentSize, systemId: recovery.control.systemId,
      replayPosition: () => recovery.replayEndLsn,
      wakeupRecovery: () => this.startup?.wakeupRecovery(),
      applyFeedbackExpected: () => this.startup?.lastCommitAskedRemoteApply === true,
      onFlushed: () => this.wakeCascadingWalSenders(),
      // archive_mode needs a restart: the running value, which a reload never changes.
      archiveMode: this.settings.get('archive_mode'),
      onArchiveNotify: () => this.wakeArchiver(),
      statusIntervalMs: () => this.settings.get('wal_receiver_status_interval'),
      receiverTimeoutMs: () => this.settings.get('wal_receiver_timeout'),
      connectTimeoutMs: 10_000,
      log: (level, message) => this.log(level, message),
    });
    this.walReceiver = component;
    component.start().then(
      () => undefined,
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        this.log('FATAL', message);
        if (error instanceof WalshipError && error.detail) this.log('DETAIL', error.detail);
        if (error instanceof WalshipError && error.hint) this.log('HINT', error.hint);
      },
    ).finally(() => {
      if (this.walReceiver === component) this.walReceiver = null;
      if (this.walRcv.status !== 'waiting') this.walRcv.status = 'stopped';
      this.startup?.wakeupRecovery();
    });
  }

  /** XLogShutdownWalRcv: stops the walreceiver and waits for it to exit. */
  private async shutdownWalReceiver(): Promise<void> {
    const component = this.walReceiver;
    if (this.walRcv.status === 'starting' && component === null) this.walRcv.status = 'stopped';
    if (component === null) return;
    await component.stopAndWait();
    this.walReceiver = null;
    this.walRcv.status = 'stopped';
  }

  private wakeCascadingWalSenders(): void {
    for (const wakeup of this.cascadeWakeups) wakeup();
    this.lsnWaiters.wakeup();
  }

  private replayAdvanced(): void {
    this.wakeCascadingWalSenders();
    this.checkpointer?.walAdvanced();
  }

  /** What WAIT FOR LSN reads on a standby; null on a primary. */
  private standbyPositions(): { write: Lsn; flush: Lsn; replay: Lsn } | null {
    const recovery = this.recovery;
    if (recovery === null) return null;
    const replay = recovery.replayEndLsn;
    const received = this.walRcv.receivedTli === recovery.replayTimeline;
    const flush = Math.max(replay, received ? this.walRcv.flushedUpto : 0) as Lsn;
    return { write: Math.max(flush, received ? this.walRcv.writtenUpto : 0) as Lsn, flush, replay };
  }

  /**
   * Waits until a standby has replayed `lsn` (read-your-writes), up to `timeoutMs`. A node that is
   * not (or no longer) in recovery answers at once: its reads see everything it replayed.
   */
  async waitForReplay(lsn: Lsn, timeoutMs: number): Promise<void> {
    const outcome = await this.lsnWaiters.waitFor(lsn, 'standby_replay', timeoutMs);
    if (outcome.status === 'timeout') throw LsnWaiters.outcomeError(lsn, 'standby_replay', outcome, false);
  }

  /**
   * Read-your-writes across timelines: an LSN written on `timeline` is in this node's history
   * only if that timeline is one of its own (or newer: a standby may follow it later) and did not
   * end before the LSN. Otherwise no wait can ever show it (the write was lost in a failover, or
   * made on a branch this node does not follow): throws at once.
   */
  checkLsnInHistory(lsn: Lsn, timeline: number): void {
    const history = this.recovery?.expectedTimelines ?? (this.database !== null ? this.primaryHistory(this.database.timeline) : null);
    if (history === null || history.length === 0) return;
    const newest = Math.max(...history.map((entry) => entry.tli));
    const entry = history.find((e) => e.tli === timeline);
    if (entry === undefined && timeline > newest) return;
    if (entry !== undefined && lsn <= entry.end) return;
    const detail = entry !== undefined
      ? `Timeline ${timeline} ended at ${formatLsn(entry.end)} in this node's history, before ${formatLsn(lsn)}; this node is on timeline ${newest}.`
      : `Timeline ${timeline} is not in this node's history (timelines ${history.map((e) => e.tli).join(', ')}).`;
    throw new WalshipError(ErrorCode.lsnNotOnTimeline, `WAL position ${formatLsn(lsn)} of timeline ${timeline} is not in this node's history`, {
      detail,
      hint: 'The write was made on a branch this node does not follow, or was lost in a failover: read it back from the current primary.',
    });
  }

  private primaryHistory(tli: number): TimeLineHistoryEntry[] {
    if (this.historyCache?.tli !== tli) this.historyCache = { tli, history: readTimeLineHistory(this.dataDir, tli) };
    return this.historyCache.history;
  }

  /** SIGUSR1 with the promote file, or `walship promote --node`: ends recovery with promotion. */
  requestPromotion(): boolean {
    fs.rmSync(path.join(this.dataDir, PROMOTE_SIGNAL_FILE), { force: true });
    if (this.role !== 'standby' || this.startup === null) return false;
    this.log('LOG', 'received promote request');
    this.startup.requestPromotion();
    return true;
  }

  /**
   * pg_promote: the same request as SIGUSR1 with the promote file, from a client session. With
   * `wait`, resolves once the node accepts writes (or fails after `timeoutMs`, the promotion
   * still going on, as pg_promote returns false then).
   */
  async promote(options: { wait: boolean; timeoutMs: number }): Promise<{ promoted: boolean; timeline: number }> {
    if (this.role !== 'standby' || this.startup === null) {
      throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'recovery is not in progress', {
        hint: 'Only a standby can be promoted; this node is already a primary.',
      });
    }
    const done = options.wait ? new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.promotionWaiters.delete(finished);
        resolve(false);
      }, options.timeoutMs);
      const finished = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.promotionWaiters.add(finished);
    }) : Promise.resolve(false);
    this.requestPromotion();
    const promoted = await done;
    return { promoted, timeline: this.currentTimeline() };
  }

  /** The end of a standby's recovery: a new timeline, writes accepted, a primary's components. */
  private async finishPromotion(recovery: WalRecovery): Promise<void> {
    await this.shutdownWalReceiver();
    // Read once the walreceiver's writer thread has written all it was given.
    const receivedUpTo = this.walRcv.writtenUpto;
    const others = this.components.filter((c) => c !== this.startup);
    await Promise.all(others.map((c) => c.stopAndWait()));
    // Cascading standbys reconnect and find the new timeline (end of their old one first).
    this.walSenders.closeAll('the upstream was promoted: reconnect to follow the new timeline');
    const db = await Database.finishRecovery(recovery, this.databaseOptions(), {
      promote: true, walReceivedUpTo: receivedUpTo, keepPartialSegment: this.settings.get('archive_mode') !== 'off',
    });
    // Taken over by the new Xlog, unless the settings no longer fit it.
    void this.preparedWalIo?.discard();
    this.preparedWalIo = null;
    this.recovery = null;
    this.startup = null;
    this.walRcv = newWalRcvData();
    this.lsnWaiters.wakeup();
    this.becomePrimary(db);
  }

  private controlData() {
    return (this.database?.control ?? this.recovery?.control)!;
  }

  private currentTimeline(): number {
    return this.database?.timeline ?? this.recovery?.replayTimeline ?? 1;
  }

  /** What a walsender may send: flushed WAL on a primary; received (or replayed) WAL on a standby. */
  private sendLimit(): Lsn {
    if (this.database !== null) return this.database.xlog.getFlushRecPtr();
    const recovery = this.recovery;
    if (recovery === null) return 0 as Lsn;
    const received = this.walRcv.receivedTli === recovery.replayTimeline ? this.walRcv.flushedUpto : 0;
    return Math.max(received, recovery.replayEndLsn) as Lsn;
  }

  /** A primary's direct sends (walsnd-direct.ts): the slot stays bound to the Xlog that armed it. */
  private armWalSndDirect(fd: number, sentLsn: Lsn): WalSndDirectSlot | null {
    const xlog = this.database?.xlog;
    if (xlog === undefined) return null;
    const slot = xlog.armWalSndDirect(fd, sentLsn);
    if (slot === null) return null;
    return { read: () => xlog.readWalSndDirect(slot), release: () => xlog.releaseWalSndDirect(slot) };
  }

  private registerWalSndWakeup(wakeup: () => void): () => void {
    if (this.database !== null) return this.database.xlog.registerWalSndWakeup(wakeup);
    this.cascadeWakeups.add(wakeup);
    return () => this.cascadeWakeups.delete(wakeup);
  }

  /** BASE_BACKUP: a consistent copy of this node's data directory (a primary's or a standby's), streamed on the socket. */
  private async sendBaseBackup(socket: WebSocket, request: { id: number; label: string; fast?: boolean; includeWal?: boolean }): Promise<void> {
    const source = this.database !== null ? this.primaryBackupSource(this.database) : this.standbyBackupSource();
    const started = performance.now();
    // Backpressure: frames go out back to back until BASE_BACKUP_BUFFERED_BYTES_MAX are in
    // flight; then the next one waits for the socket to drain below it.
    let inFlight = 0;
    let failure: Error | null = null;
    let drained: (() => void) | null = null;
    const send = async (frame: Buffer, onSent?: () => void): Promise<void> => {
      if (failure !== null) throw failure;
      inFlight += frame.length;
      socket.send(frame, (error) => {
        inFlight -= frame.length;
        // The frame's memory may be reused only once ws has handed it to the socket.
        if (error) failure = error;
        else onSent?.();
        if (drained !== null && (inFlight <= BASE_BACKUP_BUFFERED_BYTES_MAX || failure !== null)) {
          const wake = drained;
          drained = null;
          wake();
        }
      });
      if (inFlight > BASE_BACKUP_BUFFERED_BYTES_MAX) await new Promise<void>((resolve) => { drained = resolve; });
      if (failure !== null) throw failure;
    };
    const result = await sendBaseBackup(send, request.id, source, { label: request.label, fast: request.fast !== false, includeWal: request.includeWal !== false });
    const seconds = (performance.now() - started) / 1000;
    this.log('LOG', `base backup "${request.label}" sent from ${source.backupFrom}: ${(result.bytes / 1048576).toFixed(1)} MB in ${seconds.toFixed(2)} s, WAL ${formatLsn(result.startLsn)} to ${formatLsn(result.endLsn)}`);
  }

  /** do_pg_backup_start/stop on a primary: a forced checkpoint, full-page writes forced, WAL up to the insert position. */
  private primaryBackupSource(db: Database): BaseBackupSource {
    const history = readTimeLineHistory(this.dataDir, db.timeline);
    return {
      dataDir: this.dataDir,
      segmentSize: db.control.walSegmentSize,
      backupFrom: 'primary',
      startBackup: async () => {
        db.xlog.forcePageWrites++;
        try {
          const checkpoint = await this.requestCheckpoint();
          db.backupsRunning.add(checkpoint.redo);
          return {
            startLsn: checkpoint.redo, checkpointLsn: checkpoint.lsn, timeline: db.timeline,
            release: () => {
              db.xlog.forcePageWrites--;
              db.backupsRunning.delete(checkpoint.redo);
            },
          };
        } catch (error) {
          db.xlog.forcePageWrites--;
          throw error;
        }
      },
      stopBackup: async () => {
        const end = db.xlog.getInsertRecPtr();
        await db.xlog.xlogFlush(end);
        return end;
      },
      timelineOfSegment: (segNo) => findSegmentTimeline(this.dataDir, history, segNo, db.control.walSegmentSize),
    };
  }

  /**
   * A cascading base backup (standby-backup.ts): from a restartpoint, to the replay position,
   * refused if this standby is promoted meanwhile. The recovery is looked up at each step:
   * promotion sets it to null, a crash-restart replaces it.
   */
  private standbyBackupSource(): BaseBackupSource {
    const recovery = this.recovery;
    if (recovery === null) {
      throw new WalshipError(ErrorCode.cannotConnectNow, 'the database system is not ready for a base backup', { hint: 'Try again once the node is ready.' });
    }
    return standbyBackupSource({
      dataDir: this.dataDir,
      segmentSize: recovery.segmentSize,
      recovery: () => this.recovery,
      requestRestartPoint: () => this.requestCheckpoint(),
    });
  }

  /**
   * Why a replication connection (a walsender, BASE_BACKUP) is refused now, if it is: a standby
   * before its consistent point says so (CAC_NOTCONSISTENT), since a base backup of it is what
   * is usually being tried.
   */
  private replicationRefusal(): { message: string; detail?: string; hint?: string } | null {
    if (this.state === 'ready') return null;
    if (this.state !== 'recovery') return { message: 'the database system is shutting down' };
    if (this.role !== 'standby') return { message: 'the database system is not yet accepting connections' };
    return {
      message: 'the database system is not yet accepting connections',
      detail: 'Consistent recovery state has not been yet reached.',
      hint: 'Wait until the standby has replayed up to its minimum recovery point ("walship isready" then reports it accepting connections), and try again.',
    };
  }

  /** The replication commands, for replication sessions. */
  private replicationBackend(): ReplicationBackend {
    return {
      refusal: () => this.replicationRefusal(),
      authSettings: () => authSettingsOf(this.auth),
      ...(this.auth.throttle === undefined ? {} : { throttle: this.auth.throttle }),
      memberName: () => this.memberName,
      role: () => this.role,
      identifySystem: () => ({
        systemId: this.controlData().systemId.toString(), timeline: this.currentTimeline(), xlogPos: formatLsn(this.sendLimit()), dbname: null,
      }),
      timelineHistory: (timeline) => this.walSenders.timelineHistory(timeline),
      createSlot: (name, reserveWal) => slotsOnPrimary(this.walSenders.slots, this.role).create(name, reserveWal),
      dropSlot: (name) => slotsOnPrimary(this.walSenders.slots, this.role).drop(name),
      listSlots: () => ({ slots: this.role === 'primary' ? (this.walSenders.slots?.wireRows() ?? []) : [] }),
      startReplication: (socket: WebSocket, request, who, begin) => this.walSenders.startReplication(socket, request, who, begin),
      baseBackup: (socket, request) => this.sendBaseBackup(socket, request),
      flushBuffers: (request) => this.flushBuffersForReaders(request),
      listDataFiles: () => listDataFilesForReaders(this.dataDir),
      readDataFile: (request) => ({ path: request.path, offset: request.offset, ...readDataFileRange(this.dataDir, request.path, request.offset, request.length) }),
      pageChecksums: (request) => ({ relNode: request.relNode, startBlock: request.startBlock, ...readPageChecksums(this.dataDir, request.relNode, request.startBlock, request.maxBlocks) }),
      log: this.log,
    };
  }

  /**
   * flushBuffers, for `walship verify` and `walship rewind`, which read pages from disk: a
   * primary checkpoints (CHECKPOINT); a standby first waits until it has replayed `waitForLsn`,
   * then makes a restartpoint. A restartpoint writes nothing when no new checkpoint record was
   * replayed, so every dirty buffer left is then written too (on a standby each write first moves
   * the minimum recovery point, as any page write in recovery does). Returns how far the WAL had
   * gone when the last buffer was written.
   */
  private async flushBuffersForReaders(request: { waitForLsn?: string; timeoutMs?: number }): Promise<{ lsn: string; timeline: number; role: 'primary' | 'standby' }> {
    const waitFor = request.waitForLsn === undefined ? null : parseLsn(request.waitForLsn);
    if (this.recovery !== null && waitFor !== null) await this.waitForReplay(waitFor, request.timeoutMs ?? FLUSH_BUFFERS_WAIT_DEFAULT_MS);
    await this.requestCheckpoint();
    const recovery = this.recovery;
    const db = this.database;
    const pool = recovery?.pool ?? db?.pool;
    const smgr = recovery?.smgr ?? db?.smgr;
    if (pool === undefined || smgr === undefined) {
      throw new WalshipError(ErrorCode.cannotConnectNow, 'the database system is not ready to flush its buffers', { hint: 'Try again once the node is ready.' });
    }
    for (const block of pool.dirtyBlocks()) pool.flushBlock(block.relNode, block.blockNo);
    const lsn = recovery !== null ? recovery.replayEndLsn : db!.xlog.getFlushRecPtr();
    const timeline = this.currentTimeline();
    await smgr.fsyncAll();
    return { lsn: formatLsn(lsn), timeline, role: recovery !== null ? 'standby' : 'primary' };
  }

  private walBuffersBytes(): number {
    const configured = this.settings.get('wal_buffers');
    const bytes = configured > 0 ? configured : Math.max(64 * 1024, Math.floor(this.settings.get('shared_buffers') / 32));
    // At least 4 pages, a whole number of pages.
    return Math.max(4 * 8192, bytes - (bytes % 8192));
  }

  private checkpointerSettings() {
    return {
      checkpointTimeoutMs: this.settings.get('checkpoint_timeout'),
      maxWalSizeBytes: this.settings.get('max_wal_size'),
      completionTarget: this.settings.get('checkpoint_completion_target'),
    };
  }

  // ---- archiver -------------------------------------------------------------------------------

  /**
   * StartArchiver. Unlike the other components, an archiver that exits (a FATAL archive_command
   * outcome, or any error) is not a node crash: the postmaster logs its exit and starts a new
   * one, at most every PGARCH_RESTART_INTERVAL, as long as this instance runs.
   */
  private startArchiver(): void {
    const archiver = new Archiver({ dataDir: this.dataDir, archiveCommand: this.settings.get('archive_command'), stats: this.archiverStats, log: this.log });
    const components = this.components;
    components.push(archiver);
    const startedAt = performance.now();
    archiver.start().catch((error: unknown) => {
      if (archiver.isStopping) return;
      const how = error instanceof ArchiverExit ? `exited with exit code ${error.exitCode}`
        : `was terminated by exception: ${error instanceof Error ? error.message : String(error)}`;
      this.log('LOG', `archiver process (PID ${process.pid}) ${how}`);
      const index = components.indexOf(archiver);
      if (index >= 0) components.splice(index, 1);
      const timer = setTimeout(() => {
        // Only into the same running instance: not during or after a shutdown, a crash-restart or
        // a promotion (which stop the instance's components).
        const running = this.components === components && components.every((c) => !c.isStopping);
        if (running && this.shuttingDown === null && this.restarting === null) this.startArchiver();
      }, Math.max(0, PGARCH_RESTART_INTERVAL_MS - (performance.now() - startedAt)));
      timer.unref();
    });
  }

  /** PMSIGNAL_WAKEN_ARCHIVER. */
  private wakeArchiver(): void {
    for (const component of this.components) if (component instanceof Archiver) component.latch.set();
  }

  /** XLogArchiveNotify's outcome for `fileName`: wake the archiver, or say why the .ready is missing. */
  private archiveNotified(fileName: string, error: Error | null): void {
    if (error !== null) this.log('LOG', `could not create archive status file "pg_wal/archive_status/${fileName}.ready": ${error.message}`);
    else this.wakeArchiver();
  }

  /** After promotion: old segments marked as archived elsewhere, the new history file `.ready`. */
  private archiveStatusAtPromotion(db: Database): void {
    const parent = readTimeLineHistory(this.dataDir, db.timeline)[1];
    if (parent === undefined) return;
    try {
      const notified = archiveStatusAtPromotion({
        dataDir: this.dataDir, segmentSize: db.control.walSegmentSize, archiveMode: this.settings.get('archive_mode'),
        timeline: db.timeline, parentTimeline: parent.tli, switchPoint: parent.end,
        switchSegNo: Math.floor(parent.end / db.control.walSegmentSize),
      });
      for (const name of notified) this.log('DEBUG', `marked "${name}" ready for archiving`);
    } catch (error) {
      this.log('LOG', `could not update archive status after promotion: ${(error as Error).message}`);
    }
  }

  /**
   * Crash recovery of an encrypted cluster ended on a new timeline (a torn tail): its history file
   * is archived as a promotion's is, so that archive recovery can follow the switch. The old
   * timeline's switch segment became `.partial`, which checkpoints archive before removing it.
   */
  private archiveHistoryAfterCrashSwitch(db: Database): void {
    const name = historyFileName(db.timeline);
    try {
      xlogArchiveNotify(this.dataDir, name);
      this.log('DEBUG', `marked "${name}" ready for archiving`);
    } catch (error) {
      this.log('LOG', `could not create archive status file "pg_wal/archive_status/${name}.ready": ${(error as Error).message}`);
    }
  }

  /** pg_stat_archiver, for the status command. */
  archiverStatus(): ReturnType<typeof archiverStatusView> {
    return archiverStatusView(this.archiverStats);
  }

  /** StartChildProcess: runs a component; its crash is the node's crash. */
  private startChild(component: Component): void {
    component.start().catch((error: unknown) => {
      if (component.isStopping && this.shuttingDown !== null) return;
      this.crash(component.kind, error);
    });
  }

  /**
   * A component crashed: end all sessions, stop everything, recover, and start again
   * (HandleChildCrash, then the postmaster's reinitialization).
   */
  crash(who: string, error: unknown): void {
    if (this.restarting !== null || this.shuttingDown !== null) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.log('LOG', `${who} process (PID ${process.pid}) was terminated by exception: ${reason}`);
    if (error instanceof Error && error.stack) this.log('DETAIL', error.stack.split('\n').slice(1, 4).map((l) => l.trim()).join(' | '));
    this.log('LOG', 'terminating any other active server processes');
    this.restarting = this.reinitialize().finally(() => { this.restarting = null; });
  }

  private async reinitialize(): Promise<void> {
    this.state = 'crashed';
    this.pidFile.setStatus('starting');
    this.listener?.closeAllSessions('terminating connection because of crash of another server process');
    this.walSenders.closeAll('terminating connection because of crash of another server process');
    this.stopSyncRep();
    await this.shutdownWalReceiver();
    await this.stopComponents();
    const db = this.database;
    this.database = null;
    this.checkpointer = null;
    this.walWriter = null;
    this.startup = null;
    await db?.abort().catch(() => undefined);
    this.recovery?.close();
    this.recovery = null;
    await this.discardPreparedWalIo();
    this.crashRestarts++;
    this.log('LOG', 'all server processes terminated; reinitializing');
    try {
      await this.startInstance();
    } catch (error) {
      this.reportFatal(error);
      this.log('LOG', 'startup process failed during crash recovery; shutting down');
      await this.teardown();
      this.exitResolve?.(1);
    }
  }

  private async stopComponents(): Promise<void> {
    const components = this.components;
    this.components = [];
    await Promise.all(components.map((c) => c.stopAndWait()));
  }

  /**
   * Whether sessions that are already connected may still run requests. A smart shutdown
   * (SIGTERM) refuses new sessions but lets the open ones work until they end, as PostgreSQL's
   * does; `state` is already `stopping` then (that is what refuses new sessions), so the
   * backend asks this instead of `state === 'ready'` alone. Before this, every request of an
   * open session failed with "the database system is shutting down" during a smart shutdown,
   * which made smart no different from fast for a connected client.
   */
  get servesOpenSessions(): boolean {
    return (this.database !== null || this.recovery !== null) && (this.state === 'ready' || (this.smartWaitingForSessions && this.shuttingDown === 'smart'));
  }

  /** What autovacuum has done since this instance started (pg_stat_all_tables' vacuum counts, in pages). */
  autovacuumCounts(): { pagesCompacted: number; pagesMerged: number; pagesFreed: number } {
    const av = this.components.find((c): c is AutoVacuum => c instanceof AutoVacuum);
    return av === undefined ? { pagesCompacted: 0, pagesMerged: 0, pagesFreed: 0 } : { ...av.counts };
  }

  /** `walship checkpoint`: an immediate, forced checkpoint, waited for. */
  async requestCheckpoint(): Promise<CheckpointResult> {
    if (this.checkpointer === null || !this.servesOpenSessions) {
      throw new WalshipError(ErrorCode.cannotConnectNow, 'the database system is not ready for a checkpoint', { hint: 'Try again once the node is ready.' });
    }
    return this.checkpointer.request(CheckpointFlags.immediate | CheckpointFlags.force | CheckpointFlags.wait);
  }

  // ---- settings ------------------------------------------------------------------------------

  async setSetting(name: string, value: string): Promise<{ restartRequired: boolean }> {
    const canonical = lookupSetting(name);
    setConfigValue(this.dataDir, canonical, value);
    this.reload();
    const context = settingDefinition(canonical).context;
    return { restartRequired: context === 'postmaster' || context === 'init' };
  }

  showSetting(name: string): string {
    return this.settings.text(lookupSetting(name));
  }

  /** SIGHUP: re-reads walship.conf and applies what can change without a restart. */
  reload(): void {
    let next: Settings;
    try {
      next = readConfigFile(this.dataDir);
    } catch (error) {
      this.log('LOG', `configuration file "${this.dataDir}/walship.conf" contains errors; no changes were applied`);
      this.reportFatal(error);
      return;
    }
    const previous = this.settings;
    const changed = changedSettings(previous, next);
    for (const { name, context } of changed) {
      if (context === 'postmaster' || context === 'init') {
        this.log('LOG', `parameter "${name}" cannot be changed without restarting the server`);
      } else {
        this.log('LOG', `parameter "${name}" changed to "${next.text(name)}"`);
      }
    }
    // Restart-only settings keep their running values until the restart.
    let applied = next;
    for (const { name, context } of changed) {
      if (context === 'postmaster' || context === 'init') applied = applied.withValue(name, previous.get(name), previous.source(name));
    }
    this.settings = applied;
    this.applySettings();
    this.reloadSsl();
    // StartupRequestWalReceiverRestart: a standby repointed at another upstream reconnects.
    if (this.startup !== null) {
      this.startup.reconfigure();
      if (changed.some(({ name }) => name === 'primary_conninfo' || name === 'primary_slot_name')) this.startup.requestWalReceiverRestart();
    }
  }

  private applySettings(): void {
    const s = this.settings;
    const db = this.database;
    if (db !== null) {
      db.synchronousCommit = s.get('synchronous_commit');
      db.walKeepBytes = s.get('wal_keep_size');
      db.xlog.fullPageWrites = s.get('full_page_writes');
      db.xlog.setFsync(s.get('fsync'));
    }
    this.applyAuth();
    this.lease.required = s.get('require_primary_lease');
    this.syncRep?.configure(s.get('synchronous_standby_names'));
    for (const component of this.components) {
      if (component instanceof WalWriter) component.delayMs = s.get('wal_writer_delay');
      if (component instanceof BgWriter) {
        component.delayMs = s.get('bgwriter_delay');
        component.maxPages = s.get('bgwriter_lru_maxpages');
        component.lruMultiplier = s.get('bgwriter_lru_multiplier');
      }
      if (component instanceof Checkpointer) component.settings = this.checkpointerSettings();
      if (component instanceof AutoVacuum) {
        component.napTimeMs = s.get('autovacuum_naptime');
        component.enabled = s.get('autovacuum');
      }
      if (component instanceof Archiver) component.archiveCommand = s.get('archive_command');
      component.latch.set();
    }
    this.walSenders.configReloaded();
    this.logger.configure({
      directory: s.get('log_directory'), minLevel: s.get('log_min_messages'),
      rotationSizeBytes: s.get('log_rotation_size'), rotationAgeMs: s.get('log_rotation_age'),
    });
  }

  // ---- metrics -------------------------------------------------------------------------------

  metrics(): string {
    return renderNodeMetrics(collectNodeMetrics(this, this.components));
  }

  // ---- shutdown ------------------------------------------------------------------------------

  private installSignalHandlers(): void {
    process.on('SIGTERM', () => void this.shutdown('smart'));
    process.on('SIGINT', () => void this.shutdown('fast'));
    process.on('SIGQUIT', () => void this.shutdown('immediate'));
    process.on('SIGHUP', () => {
      this.log('LOG', 'received SIGHUP, reloading configuration files');
      this.reload();
    });
    // pg_ctl promote: the promote file, then SIGUSR1 (CheckPromoteSignal).
    process.on('SIGUSR1', () => {
      if (fs.existsSync(path.join(this.dataDir, PROMOTE_SIGNAL_FILE))) this.requestPromotion();
    });
  }

  async shutdown(mode: ShutdownMode): Promise<void> {
    // A later, faster request overrides a slower one in progress (as PostgreSQL's do).
    const order: ShutdownMode[] = ['smart', 'fast', 'immediate'];
    if (this.shuttingDown !== null && order.indexOf(mode) <= order.indexOf(this.shuttingDown)) return;
    const upgrading = this.shuttingDown !== null;
    this.shuttingDown = mode;
    this.log('LOG', `received ${mode} shutdown request`);
    if (upgrading && mode !== 'immediate') return;
    this.pidFile.setStatus('stopping');
    if (mode === 'smart') {
      this.state = 'stopping';
      this.smartWaitingForSessions = true;
      await this.listener?.waitForSessionsToEnd?.(() => this.shuttingDown !== 'smart');
      this.smartWaitingForSessions = false;
    }
    this.state = 'stopping';
    if (this.shuttingDown === 'immediate') {
      this.listener?.closeAllSessions('terminating connection due to immediate shutdown command');
      this.walSenders.closeAll('terminating connection due to immediate shutdown command');
      this.stopSyncRep();
      await this.shutdownWalReceiver();
      await this.stopComponents();
      await this.database?.abort().catch(() => undefined);
      this.database = null;
      this.recovery?.close();
      this.recovery = null;
    } else {
      if (mode !== 'smart') this.log('LOG', 'aborting any active transactions');
      this.listener?.closeAllSessions('terminating connection due to administrator command');
      while (this.restarting !== null) await this.restarting;
      await this.shutdownWalReceiver();
      await this.stopComponents();
      this.log('LOG', 'shutting down');
      try {
        if (this.database !== null) {
          await this.database.shutdown();
        } else if (this.recovery !== null) {
          await this.shutdownRestartPoint(this.recovery);
        }
        // WalSndInitStopping + WalSndWaitStopping, after the shutdown checkpoint: connected
        // standbys get every record, the checkpoint included, before the walsenders go, so a
        // standby promoted afterwards is never behind this primary.
        this.walSndsStopping = true;
        await this.walSenders.waitStopping(Math.min(this.settings.get('wal_sender_timeout'), 10_000));
      } catch (error) {
        this.reportFatal(error);
        await this.database?.abort().catch(() => undefined);
      }
      this.walSenders.closeAll('terminating connection due to administrator command');
      this.stopSyncRep();
      this.database = null;
      this.recovery?.close();
      this.recovery = null;
      this.log('LOG', 'database system is shut down');
    }
    await this.teardown();
    this.exitResolve?.(0);
  }

  /** A standby's shutdown: a last restartpoint, and the control file says "shut down in recovery". */
  private async shutdownRestartPoint(recovery: WalRecovery): Promise<void> {
    await createRestartPoint({
      dataDir: this.dataDir, control: recovery.control, pool: recovery.pool, smgr: recovery.smgr,
      lastCheckpointSeen: recovery.lastCheckpointSeen, segmentSize: recovery.segmentSize,
      walKeepBytes: this.settings.get('wal_keep_size'), log: this.log,
    });
    // Pages written after the restart point are covered by the minimum recovery point.
    for (const block of recovery.pool.dirtyBlocks()) recovery.pool.flushBlock(block.relNode, block.blockNo);
    await recovery.smgr.fsyncAll();
    recovery.control.state = DbState.shutdownedInRecovery;
    writeControlFile(this.dataDir, recovery.control);
  }

  /** The primary instance ends: its commits' waits end too (their sessions are told). */
  private stopSyncRep(): void {
    this.syncRep?.close();
    this.syncRep = null;
    this.walSenders.attachSyncRep(null);
  }

  private async discardPreparedWalIo(): Promise<void> {
    const prepared = this.preparedWalIo;
    this.preparedWalIo = null;
    await prepared?.discard();
  }

  private async teardown(): Promise<void> {
    await this.discardPreparedWalIo();
    await this.listener?.close().catch(() => undefined);
    this.listener = null;
    await this.metricsServer?.close().catch(() => undefined);
    this.metricsServer = null;
    this.pidFile.release();
    this.logger.close();
  }
}

export { formatLsn };

/** How long flushBuffers waits for a standby to replay the position asked for, when not told. */
const FLUSH_BUFFERS_WAIT_DEFAULT_MS = 60_000;

/** listDataFiles: the files a rewind or verify reads, with names the wire carries (as a base backup's). */
function listDataFilesForReaders(dataDir: string): { files: Array<{ path: string; size: number }> } {
  const files = listDataFiles(dataDir).filter((file) => backupPathProblem(file.path) === null);
  if (files.length > MAX_LISTED_DATA_FILES) {
    throw new WalshipError(ErrorCode.invalidParameter, `the data directory holds ${files.length} files, more than one listing carries (${MAX_LISTED_DATA_FILES})`, {
      hint: 'Remove stray files from the data directory, or lower wal_keep_size so that fewer WAL segments are kept.',
    });
  }
  return { files };
}
