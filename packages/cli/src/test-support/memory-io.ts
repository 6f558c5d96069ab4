/** An in-memory CliIo for tests: what a command printed, and a stdin fed from a string. */
import { Readable } from 'node:stream';
import type { CliIo } from '../io.js';

export interface MemoryIo extends CliIo {
  stdoutText(): string;
  stderrText(): string;
  stdoutBytes(): Buffer;
}

export function memoryIo(options: { env?: NodeJS.ProcessEnv; stdin?: string; tty?: boolean } = {}): MemoryIo {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) => ({
    write(chunk: string | Uint8Array) {
      chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk));
      return true;
    },
    isTTY: options.tty ?? false,
  });
  return {
    stdout: sink(out),
    stderr: sink(err),
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    env: options.env ?? {},
    stdoutText: () => Buffer.concat(out).toString('utf8'),
    stderrText: () => Buffer.concat(err).toString('utf8'),
    stdoutBytes: () => Buffer.concat(out),
  };
}
