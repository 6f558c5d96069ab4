/**
 * Space freed by deletes is reused: with autovacuum on, a table emptied by deletes and filled
 * again stays about the size it had, instead of growing by a whole second copy of its data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { TestNode, waitFor } from './helpers/node.js';

const KEYS = 8000;
const BATCH = 200;

async function fill(client: WalshipClient, round: number): Promise<void> {
  for (let start = 0; start < KEYS; start += BATCH) {
    await client.txn({
      onSuccess: Array.from({ length: BATCH }, (_, i) => ({
        kind: 'put' as const,
        key: Buffer.from(`key-${String(start + i).padStart(6, '0')}`),
        value: Buffer.from(`round ${round} `.padEnd(300, 'x')),
      })),
    });
  }
}

interface Status { tables: Array<{ name: string; blocks: number; freePages: number }>; autovacuum: { pagesFreed: number; pagesMerged: number } }

describe('autovacuum', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await TestNode.init('autovacuum', { autovacuum_naptime: '1s', log_min_messages: 'debug1' });
    await node.start();
  });
  afterAll(async () => {
    await node?.destroy();
  });

  it('frees the pages of deleted entries and reuses them, so the table does not grow', async () => {
    const client = await node.client();
    const table = async () => ((await client.status()) as unknown as Status).tables.find((t) => t.name === 'default')!;
    await fill(client, 1);
    const full = await table();
    expect(full.blocks).toBeGreaterThan(200);

    // In batches: one transaction pins every page it changes, and this node's buffers are small.
    while ((await client.deleteRange('key-', 'key.', { limit: 1000 })).deleted > 0);
    const vacuumed = await waitFor('autovacuum to free the emptied pages', async () => {
      const status = (await client.status()) as unknown as Status;
      const t = status.tables.find((x) => x.name === 'default')!;
      return t.freePages > full.blocks * 0.8 ? status : null;
    }, 60_000, 200);
    expect(vacuumed.autovacuum.pagesFreed).toBeGreaterThan(full.blocks * 0.8);
    // Each round that changed pages says so at its end, at DEBUG (shown here: log_min_messages =
    // debug1); the round that freed the last of them may still be running.
    const freedInLog = () => [...node.log.matchAll(/automatic vacuum: \d+ pages compacted, \d+ merged, (\d+) freed/g)]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    await waitFor('the log to report the freed pages', () => (freedInLog() > full.blocks * 0.8 ? true : null), 30_000, 100);

    await fill(client, 2);
    const refilled = await table();
    // Without reuse the file would hold both copies (about twice the blocks).
    expect(refilled.blocks).toBeLessThan(full.blocks * 1.15);
    expect((await client.get('key-000123'))?.value.toString()).toMatch(/^round 2 /);
    expect((await client.range({ prefix: 'key-', limit: KEYS + 1 })).entries.length).toBe(KEYS);
    await client.close();
  });
});
