/**
 * Where a stream consumer resumes. RabbitMQ streams read through 0-9-1 start at the
 * `x-stream-offset` the consumer asks for; each delivery carries its own offset in its
 * `x-stream-offset` header. After a reconnect (or a consumer restart) the subscription asks for the
 * first offset it has not finished handling, and skips redeliveries of offsets it has already
 * handled or is still handling: every message is handled once across cuts, none is skipped (as
 * `next` would) and none is handled again (as `first` would).
 *
 * With several handlers at once, offsets finish out of order: the resume point is the lowest offset
 * delivered but not finished, and the offsets finished above it are remembered until it passes them.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import type { FieldValue } from '../protocol/field-values.js';

/** A delivery's offset in its stream, from its `x-stream-offset` header; `undefined` if it has none. */
export function streamOffsetOf(msg: Message): number | undefined {
  const value = msg.properties.headers?.['x-stream-offset'];
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** Remembered finished offsets above the resume point are pruned when there are more than this. */
const PRUNE_AT = 1024;

/** @internal */
export class StreamCursor {
  /** Delivered and not finished: `true` while its handler runs, `false` while it waits in the buffer. */
  private readonly unfinished = new Map<number, boolean>();
  /** Finished offsets that a resume may deliver again (above the lowest unfinished one). */
  private readonly finished = new Set<number>();
  private highestFinished = -1;
  private started = false;

  /** `initial`: the `x-stream-offset` of the very first subscribe (`'next'`, `'first'`, a number, a Date...). */
  constructor(private readonly initial: FieldValue) {}

  /** The `x-stream-offset` to consume from now. Buffered deliveries of a lost channel will come again. */
  startOffset(): FieldValue {
    if (!this.started) return this.initial;
    const lowest = this.lowestUnfinished();
    return lowest === Number.POSITIVE_INFINITY ? this.highestFinished + 1 : lowest;
  }

  private lowestUnfinished(): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const offset of this.unfinished.keys()) if (offset < lowest) lowest = offset;
    return lowest;
  }

  /** True when the delivery must be handled; false for a redelivery of an offset handled or in hand. */
  delivered(offset: number): boolean {
    this.started = true;
    if (this.unfinished.has(offset)) return false;
    // Below the lowest unfinished offset everything delivered was handled (deliveries come in order).
    if (offset <= this.highestFinished && (this.finished.has(offset) || offset < this.lowestUnfinished())) {
      return false;
    }
    this.unfinished.set(offset, false);
    return true;
  }

  /** Its handler starts. */
  running(offset: number): void {
    this.unfinished.set(offset, true);
  }

  /** Its handler finished (whatever the outcome: a stream cannot hand a message back). */
  handled(offset: number): void {
    this.unfinished.delete(offset);
    if (offset > this.highestFinished) this.highestFinished = offset;
    if (this.unfinished.size === 0) {
      // Everything delivered is finished: the resume point is past all of it.
      this.finished.clear();
      return;
    }
    this.finished.add(offset);
    if (this.finished.size > PRUNE_AT) this.prune();
  }

  /**
   * The channel died: its buffered deliveries never ran and will be delivered again. They came after
   * every delivery whose handler started, so the resume point (the lowest running offset, or the one
   * after the highest finished) is at or before them.
   */
  channelLost(): void {
    for (const [offset, running] of this.unfinished) {
      if (!running) this.unfinished.delete(offset);
    }
    if (this.unfinished.size === 0) this.finished.clear();
  }

  private prune(): void {
    const lowest = this.lowestUnfinished();
    for (const offset of this.finished) if (offset < lowest) this.finished.delete(offset);
  }
}
