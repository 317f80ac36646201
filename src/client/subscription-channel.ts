/**
 * One channel of a subscription, on one connection: its consumer, the deliveries waiting for a
 * handler slot, and whether it is still the live one.
 *
 * @module
 */
import type { Channel } from '../channel/channel.js';
import type { Consumer } from '../channel/consumer.js';
import type { Message } from '../channel/message.js';
import { Fifo } from './fifo.js';

/** @internal */
export class HeldChannel {
  readonly channel: Channel;
  consumer: Consumer | undefined;
  alive = true;
  /** Deliveries whose handler has not started (concurrency limit); at most `prefetch`. */
  readonly buffer = new Fifo<Message>();
  /** The next handler waits for the flush of acks that were pending when it was due to start. */
  flushAwaited = false;
  /** A delivery has come on this channel ('active' was emitted). */
  delivering = false;
  readonly isCurrent = (): boolean => this.alive;
  /** Called when a flush that `mustAwaitFlush` waited for has happened. */
  private readonly onFlushed: (held: HeldChannel) => void;

  constructor(channel: Channel, onFlushed: (held: HeldChannel) => void) {
    this.channel = channel;
    this.onFlushed = onFlushed;
  }

  /**
   * True when acks (or other frames) wait for the end-of-turn flush: the next handler then starts
   * right after that flush, not now, since its synchronous work (CPU-bound, past the heartbeat)
   * would hold them back. Handlers that finish in one turn still share one coalesced ack. With no
   * handler running (`running`, concurrency 1), nothing could join the write: it is done at once instead.
   */
  mustAwaitFlush(running: number): boolean {
    if (!this.channel.hasPendingWrites) return false;
    if (running === 0) {
      // No other handler can finish in this turn and share the write: write now, start now.
      this.channel.flushNow();
      return false;
    }
    if (!this.flushAwaited) {
      this.flushAwaited = true;
      this.channel.afterNextFlush(() => {
        this.flushAwaited = false;
        this.onFlushed(this);
      });
    }
    // False when that flush happened at once (a large backlog is written without waiting).
    return this.flushAwaited;
  }
}
