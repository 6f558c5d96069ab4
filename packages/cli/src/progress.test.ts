import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CliIo } from './io.js';
import { Progress } from './progress.js';

function io(isTTY: boolean): { io: CliIo; lines: string[] } {
  const lines: string[] = [];
  const stderr = { isTTY, write: (chunk: string | Uint8Array) => lines.push(String(chunk)) > 0 };
  return { io: { stdout: stderr, stderr, stdin: new PassThrough(), env: {} }, lines };
}

describe('Progress', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('is due at most once a second on a pipe, and update() draws only when due', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { io: pipe, lines } = io(false);
    const progress = new Progress(pipe, { progress: true });
    expect(progress.due()).toBe(true);
    progress.update('one');
    expect(progress.due()).toBe(false);
    progress.update('two');
    vi.setSystemTime(1_000_999);
    expect(progress.due()).toBe(false);
    vi.setSystemTime(1_001_000);
    expect(progress.due()).toBe(true);
    progress.update('three');
    progress.update('forced', true);
    expect(lines).toEqual(['one\n', 'three\n', 'forced\n']);
  });

  it('redraws a terminal line every 100 ms, and is never due when quiet or on a pipe without --progress', () => {
    vi.useFakeTimers({ now: 5_000 });
    const { io: terminal, lines } = io(true);
    const progress = new Progress(terminal, {});
    progress.update('a');
    vi.setSystemTime(5_099);
    expect(progress.due()).toBe(false);
    vi.setSystemTime(5_100);
    expect(progress.due()).toBe(true);
    expect(lines).toEqual(['\r\x1b[Ka']);
    expect(new Progress(terminal, { quiet: true }).due()).toBe(false);
    expect(new Progress(io(false).io, {}).due()).toBe(false);
  });
});
