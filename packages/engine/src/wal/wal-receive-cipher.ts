/**
 * What the walreceiver's files do to received WAL before writing it into a segment file of the
 * streamed timeline (WalReceiveFiles): the rule as a pure function, then its application.
 *
 * The upstream sends WAL as plaintext, or — to a standby that proved it has the same WAL key —
 * as stored in its encrypted segment files, labelled with the timeline of the file it came from
 * (crypto/wal-key-id.ts, the 'e' XLogData frame). The WAL cipher's ciphertext of a byte depends
 * only on the key, the timeline in the file's name, the position and the plaintext
 * (crypto/wal-cipher.ts), so:
 *
 *  - plaintext into an unencrypted directory: written as received;
 *  - plaintext into an encrypted directory: encrypted under the file's timeline (as before);
 *  - ciphertext under the file's own timeline: written as received. These are exactly the bytes
 *    encrypting the plaintext here would give, so wal-cipher.ts's rules hold unchanged: only the
 *    bytes received are written (a prefix of the upstream's flushed WAL: final), and they are
 *    what this timeline's keystream gives for that plaintext at those positions, as on the
 *    upstream;
 *  - ciphertext under another timeline: decrypted under that one and encrypted under the file's.
 *    This happens for the segment holding a switch point, when a standby streams the older
 *    timeline from an upstream that has the segment only in the newer timeline's file
 *    (promotion re-encrypted its part before the switch point). Again the result is the file's
 *    timeline's ciphertext of the same plaintext;
 *  - ciphertext into an unencrypted directory: refused. The walreceiver asks for ciphertext only
 *    when its own directory is encrypted, so this is an upstream that does not follow the
 *    protocol; writing it would put bytes that are not WAL into pg_wal.
 *
 * The startup process decrypts what it replays and checks each record's CRC over the plaintext,
 * so a wrong label or key shows up as invalid WAL there, never as silently wrong data.
 */
import type { WalCipher } from '../crypto/wal-cipher.js';
import { ErrorCode, WalshipError, assert } from '../errors.js';

export type ReceivedWalTransform =
  | { kind: 'asReceived' }
  | { kind: 'encrypt'; timeline: number }
  | { kind: 'reencrypt'; from: number; to: number };

/**
 * The transform for WAL received as plaintext (`sentUnder` null) or as ciphertext under timeline
 * `sentUnder`, written into a file of `fileTimeline`, in an `encrypted` directory or not.
 * Throws (protocol violation) for ciphertext into an unencrypted directory.
 */
export function receivedWalTransform(encrypted: boolean, fileTimeline: number, sentUnder: number | null): ReceivedWalTransform {
  if (sentUnder === null) return encrypted ? { kind: 'encrypt', timeline: fileTimeline } : { kind: 'asReceived' };
  if (!encrypted) {
    throw new WalshipError(ErrorCode.protocolViolation, 'received encrypted WAL, but this data directory is not encrypted', {
      detail: `The upstream sent WAL encrypted under timeline ${sentUnder}, which it may do only for a standby that sent its WAL key identifier.`,
    });
  }
  return sentUnder === fileTimeline ? { kind: 'asReceived' } : { kind: 'reencrypt', from: sentUnder, to: fileTimeline };
}

/**
 * Applies a transform to `bytes` of WAL at `lsn`: `bytes` itself when written as received,
 * otherwise the cipher's output (a new buffer; `bytes` is left as it is).
 */
export function transformReceivedWal(cipher: WalCipher | null, transform: ReceivedWalTransform, lsn: number, bytes: Buffer): Buffer {
  if (transform.kind === 'asReceived') return bytes;
  assert(cipher !== null, 'a transform that runs the cipher has one');
  if (transform.kind === 'encrypt') return cipher.applyToNew(transform.timeline, lsn, bytes);
  const plain = cipher.applyToNew(transform.from, lsn, bytes);
  cipher.applyInPlace(transform.to, lsn, plain, 0, plain.length);
  return plain;
}
