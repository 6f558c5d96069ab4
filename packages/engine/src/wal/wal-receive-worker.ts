/**
 * The walreceiver's write-and-fsync thread. In PostgreSQL the walreceiver is a process of its own,
 * so its writes and fdatasyncs run beside the startup process's replay. Here both would share the
 * main thread: during a catch-up a third of it went to writing, zero-filling new segments and
 * fsyncing. This thread runs WalReceiveFiles (the same synchronous code, tested on its own) and
 * leaves replay the main thread.
 *
 * Protocol, in order on one port (see wal-receive-writer.ts for the other end):
 * - `write` {start, data}: written at once; after the messages that arrived together, everything
 *   written is fdatasynced (XLogWalRcvFlush after the receive loop) and reported as `progress`;
 * - `endOfTimeline`: flushes, finishes the timeline's last segment, reports `progress`;
 * - `close`: flushes, closes, reports `progress` with `closed` and exits.
 * An I/O error is reported once as `failed` and ends the thread: the walreceiver ends with it,
 * and nothing after the failure is reported as written or flushed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WalCipher } from '../crypto/wal-cipher.js';
import type { Lsn } from '../lsn.js';
import type { ArchiveMode, ArchiveStatus } from './archive-status.js';
import { WalReceiveFiles } from './wal-receive-files.js';

export interface WalReceiveWorkerData {
  dataDir: string;
  timeline: number;
  segmentSize: number;
  startLsn: number;
  archiveMode: ArchiveMode;
  /** The WAL key of an encrypted data directory (absent: not encrypted). */
  walKey?: Uint8Array;
}

export type WalReceiveWorkerRequest =
  | { type: 'write'; start: number; data: Uint8Array }
  | { type: 'endOfTimeline' }
  | { type: 'close' };

export type WalReceiveWorkerReport =
  /** `after`: the request it answers (`endOfTimeline`, `close`), or `write` for a batch of writes. */
  | { type: 'progress'; written: number; flushed: number; after: 'write' | 'endOfTimeline' | 'close' }
  | { type: 'status'; fileName: string; status: ArchiveStatus; error: string | null }
  | { type: 'failed'; message: string };

const port = parentPort!;
const data = workerData as WalReceiveWorkerData;
const files = new WalReceiveFiles(data.dataDir, data.timeline, data.segmentSize, data.startLsn as Lsn, {
  mode: data.archiveMode,
  onStatus: (fileName, status, error) => post({ type: 'status', fileName, status, error: error === null ? null : error.message }),
}, data.walKey === undefined ? null : new WalCipher(Buffer.from(data.walKey)));
let failed = false;
let flushScheduled = false;
let reported = { written: -1, flushed: -1 };

function post(report: WalReceiveWorkerReport): void {
  port.postMessage(report);
}

function report(after: 'write' | 'endOfTimeline' | 'close'): void {
  if (after === 'write' && files.written === reported.written && files.flushed === reported.flushed) return;
  reported = { written: files.written, flushed: files.flushed };
  post({ type: 'progress', written: files.written, flushed: files.flushed, after });
}

function fail(error: unknown): void {
  failed = true;
  post({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
  port.close();
}

function flushNow(): void {
  flushScheduled = false;
  if (failed) return;
  try {
    // What was written is reported before the fsync, so that remote_write waiters need not wait for it.
    report('write');
    files.flush();
    report('write');
  } catch (error) {
    fail(error);
  }
}

port.on('message', (request: WalReceiveWorkerRequest) => {
  if (failed) return;
  try {
    switch (request.type) {
      case 'write':
        files.write(request.start as Lsn, Buffer.from(request.data.buffer, request.data.byteOffset, request.data.byteLength));
        // Messages already queued are delivered before an immediate runs: one fsync covers them all.
        if (!flushScheduled) {
          flushScheduled = true;
          setImmediate(flushNow);
        }
        break;
      case 'endOfTimeline':
        files.endOfTimeline();
        report('endOfTimeline');
        break;
      case 'close':
        files.close();
        report('close');
        port.close();
        break;
    }
  } catch (error) {
    fail(error);
  }
});
