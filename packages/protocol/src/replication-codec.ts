/**
 * The frame codec of replication connections: one WebSocket binary message holds one message,
 * either a hot binary frame (replication-frames.ts; first byte an ASCII tag, below 0x80) or a
 * msgpack map (first byte 0x80 or above), with the client codec's msgpackr options.
 *
 * `decodeReplicationFrame(frame, side)` returns a valid message that `side` may receive, or
 * throws a ProtocolError — whatever the bytes, never another exception and never a half-checked
 * value. `side` is the decoding end: the walsender decodes with `'sender'` (it receives what a
 * standby sends), a standby or `walship basebackup` with `'receiver'`. A message the other end
 * may not send (a StandbyStatusUpdate arriving at a standby, an `authOk` at a walsender) is a
 * ProtocolError like any malformed frame.
 *
 * `encodeReplicationMessage` validates with the same functions before encoding.
 */
import { assert } from '@walship/engine/errors';
import { decoderDetail, packMsgpack, unpackMsgpack } from './codec.js';
import { MAX_REPLICATION_FRAME_BYTES } from './constants.js';
import { ProtocolError } from './protocol-error.js';
import {
  decodeFrameFromReceiver,
  decodeFrameFromSender,
  encodeKeepalive,
  encodeStandbyStatusUpdate,
  encodeXLogData,
  isBinaryReplicationFrame,
} from './replication-frames.js';
import type { ReplicationMessage, ReplicationSide, WalReceiverMessage, WalSenderMessage } from './replication-messages.js';
import { isWalSenderControlType, normalizeWalReceiverMessage, normalizeWalSenderMessage } from './replication-validate.js';


/** As codec.ts's: plain msgpack, maps as plain objects, no extensions; no state between calls. */

/**
 * Validates and encodes a message of either side: the hot messages as binary frames, the others
 * as msgpack. Throws ProtocolError on an invalid message or one above
 * MAX_REPLICATION_FRAME_BYTES. (The walsender's XLogData hot path uses `allocXLogDataFrame` and
 * `writeXLogDataHeader` instead, to avoid copying the WAL.)
 */
export function encodeReplicationMessage(message: ReplicationMessage): Buffer {
  const type = (message as { type?: unknown } | null)?.type;
  switch (type) {
    case 'xlogData':
      return encodeXLogData(message as Extract<ReplicationMessage, { type: 'xlogData' }>);
    case 'keepalive':
      return encodeKeepalive(message as Extract<ReplicationMessage, { type: 'keepalive' }>);
    case 'standbyStatusUpdate':
      return encodeStandbyStatusUpdate(message as Extract<ReplicationMessage, { type: 'standbyStatusUpdate' }>);
  }
  const normalized =
    typeof type === 'string' && isWalSenderControlType(type) ? normalizeWalSenderMessage(message) : normalizeWalReceiverMessage(message);
  let frame: Buffer;
  try {
    frame = packMsgpack(normalized);
  } catch (error) {
    throw new ProtocolError('could not encode message', { detail: decoderDetail(error), cause: error });
  }
  if (frame.length > MAX_REPLICATION_FRAME_BYTES) {
    throw new ProtocolError(
      `message too large: ${frame.length} bytes exceeds the maximum replication frame size of ${MAX_REPLICATION_FRAME_BYTES} bytes`,
      { detail: `message type "${String(type)}"` },
    );
  }
  return frame;
}

/**
 * Decodes and validates a frame received by `side`. XLogData's `data` is a view of `frame`, not
 * a copy: the caller must not reuse the frame's memory while it still needs the data.
 */
export function decodeReplicationFrame(frame: Buffer, side: 'sender'): WalReceiverMessage;
export function decodeReplicationFrame(frame: Buffer, side: 'receiver'): WalSenderMessage;
export function decodeReplicationFrame(frame: Buffer, side: ReplicationSide): ReplicationMessage;
export function decodeReplicationFrame(frame: Buffer, side: ReplicationSide): ReplicationMessage {
  assert(side === 'sender' || side === 'receiver', `decodeReplicationFrame: unknown side ${String(side)}`);
  const bytes = asBuffer(frame);
  if (isBinaryReplicationFrame(bytes)) return side === 'sender' ? decodeFrameFromReceiver(bytes) : decodeFrameFromSender(bytes);
  const value = unpackMsgpack(bytes);
  return side === 'sender' ? normalizeWalReceiverMessage(value) : normalizeWalSenderMessage(value);
}

function asBuffer(frame: unknown): Buffer {
  if (!(frame instanceof Uint8Array)) throw new ProtocolError('invalid frame: expected binary data');
  if (frame.byteLength === 0) throw new ProtocolError('invalid frame: empty');
  if (frame.byteLength > MAX_REPLICATION_FRAME_BYTES) {
    throw new ProtocolError(
      `invalid frame: ${frame.byteLength} bytes exceeds the maximum replication frame size of ${MAX_REPLICATION_FRAME_BYTES} bytes`,
    );
  }
  return Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

