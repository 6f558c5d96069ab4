/**
 * `walship basebackup` of a primary, on real processes, for what its receiving end owns:
 * - the copy's relation files are the source's byte for byte (the source idle after a
 *   checkpoint), its WAL segments full size and marked `.done`, backup_label written; the copy
 *   starts and holds every key;
 * - a write the disk refuses (the command run under `prlimit --fsize`, so that a write past the
 *   limit fails with EFBIG: a real fault, no stand-in) fails the command with exit 1, the file's
 *   name and the hint to remove the partial copy, and no backup_label; the walsender survives it
 *   and the next backup succeeds;
 * - the command loads no database code (no engine index, walsender or walreceiver): what it
 *   loads is most of its start-up time (recorded by a module hook given with NODE_OPTIONS).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TestNode, freePort, tempDir, walship } from './helpers/node.js';
import { scanAll } from './helpers/replication.js';

const KEYS = 6000;
const VALUE_BYTES = 1000;

describe('walship basebackup of a primary', () => {
  let primary: TestNode;
  let work: string;
  const copies: TestNode[] = [];

  beforeAll(async () => {
    primary = await TestNode.init('basebackup');
    await primary.start();
    work = tempDir('basebackup-copies');
    // Several megabytes in the table's file: many 1 MB chunks, several 1 MB WAL segments.
    const load = walship(['load', '--node', `127.0.0.1:${primary.port}`, '--count', String(KEYS), '--value-size', String(VALUE_BYTES), '--clients', '4', '--quiet']);
    expect(load.status, load.stderr).toBe(0);
    const checkpoint = walship(['checkpoint', '--node', `127.0.0.1:${primary.port}`]);
    expect(checkpoint.status, checkpoint.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    for (const copy of copies) await copy.kill();
    await primary?.destroy();
    if (work !== undefined) fs.rmSync(work, { recursive: true, force: true });
  });

  it('copies the relation files byte for byte, with full WAL segments marked .done and a label; the copy starts with every key', async () => {
    const dir = path.join(work, 'copy');
    const port = await freePort();
    const result = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', dir, '--port', String(port), '--json']);
    expect(result.status, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout) as { bytes: number; files: number };
    expect(summary.bytes).toBeGreaterThan(KEYS * VALUE_BYTES);

    const sourceBase = path.join(primary.dataDir, 'base');
    const relationFiles = fs.readdirSync(sourceBase);
    expect(relationFiles.length).toBeGreaterThan(0);
    expect(Math.max(...relationFiles.map((f) => fs.statSync(path.join(sourceBase, f)).size))).toBeGreaterThan(4 * 1024 * 1024);
    for (const file of relationFiles) {
      const copied = fs.readFileSync(path.join(dir, 'base', file));
      expect(copied.equals(fs.readFileSync(path.join(sourceBase, file))), `base/${file}`).toBe(true);
    }
    const segments = fs.readdirSync(path.join(dir, 'pg_wal')).filter((f) => /^[0-9A-F]{24}$/.test(f));
    expect(segments.length).toBeGreaterThan(0);
    for (const segment of segments) {
      expect(fs.statSync(path.join(dir, 'pg_wal', segment)).size, segment).toBe(1024 * 1024);
      expect(fs.existsSync(path.join(dir, 'pg_wal', 'archive_status', `${segment}.done`)), segment).toBe(true);
    }
    expect(fs.readFileSync(path.join(dir, 'backup_label'), 'utf8')).toMatch(/^START WAL LOCATION: /);

    const copy = new TestNode(dir, port);
    copies.push(copy);
    await copy.start();
    const rows = await scanAll(copy);
    expect(rows.size).toBe(KEYS);
    expect(rows).toEqual(await scanAll(primary));
  }, 120_000);

  it('fails with the file\'s name when the disk refuses a write, leaves no label, and the next backup succeeds', async () => {
    const dir = path.join(work, 'refused');
    // Files past 2 MB cannot be written: the table's file fails part way.
    const refused = spawnSync('prlimit', [`--fsize=${2 * 1024 * 1024}`, process.execPath, CLI, 'basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', dir], {
      cwd: ROOT, encoding: 'utf8', timeout: 120_000,
    });
    expect(refused.error).toBeUndefined();
    expect(refused.status, refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/base backup failed: could not write file ".*\/base\/[^"]+": EFBIG/);
    expect(refused.stderr).toContain(`Remove the partial copy in "${dir}" before trying again.`);
    expect(fs.existsSync(path.join(dir, 'backup_label'))).toBe(false);

    const again = path.join(work, 'again');
    const result = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', again, '--quiet']);
    expect(result.status, result.stderr).toBe(0);
    expect(fs.existsSync(path.join(again, 'backup_label'))).toBe(true);
  }, 120_000);

  it('loads no database code: not the engine index, the walsender or the walreceiver', () => {
    const hooks = path.join(work, 'record-hooks.mjs');
    const register = path.join(work, 'record-register.mjs');
    const loaded = path.join(work, 'loaded.txt');
    fs.writeFileSync(hooks, [
      "import { appendFileSync } from 'node:fs';",
      'export async function load(url, context, next) {',
      `  appendFileSync(${JSON.stringify(loaded)}, url + '\\n');`,
      '  return next(url, context);',
      '}',
    ].join('\n'));
    fs.writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${hooks}`)});\n`);
    const result = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', path.join(work, 'lean'), '--quiet'], {
      env: { NODE_OPTIONS: `--import=${register}` },
    });
    expect(result.status, result.stderr).toBe(0);
    const urls = fs.readFileSync(loaded, 'utf8').split('\n').filter((line) => line !== '');
    // The hook saw the command's own modules (it records what it should).
    expect(urls.some((url) => url.endsWith('/packages/replication/dist/base-backup-receiver.js'))).toBe(true);
    const heavy = urls.filter((url) => /\/packages\/engine\/dist\/(index|database|bootstrap|wal-recovery)\.js$|\/packages\/replication\/dist\/(index|walsender|walreceiver)\.js$/.test(url));
    expect(heavy).toEqual([]);
  }, 60_000);
});
