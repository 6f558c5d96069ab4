/**
 * The one place where the CLI meets the engine and the client library. Commands import these
 * names, never `@walship/engine` or `@walship/client` directly, so that an API change is fixed
 * here once. Everything is loaded lazily: `walship --help` must not pay for the engine (its native
 * CRC module) or the client (ws, msgpackr).
 *
 * Type-only imports are erased from the build, so they cost nothing at start.
 */
import type { ConnectOptions, WalshipClient } from '@walship/client';
import type { ControlFileData, DumpedRecord, DumpEnd } from '@walship/engine';

// ---------------------------------------------------------------------------------------------
// Engine

/** initdb's engine part: control file, first WAL segment, catalog. Refuses a non-empty directory. */
export async function bootstrapDataDirectory(dataDir: string, options: { walSegmentSize: number; clusterKey?: Buffer }): Promise<{ systemId: string }> {
  const engine = await import('@walship/engine');
  return engine.bootstrapDataDirectory(dataDir, options);
}

export type { ControlFileData, DumpedRecord, DumpEnd };

export interface ControlFileView {
  data: ControlFileData;
  /** [label, value] lines as pg_controldata prints them. */
  lines: Array<[string, string]>;
  /** The cluster state as pg_controldata names it ("in production"). */
  stateName: string;
}

/** Reads and checks (CRC) DATADIR/global/control. */
export async function readControlFile(dataDir: string): Promise<ControlFileView> {
  const engine = await import('@walship/engine');
  const data = engine.readControlFile(dataDir);
  const stateName = engine.DB_STATE_NAMES[data.state] ?? `unrecognized status code ${data.state}`;
  return { data, lines: engine.describeControlFile(data), stateName };
}

/**
 * The WAL records of a data directory from `start` (default: the first record of the oldest
 * segment) to `end` (default: the end of valid WAL). The generator's return value says how the
 * WAL ended: null when `end` was reached, else the reason reading stopped.
 */
export async function dumpWal(dataDir: string, options: { start?: number; end?: number }): Promise<Generator<DumpedRecord, DumpEnd | null>> {
  const engine = await import('@walship/engine');
  return engine.dumpWal(dataDir, {
    start: options.start === undefined ? undefined : engine.asLsn(options.start),
    end: options.end === undefined ? undefined : engine.asLsn(options.end),
  });
}

// ---------------------------------------------------------------------------------------------
// Client

/**
 * How long the CLI lets a client call wait when the user gave no --timeout: "as long as the
 * operation does" (DESIGN.md section 10). The largest delay setTimeout takes (about 24.8 days):
 * the client library times every call with a timer and has no "never" value.
 */
export const CLIENT_WAIT_FOREVER_MS = 2_147_483_647;

/** A session with one node (`WalshipClient`). */
export type NodeClient = WalshipClient;

export type ClientConnectOptions = ConnectOptions;

export interface ClientEntry {
  key: Buffer;
  value: Buffer;
  /** Commit LSN of the transaction that last wrote the entry. */
  revision: number;
}

/** Opens a session with a node (`WalshipClient.connect`, one attempt). */
export async function connectClient(options: ClientConnectOptions): Promise<NodeClient> {
  const client = await import('@walship/client');
  return client.WalshipClient.connect(options);
}

/** The fields of a client error the CLI branches on (WalshipClientError has `code`). */
export interface ClientErrorFields {
  code: string | undefined;
  message: string;
  detail: string | undefined;
  hint: string | undefined;
  /** The commit LSN (X/X) of a write committed on the node but not confirmed by its standbys. */
  lsn: string | undefined;
}

export function clientErrorFields(error: unknown): ClientErrorFields {
  if (error === null || typeof error !== 'object') return { code: undefined, message: String(error), detail: undefined, hint: undefined, lsn: undefined };
  const fields = error as { code?: unknown; message?: unknown; detail?: unknown; hint?: unknown; cause?: unknown; lsn?: unknown };
  const stringOrUndefined = (value: unknown) => (typeof value === 'string' && value !== '' ? value : undefined);
  let code = stringOrUndefined(fields.code);
  // A refused connection may surface as the socket's errno, on the error or its cause.
  if (code === undefined && fields.cause !== null && typeof fields.cause === 'object') {
    code = stringOrUndefined((fields.cause as { code?: unknown }).code);
  }
  return {
    code,
    message: stringOrUndefined(fields.message) ?? String(error),
    detail: stringOrUndefined(fields.detail),
    hint: stringOrUndefined(fields.hint),
    lsn: typeof fields.lsn === 'number' && Number.isSafeInteger(fields.lsn) && fields.lsn >= 0
      ? `${Math.floor(fields.lsn / 0x1_0000_0000).toString(16).toUpperCase()}/${(fields.lsn % 0x1_0000_0000).toString(16).toUpperCase()}`
      : undefined,
  };
}
