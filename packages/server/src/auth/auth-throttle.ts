/**
 * Slows down repeated authentication failures from one address (what PostgreSQL leaves to the
 * auth_delay module, made per address and growing): after the n-th failure in a row, the next
 * attempt from that address waits min(AUTH_FAILURE_DELAY_MAX_MS, AUTH_FAILURE_DELAY_BASE_MS *
 * 2^(n-1)) before its authentication starts. Attempts arriving together from one address queue
 * behind each other (each reserves the next slot), so that opening many connections at once does
 * not multiply the guesses. A success from the address forgets its failures; so does a quiet
 * AUTH_FAILURE_WINDOW_MS.
 *
 * Pure: the caller gives the time and does the waiting (a timer per session, never blocking
 * other sessions).
 */

/** The first delay: a typo costs a person nothing noticeable. */
export const AUTH_FAILURE_DELAY_BASE_MS = 100;
/** The longest delay, well inside authentication_timeout (60 s): about one guess per 5 s. */
export const AUTH_FAILURE_DELAY_MAX_MS = 5_000;
/** Failures older than this (since the last one) are forgotten. */
export const AUTH_FAILURE_WINDOW_MS = 60_000;
/**
 * Addresses remembered at once. Past it the entry with the oldest failure is dropped: an attacker
 * spraying from many addresses cannot grow the node's memory without bound.
 */
export const AUTH_THROTTLE_ADDRESSES_MAX = 10_000;

interface Entry {
  failures: number;
  lastFailureMs: number;
  /** When the next attempt from this address may start. */
  nextAttemptMs: number;
}

export interface AuthThrottleOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  windowMs?: number;
  maxAddresses?: number;
}

export class AuthThrottle {
  private readonly entries = new Map<string, Entry>();
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly windowMs: number;
  private readonly maxAddresses: number;

  constructor(options: AuthThrottleOptions = {}) {
    this.baseDelayMs = options.baseDelayMs ?? AUTH_FAILURE_DELAY_BASE_MS;
    this.maxDelayMs = options.maxDelayMs ?? AUTH_FAILURE_DELAY_MAX_MS;
    this.windowMs = options.windowMs ?? AUTH_FAILURE_WINDOW_MS;
    this.maxAddresses = options.maxAddresses ?? AUTH_THROTTLE_ADDRESSES_MAX;
  }

  /** The delay after `failures` failures in a row. */
  delayAfter(failures: number): number {
    if (failures <= 0) return 0;
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures - 1, 30));
  }

  private current(address: string, nowMs: number): Entry | undefined {
    const entry = this.entries.get(address);
    if (entry !== undefined && nowMs - entry.lastFailureMs > this.windowMs) {
      this.entries.delete(address);
      return undefined;
    }
    return entry;
  }

  /** An attempt starts: how long it must wait before authenticating (and its slot is taken). */
  admit(address: string, nowMs: number): number {
    const entry = this.current(address, nowMs);
    if (entry === undefined) return 0;
    const startMs = Math.max(nowMs, entry.nextAttemptMs);
    entry.nextAttemptMs = startMs + this.delayAfter(entry.failures);
    return startMs - nowMs;
  }

  /** An attempt failed: the next one waits longer. */
  failed(address: string, nowMs: number): void {
    const entry = this.current(address, nowMs) ?? { failures: 0, lastFailureMs: nowMs, nextAttemptMs: nowMs };
    entry.failures++;
    entry.lastFailureMs = nowMs;
    entry.nextAttemptMs = Math.max(entry.nextAttemptMs, nowMs + this.delayAfter(entry.failures));
    this.entries.delete(address);
    this.entries.set(address, entry);
    // Map order is insertion order and each failure re-inserts: the first entry failed longest ago.
    while (this.entries.size > this.maxAddresses) this.entries.delete(this.entries.keys().next().value!);
  }

  /** An attempt succeeded: the address starts afresh. */
  succeeded(address: string): void {
    this.entries.delete(address);
  }

  /** Failures remembered for an address (status and tests). */
  failures(address: string, nowMs: number): number {
    return this.current(address, nowMs)?.failures ?? 0;
  }
}
