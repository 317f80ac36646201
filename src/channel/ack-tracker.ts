/**
 * Which delivery tags of a channel are settled, and the coalesced ack waiting to be written.
 *
 * An ack for the lowest unsettled tag extends a run that goes out as one basic.ack(multiple=true);
 * anything else (an ack out of order, a nack, a reject, an explicit multiple) must first write the
 * run, so wire order stays what the application did. A run never covers an unsettled tag.
 *
 * @module
 */
export class AckTracker {
  /** Every delivery tag up to this one is settled (acked, nacked, rejected or noAck). */
  private settledUpTo = 0;
  /** Settled tags above `settledUpTo + 1`, waiting for the gap below them to close. */
  private settledAhead: Set<number> | undefined = undefined;
  /** The highest delivery tag the broker has used on this channel. */
  highestDelivered = 0;
  private runTo = 0;
  private runCount = 0;

  /** Deliveries the pending coalesced ack covers. */
  get runLength(): number {
    return this.runCount;
  }

  /** True while a coalesced ack is waiting to be written. */
  get hasRun(): boolean {
    return this.runCount > 0;
  }

  /**
   * Adds an ack of `tag` to the run if every tag below it is settled; returns false (and changes
   * nothing) if it must be sent on its own.
   */
  extendRun(tag: number): boolean {
    if (tag !== this.settledUpTo + 1) return false;
    this.markSettled(tag);
    this.runTo = tag;
    this.runCount++;
    return true;
  }

  /** Takes the pending run: the tag to ack and whether it covers more than one delivery. */
  takeRun(): { deliveryTag: number; multiple: boolean } | undefined {
    if (this.runCount === 0) return undefined;
    const run = { deliveryTag: this.runTo, multiple: this.runCount > 1 };
    this.runCount = 0;
    return run;
  }

  markSettled(tag: number): void {
    if (tag === this.settledUpTo + 1) {
      this.settledUpTo = tag;
      if (this.settledAhead !== undefined) this.catchUp(this.settledAhead);
    } else if (tag > this.settledUpTo) {
      // Made on the first ack out of order: most channels settle in order and never need it.
      (this.settledAhead ??= new Set()).add(tag);
    }
  }

  markSettledThrough(tag: number): void {
    if (tag <= this.settledUpTo) return;
    this.settledUpTo = tag;
    const ahead = this.settledAhead;
    if (ahead === undefined) return;
    for (const t of ahead) if (t <= tag) ahead.delete(t);
    this.catchUp(ahead);
  }

  private catchUp(ahead: Set<number>): void {
    while (ahead.size > 0 && ahead.delete(this.settledUpTo + 1)) this.settledUpTo++;
  }
}
