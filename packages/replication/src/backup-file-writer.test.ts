import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackupFileWriter, type BackupFileWriterOptions } from './backup-file-writer.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-backup-writer-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

/** Descriptors this process has open: the writer must give back every one. */
function openDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

function makeWriter(options: Partial<BackupFileWriterOptions> = {}) {
  const backlog: boolean[] = [];
  const errors: Error[] = [];
  const writer = new BackupFileWriter((on) => backlog.push(on), (error) => errors.push(error), options);
  return { writer, backlog, errors };
}

describe('BackupFileWriter', () => {
  it('writes each file at its offsets, fsyncs and closes it, and finish waits for all of it', async () => {
    const before = openDescriptors();
    const { writer, backlog, errors } = makeWriter();
    const files = [
      { name: 'a', content: pattern(3 * 1024 * 1024 + 17, 1), chunk: 1024 * 1024 },
      { name: 'empty', content: Buffer.alloc(0), chunk: 1 },
      { name: 'b', content: pattern(100, 2), chunk: 33 },
    ];
    for (const file of files) {
      writer.openFile(path.join(dir, file.name), 0o600);
      for (let offset = 0; offset < file.content.length; offset += file.chunk) {
        writer.write(file.content.subarray(offset, offset + file.chunk), offset);
      }
    }
    await writer.finish();
    for (const file of files) {
      expect(fs.readFileSync(path.join(dir, file.name)).equals(file.content), file.name).toBe(true);
      expect(fs.statSync(path.join(dir, file.name)).mode & 0o777).toBe(0o600);
    }
    expect([...writer.synced].sort()).toEqual(files.map((f) => path.join(dir, f.name)).sort());
    expect(openDescriptors()).toBe(before);
    expect(errors).toEqual([]);
    expect(backlog).toEqual([]);
  });

  it('starts writeback of a long file with fdatasyncs while it grows, one per syncEveryBytes at most', async () => {
    const { writer } = makeWriter({ syncEveryBytes: 64 * 1024 });
    const content = pattern(1024 * 1024, 3);
    writer.openFile(path.join(dir, 'long'), 0o600);
    // One chunk at a time, each written before the next: every 64 kB boundary is seen.
    for (let offset = 0; offset < content.length; offset += 16 * 1024) {
      writer.write(content.subarray(offset, offset + 16 * 1024), offset);
      while (writer.pendingBytes > 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await writer.finish();
    expect(writer.writebackSyncs).toBeGreaterThanOrEqual(1);
    expect(writer.writebackSyncs).toBeLessThanOrEqual(content.length / (64 * 1024));
    expect(fs.readFileSync(path.join(dir, 'long')).equals(content)).toBe(true);
  });

  it('asks to stop reading above maxPendingBytes, and to go on once the writes drained to half', async () => {
    const { writer, backlog } = makeWriter({ maxPendingBytes: 64 * 1024 });
    writer.openFile(path.join(dir, 'f'), 0o600);
    writer.write(pattern(64 * 1024, 4), 0);
    expect(backlog).toEqual([]);
    writer.write(pattern(1, 5), 64 * 1024);
    expect(backlog).toEqual([true]);
    await writer.finish();
    expect(backlog).toEqual([true, false]);
  });

  it('asks to stop reading while more than maxOpenFiles complete files wait for their fsync', async () => {
    const { writer, backlog } = makeWriter({ maxOpenFiles: 2, maxConcurrentSyncs: 1 });
    // Synchronously: no write or fsync can have finished, so every complete file is still open.
    for (let i = 0; i < 4; i++) {
      writer.openFile(path.join(dir, `f${i}`), 0o600);
      writer.write(pattern(10, i), 0);
    }
    writer.endFile();
    expect(backlog).toEqual([true]);
    await writer.finish();
    expect(backlog).toEqual([true, false]);
    expect(writer.synced).toHaveLength(4);
  });

  it('refuses a file that exists, at once, and writes nothing into it', () => {
    fs.writeFileSync(path.join(dir, 'there'), 'mine');
    const { writer } = makeWriter();
    expect(() => writer.openFile(path.join(dir, 'there'), 0o600)).toThrow(/EEXIST/);
    expect(fs.readFileSync(path.join(dir, 'there'), 'utf8')).toBe('mine');
  });

  it('after abort, starts nothing, closes every file once idle, and finish rejects', async () => {
    const before = openDescriptors();
    const { writer } = makeWriter();
    writer.openFile(path.join(dir, 'done'), 0o600);
    writer.write(pattern(1000, 6), 0);
    writer.openFile(path.join(dir, 'half'), 0o600);
    writer.write(pattern(1000, 7), 0);
    writer.abort();
    expect(() => writer.write(pattern(10, 8), 1000)).toThrow(/aborted/);
    expect(() => writer.openFile(path.join(dir, 'later'), 0o600)).toThrow(/aborted/);
    await expect(writer.finish()).rejects.toThrow(/aborted/);
    // The writes already running end on their own; then every descriptor is closed.
    for (let i = 0; i < 1000 && openDescriptors() !== before; i++) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(openDescriptors()).toBe(before);
    expect(fs.existsSync(path.join(dir, 'later'))).toBe(false);
  });
});
