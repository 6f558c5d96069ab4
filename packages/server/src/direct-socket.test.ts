import { once } from 'node:events';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { XLOG_BLCKSZ } from '@walship/engine/constants';
import type { Lsn } from '@walship/engine/lsn';
import { writePageHeader, XLOG_PAGE_MAGIC } from '@walship/engine/wal/xlog-internal';
import {
  WalSndDirectState,
  armWalSndDirect,
  createWalSndDirectShared,
  readWalSndDirect,
  releaseWalSndDirect,
  walSndDirectSend,
  walSndDirectViews,
  type WalSndDirectViews,
} from '@walship/engine/wal/walsnd-direct';
import { decodeReplicationFrame } from '@walship/protocol';
import { directSocketOf } from './direct-socket.js';

// Direct walsender sends over real loopback WebSockets: what the WAL flusher writes to the
// descriptor must reach the standby's `ws` as the XLogData messages the walsender would send.

const RING_PAGES = 32;
const BASE = 64 * XLOG_BLCKSZ;

/** A ring of WAL pages [BASE, BASE + RING_PAGES pages) with headers and recognizable bytes. */
function walRing(): Buffer {
  const ring = Buffer.alloc(RING_PAGES * XLOG_BLCKSZ);
  for (let page = 0; page < RING_PAGES; page++) {
    const pageLsn = BASE + page * XLOG_BLCKSZ;
    const slot = ((pageLsn / XLOG_BLCKSZ) % RING_PAGES) * XLOG_BLCKSZ;
    for (let i = 24; i < XLOG_BLCKSZ; i++) ring[slot + i] = (pageLsn / XLOG_BLCKSZ + i) & 0xff;
    writePageHeader(ring, slot, { magic: XLOG_PAGE_MAGIC, info: 0, timeline: 1, pageAddress: pageLsn as Lsn, remLength: 0 });
  }
  return ring;
}

/** The WAL bytes [from, to) as the ring holds them. */
function walBytes(ring: Buffer, from: number, to: number): Buffer {
  const out = Buffer.alloc(to - from);
  for (let pos = from; pos < to; pos++) out[pos - from] = ring[((Math.floor(pos / XLOG_BLCKSZ) % RING_PAGES) * XLOG_BLCKSZ) + (pos % XLOG_BLCKSZ)]!;
  return out;
}

interface Pair {
  server: WebSocket;
  client: WebSocket;
  received: Buffer[];
  close(): Promise<void>;
}

