/**
 * Publisher-confirm bookkeeping: delivery tag → pending publish, in a queue indexed by tag, so acks,
 * nacks (single or `multiple`, in order or not) settle the right promises in O(1) each.
 *
 * @module
 */
import { type AMQPError, type MessageReturned, PublishNacked } from '../errors.js';

/** One publish waiting for its confirm. */
export interface PendingConfirm {
  resolve(): void;
  reject(error: AMQPError): void;
  /** Set for mandatory publishes, so a basic.return can be matched to its publish. */
  mandatory: boolean;
  exchange: string;
  routingKey: string;
  /** Set when the broker returned the message; the confirm that follows rejects with it. */
  returned: MessageReturned | undefined;
  settled: boolean;
  /** The channel closed before the confirm came: called instead of `reject` when present. */
  lost?(error: AMQPError): void;
}

export class ConfirmTracker {
  /** Delivery tag of `items[head]`. */
  private baseTag = 1;
  private items: (PendingConfirm | undefined)[] = [];
  private head = 0;
  private unsettled = 0;
  private nextTag = 1;

  /** Publishes awaiting a confirm. */
  get size(): number {
    return this.unsettled;
  }

  /** Registers the next publish; returns its delivery tag. */
  add(pending: PendingConfirm): number {
    this.items.push(pending);
    this.unsettled++;
    return this.nextTag++;
  }

  private settleOne(p: PendingConfirm | undefined, ok: boolean): void {
    if (p === undefined || p.settled) return;
    p.settled = true;
    this.unsettled--;
    if (!ok) p.reject(new PublishNacked());
    else if (p.returned !== undefined) p.reject(p.returned);
    else p.resolve();
  }

  /** Applies basic.ack (`ok`) or basic.nack from the broker. */
  confirm(tag: number, multiple: boolean, ok: boolean): void {
    const index = this.head + (tag - this.baseTag);
    if (index < this.head || index >= this.items.length) return; // already settled or unknown: ignore
    if (multiple) {
      for (let i = this.head; i <= index; i++) this.settleOne(this.items[i], ok);
    } else {
      this.settleOne(this.items[index], ok);
    }
    this.compact();
  }

  /** Drops settled entries from the front and reclaims space now and then. */
  private compact(): void {
    const items = this.items;
    while (this.head < items.length && (items[this.head] === undefined || items[this.head]!.settled)) {
      items[this.head] = undefined;
      this.head++;
      this.baseTag++;
    }
    if (this.head === items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > items.length) {
      this.items = items.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * Matches a basic.return to the oldest unconfirmed mandatory publish with the same exchange and
   * routing key: RabbitMQ returns messages in publish order and sends the return before the confirm.
   */
  markReturned(error: MessageReturned): boolean {
    const { exchange, routingKey } = error.returned;
    for (let i = this.head; i < this.items.length; i++) {
      const p = this.items[i];
      if (
        p &&
        !p.settled &&
        p.mandatory &&
        p.returned === undefined &&
        p.exchange === exchange &&
        p.routingKey === routingKey
      ) {
        p.returned = error;
        return true;
      }
    }
    return false;
  }

  /** Rejects every pending publish (channel or connection closed). */
  failAll(error: AMQPError): void {
    const items = this.items;
    const from = this.head;
    this.items = [];
    this.head = 0;
    this.unsettled = 0;
    for (let i = from; i < items.length; i++) {
      const p = items[i];
      if (p && !p.settled) {
        p.settled = true;
        if (p.lost !== undefined) p.lost(error);
        else p.reject(error);
      }
    }
  }
}
