import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { markBackupWalArchived } from './base-backup-receiver.js';

let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-base-backup-'));
  fs.mkdirSync(path.join(root, 'pg_wal', 'archive_status'), { recursive: true });
  fs.mkdirSync(path.join(root, 'base'), { recursive: true });
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('markBackupWalArchived', () => {
  it('marks the WAL segments and timeline history files a backup brought .done, and nothing else', () => {
    const written = [
      'base/16384', 'pg_wal/000000020000000000000003', 'pg_wal/000000020000000000000004', 'pg_wal/00000002.history',
      'walship.conf', 'base/000000010000000000000001',
    ].map((relative) => path.join(root, ...relative.split('/')));
    for (const file of written) fs.writeFileSync(file, 'x');
    markBackupWalArchived(root, written);
    expect(fs.readdirSync(path.join(root, 'pg_wal', 'archive_status')).sort()).toEqual([
      '00000002.history.done', '000000020000000000000003.done', '000000020000000000000004.done',
    ]);
  });
});
