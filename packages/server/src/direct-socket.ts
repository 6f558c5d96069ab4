/**
 * The plain TCP socket under a replication WebSocket, for direct walsender sends (the engine's
 * wal/walsnd-direct.ts: the WAL flusher writes to a caught-up standby's descriptor itself).
 *
 * It reaches below `ws` and `net`, which offer no public way to do this: `ws`'s `_socket` (the
 * net.Socket under the WebSocket), Node's `_handle.fd` (its descriptor) and `_destroy` (every
 * destroy() of a stream goes through it, and net.Socket's closes the descriptor there). Over TLS
 * there is no such socket: the bytes on the descriptor are TLS records, and the walsender sends
 * everything itself.
 */
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { DirectSocket } from '@walship/replication';

interface SocketInternals {
  encrypted?: boolean;
  _handle?: { fd?: number } | null;
}

export function directSocketOf(ws: WebSocket): DirectSocket | null {
  const raw = (ws as unknown as { _socket?: Socket })._socket;
  if (raw === undefined || (raw as SocketInternals).encrypted === true) return null;
  const descriptor = (): number => {
    const fd = (raw as SocketInternals)._handle?.fd;
    return raw.destroyed || typeof fd !== 'number' ? -1 : fd;
  };
  if (descriptor() < 0) return null;
  return {
    fd: descriptor,
    writableLength: () => raw.writableLength,
    writeRaw: (bytes) => {
      raw.write(bytes);
    },
    onBeforeClose: (beforeClose) => {
      const destroy = raw._destroy;
      raw._destroy = function destroyAfterTakingBack(this: Socket, error: Error | null, callback: (error?: Error | null) => void): void {
        beforeClose();
        destroy.call(this, error, callback);
      };
    },
  };
}
