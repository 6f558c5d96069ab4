import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DbState, writeControlFile } from '@walship/engine/control-file';
import type { Lsn } from '@walship/engine/lsn';
import { findMember, parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import { rejoinMember } from './member-ops.js';
import type { NodeControl, NodeStatusView } from './node-control.js';
import { initialClusterState, readClusterState, withNewPrimary, writeClusterState } from './state.js';
import { tempDataRoot } from './test-support.js';

const CONFIG = `
name: rejoining
base_port: 6400
data_root: /unused
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
`;

let dataRoot: string;
tempDataRoot('walship-rejoin-', (path) => (dataRoot = path));

describe('rejoinMember', () => {
  it('fences an old primary that crashed again when its rewind fails', async () => {
    const config = parseClusterConfig(CONFIG, '/configs/rejoining.yaml', { dataRoot });
    // n1 crashed as the primary of timeline 1 (its control file says in production) and was fenced; s1 is the primary now.
    const n1 = join(dataRoot, 'n1');
    mkdirSync(join(n1, 'global'), { recursive: true });
    const lsn = 0x3000 as Lsn;
    writeControlFile(n1, {
      version: 1, systemId: 1n, state: DbState.inProduction, time: 0, checkpointLsn: lsn, redoLsn: lsn, timeline: 1, prevTimeline: 1, fullPageWrites: true, nextXid: 1,
      checkpointTime: 0, minRecoveryLsn: 0 as Lsn, minRecoveryTimeline: 0, backupStartLsn: 0 as Lsn, backupEndLsn: 0 as Lsn, walSegmentSize: 1024 * 1024, xlogBlcksz: 8192,
      blcksz: 8192, maxKeyBytes: 1024, dataChecksumVersion: 0,
    });
    writeFileSync(join(n1, 'standby.signal'), '');
    // s1 "runs" as this test process (its postmaster.pid names it).
    mkdirSync(join(dataRoot, 's1'), { recursive: true });
    writeFileSync(join(dataRoot, 's1', 'postmaster.pid'), `${process.pid}\n${join(dataRoot, 's1')}\n`);
    const running = { ...initialClusterState(config), members: { n1: { role: 'primary' as const, timeline: 1, fence: null }, s1: { role: 'standby' as const, timeline: 1, fence: null } } };
    const state = writeClusterState(dataRoot, withNewPrimary(running, 's1', 2, { fence: { at: 'then', reason: 'failover to s1', timeline: 1, newPrimary: 's1' } }));

    // Stand-in nodes: a rewind that fails part way cannot be made to happen on demand on real ones.
    let fencedDuringRewind: boolean | null = null;
    const primary: NodeStatusView = { role: 'primary', systemId: '1', timeline: 2, flushLsn: '0/4000', receiveLsn: null, replayLsn: null };
    const control = {
      status: async () => primary,
      rewind: async () => {
        fencedDuringRewind = existsSync(join(n1, 'standby.signal'));
        throw new Error('could not connect to the source (stand-in)');
      },
    } as unknown as NodeControl;
    const ctx: ClusterContext = { config, control, progress: () => undefined };

    await expect(rejoinMember(ctx, state, findMember(config, 'n1'), 5_000)).rejects.toThrow(/could not connect to the source/);
    // Lifted for the rewind's crash recovery, which must run as the primary it was; put back after.
    expect(fencedDuringRewind).toBe(false);
    expect(existsSync(join(n1, 'standby.signal'))).toBe(true);
    expect(readClusterState(dataRoot)!.members.n1).toMatchObject({ role: 'fenced' });
  });
});
