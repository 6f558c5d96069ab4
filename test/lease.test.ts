/**
 * The primary's lease on a real process (the server's lease.ts; the failover monitor's safety
 * rule 1): with require_primary_lease = on, a primary acknowledges a commit only while a lease
 * granted with the `lease` request holds, counted on CLOCK_MONOTONIC from when the grant was
 * issued. Checked with SIGSTOP, as a frozen primary would be:
 *
 * - no lease: a write is refused before anything is written (primary_lease_expired);
 * - a commit waiting for its synchronous standby while the node is stopped past its lease is not
 *   acknowledged once the node resumes and the wait ends: an indeterminate error with its LSN,
 *   and a WARNING in the log; the same commit with a lease that still holds is acknowledged;
 * - a grant that waited in the socket of a stopped node gives nothing once it arrives late;
 * - off (the default), a node needs no lease at all.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient, WalshipClientError } from '@walship/client';
import { monotonicClockUs } from '@walship/server/lease';
import { TestNode, waitFor } from './helpers/node.js';

interface LeaseView {
  required: boolean;
  held: boolean;
  holder: string | null;
  grantor: string | null;
  expiresInMs: number | null;
}

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; lsn?: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipClientError);
    const fields = error as WalshipClientError & { lsn?: unknown };
    return { code: fields.code, lsn: fields.lsn, message: fields.message };
  }
  throw new Error('the call succeeded');
}

describe('the primary lease (require_primary_lease) on a real process', () => {
  let node: TestNode;
  let client: WalshipClient;
  let admin: WalshipClient;
  const grant = (durationMs: number, issuedAtUs = monotonicClockUs()) =>
    admin.grantLease({ holder: 'n1', timeline: 1, durationMs, issuedAtUs, grantor: 'test' });
  const lease = async () => (await admin.status()).lease as LeaseView;
  /** Until the monotonic clock has passed `atUs`: the condition a lease's end is. */
  const clockPasses = (atUs: number) => waitFor(`the monotonic clock to pass ${atUs}`, () => monotonicClockUs() > atUs, 10_000, 10);

  beforeAll(async () => {
    node = await TestNode.init('lease', { require_primary_lease: 'on', application_name: 'n1' });
    await node.start();
    client = await node.client({ timeoutMs: 20_000 });
    admin = await node.client({ timeoutMs: 20_000 });
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await admin?.close().catch(() => undefined);
    await node?.destroy();
  });

  it('refuses writes before any lease, with nothing written', async () => {
    expect(await lease()).toMatchObject({ required: true, held: false, holder: null });
    const refused = await codeOf(client.put('no-lease', 'x'));
    expect(refused.code).toBe('primary_lease_expired');
    expect(refused.message).toMatch(/this primary holds no lease/);
    expect(await client.get('no-lease')).toBeNull();
    await waitFor('the refusal in the log', () => /LOG: +cannot commit: this primary holds no lease/.test(node.log));
  });

  /**
   * A commit that waits for a synchronous standby that is not there; the node is stopped and
   * resumed; then the standby requirement is dropped, which ends the wait. Whether the commit is
   * acknowledged depends on the lease alone.
   */
  async function frozenCommit(key: string, leaseMs: number, stoppedForMs: number): Promise<{ put: Promise<unknown> }> {
    await admin.setSetting('synchronous_standby_names', 'FIRST 1 (ghost)');
    const issuedAtUs = monotonicClockUs();
    await grant(leaseMs, issuedAtUs);
    const put = client.put(key, 'frozen');
    put.catch(() => undefined);
    await waitFor('the commit to wait for its standby', async () => (await admin.status()).syncWaiters.count === 1);
    process.kill(node.process!.pid!, 'SIGSTOP');
    try {
      await clockPasses(issuedAtUs + stoppedForMs * 1000);
    } finally {
      process.kill(node.process!.pid!, 'SIGCONT');
    }
    await admin.setSetting('synchronous_standby_names', '');
    return { put };
  }

  it('does not acknowledge a commit whose lease ran out while the node was stopped (SIGSTOP)', async () => {
    const { put } = await frozenCommit('frozen-past-lease', 600, 900);
    const outcome = await codeOf(put);
    expect(outcome.code).toBe('indeterminate');
    expect(outcome.message).toBe("could not acknowledge the commit: this primary's lease has expired");
    expect(typeof outcome.lsn).toBe('number');
    await waitFor('the WARNING in the log', () => /WARNING: +could not acknowledge the commit: this primary's lease has expired/.test(node.log));
    expect((await codeOf(client.put('after-expiry', 'z'))).code).toBe('primary_lease_expired');
    expect((await lease()).held).toBe(false);
  });

  it('acknowledges writes while a lease holds, and refuses grants that do not fit the node', async () => {
    expect((await grant(5_000)).expiresInMs).toBeGreaterThan(4_000);
    expect(await lease()).toMatchObject({ held: true, holder: 'n1', grantor: 'test' });
    expect((await client.put('with-lease', 'y')).member).toBe('n1');
    expect((await codeOf(admin.grantLease({ holder: 's1', timeline: 1, durationMs: 1000, issuedAtUs: monotonicClockUs(), grantor: 'test' }))).code).toBe('invalid_parameter_value');
    expect((await codeOf(admin.grantLease({ holder: 'n1', timeline: 2, durationMs: 1000, issuedAtUs: monotonicClockUs(), grantor: 'test' }))).code).toBe('object_not_in_prerequisite_state');
    expect((await codeOf(admin.grantLease({ holder: 'n1', timeline: 1, durationMs: 1000, issuedAtUs: monotonicClockUs() + 60_000_000, grantor: 'test' }))).code).toBe('invalid_parameter_value');
  });

  it('acknowledges the same commit when the lease outlasts the stop', async () => {
    const { put } = await frozenCommit('frozen-within-lease', 10_000, 300);
    await expect(put).resolves.toMatchObject({ succeeded: true, member: 'n1' });
  });

  it('takes nothing from a grant that waited in the socket of a stopped node', async () => {
    process.kill(node.process!.pid!, 'SIGSTOP');
    const issuedAtUs = monotonicClockUs();
    let late: Promise<unknown>;
    try {
      late = grant(400, issuedAtUs);
      late.catch(() => undefined);
      await clockPasses(issuedAtUs + 600_000);
    } finally {
      process.kill(node.process!.pid!, 'SIGCONT');
    }
    const refused = await codeOf(late!);
    expect(refused.code).toBe('object_not_in_prerequisite_state');
    expect(refused.message).toMatch(/expired before it arrived/);
  });

  it('needs no lease with require_primary_lease off (the default)', async () => {
    await admin.setSetting('require_primary_lease', 'off');
    await waitFor('the reload', async () => (await lease()).required === false);
    expect((await client.put('lease-off', 'w')).succeeded).toBe(true);
  });
});
