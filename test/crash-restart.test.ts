/**
 * A component that throws makes the postmaster do what PostgreSQL's does after a crashed child:
 * end every session, stop every component, run crash recovery, start everything again. The
 * crash is injected with the WALSHIP_FAULTS hook (a component cannot be made to throw from
 * outside the process otherwise); everything else is real.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, waitFor } from './helpers/node.js';

describe('crash-restart', () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await TestNode.init('crash-restart');
    await node.start({ WALSHIP_FAULTS: 'crash_wal_writer=200' });
  });
  afterAll(async () => {
    await node?.destroy();
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
    for (const [key, value] of acked) expect((await check.get(key))?.value.toString()).toBe(value);
    await check.close();
    expect(acked.size).toBeGreaterThan(400);
    expect(failures).toBeLessThan(5);
  });
});
