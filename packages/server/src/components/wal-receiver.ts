/**
 * The walreceiver component (walreceiver.c's process): the postmaster starts it in answer to
 * PMSIGNAL_START_WALRECEIVER, which the startup component sends through requestXLogStreaming.
 * Its work is `WalReceiver` from the replication package. Unlike the other components, its exit
 * is not a node crash — an unreachable upstream is an ordinary event: the postmaster logs why,
 * marks it stopped, and the startup component asks again after wal_retrieve_retry_interval.
 */
import { WalReceiver, type WalReceiverOptions } from '@walship/replication';
import { Component } from '../component.js';

export class WalReceiverComponent extends Component {
  readonly kind = 'walreceiver' as const;
  readonly receiver: WalReceiver;

  constructor(options: Omit<WalReceiverOptions, 'latch' | 'isStopping'>) {
    super();
    this.receiver = new WalReceiver({ ...options, latch: this.latch, isStopping: () => this.stopping });
  }

  override stop(): void {
    super.stop();
    this.receiver.stop();
  }

  protected main(): Promise<void> {
    return this.receiver.run();
  }
}
