/**
 * Kill -9 at random moments under a concurrent write load, restart, and check what a user relies
 * on: every acknowledged write is there, no transaction is partly there, no value appears that
 * was never written, and the WAL and checkpoint positions make sense. The node is small on
 * purpose (1 MB segments, 1 MB of buffers, max_wal_size 2 MB) so that evictions, segment
 * switches and WAL-volume checkpoints all happen while it is being killed.
 * `scripts/crash-loop.mjs` runs the same loop hundreds of times. It runs once on a plain node and
 * once on a node encrypted at rest.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { TestNode, tempDir } from './helpers/node.js';

const CYCLES = Number(process.env.WALSHIP_CRASH_CYCLES ?? 20);
const CLIENTS = 4;
const SEED = Number(process.env.WALSHIP_SEED ?? Date.now() % 100000);

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed with WALSHIP_SEED. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface History {
  /** key -> the value of its last acknowledged put. */
  acked: Map<string, string>;
  /** key -> every value ever sent for it, acknowledged or not. */
  attempted: Map<string, Set<string>>;
  /** keys whose delete was acknowledged. */
  deleted: Set<string>;
  /** keys whose delete was sent but not acknowledged. */
  deleteAttempted: Set<string>;
  /** atomic groups: base key -> acknowledged? */
  groups: Map<string, boolean>;
  /** per client: the last acknowledged counter value. */
  counters: Map<string, number>;
  maxAckedLsn: number;
}

function attempt(history: History, key: string, value: string): void {
  let set = history.attempted.get(key);
  if (set === undefined) history.attempted.set(key, (set = new Set()));
  set.add(value);
}

async function writer(client: WalshipClient, history: History, id: string, random: () => number, stop: { now: boolean }): Promise<void> {
  let seq = 0;
  const mine: string[] = [];
  while (!stop.now) {
    seq++;
    const r = random();
    try {
      if (r < 0.55) {
        const key = `k-${id}-${seq}`;
        const value = `v-${seq}-${Math.floor(random() * 1e9)}`.padEnd(20 + Math.floor(random() * 200), '.');
        attempt(history, key, value);
        const result = await client.put(key, value);
        history.acked.set(key, value);
        mine.push(key);
        history.maxAckedLsn = Math.max(history.maxAckedLsn, result.lsn);
      } else if (r < 0.8) {
        const base = `g-${id}-${seq}`;
        const value = `grp-${seq}`;
        for (const s of ['a', 'b', 'c']) attempt(history, `${base}-${s}`, value);
        history.groups.set(base, false);
        const result = await client.txn({
          onSuccess: ['a', 'b', 'c'].map((s) => ({ kind: 'put' as const, key: Buffer.from(`${base}-${s}`), value: Buffer.from(value) })),
        });
        history.groups.set(base, true);
        history.maxAckedLsn = Math.max(history.maxAckedLsn, result.lsn);
      } else if (r < 0.92) {
        const key = `ctr-${id}`;
        attempt(history, key, String(seq));
        const result = await client.put(key, String(seq));
        history.counters.set(key, seq);
        history.maxAckedLsn = Math.max(history.maxAckedLsn, result.lsn);
      } else if (mine.length > 0) {
        const key = mine.splice(Math.floor(random() * mine.length), 1)[0]!;
        history.deleteAttempted.add(key);
        await client.del(key);
        history.deleted.add(key);
      }
    } catch {
      // The node was killed: this write is indeterminate. Stop this writer.
      return;
    }
  }
}

async function scanAll(client: WalshipClient): Promise<Map<string, string>> {
  const all = new Map<string, string>();
  let start: Buffer | undefined;
  for (;;) {
    const page = await client.range({ ...(start ? { start } : {}), limit: 5000 });
    for (const entry of page.entries) all.set(entry.key.toString(), entry.value.toString());
    if (!page.more || page.entries.length === 0) break;
    start = Buffer.concat([page.entries[page.entries.length - 1]!.key, Buffer.from([0])]);
  }
  return all;
}

