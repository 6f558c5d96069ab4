/**
 * The walreceiver's side of its write-and-fsync thread (wal-receive-worker.ts): hands received WAL
 * over, and learns what became written and flushed. `written` and `flushed` only ever move on the
 * thread's report, so a standby never reports or replays WAL its disk does not hold.
 *
 * `queuedBytes` is what was handed over and not yet written; past WAL_RECEIVE_QUEUE_MAX_BYTES the
 * walreceiver stops reading its socket until the thread catches up, so a slow disk pushes back
 * on the upstream instead of filling this node's memory.
 */
import { Worker } from 'node:worker_threads';
import { walKeyData } from '../crypto/registry.js';
import type { Lsn } from '../lsn.js';
import type { ArchiveMode, ArchiveStatus } from './archive-status.js';
import type { WalReceiveWorkerData, WalReceiveWorkerReport, WalReceiveWorkerRequest } from './wal-receive-worker.js';

/** Received WAL handed to the writer thread and not yet written, above which reading pauses. */
export const WAL_RECEIVE_QUEUE_MAX_BYTES = 16 * 1024 * 1024;

/** A frame's header and padding: a buffer with at most this much besides the WAL is moved, not copied. */
const TRANSFER_SLACK_BYTES = 256;

export interface WalReceiveWriterOptions {
  dataDir: string;
  timeline: number;
  segmentSize: number;
  startLsn: Lsn;
  archiveMode: ArchiveMode;
  /** The thread wrote and/or fsynced more; `flushed` tells whether the flushed position moved. */
  onProgress: (written: Lsn, flushed: Lsn, flushMoved: boolean) => void;
  /** A finished segment was given its archive status (or writing the status file failed). */
  onStatus?: (fileName: string, status: ArchiveStatus, error: string | null) => void;
  /** A write or fsync failed: nothing more is written; the walreceiver must end. */
  onFailure: (error: Error) => void;
}

export class WalReceiveWriter {
  written: Lsn;
  flushed: Lsn;
  /** Bytes handed over and not yet reported written. */
  queuedBytes = 0;
  private handedOverEnd: number;
  private readonly worker: Worker;
  private failure: Error | null = null;
  private pendingEndOfTimeline: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  private closed: (() => void) | null = null;

  constructor(private readonly options: WalReceiveWriterOptions) {
    this.written = options.startLsn;
    this.flushed = options.startLsn;
    this.handedOverEnd = options.startLsn;
    const data: WalReceiveWorkerData = {
      dataDir: options.dataDir, timeline: options.timeline, segmentSize: options.segmentSize, startLsn: options.startLsn, archiveMode: options.archiveMode,
      ...walKeyData(options.dataDir),
    };
    this.worker = new Worker(workerUrl(), { workerData: data });
    this.worker.on('message', (report: WalReceiveWorkerReport) => this.onReport(report));
    this.worker.on('error', (error) => this.failed(error));
    this.worker.on('exit', () => {
      if (this.closed === null && this.closing === null) this.failed(new Error('the WAL receive thread exited'));
      this.closed?.();
      this.pendingEndOfTimeline?.();
    });
  }

  /**
   * XLogWalRcvWrite: `data` at `dataStart`. With `owned`, the caller gives up the memory under
   * `data`: when `data` fills nearly all of its ArrayBuffer (a received frame of its own, as ws
   * allocates large ones), that buffer moves to the thread without a copy; otherwise it is copied.
   */
  write(dataStart: Lsn, data: Buffer, owned = false): void {
    if (this.failure !== null || this.closing !== null) return;
    let view: Uint8Array;
    // Only a buffer that `data` ends and nearly fills: bytes after it could be the next frame's,
    // still to be read, and a buffer pooled with other frames is not ours to move.
    if (owned && data.buffer instanceof ArrayBuffer && data.byteOffset + data.length === data.buffer.byteLength && data.byteOffset <= TRANSFER_SLACK_BYTES) {
      view = new Uint8Array(data.buffer, data.byteOffset, data.length);
    } else {
      view = new Uint8Array(data.length);
      view.set(data);
    }
    const request: WalReceiveWorkerRequest = { type: 'write', start: dataStart, data: view };
    this.worker.postMessage(request, [view.buffer as ArrayBuffer]);
    this.queuedBytes += data.length;
    this.handedOverEnd = Math.max(this.handedOverEnd, dataStart + data.length);
  }

  /** The upstream ended the timeline: flushed, and its last segment finished and marked. */
  endOfTimeline(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.pendingEndOfTimeline = () => {
        this.pendingEndOfTimeline = null;
        if (this.failure !== null) reject(this.failure);
        else resolve();
      };
      this.worker.postMessage({ type: 'endOfTimeline' } satisfies WalReceiveWorkerRequest);
    });
  }

  /** XLogWalRcvClose at the end of streaming: everything handed over is flushed, the thread ends. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.closed = resolve;
      if (this.failure !== null) {
        // The thread may have exited already (its exit event gone by): wait for the terminate.
        void this.worker.terminate().then(() => resolve(), () => resolve());
        return;
      }
      this.worker.postMessage({ type: 'close' } satisfies WalReceiveWorkerRequest);
    });
    return this.closing;
  }

  /** Stops the thread without waiting (a node's immediate shutdown). */
  terminate(): void {
    void this.worker.terminate();
  }

  private onReport(report: WalReceiveWorkerReport): void {
    switch (report.type) {
      case 'progress': {
        const flushMoved = report.flushed > this.flushed;
        this.written = report.written as Lsn;
        this.flushed = report.flushed as Lsn;
        this.queuedBytes = Math.max(0, this.handedOverEnd - this.written);
        this.options.onProgress(this.written, this.flushed, flushMoved);
        if (report.after === 'endOfTimeline') this.pendingEndOfTimeline?.();
        if (report.after === 'close') this.closed?.();
        break;
      }
      case 'status':
        this.options.onStatus?.(report.fileName, report.status, report.error);
        break;
      case 'failed':
        this.failed(new Error(report.message));
        break;
    }
  }

  private failed(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.options.onFailure(error);
    this.pendingEndOfTimeline?.();
    void this.worker.terminate();
  }
}

/** The thread's compiled file; under vitest the sources are TypeScript, so use the build output. */
function workerUrl(): URL {
  if (import.meta.url.endsWith('.ts')) return new URL('../../dist/wal/wal-receive-worker.js', import.meta.url);
  return new URL('./wal-receive-worker.js', import.meta.url);
}
