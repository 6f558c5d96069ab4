/**
 * The partition proxy's files in the data root: `proxy.json`, what each member's links are
 * (cut, or slowed by a latency), written by `cluster partition|heal` and read by the proxy
 * process every PROXY_POLL_MS; and `proxy.pid`, the proxy process. The control file outlives
 * the proxy, so a restarted proxy keeps a partition in force.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { PROXY_CONTROL_FILE_NAME, PROXY_PID_FILE_NAME } from './constants.js';
import { claimPidFile, readLivePidFile, removePidFile, stopPidFileProcess } from './pid-file.js';

/** Longest latency a link may be given: beyond, the members' own timeouts take it for a cut. */
export const PROXY_LATENCY_MAX_MS = 60_000;

/** How long a stopping proxy may take: it closes its listeners and connections at once. */
const PROXY_STOP_TIMEOUT_MS = 10_000;

export interface LinkControl {
  /** Nothing passes, either way, on the member's inbound and outbound links (held, not dropped). */
  readonly cut: boolean;
  /** Added to every chunk, either way, on those links. */
  readonly latencyMs: number;
}

export interface ProxyControl {
  readonly links: Readonly<Record<string, LinkControl>>;
  /** Grows with each write; the proxy reports the last one it applied (proxy.applied). */
  readonly generation?: number;
}

export const OPEN_LINK: LinkControl = { cut: false, latencyMs: 0 };

export function proxyControlPath(dataRoot: string): string {
  return join(dataRoot, PROXY_CONTROL_FILE_NAME);
}

export function proxyPidPath(dataRoot: string): string {
  return join(dataRoot, PROXY_PID_FILE_NAME);
}

function appliedPath(dataRoot: string): string {
  return join(dataRoot, 'proxy.applied');
}

/** The proxy, after applying a control file: its generation (for `cluster partition` to wait on). */
export function writeProxyApplied(dataRoot: string, generation: number): void {
  const temporary = `${appliedPath(dataRoot)}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, String(generation));
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, appliedPath(dataRoot));
}

/** The generation the running proxy has applied (0 when it has not said). */
export function readProxyApplied(dataRoot: string): number {
  try {
    const value = Number(readFileSync(appliedPath(dataRoot), 'utf8'));
    return Number.isSafeInteger(value) ? value : 0;
  } catch {
    return 0;
  }
}

/** The control file; every link open when there is none (or it cannot be read). */
export function readProxyControl(dataRoot: string): ProxyControl {
  try {
    const parsed = JSON.parse(readFileSync(proxyControlPath(dataRoot), 'utf8')) as ProxyControl;
    return typeof parsed === 'object' && parsed !== null && typeof parsed.links === 'object' && parsed.links !== null ? parsed : { links: {} };
  } catch {
    return { links: {} };
  }
}

/** A member's link control (open when not listed). */
export function linkControl(control: ProxyControl, member: string): LinkControl {
  return control.links[member] ?? OPEN_LINK;
}

/** Replaces the control file atomically (temporary file, fsync, rename). */
export function writeProxyControl(dataRoot: string, control: ProxyControl): void {
  mkdirSync(dataRoot, { recursive: true });
  const path = proxyControlPath(dataRoot);
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(control, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

/** One member's links set (`partition`), or every member's links opened (`heal` without a member). */
export function setLinkControl(dataRoot: string, member: string | null, link: LinkControl): ProxyControl {
  const current = readProxyControl(dataRoot);
  const links: Record<string, LinkControl> = member === null ? {} : { ...current.links, [member]: link };
  if (member !== null && !link.cut && link.latencyMs === 0) delete links[member];
  const next = { links, generation: (current.generation ?? 0) + 1 };
  writeProxyControl(dataRoot, next);
  return next;
}

export interface ProxyPidFile {
  readonly pid: number;
  readonly since: string;
}

/** The proxy's pid file when its process is alive; null otherwise. */
export function runningProxy(dataRoot: string): ProxyPidFile | null {
  return readLivePidFile<ProxyPidFile>(proxyPidPath(dataRoot));
}

/** Claims the pid file; false when a live proxy holds it. */
export function claimProxyPidFile(dataRoot: string, record: ProxyPidFile): boolean {
  mkdirSync(dataRoot, { recursive: true });
  return claimPidFile(proxyPidPath(dataRoot), record);
}

export function removeProxyPidFile(dataRoot: string, pid: number): void {
  removePidFile(proxyPidPath(dataRoot), pid);
}

/** Stops the proxy if one runs (SIGTERM) and waits until it is gone; its pid, or null. */
export async function stopRunningProxy(dataRoot: string, timeoutMs: number = PROXY_STOP_TIMEOUT_MS): Promise<number | null> {
  const running = runningProxy(dataRoot);
  if (running === null) return null;
  await stopPidFileProcess(running.pid, null, timeoutMs, () => new ClusterError(ClusterErrorCode.timeout, `the partition proxy (pid ${running.pid}) did not stop within ${timeoutMs / 1000} s`, { hint: `Stop it with kill ${running.pid}.` }));
  return running.pid;
}

/** How long `cluster partition|heal` waits for the proxy to apply the change: a few of its polls. */
const PROXY_APPLY_WAIT_MS = 2_000;

/**
 * Waits until the running proxy has applied `generation`. False when no proxy runs, or it did
 * not within PROXY_APPLY_WAIT_MS (it applies the file when it starts or catches up).
 */
export async function waitProxyApplied(dataRoot: string, generation: number): Promise<boolean> {
  const deadline = Date.now() + PROXY_APPLY_WAIT_MS;
  while (runningProxy(dataRoot) !== null) {
    if (readProxyApplied(dataRoot) >= generation) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return false;
}
