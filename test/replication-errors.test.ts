/**
 * Replication's bad inputs and dead peers, on real processes: a standby from another cluster is
 * refused and replays nothing; a wrong or missing replication_password is refused and the right
 * one streams; wal_receiver_timeout and wal_sender_timeout end the connection to a peer frozen
 * with SIGSTOP, and streaming resumes once it runs again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseLsn } from '@walship/engine';
import { TestNode, countInLog, freePort, waitFor, walship } from './helpers/node.js';

interface Status {
  replayLsn: string | null;
  walReceiver: { status: string; lastError: string | null } | null;
  replication: Array<{ applicationName: string; state: string }>;
}

async function status(node: TestNode): Promise<Status> {
  const client = await node.client();
  try {
    return (await client.status()) as unknown as Status;
  } finally {
    await client.close();
  }
}

async function standbyOf(primary: TestNode, name: string, settings: string[] = []): Promise<TestNode> {
  const dir = path.join(path.dirname(primary.dataDir), name);
  const port = await freePort();
  const result = walship(['basebackup', '--from', `127.0.0.1:${primary.port}`, '-D', dir, '--standby', '--port', String(port),
    '--set', `application_name=${name}`, '--set', 'wal_retrieve_retry_interval=100ms', ...settings.flatMap((s) => ['--set', s])],
  { env: { WALSHIP_PASSWORD: 'right-password' } });
  if (result.status !== 0) throw new Error(`basebackup failed: ${result.stderr}`);
  return new TestNode(dir, port);
}

/** Standbys live beside the primary's data directory: remove only their own. */
async function removeStandby(standby: TestNode): Promise<void> {
  await standby.stop('SIGINT').catch(() => undefined);
  fs.rmSync(standby.dataDir, { recursive: true, force: true });
}

describe('replication refuses bad peers and ends dead ones', () => {
  let primary: TestNode;
  beforeAll(async () => {
    primary = await TestNode.init('repl-errors', { replication_password: 'right-password' });
    await primary.start();
  });
  afterAll(async () => {
    await primary?.destroy();
  });

  it('refuses a standby of another cluster (different system identifier), which replays nothing', async () => {
    const stranger = await TestNode.init('stranger');
    try {
      walship(['set', '-D', stranger.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${primary.port} password=right-password`]);
      walship(['set', '-D', stranger.dataDir, 'wal_retrieve_retry_interval', '100ms']);
      fs.writeFileSync(path.join(stranger.dataDir, 'standby.signal'), '');
      await stranger.start();
      await waitFor('the walreceiver to be refused', () => stranger.log.includes('database system identifier differs between the primary and standby'));
      await waitFor('the refusal to say both identifiers', () => /DETAIL: {2}The primary's identifier is \d+, the standby's identifier is \d+\./.test(stranger.log));
      const client = await primary.client();
      await client.put('not-for-strangers', 'x');
      await client.close();
      const reader = await stranger.client();
      expect(await reader.get('not-for-strangers')).toBeNull();
      await reader.close();
    } finally {
      await stranger.destroy();
    }
  });

  it('refuses a wrong replication password, and streams with the right one', async () => {
    const standby = await standbyOf(primary, 'password-standby');
    try {
      // The copy's conninfo carries the password; spoil it.
      walship(['set', '-D', standby.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${primary.port} application_name=password-standby password=wrong`]);
      await standby.start();
      await waitFor('the wrong password to be refused', () => standby.log.includes('password authentication failed'));
      expect(primary.log).toMatch(/replication connection from 127\.0\.0\.1:\d+: password authentication failed/);
      walship(['set', '-D', standby.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${primary.port} application_name=password-standby password=right-password`]);
      const client = await primary.client();
      const { lsn } = await client.put('with-password', 'yes');
      await client.close();
      await waitFor('the standby to stream with the right password', async () => {
        const s = await status(standby);
        return s.replayLsn !== null && parseLsn(s.replayLsn)! >= lsn;
      });
    } finally {
      await removeStandby(standby);
    }
  });

  it('ends replication to a frozen peer after the timeouts, and resumes when it runs again', async () => {
    const standby = await standbyOf(primary, 'timeout-standby', ['wal_receiver_timeout=1s']);
    walship(['set', '-D', primary.dataDir, 'wal_sender_timeout', '1s']);
    try {
      await standby.start();
      await waitFor('streaming', async () => (await status(standby)).walReceiver?.status === 'streaming');
      // A frozen standby: the primary's walsender gives up after wal_sender_timeout.
      standby.process!.kill('SIGSTOP');
      await waitFor('the walsender to time out', () => primary.log.includes('terminating walsender process due to replication timeout'), 15_000);
      standby.process!.kill('SIGCONT');
      // On a new connection: right after SIGCONT the standby can still report the old walreceiver
      // as streaming, before it reads the close. Had the primary been frozen then, the standby
      // would have reconnected to it and waited on that connection instead of timing out a
      // streaming one. The primary lists a walsender for it again once the new connection streams.
      await waitFor('the standby to stream again on a new connection', async () =>
        (await status(standby)).walReceiver?.status === 'streaming' &&
        (await status(primary)).replication.some((row) => row.applicationName === 'timeout-standby' && row.state === 'streaming'), 15_000);
      // A frozen primary: the standby's walreceiver gives up after wal_receiver_timeout. (The
      // old walreceiver may have said so too, when the standby ran again: count from here.)
      const timeouts = () => countInLog(standby.log, 'terminating walreceiver due to timeout');
      const timeoutsBefore = timeouts();
      primary.process!.kill('SIGSTOP');
      await waitFor('the walreceiver to time out', () => timeouts() > timeoutsBefore, 15_000);
      primary.process!.kill('SIGCONT');
      const client = await primary.client();
      const { lsn } = await client.put('after-freeze', 'yes');
      await client.close();
      await waitFor('the standby to catch up after the freeze', async () => {
        const s = await status(standby);
        return s.replayLsn !== null && parseLsn(s.replayLsn)! >= lsn;
      }, 15_000);
    } finally {
      walship(['set', '-D', primary.dataDir, 'wal_sender_timeout', '60s']);
      await removeStandby(standby);
    }
  });
});