async function connectedPair(): Promise<Pair> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const accepted = once(wss, 'connection');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`);
  const received: Buffer[] = [];
  client.on('message', (data: Buffer) => received.push(data));
  await once(client, 'open');
  const [server] = (await accepted) as [WebSocket];
  return {
    server, client, received,
    close: async () => {
      client.terminate();
      server.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function decodeWal(message: Buffer): { dataStart: number; walEnd: number; data: Buffer } {
  const frame = decodeReplicationFrame(message, 'receiver');
  if (frame.type !== 'xlogData') throw new Error(`expected XLogData, got ${frame.type}`);
  return { dataStart: Number(frame.dataStart), walEnd: Number(frame.walEnd), data: Buffer.from(frame.data) };
}

let pair: Pair | null = null;
afterEach(async () => {
  await pair?.close();
  pair = null;
});

function armed(views: WalSndDirectViews, fd: number, sent: number): number {
  const slot = armWalSndDirect(views, fd, sent, () => sent);
  expect(slot).not.toBeNull();
  return slot!;
}

describe('direct walsender sends', () => {
  it('writes the WAL flushed since the slot was armed as XLogData messages the standby decodes', async () => {
    pair = await connectedPair();
    const socket = directSocketOf(pair.server)!;
    expect(socket).not.toBeNull();
    const ring = walRing();
    const views = walSndDirectViews(createWalSndDirectShared());
    const start = BASE + 100;
    const slot = armed(views, socket.fd(), start);
    // Three flushes: one within a page, one crossing a page boundary, one of several pages (a 4-byte ws length).
    const flushes = [start + 300, BASE + XLOG_BLCKSZ + 50, BASE + 5 * XLOG_BLCKSZ + 7];
    let time = 1_000_000;
    for (const flushed of flushes) expect(walSndDirectSend(views, ring, flushed, ++time)).toBe(false);
    await waitUntil('three messages', () => pair!.received.length === 3);
    let from = start;
    for (const [i, message] of pair.received.entries()) {
      const wal = decodeWal(message);
      expect(wal.dataStart).toBe(from);
      expect(wal.walEnd).toBe(flushes[i]);
      expect(wal.data.equals(walBytes(ring, from, flushes[i]!))).toBe(true);
      from = flushes[i]!;
    }
    expect(readWalSndDirect(views, slot)).toEqual({ state: WalSndDirectState.armed, sent: flushes[2], sendTime: time });
    expect(releaseWalSndDirect(views, slot)).toEqual({ sent: flushes[2], sendTime: time, rest: null });
  });

  it('arms only a walsender that has sent exactly what is flushed', () => {
    const views = walSndDirectViews(createWalSndDirectShared());
    expect(armWalSndDirect(views, 99, BASE, () => BASE + 8)).toBeNull();
    expect(armWalSndDirect(views, 99, BASE + 8, () => BASE + 8)).not.toBeNull();
  });

  it('gives the socket back without writing when more than one message of WAL is due, or its pages left the ring', async () => {
    pair = await connectedPair();
    const socket = directSocketOf(pair.server)!;
    const ring = walRing();
    const views = walSndDirectViews(createWalSndDirectShared());
    const tooMuch = armed(views, socket.fd(), BASE);
    expect(walSndDirectSend(views, ring, BASE + RING_PAGES * XLOG_BLCKSZ, 1)).toBe(true);
    expect(readWalSndDirect(views, tooMuch)).toMatchObject({ state: WalSndDirectState.returned, sent: BASE });
    expect(releaseWalSndDirect(views, tooMuch)).toEqual({ sent: BASE, sendTime: 0, rest: null });

    const reused = armed(views, socket.fd(), BASE + 10);
    // The main thread reused the first page's slot for the page a ring later.
    writePageHeader(ring, (BASE / XLOG_BLCKSZ % RING_PAGES) * XLOG_BLCKSZ, {
      magic: XLOG_PAGE_MAGIC, info: 0, timeline: 1, pageAddress: (BASE + RING_PAGES * XLOG_BLCKSZ) as Lsn, remLength: 0,
    });
    expect(walSndDirectSend(views, ring, BASE + 200, 2)).toBe(true);
    expect(readWalSndDirect(views, reused)).toMatchObject({ state: WalSndDirectState.returned, sent: BASE + 10 });
    // Nothing was written: a message sent now is the first the standby gets.
    pair.server.send(Buffer.from('marker'));
    await waitUntil('the marker', () => pair!.received.length > 0);
    expect(pair.received.map((message) => message.toString())).toEqual(['marker']);
  });

  it('never blocks on a standby that stops reading: the frame cut short is finished by the walsender, in order', async () => {
    pair = await connectedPair();
    const socket = directSocketOf(pair.server)!;
    const ring = walRing();
    const views = walSndDirectViews(createWalSndDirectShared());
    // The standby stops reading: its receive buffer and the sender's fill up.
    (pair.client as unknown as { _socket: { pause(): void } })._socket.pause();
    // The same 6 pages again and again, each send a new XLogData message, until the socket is full.
    let sent = BASE;
    const slot = armed(views, socket.fd(), sent);
    let sends = 0;
    const chunk = 6 * XLOG_BLCKSZ;
    const ends: number[] = [];
    for (;;) {
      // Sends move forward through the LSN space; the ring's pages are renamed to match.
      for (let page = 0; page < RING_PAGES; page++) {
        const pageLsn = sent - (sent % XLOG_BLCKSZ) + page * XLOG_BLCKSZ;
        writePageHeader(ring, ((pageLsn / XLOG_BLCKSZ) % RING_PAGES) * XLOG_BLCKSZ, {
          magic: XLOG_PAGE_MAGIC, info: 0, timeline: 1, pageAddress: pageLsn as Lsn, remLength: 0,
        });
      }
      const returned = walSndDirectSend(views, ring, sent + chunk, ++sends);
      const progress = readWalSndDirect(views, slot);
      if (progress.sent > sent) ends.push(progress.sent);
      sent = progress.sent;
      if (returned) break;
      expect(sends).toBeLessThan(10_000);
    }
    const { rest } = releaseWalSndDirect(views, slot);
    // Most likely cut short; either way nothing was lost or repeated.
    if (rest !== null) socket.writeRaw(rest);
    (pair.client as unknown as { _socket: { resume(): void } })._socket.resume();
    await waitUntil('every message', () => pair!.received.length === ends.length);
    let from = BASE;
    for (const [i, message] of pair.received.entries()) {
      const wal = decodeWal(message);
      expect(wal.dataStart).toBe(from);
      expect(wal.walEnd).toBe(ends[i]);
      from = wal.walEnd;
    }
    expect(sends).toBeGreaterThan(1);
  });

  it('tells the walsender before the descriptor closes', async () => {
    pair = await connectedPair();
    const socket = directSocketOf(pair.server)!;
    const fd = socket.fd();
    const openAtClose: boolean[] = [];
    // The descriptor is still this socket when the walsender is told (so a send under way ends first).
    socket.onBeforeClose(() => openAtClose.push(fs.fstatSync(fd).isSocket()));
    pair.server.terminate();
    expect(openAtClose).toEqual([true]);
    expect(socket.fd()).toBe(-1);
  });
});
