/**
 * Raw bytes of data directories: searches over a tree (what encryption at rest must leave nothing
 * of) and reads at a position (the ciphertext a test compares). Used by packages' unit tests too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Every file under `dir`, recursively, sorted. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/** Files under `dir` holding any of the needles in their raw bytes, as "file: needle". */
export function findInClear(dir: string, needles: string[]): string[] {
  const found: string[] = [];
  for (const file of listFiles(dir)) {
    const bytes = fs.readFileSync(file);
    for (const needle of needles) if (bytes.includes(needle)) found.push(`${path.relative(dir, file)}: ${needle}`);
  }
  return found;
}

/** `length` raw bytes of `file` from byte `position` (zeros past its end). */
export function readBytesAt(file: string, position: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, out, 0, length, position);
  } finally {
    fs.closeSync(fd);
  }
  return out;
}
