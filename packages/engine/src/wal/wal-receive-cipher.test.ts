import * as crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WalCipher } from '../crypto/wal-cipher.js';
import { WalshipError } from '../errors.js';
import { receivedWalTransform, transformReceivedWal } from './wal-receive-cipher.js';

describe('receivedWalTransform', () => {
  it('plaintext: as received in a plain directory, encrypted under the file\'s timeline in an encrypted one', () => {
    expect(receivedWalTransform(false, 3, null)).toEqual({ kind: 'asReceived' });
    expect(receivedWalTransform(true, 3, null)).toEqual({ kind: 'encrypt', timeline: 3 });
  });

  it('ciphertext: as received under the file\'s timeline, converted from another', () => {
    expect(receivedWalTransform(true, 3, 3)).toEqual({ kind: 'asReceived' });
    // A standby streaming timeline 1 from an upstream that holds the switch segment only in
    // timeline 2's file.
    expect(receivedWalTransform(true, 1, 2)).toEqual({ kind: 'reencrypt', from: 2, to: 1 });
    expect(receivedWalTransform(true, 2, 1)).toEqual({ kind: 'reencrypt', from: 1, to: 2 });
  });

  it('refuses ciphertext in an unencrypted directory, saying what came', () => {
    let caught: unknown;
    try {
      receivedWalTransform(false, 1, 1);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WalshipError);
    expect((caught as WalshipError).message).toBe('received encrypted WAL, but this data directory is not encrypted');
    expect((caught as WalshipError).detail).toMatch(/encrypted under timeline 1/);
  });
});

describe('transformReceivedWal', () => {
  const cipher = new WalCipher(crypto.randomBytes(32));
  const plain = crypto.randomBytes(9000);
  const lsn = 0x3_0000 + 7; // inside a CTR block: the conversion keeps the block offset
  const under = (timeline: number): Buffer => cipher.applyToNew(timeline, lsn, plain);

  it('gives the file timeline\'s ciphertext of the same plaintext, whatever came', () => {
    expect(transformReceivedWal(cipher, receivedWalTransform(true, 2, null), lsn, plain).equals(under(2))).toBe(true);
    const asStored = under(2);
    // Written as it came: the very buffer, no cipher run.
    expect(transformReceivedWal(cipher, receivedWalTransform(true, 2, 2), lsn, asStored)).toBe(asStored);
    const received = under(2);
    const converted = transformReceivedWal(cipher, receivedWalTransform(true, 1, 2), lsn, received);
    expect(converted.equals(under(1))).toBe(true);
    expect(received.equals(under(2))).toBe(true); // the received bytes are left as they were
    expect(converted.equals(plain)).toBe(false);
  });

  it('leaves plaintext as it is in a plain directory', () => {
    expect(transformReceivedWal(null, receivedWalTransform(false, 1, null), lsn, plain)).toBe(plain);
  });
});
