/**
 * @walship/protocol: the wire messages of client sessions and their codec. Pure: no sockets, no
 * timers; the server's sessions and the client library both build on it.
 */
export * from './constants.js';
export * from './messages.js';
export { ProtocolError, isProtocolError } from './protocol-error.js';
export { encodeMessage, decodeClientMessage, decodeServerMessage } from './codec.js';
export { normalizeClientMessage, normalizeServerMessage } from './validate.js';
export * from './convert.js';
