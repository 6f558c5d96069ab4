/**
 * What the cluster package's unit tests share (not part of the package: excluded from the build
 * in tsconfig.json).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import type { ClusterState } from './state.js';

/** A fresh data root in the temporary directory for each test (given to `use`), removed after it. */
export function tempDataRoot(prefix: string, use: (dataRoot: string) => void): void {
  let dataRoot = '';
  beforeEach(() => {
    dataRoot = mkdtempSync(join(tmpdir(), prefix));
    use(dataRoot);
  });
  afterEach(() => {
    rmSync(dataRoot, { recursive: true, force: true });
  });
}

/** The state with every member running: the primary as primary, the others as standbys, on timeline 1. */
export function running(state: ClusterState): ClusterState {
  return { ...state, members: Object.fromEntries(Object.keys(state.members).map((name) => [name, { role: name === state.primary ? 'primary' : 'standby', timeline: 1, fence: null }])) };
}

/** Four members: n1 the primary, s1 its synchronous standby, s2, and c1 cascading from s2. */
export const CASCADE_NODES = `
synchronous_standby_names: FIRST 1 (s1)
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
  - {name: s2, port_offset: 2}
  - {name: c1, port_offset: 3, upstream: s2}
`;
