/**
 * Real nodes for the cross-package tests: each is a `walship init`ed data directory in a
 * temporary folder and a real server process on a free loopback port, started, stopped and
 * killed with real signals.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WalshipClient } from '@walship/client';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(ROOT, 'packages', 'cli', 'bin', 'walship.js');
export const SERVER = path.join(ROOT, 'packages', 'server', 'dist', 'main.js');

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `walship-${prefix}-`));
}

/** A port nobody listens on right now (the kernel picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the walship CLI to completion. */
export function walship(args: string[], options: { input?: string; env?: Record<string, string> } = {}): CliResult {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT, encoding: 'utf8', input: options.input, env: { ...process.env, ...options.env }, timeout: 120_000,
  });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Waits for `condition` to hold, checking every `intervalMs`, failing after `timeoutMs`. */
/** How many times `text` occurs in `log` (a node's log, read whole). */
export const countInLog = (log: string, text: string): number => log.split(text).length - 1;

export async function waitFor<T>(what: string, condition: () => T | Promise<T>, timeoutMs = 30_000, intervalMs = 20): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export class TestNode {
  process: ChildProcess | null = null;
  private output = '';
  private exited: Promise<number | null> | null = null;

  constructor(readonly dataDir: string, readonly port: number) {}

  /**
   * `walship init` with test-friendly settings (small segments, small buffers, and no heartbeat:
   * the tests that reason about what an idle primary writes, or how often its walsenders wake,
   * expect no WAL at all; the lag tests turn heartbeats back on). `initArgs` go to init as they
   * are (e.g. --encrypt --key-file FILE).
   */
  static async init(name: string, settings: Record<string, string> = {}, initArgs: string[] = []): Promise<TestNode> {
    const dir = path.join(tempDir(name), 'data');
    const port = await freePort();
    const sets = Object.entries({ wal_segment_size: '1MB', shared_buffers: '2MB', heartbeat_interval: '0', ...settings }).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
    const result = walship(['init', '-D', dir, '--port', String(port), ...sets, ...initArgs]);
    if (result.status !== 0) throw new Error(`walship init failed (${result.status}): ${result.stderr}`);
    return new TestNode(dir, port);
  }

  /** Starts the server process and waits until it accepts connections. */
  async start(env: Record<string, string> = {}): Promise<void> {
    const { child, exitCode } = this.spawnServer(env);
    await waitFor(`node on port ${this.port} to be ready`, () => {
      const code = exitCode();
      if (code !== undefined) throw new Error(`node exited with ${code} before it was ready:\n${this.output}`);
      // A killed node leaves its postmaster.pid behind: only this child's own file counts.
      return this.pidStatus(child.pid) === 'ready';
    }, 60_000);
  }

  /**
   * Starts the server process and waits until it answers but refuses connections
   * (`walship isready` says "rejecting connections"): a standby still short of its consistent
   * point. Fails if the node becomes ready instead.
   */
  async startNotReady(env: Record<string, string> = {}): Promise<void> {
    const { child, exitCode } = this.spawnServer(env);
    await waitFor(`node on port ${this.port} to answer and refuse connections`, () => {
      const code = exitCode();
      if (code !== undefined) throw new Error(`node exited with ${code}:\n${this.output}`);
      if (this.pidStatus(child.pid) === 'ready') throw new Error(`node on port ${this.port} became ready:\n${this.output}`);
      if (this.pidStatus(child.pid) === null) return false;
      return walship(['isready', '--node', `127.0.0.1:${this.port}`]).status === 1;
    }, 60_000, 100);
  }

  private spawnServer(env: Record<string, string>): { child: ChildProcess; exitCode: () => number | null | undefined } {
    this.output = '';
    const child = spawn(process.execPath, [SERVER, '-D', this.dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // Log lines keep going to stderr after start, so tests can read what the node said.
      env: { ...process.env, WALSHIP_LOG_STDERR: '1', ...env },
    });
    this.process = child;
    child.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void this.exited.then((code) => { exitCode = code; });
    return { child, exitCode: () => exitCode };
  }

  /** Starts the server and resolves with its exit code and output, for starts that must fail. */
  async startExpectingFailure(timeoutMs = 30_000): Promise<{ code: number | null; output: string }> {
    this.output = '';
    const child = spawn(process.execPath, [SERVER, '-D', this.dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => { this.output += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { this.output += d.toString(); });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`node did not exit within ${timeoutMs} ms:\n${this.output}`)); }, timeoutMs);
      child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
    });
    return { code, output: this.output };
  }

  get log(): string {
    return this.output;
  }

  /** The status line of postmaster.pid, if the file is there (and belongs to `pid`, when given). */
  pidStatus(pid?: number): string | null {
    try {
      const lines = fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n');
      if (pid !== undefined && Number(lines[0]) !== pid) return null;
      return lines[7]?.trim() ?? null;
    } catch {
      return null;
    }
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = 'SIGINT'): Promise<number | null> {
    if (this.process === null || this.exited === null) return null;
    this.process.kill(signal);
    const code = await this.exited;
    this.process = null;
    return code;
  }

  kill(): Promise<number | null> {
    return this.stop('SIGKILL');
  }

  async client(options: { timeoutMs?: number } = {}): Promise<WalshipClient> {
    return WalshipClient.connect({ host: '127.0.0.1', port: this.port, timeoutMs: options.timeoutMs ?? 30_000 });
  }

  /** Removes the node's folder (after stopping it). */
  async destroy(): Promise<void> {
    if (this.process !== null) await this.kill();
    fs.rmSync(path.dirname(this.dataDir), { recursive: true, force: true });
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A base port with `count` consecutive free ports from it (a cluster config's --base-port), and as
 * many free at + 100 and + 200: the partition proxy's ports, which `local-3node.yaml` as shipped uses.
 */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + 200 + count > 65535) continue;
    const ports = [...Array.from({ length: count - 1 }, (_, i) => base + i + 1), ...[100, 200].flatMap((offset) => Array.from({ length: count }, (_, i) => base + offset + i))];
    const others = await Promise.all(ports.map(portIsFree));
    if (others.every(Boolean)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}
