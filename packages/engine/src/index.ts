export * from './lsn.js';
export * from './errors.js';
export * from './constants.js';
export * from './types.js';
export { crc32c } from './crc32c.js';
