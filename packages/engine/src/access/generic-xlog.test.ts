import { describe, expect, it } from 'vitest';
import { BLCKSZ } from '../constants.js';
import { computeDelta } from './generic-xlog.js';

/** The reference: every differing byte past the LSN and checksum, as [offset, length] runs merged across gaps of up to 4. */
function reference(before: Buffer, after: Buffer): number[] {
  const out: number[] = [];
  let start = -1;
  let last = -1;
  for (let i = 12; i < BLCKSZ; i++) {
    if (before[i] === after[i]) continue;
    if (start >= 0 && i - last - 1 > 4) {
      out.push(start, last + 1 - start);
      start = -1;
    }
    if (start < 0) start = i;
    last = i;
  }
  if (start >= 0) out.push(start, last + 1 - start);
  return out;
}

function apply(before: Buffer, after: Buffer, ranges: number[]): Buffer {
  const result = Buffer.from(before);
  for (let i = 0; i < ranges.length; i += 2) after.copy(result, ranges[i]!, ranges[i]!, ranges[i]! + ranges[i + 1]!);
  return result;
}

/** A repeatable generator of numbers in [0, 1) (a linear congruential one), so that a failure repeats. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => ((state = (state * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
}

/** A page of small random bytes, and a copy with up to 11 random edits of editLength() bytes each. */
function editedPage(random: () => number, editLength: () => number): [Buffer, Buffer] {
  const before = Buffer.alloc(BLCKSZ);
  for (let i = 0; i < BLCKSZ; i++) before[i] = Math.floor(random() * 4);
  const after = Buffer.from(before);
  for (let e = Math.floor(random() * 12); e > 0; e--) {
    const at = Math.floor(random() * BLCKSZ);
    const length = editLength();
    for (let i = at; i < Math.min(BLCKSZ, at + length); i++) after[i] = Math.floor(random() * 256);
  }
  return [before, after];
}

describe('computeDelta', () => {
  it('finds exactly the changed bytes of random page edits', () => {
    const random = seeded(12345);
    for (let round = 0; round < 500; round++) {
      const [before, after] = editedPage(random, () => Math.floor(random() * (random() < 0.2 ? 2000 : 20)));
      const delta = computeDelta(before, after, []);
      expect(delta).toEqual(reference(before, after));
      // Applying it gives the new page, except the LSN and checksum, which redo and writes set.
      expect(apply(before, after, delta).subarray(12).equals(after.subarray(12))).toBe(true);
    }
  });

  it('finds the same ranges for pages not 4-byte aligned in their memory (the byte scan)', () => {
    const random = seeded(4242);
    for (let round = 0; round < 200; round++) {
      const [page, edited] = editedPage(random, () => Math.floor(random() * 40));
      // One side, or both, at an odd offset of a larger block of memory.
      const shifted = (source: Buffer, offset: number) => {
        const memory = Buffer.alloc(BLCKSZ + 8);
        source.copy(memory, offset);
        return memory.subarray(offset, offset + BLCKSZ);
      };
      const before = round % 2 === 0 ? shifted(page, 1 + (round % 3)) : page;
      const after = shifted(edited, 3);
      expect(computeDelta(before, after, [])).toEqual(reference(page, edited));
    }
  });

  it('joins or splits runs by the gap between differing bytes, also within and across 32-bit words', () => {
    const before = Buffer.alloc(BLCKSZ, 5);
    const at = (...offsets: number[]) => {
      const after = Buffer.from(before);
      for (const offset of offsets) after[offset] = 6;
      return computeDelta(before, after, []);
    };
    expect(at(4000, 4003)).toEqual([4000, 4]); // first and last byte of one word
    expect(at(4003, 4008)).toEqual([4003, 6]); // a gap of 4 bytes across a word: one run
    expect(at(4003, 4009)).toEqual([4003, 1, 4009, 1]); // a gap of 5: two runs
    expect(at(4000, 4007)).toEqual([4000, 1, 4007, 1]); // two words, a gap of 6 between their differing bytes
    expect(at(4001, 4002, 4006)).toEqual([4001, 6]); // two differing bytes in one word, one in the next
    expect(at(12, 8191)).toEqual([12, 1, 8191, 1]); // the first byte after the checksum, the page's last byte
    expect(at(4, 11)).toEqual([]); // the LSN and checksum are never part of the delta
  });

  it('merges forced revision fields in any order, overlapping or not, as one sorted pass would', () => {
    const random = seeded(777);
    // The reference merge: every run and every forced [offset, offset + 8), sorted, joined across gaps of up to 4.
    const merged = (runs: number[], forced: number[]): number[] => {
      const all: Array<[number, number]> = [];
      for (let i = 0; i < runs.length; i += 2) all.push([runs[i]!, runs[i]! + runs[i + 1]!]);
      for (const offset of forced) all.push([offset, offset + 8]);
      all.sort((a, b) => a[0] - b[0]);
      const out: number[] = [];
      let [start, end] = all[0]!;
      for (const [s, e] of all.slice(1)) {
        if (s - end <= 4) end = Math.max(end, e);
        else {
          out.push(start, end - start);
          [start, end] = [s, e];
        }
      }
      out.push(start, end - start);
      return out;
    };
    for (let round = 0; round < 300; round++) {
      const before = Buffer.alloc(BLCKSZ, 3);
      const after = Buffer.from(before);
      for (let e = Math.floor(random() * 6); e > 0; e--) after[12 + Math.floor(random() * (BLCKSZ - 12))] = 9;
      const forced = Array.from({ length: 1 + Math.floor(random() * 4) }, () => 12 + Math.floor(random() * (BLCKSZ - 20)));
      if (round % 3 === 0) forced.push(forced[0]! + Math.floor(random() * 10)); // overlapping or adjacent
      const copy = forced.slice();
      expect(computeDelta(before, after, forced)).toEqual(merged(reference(before, after), forced));
      expect(forced).toEqual(copy); // the caller's list is not reordered
    }
  });

  it('always covers a forced revision field whole, changed or not', () => {
    const before = Buffer.alloc(BLCKSZ, 7);
    const after = Buffer.from(before);
    after[1000] = 1;
    const delta = computeDelta(before, after, [2000, 1002]);
    expect(delta).toEqual([1000, 10, 2000, 8]);
  });
});
