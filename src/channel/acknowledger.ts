/**
 * Acknowledgements of one channel on the wire: ack, nack and reject as the application settles
 * deliveries, with in-order acks coalesced into one basic.ack(multiple) written just before the
 * next flush (see `AckTracker` for which tags a run may cover).
 *
 * @module
 */
import type { ChannelWriter } from '../connection/endpoint.js';
import { AckTracker } from './ack-tracker.js';
import type { Settlement } from './message.js';

export class Acknowledger {
  private readonly tags = new AckTracker();
  private readonly flushHook = (): void => this.flushRun();

  /**
   * @param mayWrite whether the channel may still write a held-back ack (open or closing); asked
   *   when the run is written, since the channel may have closed since the acks were given.
   */
  constructor(
    private readonly writer: ChannelWriter,
    private readonly channelId: number,
    private readonly mayWrite: () => boolean,
  ) {}

  /** The highest delivery tag the broker has used on this channel. */
  get highestDelivered(): number {
    return this.tags.highestDelivered;
  }

  /** Books a delivery tag the broker used; one that needs no ack is settled from the start. */
  delivered(tag: number, noAck: boolean): void {
    this.tags.highestDelivered = tag;
    if (noAck) this.tags.markSettled(tag);
  }

  /** Every tag up to `tag` is settled (basic.recover: the broker forgot them). */
  settledThrough(tag: number): void {
    this.tags.markSettledThrough(tag);
  }

  /** Sends ack/nack/reject, coalescing in-order acks into one write just before the next flush. */
  settle(tag: number, { kind, multiple, requeue }: Settlement): void {
    const tags = this.tags;
    if (kind === 'ack' && !multiple) {
      const first = !tags.hasRun;
      if (tags.extendRun(tag)) {
        if (first) this.writer.beforeNextFlush(this.flushHook);
        return;
      }
    }
    this.flushRun();
    const writer = this.writer;
    if (kind === 'ack') writer.sendMethod(this.channelId, 'basic.ack', { deliveryTag: tag, multiple });
    else if (kind === 'nack') writer.sendMethod(this.channelId, 'basic.nack', { deliveryTag: tag, multiple, requeue });
    else writer.sendMethod(this.channelId, 'basic.reject', { deliveryTag: tag, requeue });
    writer.scheduleFlush();
    if (multiple) tags.markSettledThrough(tag);
    else tags.markSettled(tag);
  }

  /** Writes the pending coalesced ack, if any (no flush: it joins whatever write comes next). */
  flushRun(): void {
    const run = this.tags.takeRun();
    if (run === undefined || !this.mayWrite()) return;
    this.writer.sendMethod(this.channelId, 'basic.ack', run);
  }
}
