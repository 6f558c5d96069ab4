/**
 * @walship/client: the client library. `WalshipClient.connect({ host, port })` opens a session
 * to one node; see `client.ts` for what each failure means (timeout, connection_lost,
 * indeterminate) and how reconnecting works.
 */
export { WalshipClient } from './client.js';
export { WalshipClusterClient } from './cluster-client.js';
export { WalshipFailoverClient, type FailoverConnectOptions } from './failover-client.js';
export type { ClusterConnectOptions, NodeEndpoint, ReadFreshness, ReadRoute, RoutedRangeOptions, RoutedReadOptions } from './cluster-client.js';
export type {
  CallOptions,
  ClientCompare,
  ClientOperation,
  ClientState,
  ClientTxnRequest,
  ConnectOptions,
  KeyLike,
  LoadOptions,
  LsnLike,
  NodeStatus,
  RangeOptions,
  ReadOptions,
  WaitForLsnOptions,
  WaitForLsnResult,
  WriteOptions,
} from './client.js';
export type { PasswordSource, ServerInfo } from './connection.js';
export { ClientErrorCode, WalshipClientError } from './client-error.js';
export * from './constants.js';
