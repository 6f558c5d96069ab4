import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import { initialClusterState, withMember, type ClusterState } from './state.js';
import { CASCADE_NODES } from './test-support.js';
import { initialSynchronousModeCore, relaxedSynchronousNames, synchronousCandidates, synchronousModeStep, type SynchronousModeCore } from './synchronous-mode.js';

const CONFIG = parseClusterConfig(
  `
name: t
base_port: 6000
data_root: /unused${CASCADE_NODES}`,
  '/configs/t.yaml',
);

function running(): ClusterState {
  let state = initialClusterState(CONFIG);
  for (const name of ['n1', 's1', 's2', 'c1']) state = withMember(state, name, { role: name === 'n1' ? 'primary' : 'standby', timeline: 1 });
  return state;
}

/** Runs checks (each the set of standbys the primary showed streaming) through the core. */
function run(checks: string[][], start: SynchronousModeCore = initialSynchronousModeCore()): SynchronousModeCore[] {
  const candidates = synchronousCandidates(CONFIG, running());
  const cores: SynchronousModeCore[] = [];
  let core = start;
  for (const streaming of checks) {
    core = synchronousModeStep(core, candidates, new Set(streaming), 3);
    cores.push(core);
  }
  return cores;
}

describe('the relaxed synchronous mode', () => {
  it('considers the standbys that stream from the primary, never a cascading one', () => {
    expect(synchronousCandidates(CONFIG, running())).toEqual(['s1', 's2']);
    expect(synchronousCandidates(CONFIG, withMember(running(), 's1', { role: 'fenced' }))).toEqual(['s2']);
  });

  it('counts a standby gone after missed checks in a row, and back after as many checks streaming', () => {
    const cores = run([['s1', 's2'], ['s2'], ['s2'], ['s2'], ['s1', 's2'], ['s1', 's2'], ['s2'], ['s1', 's2'], ['s1', 's2'], ['s1', 's2']]);
    expect(cores.map((core) => core.gone.join(','))).toEqual(['', '', '', 's1', 's1', 's1', 's1', 's1', 's1', '']);
  });

  it('repoints FIRST 1 (s1) at s2 while s1 is gone, keeps s1 first, and empties it when nobody streams', () => {
    const state = running();
    expect(relaxedSynchronousNames(CONFIG, state, [])).toBe('FIRST 1 (s1)');
    expect(relaxedSynchronousNames(CONFIG, state, ['s1'])).toBe('FIRST 1 (s1, s2)');
    expect(relaxedSynchronousNames(CONFIG, state, ['s1', 's2'])).toBe('');
  });
});
