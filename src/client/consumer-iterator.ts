/**
 * The async-iterator form of a subscription (pika's consume generator): `for await (const msg of
 * client.consumer(queue))`. A message is acked when the loop asks for the next one, so a message is
 * acked only after its loop body finished; leaving the loop (`break`, `return`, a throw) requeues the
 * message in hand unless the body settled it itself.
 *
 * @module
 */
import type { Message } from '../channel/message.js';
import { AbortError, type AMQPError, type ConsumerCancelled } from '../errors.js';
import { Waiter } from './waiting.js';
import { Subscription } from './subscription.js';
import { REQUEUE, type SubscribeOptions } from './subscription-options.js';
import type { ClientHost } from './host.js';
import type { Logger } from './logger.js';

/**
 * Options of `client.consumer()`. The consumer options mean what they mean for `client.consume()`
 * (`SubscribeOptions`), except that without `resubscribeOnCancel` a broker cancel ends the loop with
 * `ConsumerCancelled`.
 *
 * @example
 * ```ts
 * for await (const msg of client.consumer('jobs', { prefetch: 20, signal })) { ... }
 * ```
 */
export interface MessageIteratorOptions
  extends Pick<
    SubscribeOptions,
    'exclusive' | 'noAck' | 'priority' | 'streamOffset' | 'arguments' | 'resubscribeOnCancel'
  > {
  /** Messages the broker may send ahead (basic.qos). Default 10. */
  prefetch?: number;
  /** Ends the loop with `AbortError` (the message in hand is requeued). */
  signal?: AbortSignal;
}

interface Held {
  msg: Message;
  isCurrent: () => boolean;
  resolve: () => void;
  reject: (reason: unknown) => void;
}

/**
 * Messages of a queue as an async iterator, across reconnects. Get one with `client.consumer()`.
 *
 * @example
 * ```ts
 * for await (const msg of client.consumer('jobs')) {
 *   await handle(msg.json());   // acked when the loop asks for the next message
 *   if (done) break;            // the last message is requeued unless you msg.ack() first
 * }
 * ```
 */
export class MessageIterator implements AsyncIterableIterator<Message> {
  /** The subscription underneath (events, `ready()`, `consumerTag`). */
  readonly subscription: Subscription;
  /** Yielded, waiting for the loop body to finish. */
  private inHand: Held | undefined;
  /** Delivered, waiting for the loop to ask for it (at most one: the subscription runs one handler at a time). */
  private held: Held | undefined;
  private takers: Waiter<IteratorResult<Message>>[] = [];
  private finished = false;
  private failure: AMQPError | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = (): void => {
    this.fail(new AbortError('the consumer loop was aborted', { cause: this.signal?.reason }));
    void this.subscription.cancel();
  };

  /** @internal Use `client.consumer()`. */
  constructor(host: ClientHost, queue: string, options: MessageIteratorOptions = {}, logger?: Logger) {
    this.subscription = new Subscription(host, queue, (msg, isCurrent) => this.onMessage(msg, isCurrent), {
      concurrency: 1,
      prefetch: options.prefetch ?? 10,
      requeueOnError: true,
      ...(options.exclusive === undefined ? {} : { exclusive: options.exclusive }),
      ...(options.noAck === undefined ? {} : { noAck: options.noAck }),
      ...(logger === undefined ? {} : { logger }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.streamOffset === undefined ? {} : { streamOffset: options.streamOffset }),
      ...(options.arguments === undefined ? {} : { arguments: options.arguments }),
      ...(options.resubscribeOnCancel === undefined ? {} : { resubscribeOnCancel: options.resubscribeOnCancel }),
      // Closing or cancelling: the untaken message goes back; the one in hand waits for its loop body.
      onStopping: () => this.releaseHeld({ inHand: false }),
    });
    this.subscription.on('cancel', (error: ConsumerCancelled) => {
      if (!options.resubscribeOnCancel) this.fail(error);
    });
    void this.subscription.closed.then((error) => (error === undefined ? this.finish() : this.fail(error)));
    this.signal = options.signal;
    if (this.signal?.aborted) this.onAbort();
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private onMessage(msg: Message, isCurrent: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const item: Held = { msg, isCurrent, resolve, reject };
      if (this.finished || this.failure !== undefined) {
        reject(REQUEUE);
        return;
      }
      const taker = this.takers.shift();
      if (taker !== undefined) {
        this.inHand = item;
        taker.resolve({ value: msg, done: false });
      } else {
        this.held = item;
      }
    });
  }

  /** Acks the message in hand and resolves with the next one. */
  next(): Promise<IteratorResult<Message>> {
    const inHand = this.inHand;
    this.inHand = undefined;
    inHand?.resolve();
    let held = this.held;
    // A message of a channel that has died cannot be acked any more and will be delivered again: skip it.
    while (held !== undefined && !held.isCurrent()) {
      this.held = undefined;
      held.resolve();
      held = this.held;
    }
    if (held !== undefined) {
      this.held = undefined;
      this.inHand = held;
      return Promise.resolve({ value: held.msg, done: false });
    }
    if (this.failure !== undefined) {
      const error = this.failure;
      // Report the failure once; later calls just say the iteration is over.
      this.failure = undefined;
      this.finished = true;
      return Promise.reject(error);
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    const waiter = new Waiter<IteratorResult<Message>>();
    this.takers.push(waiter);
    return waiter.promise;
  }

  /** Ends the loop: requeues the message in hand (unless settled), cancels the subscription. */
  async return(): Promise<IteratorResult<Message>> {
    // Cancel first (basic.cancel is written at once), then hand the messages back: in that order
    // the broker does not deliver them to this consumer again.
    const cancelling = this.subscription.cancel();
    this.releaseHeld({ inHand: true });
    this.finish();
    await cancelling;
    return { value: undefined, done: true };
  }

  /**
   * Stops the loop from outside it: the loop ends after its current body (whose message is acked
   * as usual). Resolves, once that body has finished, with how many prefetched messages went back
   * to the queue.
   *
   * @example
   * ```ts
   * setTimeout(() => void messages.cancel(), 10_000);
   * for await (const msg of messages) { ... }
   * ```
   */
  async cancel(): Promise<{ requeued: number }> {
    this.releaseHeld({ inHand: false });
    this.finish();
    return this.subscription.cancel();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Returns the delivered-but-untaken message (and, with `inHand`, the one in hand) to the queue. */
  private releaseHeld(options: { inHand: boolean }): void {
    const held = this.held;
    this.held = undefined;
    held?.reject(REQUEUE);
    if (!options.inHand) return;
    const inHand = this.inHand;
    this.inHand = undefined;
    inHand?.reject(REQUEUE);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    const takers = this.takers;
    this.takers = [];
    for (const t of takers) t.resolve({ value: undefined, done: true });
  }

  private fail(error: AMQPError): void {
    if (this.finished || this.failure !== undefined) return;
    this.releaseHeld({ inHand: true });
    this.signal?.removeEventListener('abort', this.onAbort);
    const taker = this.takers.shift();
    if (taker !== undefined) {
      this.finished = true;
      taker.reject(error);
      const rest = this.takers;
      this.takers = [];
      for (const t of rest) t.resolve({ value: undefined, done: true });
    } else {
      this.failure = error;
    }
  }
}
