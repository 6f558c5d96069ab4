/**
 * A component that throws makes the postmaster do what PostgreSQL's does after a crashed child:
 * end every session, stop every component, run crash recovery, start everything again. The
 * crash is injected with the WALSHIP_FAULTS hook (a component cannot be made to throw from
 * outside the process otherwise); everything else is real.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, tempDir, waitFor } from './helpers/node.js';

// Also on an encrypted node: the in-process crash leaves only whole records past which the WAL
// is clear zeros, so recovery keeps the timeline (no torn tail, no timeline switch).
describe.each([
  { encrypted: false, label: 'crash-restart' },
  { encrypted: true, label: 'crash-restart, encrypted at rest' },
])('$label', ({ encrypted }) => {
  let node: TestNode;
  let keyDir: string | null = null;
  beforeAll(async () => {
    let initArgs: string[] = [];
    if (encrypted) {
      keyDir = tempDir('crash-restart-key');
      fs.writeFileSync(path.join(keyDir, 'key'), randomBytes(32).toString('hex'), { mode: 0o600 });
      initArgs = ['--encrypt', '--key-file', path.join(keyDir, 'key')];
    }
    node = await TestNode.init('crash-restart', {}, initArgs);
    await node.start({ WALSHIP_FAULTS: 'crash_wal_writer=200' });
  });
  afterAll(async () => {
    await node?.destroy();
    if (keyDir !== null) fs.rmSync(keyDir, { recursive: true, force: true });
  });

  it('recovers in the same process when the WAL writer crashes, keeping every acknowledged write', async () => {
    let client = await node.client();
    const acked = new Map<string, string>();
    let failures = 0;
    // Write until the fault has fired and the node serves again.
    for (let i = 0; i < 5000 && !(node.log.includes('reinitializing') && acked.size > 400); i++) {
      try {
        await client.put(`key-${i}`, `value-${i}`);
        acked.set(`key-${i}`, `value-${i}`);
      } catch {
        failures++;
        // The session was ended by the crash: reconnect once the node is ready again.
        await waitFor('the node to accept connections again', async () => {
          try {
            const again = await node.client();
            await again.close();
            return true;
          } catch {
            return false;
          }
        });
        client = await node.client();
      }
    }
    const log = node.log;
    expect(log).toMatch(/wal writer process \(PID \d+\) was terminated by exception: fault injection: crash_wal_writer/);
    expect(log).toContain('terminating any other active server processes');
    expect(log).toContain('all server processes terminated; reinitializing');
    expect(log).toContain('automatic recovery in progress');
    expect(node.process?.exitCode).toBeNull();

    const check = await node.client();
    const status = await check.status();
    expect(status.crashRestarts).toBe(1);
    expect(status.timeline).toBe(1);
    expect(log).not.toContain('selected new timeline');
    for (const [key, value] of acked) expect((await check.get(key))?.value.toString()).toBe(value);
    await check.close();
    expect(acked.size).toBeGreaterThan(400);
    expect(failures).toBeLessThan(5);
  });
});
