export { CLUSTER_KEY_BYTES, parseClusterKey, loadClusterKey, resolveKeyFilePath, type ClusterKeySource } from './cluster-key.js';
export { wrapKey, unwrapKey } from './key-wrap.js';
export {
  KEY_DIRECTORY, KEY_FILE, generateDataKeys, previousKeyFilePath, rotateClusterKey, isEncryptedDataDir, keyFilePath, loadDataKeys, readDataKeys, writeKeyFile, type DataKeys,
} from './key-file.js';
export { WalCipher, walCounterBlock } from './wal-cipher.js';
export { PageCipher, pageTweak } from './page-cipher.js';
export { dataKeysFor, pageCipherFor, registerDataKeys, unregisterDataKeys, walCipherFor } from './registry.js';
export { WAL_KEY_ID_BYTES, sameWalKeyId, walKeyId, walKeyIdFor } from './wal-key-id.js';