function verify(history: History, contents: Map<string, string>): string[] {
  const problems: string[] = [];
  for (const [key, value] of history.acked) {
    if (history.deleted.has(key) || history.deleteAttempted.has(key) || key.startsWith('ctr-')) continue;
    if (contents.get(key) !== value) problems.push(`acknowledged ${key}=${value.slice(0, 20)} is ${contents.has(key) ? 'changed' : 'missing'}`);
  }
  for (const key of history.deleted) if (contents.has(key)) problems.push(`acknowledged delete of ${key} was undone`);
  for (const [key, value] of contents) {
    if (!history.attempted.get(key)?.has(value)) problems.push(`${key}=${value.slice(0, 20)} was never written`);
  }
  for (const [base, acked] of history.groups) {
    const present = ['a', 'b', 'c'].filter((s) => contents.has(`${base}-${s}`)).length;
    if (present !== 0 && present !== 3) problems.push(`transaction ${base} is partly there (${present} of 3 keys)`);
    if (acked && present !== 3) problems.push(`acknowledged transaction ${base} is missing`);
  }
  for (const [key, seq] of history.counters) {
    const found = Number(contents.get(key));
    if (!(found >= seq)) problems.push(`counter ${key} is ${contents.get(key)}, below the acknowledged ${seq}`);
  }
  return problems;
}

// The same loop on an encrypted node (init --encrypt): WAL and pages are encrypted on their way to
// disk and decrypted in recovery, the partial last WAL page included.
describe.each([
  { encrypted: false, label: 'crash recovery under load' },
  { encrypted: true, label: 'crash recovery under load, encrypted at rest' },
])('$label', ({ encrypted }) => {
  let node: TestNode;
  let keyDir: string | null = null;
  beforeAll(async () => {
    let initArgs: string[] = [];
    if (encrypted) {
      keyDir = tempDir('crash-key');
      fs.writeFileSync(path.join(keyDir, 'key'), randomBytes(32).toString('hex'), { mode: 0o600 });
      initArgs = ['--encrypt', '--key-file', path.join(keyDir, 'key')];
    }
    node = await TestNode.init('crash', { shared_buffers: '1MB', max_wal_size: '2MB', bgwriter_delay: '10ms' }, initArgs);
  });
  afterAll(async () => {
    await node?.destroy();
    if (keyDir !== null) fs.rmSync(keyDir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged write through ${CYCLES} SIGKILLs (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const history: History = {
      acked: new Map(), attempted: new Map(), deleted: new Set(), deleteAttempted: new Set(), groups: new Map(), counters: new Map(), maxAckedLsn: 0,
    };
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await node.start();
      const check = await node.client();
      const problems = verify(history, await scanAll(check));
      expect(problems.slice(0, 10), `after restart ${cycle} (seed ${SEED})`).toEqual([]);
      const status = await check.status();
      const flushLsn = parseLsn(status.flushLsn)!;
      const checkpointLsn = parseLsn(status.lastCheckpointLsn)!;
      expect(flushLsn).toBeGreaterThanOrEqual(history.maxAckedLsn);
      expect(checkpointLsn).toBeLessThanOrEqual(flushLsn);
      await check.close();

      const stop = { now: false };
      const clients = await Promise.all(Array.from({ length: CLIENTS }, () => node.client({ timeoutMs: 10_000 })));
      const writers = clients.map((c, i) => writer(c, history, `${cycle}-${i}`, rng(SEED * 100 + cycle * 10 + i), stop));
      const runMs = 100 + Math.floor(random() * 500);
      await new Promise((resolve) => setTimeout(resolve, runMs));
      await node.kill();
      stop.now = true;
      await Promise.all(writers);
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    }
    await node.start();
    const check = await node.client();
    expect(verify(history, await scanAll(check)).slice(0, 10)).toEqual([]);
    expect(history.acked.size).toBeGreaterThan(CYCLES * 10);
    await check.close();
    await node.stop('SIGINT');
  });
});
