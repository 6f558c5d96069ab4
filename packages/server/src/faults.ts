/**
 * Fault injection for tests: faults that cannot be produced from outside a node (a component
 * that throws) are switched on through the WALSHIP_FAULTS environment variable of the node's
 * process, a comma-separated list of `name` or `name=count`. Never set in production; a node
 * started with faults says so in its log.
 *
 *   crash_wal_writer=N    the WAL writer throws on its Nth loop after N commits were counted
 *                         (once per postmaster lifetime), to exercise crash-restart.
 */

export type FaultName = 'crash_wal_writer';

const KNOWN: readonly FaultName[] = ['crash_wal_writer'];

export class Faults {
  private readonly armed = new Map<FaultName, number>();

  constructor(spec: string | undefined) {
    for (const part of (spec ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
      const [name, count] = part.split('=');
      if (!KNOWN.includes(name as FaultName)) throw new Error(`unknown fault "${name}" in WALSHIP_FAULTS; known: ${KNOWN.join(', ')}`);
      this.armed.set(name as FaultName, count === undefined ? 0 : Number(count));
    }
  }

  get active(): string[] {
    return [...this.armed.keys()];
  }

  /** The fault's argument, if it is armed; disarms it (each fault fires once). */
  take(name: FaultName, ready: (argument: number) => boolean): boolean {
    const argument = this.armed.get(name);
    if (argument === undefined || !ready(argument)) return false;
    this.armed.delete(name);
    return true;
  }
}
