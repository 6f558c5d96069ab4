/** Raw-byte searches over a directory tree: what encryption at rest must leave nothing of. */
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
