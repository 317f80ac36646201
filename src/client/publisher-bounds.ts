/**
 * The robust publisher's bounds: how much it holds (`maxPending` messages, `maxPendingBytes`
 * bytes of bodies), and the publishes waiting for room under them (`onFull: 'wait'`), in order.
 *
 * @module
 */
import { InvalidArgumentError, PublisherFullError } from '../errors.js';
import { Fifo } from './fifo.js';
import type { Entry } from './publish-entry.js';
import { limit, type PublisherOptions } from './publisher-options.js';

/** @internal */
export class PublisherBounds {
  /** Entries held: taken in and not yet settled (what `maxPending` bounds). */
  pending = 0;
  /** Bytes of the bodies of held entries (what `maxPendingBytes` bounds). */
  heldBytes = 0;
  /** Live (not abandoned) entries waiting for room. */
  waitingCount = 0;
  private readonly maxPending: number;
  private readonly maxPendingBytes: number;
  private readonly onFull: 'wait' | 'reject';
  /** Publishes waiting for room, in order; abandoned ones stay until they reach the head. */
  private readonly room = new Fifo<Entry>();

  /** Throws `InvalidArgumentError` for an invalid `maxPending`, `maxPendingBytes` or `onFull`. */
  constructor(options: PublisherOptions) {
    this.maxPending = limit(options.maxPending, 'maxPending', 1);
    this.maxPendingBytes = limit(options.maxPendingBytes, 'maxPendingBytes', 0);
    const onFull = options.onFull ?? 'wait';
    if (onFull !== 'wait' && onFull !== 'reject') {
      throw new InvalidArgumentError(`onFull must be 'wait' or 'reject', got ${String(onFull)}`);
    }
    this.onFull = onFull;
  }

  /** Nothing held and nothing waiting for room. */
  get empty(): boolean {
    return this.pending === 0 && this.waitingCount === 0;
  }

  /**
   * Why a publish of a body of `size` bytes is refused: it can never fit under `maxPendingBytes`,
   * or it must wait for room and `onFull` is `'reject'`. `undefined` when it is taken or waits.
   */
  refusal(size: number): InvalidArgumentError | PublisherFullError | undefined {
    if (size > this.maxPendingBytes) {
      return new InvalidArgumentError(
        `a body of ${size} bytes can never fit under maxPendingBytes (${this.maxPendingBytes}); raise the limit`,
      );
    }
    return this.onFull === 'reject' && this.mustWait(size) ? this.fullError() : undefined;
  }

  /** True when a new publish of `size` bytes must wait for room. */
  mustWait(size: number): boolean {
    return this.waitingCount > 0 || this.isFull(size);
  }

  /** Counts an entry in as held. */
  hold(e: Entry): void {
    e.held = true;
    this.pending++;
    this.heldBytes += e.size;
  }

  /** Queues an entry to wait for room. */
  wait(e: Entry): void {
    this.room.push(e);
    this.waitingCount++;
  }

  /** Counts a settled entry out: held, or left waiting for room (skipped by `nextAdmitted`). */
  release(e: Entry): void {
    if (e.held) {
      this.pending--;
      this.heldBytes -= e.size;
    } else {
      this.waitingCount--;
    }
  }

  /** The next publish waiting for room, taken off the queue when there is room for it now; else `undefined`. */
  nextAdmitted(): Entry | undefined {
    const room = this.room;
    for (let e = room.peek(); e !== undefined; e = room.peek()) {
      if (e.done) {
        room.shift();
        continue;
      }
      if (this.isFull(e.size)) return undefined;
      room.shift();
      this.waitingCount--;
      return e;
    }
    return undefined;
  }

  /** Empties the queue of publishes waiting for room; returns them in order (abandoned ones included). */
  takeAllWaiting(): Entry[] {
    return this.room.takeAll();
  }

  /** True when a body of `size` bytes would take the publisher over `maxPending`/`maxPendingBytes`. */
  private isFull(size: number): boolean {
    return this.pending >= this.maxPending || this.heldBytes + size > this.maxPendingBytes;
  }

  private fullError(): PublisherFullError {
    return new PublisherFullError(
      `the publisher holds ${this.pending} messages (${this.heldBytes} bytes), its limit ` +
        `(maxPending ${this.maxPending}, maxPendingBytes ${this.maxPendingBytes}); ` +
        "the message was not taken: retry later, or use onFull: 'wait' to wait for room",
    );
  }
}
