/**
 * The frame codec: one WebSocket binary message holds one msgpack-encoded message.
 *
 * `encodeMessage` validates before it encodes; `decodeClientMessage` and `decodeServerMessage`
 * return a valid message or throw a ProtocolError — whatever the bytes, never another exception
 * and never a half-checked value (the fuzz tests hold them to that).
 *
 * msgpackr options: `useRecords: false` keeps frames plain msgpack (no record extension a peer
 * would have to understand); `mapsAsObjects: true` decodes maps to plain objects. Records and
 * other msgpackr extensions that arrive anyway decode to values the validator refuses. Its
 * JavaScript decoder, not the native one (msgpackr-js-decoder.ts says why).
 */
import './msgpackr-js-decoder.js';
import { Packr } from 'msgpackr';
import { MAX_FRAME_BYTES } from './constants.js';
import type { ClientMessage, ServerMessage } from './messages.js';
import { ProtocolError } from './protocol-error.js';
import { decodeTxnRequest, decodeTxnResult, encodeTxnRequest, encodeTxnResult } from './txn-codec.js';
import { isServerMessageType, normalizeClientMessage, normalizeServerMessage } from './validate.js';

/** How much of a decoder's own message is kept in a ProtocolError's detail. */
const MAX_DECODER_DETAIL_CHARS = 200;

/**
 * One Packr per module: packing is synchronous and msgpackr keeps no state between calls with
 * these options, so sharing it across sessions is safe.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, structuredClone: false });

/**
 * Validates and encodes a message of either side. Throws ProtocolError on an invalid message.
 * A write's request and result go through txn-codec.ts when they fit its layout (the same bytes,
 * written by hand); everything else, and whatever it declines, through the validator and msgpackr.
 */
export function encodeMessage(message: ClientMessage | ServerMessage): Buffer {
  const type = (message as { type?: unknown } | null)?.type;
  const fast = type === 'txn' ? encodeTxnRequest(message) : type === 'result' ? encodeTxnResult(message) : null;
  if (fast !== null && fast.length <= MAX_FRAME_BYTES) return fast;
  const normalized =
    typeof type === 'string' && isServerMessageType(type) ? normalizeServerMessage(message) : normalizeClientMessage(message);
  let frame: Buffer;
  try {
    frame = packr.pack(normalized);
  } catch (error) {
    throw new ProtocolError('could not encode message', { detail: decoderDetail(error), cause: error });
  }
  if (frame.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(`message too large: ${frame.length} bytes exceeds the maximum frame size of ${MAX_FRAME_BYTES} bytes`, {
      detail: `message type "${String(type)}"`,
    });
  }
  return frame;
}

/** Decodes and validates a frame a client sent (the server's side). */
export function decodeClientMessage(frame: unknown): ClientMessage {
  if (frame instanceof Uint8Array && frame.byteLength <= MAX_FRAME_BYTES) {
    const request = decodeTxnRequest(frame);
    if (request !== null) return request;
  }
  return normalizeClientMessage(unpackFrame(frame));
}

/** Decodes and validates a frame a server sent (the client's side). */
export function decodeServerMessage(frame: unknown): ServerMessage {
  if (frame instanceof Uint8Array && frame.byteLength <= MAX_FRAME_BYTES) {
    const result = decodeTxnResult(frame);
    if (result !== null) return result;
  }
  return normalizeServerMessage(unpackFrame(frame));
}

function unpackFrame(frame: unknown): unknown {
  let bytes: Uint8Array;
  if (frame instanceof Uint8Array) bytes = frame;
  else if (frame instanceof ArrayBuffer) bytes = new Uint8Array(frame);
  else if (Array.isArray(frame) && frame.every((part) => part instanceof Uint8Array)) bytes = Buffer.concat(frame);
  else throw new ProtocolError('invalid frame: expected binary data');
  if (bytes.byteLength === 0) throw new ProtocolError('invalid frame: empty');
  if (bytes.byteLength > MAX_FRAME_BYTES) {
    throw new ProtocolError(`invalid frame: ${bytes.byteLength} bytes exceeds the maximum frame size of ${MAX_FRAME_BYTES} bytes`);
  }
  return unpackMsgpack(bytes);
}

/** Decodes one msgpack value; a ProtocolError when the bytes are not one (both protocols). */
export function unpackMsgpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new ProtocolError('invalid frame: not a msgpack value', { detail: decoderDetail(error), cause: error });
  }
}

/** Encodes one msgpack value with the protocols' options (no records, plain maps). */
export function packMsgpack(value: unknown): Buffer {
  return packr.pack(value);
}

export function decoderDetail(error: unknown): string {
  let text: string;
  try {
    text = error instanceof Error ? error.message : String(error);
  } catch {
    text = 'unprintable error';
  }
  return text.length > MAX_DECODER_DETAIL_CHARS ? `${text.slice(0, MAX_DECODER_DETAIL_CHARS)}...` : text;
}
