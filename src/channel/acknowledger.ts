/**
 * Acknowledgements of one channel on the wire: ack, nack and reject as the application settles
 * deliveries, with in-order acks coalesced into one basic.ack(multiple) written just before the
 * next flush (see `AckTracker` for which tags a run may cover).
 *
 * With a prefetch window (`holdUpTo`), a run is held past flushes until it covers a quarter of the
 * window, until acks pause for `HOLD_MS`, or for `MAX_HOLD_MS` at most. Every ack frame costs the
 * broker about as much as a delivery, and a consumer that keeps up sees only a few deliveries per
 * read, so acking every read spends much of the broker's time on acks (and each ack write costs the
 * client a system call); the broker still has three quarters of the window to send meanwhile. A
 * stream that keeps flowing is acked a quarter window at a time, the tail of one within `HOLD_MS`.
 * Anything that must follow the acks in wire order (a nack, a reject, basic.recover, the channel's
 * or the connection's close) writes the held run first.
 *
 * @module
 */
import type { ChannelWriter } from '../connection/endpoint.js';
import { AckTracker } from './ack-tracker.js';
import type { Settlement } from './message.js';

/** A held run leaves once no ack has joined it for this long. */
const HOLD_MS = 1;
/** A held run never waits longer than this, even while acks keep joining it. */
const MAX_HOLD_MS = 10;

export class Acknowledger {
  private readonly tags = new AckTracker();
  /** Runs shorter than this are held past a flush (0: never held). */
  private holdFor = 0;
  /** Set while a run was passed over by a flush: it waits for its length or for this timer. */
  private holdTimer: NodeJS.Timeout | undefined = undefined;
  /** When the current hold began (ms), and the run's length when its timer was last set. */
  private holdSince = 0;
  private runAtTimer = 0;
  private readonly flushHook = (): void => {
    if (this.mayHold()) {
      if (this.holdTimer === undefined) {
        this.holdSince = Date.now();
        this.armHold();
      }
      return;
    }
    this.flushRun();
  };
  private readonly holdExpired = (): void => {
    this.holdTimer = undefined;
    // Acks are still coming: wait for the quarter window, a pause, or the longest hold.
    if (this.tags.runLength > this.runAtTimer && Date.now() - this.holdSince < MAX_HOLD_MS && this.mayHold()) {
      this.armHold();
      return;
    }
    this.flushRun();
    this.writer.scheduleFlush();
  };

  /**
   * @param mayWrite whether the channel may still write a held-back ack (open or closing); asked
   *   when the run is written, since the channel may have closed since the acks were given.
   */
  constructor(
    private readonly writer: ChannelWriter,
    private readonly channelId: number,
    private readonly mayWrite: () => boolean,
  ) {}

  /**
   * Holds in-order acks until they cover a quarter of `prefetchCount` (or for 1 ms); 0, or a
   * window under 8, sends them at the next flush.
   */
  holdUpTo(prefetchCount: number): void {
    this.holdFor = prefetchCount >= 8 ? Math.floor(prefetchCount / 4) : 0;
    if (this.holdTimer !== undefined && this.tags.runLength >= this.holdFor) this.release();
  }

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
        else if (this.holdTimer !== undefined && tags.runLength >= this.holdFor) this.release();
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

  private mayHold(): boolean {
    return this.tags.runLength < this.holdFor && this.writer.unusable === undefined && this.mayWrite();
  }

  private armHold(): void {
    this.runAtTimer = this.tags.runLength;
    this.holdTimer = setTimeout(this.holdExpired, HOLD_MS);
  }

  /** A held run is long enough: it joins the next write. */
  private release(): void {
    this.stopHolding();
    this.writer.beforeNextFlush(this.flushHook);
  }

  private stopHolding(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  /** Writes the pending coalesced ack, if any (no flush: it joins whatever write comes next). */
  flushRun(): void {
    this.stopHolding();
    const run = this.tags.takeRun();
    if (run === undefined || !this.mayWrite()) return;
    this.writer.sendMethod(this.channelId, 'basic.ack', run);
  }
}
