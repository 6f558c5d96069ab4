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
import { CheckpointFlags, Database, ErrorCode, WalshipError, formatLsn, readControlFile, type CheckpointResult, type LogFunction } from '@walship/engine';
import { Component } from './component.js';
import { AutoVacuum } from './components/autovacuum.js';
import { BgWriter } from './components/bg-writer.js';
import { Checkpointer } from './components/checkpointer.js';
import { WalWriter } from './components/wal-writer.js';
import type { ServerState } from './backend.js';
import { Faults } from './faults.js';
import { resolveListenAddress, startListener, type Listener } from './listener.js';
import { startMetricsServer, type MetricsServer } from './metrics-http.js';
import type { SessionAuth } from './session.js';
import { Logger } from './logger.js';
import { NodeBackend } from './node-backend.js';
import { PidFile } from './pidfile.js';
import { changedSettings, readConfigFile, setConfigValue, lookupSetting, settingDefinition, type Settings } from './settings/index.js';

export type ShutdownMode = 'smart' | 'fast' | 'immediate';

export interface PostmasterOptions {
  dataDir: string;
  foreground: boolean;
}

export class Postmaster {
  readonly dataDir: string;
  settings: Settings;
  state: ServerState = 'starting';
  database: Database | null = null;
  readonly startedAt = Date.now();
  crashRestarts = 0;
  private readonly logger: Logger;
  private readonly pidFile: PidFile;
  private listener: Listener | null = null;
  private metricsServer: MetricsServer | null = null;
  /** Read by sessions at each handshake; a reload changes the password in place. */
  private readonly auth: SessionAuth = {};
  private readonly faults: Faults;
  private readonly foreground: boolean;
  private walWriter: WalWriter | null = null;
  private components: Component[] = [];
  private checkpointer: Checkpointer | null = null;
  private shuttingDown: ShutdownMode | null = null;
  private smartWaitingForSessions = false;
  private restarting: Promise<void> | null = null;
  private exitResolve: ((code: number) => void) | null = null;
  private readonly backend = new NodeBackend(this);

  constructor(options: PostmasterOptions) {
    this.dataDir = options.dataDir;
    this.settings = readConfigFile(options.dataDir);
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
    this.applyAuth();
  }

  private applyAuth(): void {
    const password = this.settings.get('password');
    if (password) this.auth.password = password;
    else delete this.auth.password;
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
      this.listener = await startListener({
        port, host: this.listenAddress(), backend: this.backend, auth: this.auth,
        maxConnections: this.settings.get('max_connections'),
        log: (level, message) => this.log(level as 'LOG', message),
      });
      const metricsPort = this.settings.get('metrics_port');
      if (metricsPort > 0) {
        this.metricsServer = await startMetricsServer({ port: metricsPort, host: this.listenAddress(), backend: this.backend, log: this.log });
        this.log('LOG', `serving /metrics and /healthz on ${this.listenAddress()}:${metricsPort}`);
      }
      await this.startInstance();
      this.pidFile.setStatus('ready');
      if (!this.foreground) this.logger.toStderr = false;
    } catch (error) {
      this.reportFatal(error);
      await this.teardown();
      return 1;
    }
    return exited;
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

  /** The startup component's work (StartupXLOG), then the other components. */
  private async startInstance(): Promise<void> {
    this.state = 'recovery';
    const s = this.settings;
    const db = await Database.open({
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
    });
    this.database = db;
    db.xlog.onFailure((error) => this.crash('wal writer', error));
    this.checkpointer = new Checkpointer(db, this.checkpointerSettings());
    this.walWriter = new WalWriter(db, s.get('wal_writer_delay'), this.faults);
    this.components = [
      this.walWriter,
      this.checkpointer,
      new BgWriter(db, s.get('bgwriter_delay'), s.get('bgwriter_lru_maxpages')),
      new AutoVacuum(db, s.get('autovacuum_naptime'), s.get('autovacuum'), this.log),
    ];
    for (const component of this.components) this.startChild(component);
    this.state = 'ready';
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
    await this.stopComponents();
    const db = this.database;
    this.database = null;
    this.checkpointer = null;
    this.walWriter = null;
    await db?.abort().catch(() => undefined);
    this.crashRestarts++;
    this.log('LOG', 'all server processes terminated; reinitializing');
    try {
      await this.startInstance();
      this.pidFile.setStatus('ready');
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
    return this.database !== null && (this.state === 'ready' || (this.smartWaitingForSessions && this.shuttingDown === 'smart'));
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
    for (const component of this.components) {
      if (component instanceof WalWriter) component.delayMs = s.get('wal_writer_delay');
      if (component instanceof BgWriter) {
        component.delayMs = s.get('bgwriter_delay');
        component.maxPages = s.get('bgwriter_lru_maxpages');
      }
      if (component instanceof Checkpointer) component.settings = this.checkpointerSettings();
      if (component instanceof AutoVacuum) {
        component.napTimeMs = s.get('autovacuum_naptime');
        component.enabled = s.get('autovacuum');
      }
      component.latch.set();
    }
    this.logger.configure({
      directory: s.get('log_directory'), minLevel: s.get('log_min_messages'),
      rotationSizeBytes: s.get('log_rotation_size'), rotationAgeMs: s.get('log_rotation_age'),
    });
  }

  // ---- metrics -------------------------------------------------------------------------------

  metrics(): string {
    const db = this.database;
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, value: number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    metric('walship_up', 'gauge', 'Whether the node accepts connections (1) or not (0).', this.state === 'ready' ? 1 : 0);
    metric('walship_crash_restarts_total', 'counter', 'Crash-restarts since the postmaster started.', this.crashRestarts);
    if (db !== null) {
      const wal = db.xlog.stats();
      metric('walship_commits_total', 'counter', 'Transactions committed.', db.stats.commits);
      metric('walship_wal_insert_lsn_bytes', 'gauge', 'WAL insert position, in bytes.', db.xlog.getInsertRecPtr());
      metric('walship_wal_flush_lsn_bytes', 'gauge', 'WAL flush position, in bytes.', db.xlog.getFlushRecPtr());
      metric('walship_wal_fsyncs_total', 'counter', 'WAL fdatasync calls.', wal.fsyncs);
      metric('walship_wal_written_bytes_total', 'counter', 'WAL bytes written.', wal.bytesWritten);
      metric('walship_wal_records_total', 'counter', 'WAL records inserted.', wal.records);
    }
    return lines.join('\n') + '\n';
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
      await this.stopComponents();
      await this.database?.abort().catch(() => undefined);
      this.database = null;
    } else {
      if (mode !== 'smart') this.log('LOG', 'aborting any active transactions');
      this.listener?.closeAllSessions('terminating connection due to administrator command');
      while (this.restarting !== null) await this.restarting;
      await this.stopComponents();
      this.log('LOG', 'shutting down');
      try {
        await this.database?.shutdown();
      } catch (error) {
        this.reportFatal(error);
        await this.database?.abort().catch(() => undefined);
      }
      this.database = null;
      this.log('LOG', 'database system is shut down');
    }
    await this.teardown();
    this.exitResolve?.(0);
  }

  private async teardown(): Promise<void> {
    await this.listener?.close().catch(() => undefined);
    this.listener = null;
    await this.metricsServer?.close().catch(() => undefined);
    this.metricsServer = null;
    this.pidFile.release();
    this.logger.close();
  }
}

export { formatLsn };
