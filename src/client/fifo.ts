/**
 * A first-in first-out queue over one array and a head index: `shift()` is O(1) (an array's own
 * `shift()` moves every element), the consumed prefix is dropped once it is both large and most of
 * the array (amortised O(1) per element), and nothing is allocated per element. The same as the
 * hand-written head-index arrays it replaces, once.
 *
 * @module
 */

/** Head slots consumed before the array is compacted, at the least. */
const COMPACT_AFTER = 1024;

/** @internal */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  /** Items in the queue. */
  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    // Compacted here rather than in `shift()`, so that draining a long queue never copies it.
    if (this.head > COMPACT_AFTER && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.items.push(item);
  }

  /** The oldest item, left in the queue; `undefined` when empty. */
  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  /** The item `i` places after the oldest (0 is the oldest); `i` must be below `length`. */
  at(i: number): T {
    return this.items[this.head + i] as T;
  }

  /** Removes and returns the oldest item; `undefined` when empty. */
  shift(): T | undefined {
    const items = this.items;
    if (this.head >= items.length) return undefined;
    const item = items[this.head];
    // The slot lets go of the item at once, so that a long queue does not keep consumed ones alive.
    items[this.head++] = undefined;
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
    }
    return item;
  }

  /** Puts `items` in front of the queue, in their order. */
  prepend(items: readonly T[]): void {
    if (items.length === 0) return;
    this.items = (items as (T | undefined)[]).concat(this.head === 0 ? this.items : this.items.slice(this.head));
    this.head = 0;
  }

  /** Keeps only the items `keep` accepts, in order. */
  retain(keep: (item: T) => boolean): void {
    const items = this.items;
    let to = 0;
    for (let i = this.head; i < items.length; i++) {
      const item = items[i] as T;
      if (keep(item)) items[to++] = item;
    }
    items.length = to;
    this.head = 0;
  }

  /** Empties the queue and returns what it held, oldest first. */
  takeAll(): T[] {
    const taken = (this.head === 0 ? this.items : this.items.slice(this.head)) as T[];
    this.items = [];
    this.head = 0;
    return taken;
  }

  /** Empties the queue. */
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
