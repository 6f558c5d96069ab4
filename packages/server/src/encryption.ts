/**
 * The node's part of transparent data encryption: at start, the cluster key named by walship.conf
 * (cluster_key_file or cluster_key_command) unwraps the data keys of an encrypted data directory,
 * which are then registered for the storage layer (engine/src/crypto). A wrong or missing key
 * throws a FATAL WalshipError before the node writes anything.
 */
import { isEncryptedDataDir, loadDataKeys, registerDataKeys, type ClusterKeySource } from '@walship/engine';
import type { Settings } from './settings/index.js';

export function clusterKeySource(settings: Settings): ClusterKeySource {
  const keyFile = settings.get('cluster_key_file');
  const keyCommand = settings.get('cluster_key_command');
  return { ...(keyFile !== '' ? { keyFile } : {}), ...(keyCommand !== '' ? { keyCommand } : {}) };
}

/** Loads and registers the data keys when the data directory is encrypted; returns whether it is. */
export function loadEncryptionKeys(dataDir: string, settings: Settings): boolean {
  if (!isEncryptedDataDir(dataDir)) return false;
  registerDataKeys(dataDir, loadDataKeys(dataDir, clusterKeySource(settings)));
  return true;
}
