/**
 * Encryption at rest for a cluster whose config has the `encryption` key (docs/security.md,
 * "Encryption at rest"). One cluster key for every member: the primary is initialized with
 * `walship init --encrypt` and that key; each standby is a base backup of its upstream, so it
 * holds the same wrapped data keys (pg_cryptokeys/) and replays the same WAL into the same
 * ciphertext; every member's walship.conf names the key (cluster_key_file or
 * cluster_key_command), so rejoin (rewind), reinit (base backup) and restarts open it as a start
 * by hand would.
 *
 * `encryption: true` has `cluster up` generate the key: 32 random bytes as hex in
 * `<data root>/cluster.key` (mode 0600, written whole with fsync and rename), as it generates the
 * passfile. Whoever can read that file can read the members' files: it is the one secret of the
 * cluster's data at rest, and moving it off the machine (a key_file elsewhere, or a key_command
 * that asks a key manager) is what makes a stolen disk unreadable.
 *
 * Whether a cluster is encrypted is fixed when its primary is created: members made by base
 * backup inherit it, so a config whose `encryption` no longer matches the members' data
 * directories is refused (checkMemberEncryption) rather than half applied.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { isEncryptedDataDir, loadClusterKey } from '@walship/engine/crypto/index';
import { writeFileDurably } from '@walship/server/settings/index';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import type { ClusterConfig, MemberConfig } from './config.js';
import { isDataDirectory } from './member-files.js';

/** AES-256: the cluster key is 32 bytes (engine/src/crypto/cluster-key.ts). */
const GENERATED_KEY_BYTES = 32;

/**
 * The key settings of every member's walship.conf: the configured source, and the other one
 * emptied (cluster_key_file wins when both are set: a base backup copied the upstream's).
 */
export function memberKeySettings(config: ClusterConfig): Array<[string, string]> {
  const encryption = config.encryption ?? null;
  if (encryption === null) return [];
  if ('keyCommand' in encryption) return [['cluster_key_command', encryption.keyCommand], ['cluster_key_file', '']];
  return [['cluster_key_file', encryption.keyFile], ['cluster_key_command', '']];
}

/** Where the config names the key, for messages. */
function keyOrigin(config: ClusterConfig): string {
  const encryption = config.encryption!;
  if ('keyCommand' in encryption) return `encryption.key_command of ${config.file}`;
  return encryption.generated ? `the key file generated for encryption: true ("${encryption.keyFile}")` : `encryption.key_file of ${config.file} ("${encryption.keyFile}")`;
}

/**
 * Before the primary is created: the generated key written when it is not there yet, then the
 * key read as every member will read it (a missing file, a failing command or a malformed key
 * refused here, naming the config's field, before any data directory exists). Returns whether
 * a key was generated.
 */
export function prepareClusterKey(config: ClusterConfig): boolean {
  const encryption = config.encryption ?? null;
  if (encryption === null) return false;
  let generated = false;
  if ('keyFile' in encryption && encryption.generated && !existsSync(encryption.keyFile)) {
    mkdirSync(config.dataRoot, { recursive: true });
    writeFileDurably(encryption.keyFile, `${randomBytes(GENERATED_KEY_BYTES).toString('hex')}\n`, 0o600);
    generated = true;
  }
  try {
    loadClusterKey(config.dataRoot, 'keyCommand' in encryption ? { keyCommand: encryption.keyCommand } : { keyFile: encryption.keyFile });
  } catch (error) {
    const { message, detail } = error as { message: string; detail?: string };
    throw new ClusterError(ClusterErrorCode.configUnreadable, `the cluster key from ${keyOrigin(config)} cannot be used: ${message}`, {
      detail,
      hint: 'A cluster key is 32 random bytes as 64 hex digits or base64 (openssl rand -hex 32 > FILE), readable by this user; or write "encryption: true" and cluster up generates one.',
    });
  }
  return generated;
}

/**
 * A member that exists must be encrypted exactly when the config says so: encryption is chosen
 * when the cluster is created (standbys copy it), and a config changed since would either name a
 * key for plain members or leave encrypted members without the config's word for their key. A
 * generated key that has gone missing is refused here too: nothing else opens the members.
 */
export function checkMemberEncryption(config: ClusterConfig, member: MemberConfig): void {
  if (!isDataDirectory(member.dataDir)) return;
  const wanted = (config.encryption ?? null) !== null;
  const encrypted = isEncryptedDataDir(member.dataDir);
  if (wanted !== encrypted) {
    throw new ClusterError(ClusterErrorCode.invalidState, `${member.name} is ${encrypted ? '' : 'not '}encrypted, but ${config.file} ${wanted ? 'has' : 'has no'} "encryption" key`, {
      detail: `Encryption at rest is chosen when the cluster's primary is created; its standbys copy it. ${member.dataDir} ${encrypted ? 'holds wrapped data keys (pg_cryptokeys/)' : 'has no data keys'}.`,
      hint: encrypted
        ? 'Put the "encryption" key back as it was when the cluster was created.'
        : 'Remove the "encryption" key, or start the cluster over encrypted with walship cluster up --reset (which deletes all its data).',
    });
  }
  const encryption = config.encryption ?? null;
  if (encryption !== null && 'keyFile' in encryption && encryption.generated && !existsSync(encryption.keyFile)) {
    throw new ClusterError(ClusterErrorCode.invalidState, `the cluster key file "${encryption.keyFile}" is missing`, {
      detail: `${member.name} and the other members are encrypted with the key cluster up generated there for encryption: true; without it nothing opens them.`,
      hint: 'Put the key file back (from where you keep a copy). A new key would not open the existing members.',
    });
  }
}
