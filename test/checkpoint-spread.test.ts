/**
 * A WAL-volume checkpoint is spread (checkpoint_completion_target): on a real node it writes its
 * buffers as the WAL that will ask for the next checkpoint comes in, instead of all at once, and
 * an immediate checkpoint asked for meanwhile hurries it to the end.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { TestNode, countInLog, waitFor } from './helpers/node.js';

/** One transaction of about 10 kB of WAL, on keys of its own (new pages, dirty in the pool). */
async function writeSome(client: WalshipClient, round: number): Promise<void> {
  await client.txn({
    onSuccess: Array.from({ length: 10 }, (_, i) => ({
      kind: 'put' as const,
      key: Buffer.from(`key-${String(round * 10 + i).padStart(8, '0')}`),
      value: Buffer.alloc(1000, round % 251),
    })),
  });
}

describe('spread checkpoints', () => {
  let node: TestNode;
  let client: WalshipClient;
  let round = 0;
  beforeAll(async () => {
    // max_wal_size 2MB: a checkpoint every ~1 MB of WAL (2 MB / (1 + 0.9)); time never asks for one.
    node = await TestNode.init('checkpoint-spread', { shared_buffers: '16MB', max_wal_size: '2MB', checkpoint_timeout: '1h', checkpoint_completion_target: '0.9' });
    await node.start();
    client = await node.client();
  });
  afterAll(async () => {
    await client?.close();
    await node?.destroy();
  });

  /** Writes until the node starts a WAL-volume checkpoint; returns how many had completed before it. */
  async function writeUntilCheckpointStarts(): Promise<number> {
    // One left running by the writes before (a checkpoint every ~1 MB) finishes first, with the WAL below.
    for (let i = 0; i < 1000 && countInLog(node.log, 'checkpoint starting') > countInLog(node.log, 'checkpoint complete'); i++) await writeSome(client, round++);
    const started = countInLog(node.log, 'checkpoint starting: wal');
    const completed = countInLog(node.log, 'checkpoint complete');
    for (let i = 0; i < 1000 && countInLog(node.log, 'checkpoint starting: wal') === started; i++) await writeSome(client, round++);
    expect(countInLog(node.log, 'checkpoint starting: wal'), node.log.split('\n').filter((l) => l.includes('checkpoint')).join('\n')).toBe(started + 1);
    return completed;
  }

  /** A non-event can only be watched for a while: no checkpoint completes for `ms`. */
  async function expectNoCompletionFor(ms: number, completed: number): Promise<void> {
    const watchUntil = Date.now() + ms;
    while (Date.now() < watchUntil) {
      expect(countInLog(node.log, 'checkpoint complete')).toBe(completed);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('writes its buffers as the WAL comes in: with no more WAL it is not done, with another ~1 MB it is', async () => {
    const completed = await writeUntilCheckpointStarts();
    // About 130 dirty pages: unpaced, the checkpoint took about 50 ms. Paced, with the WAL clock
    // standing still and the time clock at an hour, it waits for the first.
    await expectNoCompletionFor(1_500, completed);
    // The WAL clock moves: ~1.2 MB more, and the spread checkpoint keeps pace and finishes.
    for (let i = 0; i < 120; i++) await writeSome(client, round++);
    await waitFor('the spread checkpoint to complete', () => countInLog(node.log, 'checkpoint complete') > completed, 30_000, 50);
    expect(node.log).toMatch(/checkpoint complete: wrote \d+ buffers/);
  });

  it('finishes at once, and then runs the one asked for, when an immediate checkpoint is requested meanwhile', async () => {
    const completed = await writeUntilCheckpointStarts();
    // Spread, it would now wait for more WAL (or most of an hour).
    await expectNoCompletionFor(500, completed);
    const askedAt = Date.now();
    const result = await client.checkpoint();
    expect(Date.now() - askedAt).toBeLessThan(10_000);
    // The spread one ended, and the requested one (forced, immediate) ran after it.
    expect(countInLog(node.log, 'checkpoint complete')).toBe(completed + 2);
    expect(node.log).toContain('checkpoint starting: immediate force wait');
    expect(result.lsn).toBeDefined();
  });
});
