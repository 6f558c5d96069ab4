import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterError } from './cluster-error.js';
import { checkMemberEncryption, memberKeySettings, prepareClusterKey } from './cluster-encryption.js';
import { parseClusterConfig, type ClusterConfig } from './config.js';
import { tempDataRoot } from './test-support.js';

function configWith(root: string, encryption: string | null): ClusterConfig {
  const text = [
    'name: enc',
    'base_port: 6000',
    `data_root: ${root}`,
    ...(encryption === null ? [] : [`encryption: ${encryption}`]),
    'nodes:',
    '  - name: n1',
    '    port_offset: 0',
  ].join('\n');
  return parseClusterConfig(text, join(root, 'enc.yaml'));
}

/** A directory that looks created to the toolkit (its control file), encrypted or not (its wrapped keys). */
function fakeMember(dataDir: string, encrypted: boolean): void {
  mkdirSync(join(dataDir, 'global'), { recursive: true });
  writeFileSync(join(dataDir, 'global', 'control'), '');
  if (encrypted) {
    mkdirSync(join(dataDir, 'pg_cryptokeys'), { recursive: true });
    writeFileSync(join(dataDir, 'pg_cryptokeys', 'keys.json'), '{}');
  }
}

describe('cluster encryption', () => {
  let root = '';
  tempDataRoot('cluster-encryption-', (path) => (root = path));

  it('names the key in every member\'s settings, the other source emptied', () => {
    expect(memberKeySettings(configWith(root, null))).toEqual([]);
    expect(memberKeySettings(configWith(root, 'true'))).toEqual([['cluster_key_file', join(root, 'cluster.key')], ['cluster_key_command', '']]);
    expect(memberKeySettings(configWith(root, '{ key_command: "cat /k" }'))).toEqual([['cluster_key_command', 'cat /k'], ['cluster_key_file', '']]);
  });

  it('generates the key of encryption: true once, 32 random bytes as hex, mode 0600', () => {
    const config = configWith(root, 'true');
    expect(prepareClusterKey(config)).toBe(true);
    const file = join(root, 'cluster.key');
    const key = readFileSync(file, 'utf8');
    expect(key).toMatch(/^[0-9a-f]{64}\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(prepareClusterKey(config)).toBe(false);
    expect(readFileSync(file, 'utf8')).toBe(key);
    expect(prepareClusterKey(configWith(root, null))).toBe(false);
  });

  it('refuses a key file or command that gives no usable key, naming the config field', () => {
    const missing = configWith(root, '{ key_file: nowhere.key }');
    expect(() => prepareClusterKey(missing)).toThrow(ClusterError);
    expect(() => prepareClusterKey(missing)).toThrow(`the cluster key from encryption.key_file of ${join(root, 'enc.yaml')} ("${join(root, 'nowhere.key')}") cannot be used: could not read cluster key file`);
    writeFileSync(join(root, 'short.key'), 'abcd\n');
    expect(() => prepareClusterKey(configWith(root, '{ key_file: short.key }'))).toThrow(/cannot be used: invalid cluster key/);
    expect(() => prepareClusterKey(configWith(root, '{ key_command: "exit 3" }'))).toThrow(/encryption.key_command .* cannot be used: cluster_key_command failed/);
    expect(prepareClusterKey(configWith(root, '{ key_command: "echo 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" }'))).toBe(false);
  });

  it('refuses members whose encryption does not match the config, and a generated key gone missing', () => {
    const plain = configWith(root, null);
    const encrypted = configWith(root, 'true');
    const member = plain.members[0]!;
    // Not created yet: nothing to compare.
    checkMemberEncryption(encrypted, member);
    fakeMember(member.dataDir, false);
    checkMemberEncryption(plain, member);
    expect(() => checkMemberEncryption(encrypted, member)).toThrow(`n1 is not encrypted, but ${join(root, 'enc.yaml')} has "encryption" key`);
    rmSync(member.dataDir, { recursive: true });
    fakeMember(member.dataDir, true);
    expect(() => checkMemberEncryption(plain, member)).toThrow(`n1 is encrypted, but ${join(root, 'enc.yaml')} has no "encryption" key`);
    expect(() => checkMemberEncryption(encrypted, member)).toThrow(`the cluster key file "${join(root, 'cluster.key')}" is missing`);
    prepareClusterKey(encrypted);
    checkMemberEncryption(encrypted, member);
  });
});
