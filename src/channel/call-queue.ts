/**
 * The synchronous methods of one channel: one in flight, the rest waiting in order (AMQP allows a
 * single outstanding synchronous request per channel).
 *
 * @module
 */
import { type AMQPError, InvalidArgumentError } from '../errors.js';
import type { AMQPMethod, MethodName } from '../protocol/generated/methods.js';
import type { Consumer, MessageHandler } from './consumer.js';
import type { Message } from './message.js';

/** What a call resolves with: the reply method, a fetched message, a started consumer, or nothing. */
export type CallReply = AMQPMethod | Message | Consumer | null;

/** One queued synchronous method. */
export interface PendingCall {
  name: MethodName;
  args: unknown;
  /** Ids of the methods that answer it. */
  replies: readonly number[];
  resolve(reply: CallReply): void;
  reject(error: AMQPError): void;
  /** For basic.consume: the handler to register when consume-ok arrives. */
  handler?: MessageHandler;
}

export class CallQueue {
  private calls: PendingCall[] = [];
  private headIndex = 0;

  /** @param send writes a call's method; throws `InvalidArgumentError` (having written nothing) on bad arguments. */
  constructor(private readonly send: (call: PendingCall) => void) {}

  /** The call in flight, if any. */
  get head(): PendingCall | undefined {
    return this.calls[this.headIndex];
  }

  /** Queues a call; sends it at once if nothing is in flight. */
  push(call: PendingCall): void {
    this.calls.push(call);
    if (this.calls.length - this.headIndex === 1) this.sendHead();
  }

  /** Completes the call in flight if `id` answers it, and sends the next. */
  answer(id: number, reply: CallReply): boolean {
    const head = this.head;
    if (head === undefined || !head.replies.includes(id)) return false;
    this.shift();
    head.resolve(reply);
    this.sendHead();
    return true;
  }

  /** Takes a call that waits behind the one in flight out of the queue; false if it is not waiting. */
  removeWaiting(call: PendingCall): boolean {
    const at = this.calls.indexOf(call, this.headIndex + 1);
    if (at < 0) return false;
    this.calls.splice(at, 1);
    return true;
  }

  /** Empties the queue, handing back every call not yet answered. */
  drain(): PendingCall[] {
    const rest = this.calls.slice(this.headIndex);
    this.calls = [];
    this.headIndex = 0;
    return rest;
  }

  private sendHead(): void {
    const head = this.head;
    if (head === undefined) return;
    try {
      this.send(head);
    } catch (err) {
      // Invalid arguments: nothing was written. Fail this call and move on to the next.
      this.shift();
      head.reject(err instanceof InvalidArgumentError ? err : new InvalidArgumentError(String(err)));
      this.sendHead();
    }
  }

  private shift(): void {
    this.calls[this.headIndex] = undefined as never;
    this.headIndex++;
    if (this.headIndex === this.calls.length) {
      this.calls = [];
      this.headIndex = 0;
    }
  }
}
