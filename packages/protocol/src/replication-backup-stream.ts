/**
 * BackupStreamChecker: the order of a base backup stream, checked message by message on the
 * receiving side, so that a broken or hostile walsender cannot make `walship basebackup` write
 * more than it announced or mix files. Each message is already valid on its own (the codec
 * checked its fields and paths); this adds what only the sequence shows:
 *
 * 1. `backupStart` comes first and once; every message carries the `baseBackup` request's id.
 * 2. A file's chunks follow its `backupFile`, name the same path, and are contiguous: each starts
 *    where the previous ended, and together they are exactly the announced size (so a chunk
 *    never writes past the size, and a file is never left short).
 * 3. A path is sent once.
 * 4. `backupEnd` comes after the last file is complete, and nothing after it.
 *
 * `totalBytes` and `fileCount` of `backupStart` are progress estimates (as pg_basebackup's), not
 * checked. Pure: the caller writes files; an `error` with the id ends the stream instead.
 */
import { ProtocolError } from './protocol-error.js';
import type { BackupStreamMessage } from './replication-messages.js';

type Phase = 'start' | 'files' | 'ended';

export class BackupStreamChecker {
  private phase: Phase = 'start';
  private currentPath: string | null = null;
  private currentSize = 0;
  private received = 0;
  private readonly seenPaths = new Set<string>();

  constructor(private readonly requestId: number) {}

  /** Whether `backupEnd` was accepted. */
  get finished(): boolean {
    return this.phase === 'ended';
  }

  /** Checks the next message; throws ProtocolError when it breaks the stream's order. */
  check(message: BackupStreamMessage): void {
    if (message.id !== this.requestId) this.fail(`${message.type} carries id ${message.id}, not ${this.requestId}`);
    if (this.phase === 'ended') this.fail(`${message.type} after backupEnd`);
    if (this.phase === 'start') {
      if (message.type !== 'backupStart') this.fail(`${message.type} before backupStart`);
      this.phase = 'files';
      return;
    }
    switch (message.type) {
      case 'backupStart':
        return this.fail('a second backupStart');
      case 'backupFile':
        this.expectFileComplete('backupFile');
        if (this.seenPaths.has(message.path)) this.fail(`file "${message.path}" sent twice`);
        this.seenPaths.add(message.path);
        this.currentPath = message.path;
        this.currentSize = message.size;
        this.received = 0;
        return;
      case 'backupChunk':
        if (message.path !== this.currentPath) {
          this.fail(`a chunk of "${message.path}" while ${this.currentPath === null ? 'no file' : `"${this.currentPath}"`} is being sent`);
        }
        if (message.offset !== this.received) {
          this.fail(`a chunk of "${message.path}" at offset ${message.offset}, expected ${this.received}`);
        }
        if (message.offset + message.data.length > this.currentSize) {
          this.fail(`a chunk of "${message.path}" ends at ${message.offset + message.data.length}, past its size ${this.currentSize}`);
        }
        this.received += message.data.length;
        return;
      case 'backupEnd':
        this.expectFileComplete('backupEnd');
        this.phase = 'ended';
        this.currentPath = null;
        return;
    }
  }

  private expectFileComplete(next: string): void {
    if (this.currentPath !== null && this.received !== this.currentSize) {
      this.fail(`${next} while "${this.currentPath}" has ${this.received} of its ${this.currentSize} bytes`);
    }
  }

  private fail(problem: string): never {
    throw new ProtocolError(`invalid base backup stream: ${problem}`);
  }
}
