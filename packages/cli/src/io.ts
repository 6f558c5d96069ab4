/**
 * The streams and environment a command runs with. main.ts passes the process's; tests pass
 * buffers, so that commands can be run in-process and their output compared.
 */

export interface OutputStream {
  write(chunk: string | Uint8Array): boolean;
  /** True when the stream is a terminal: progress is drawn only there (unless --progress). */
  readonly isTTY?: boolean;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env };
}
