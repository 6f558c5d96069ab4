/**
 * A server component: the analogue of one PostgreSQL auxiliary process, living on the
 * postmaster's event loop. Each has a `main` loop, its own latch, and a lifecycle owned by the
 * postmaster (startChild). A component whose main loop throws has crashed: the postmaster treats
 * that as PostgreSQL treats a crashed child — stop all, recover, start again.
 */
import { Latch } from './latch.js';

export type ComponentKind = 'startup' | 'wal writer' | 'checkpointer' | 'background writer' | 'autovacuum launcher' | 'walreceiver' | 'archiver' | 'heartbeat';

/** PostgreSQL's pids are per process; ours are per component start, for the log lines. */
let nextComponentId = 1;

export abstract class Component {
  abstract readonly kind: ComponentKind;
  readonly latch = new Latch();
  readonly id = nextComponentId++;
  protected stopping = false;
  private running: Promise<void> | null = null;

  /** Runs the main loop; the promise rejects if the component crashed. */
  start(): Promise<void> {
    this.running ??= this.main();
    return this.running;
  }

  /** Asks the loop to finish its current step and return. */
  stop(): void {
    this.stopping = true;
    this.latch.set();
  }

  /** Stops and waits for the loop to end (ignoring a crash: the caller is already stopping). */
  async stopAndWait(): Promise<void> {
    this.stop();
    await this.running?.catch(() => undefined);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  protected abstract main(): Promise<void>;
}
