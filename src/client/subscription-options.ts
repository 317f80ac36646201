/**
 * What a subscription is configured with (`client.consume()`'s options and the client's own
 * additions), its events and handlers, and the consumer arguments they make.
 *
 * @module
 */
import type { Channel } from '../channel/channel.js';
import type { Message } from '../channel/message.js';
import { type AMQPError, type ConsumerCancelled, InvalidArgumentError } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';
import type { Logger } from './logger.js';
import { type RetryOptions, type RetryPolicy, type RetryTransport, retryPolicy } from './retry.js';

/**
 * Options of `client.consume()`.
 *
 * @example
 * ```ts
 * client.consume('jobs', handle, { concurrency: 8, prefetch: 32, retry: { attempts: 3, delay: 5000 } });
 * ```
 */
export interface SubscribeOptions {
  /** Handlers running at once. Default 1. */
  concurrency?: number;
  /**
   * Unacknowledged messages the broker may send ahead (basic.qos). Default `max(10, 2 × concurrency)`:
   * enough that handlers never wait for the network, and bounded so that memory stays bounded.
   */
  prefetch?: number;
  /**
   * Give a message whose handler throws another chance (default `true`): through the retry queue
   * with a delay (see `retry`), or, with `retry: false`, by requeueing it at once (a hot loop for a
   * message that always fails, unless the queue bounds it, e.g. a quorum queue's `x-delivery-limit`).
   * `false` nacks it without requeue at once: dead-lettered if the queue has a dead-letter exchange,
   * dropped otherwise.
   */
  requeueOnError?: boolean;
  /**
   * How a failed message is retried (when `requeueOnError` is on). Default `{ attempts: 5, delay:
   * 1 s doubling to 30 s }`: the message is published (confirmed) to the retry queue `<queue>.retry`
   * with the delay as its `expiration`, then acked; the broker dead-letters it back to the queue when
   * the delay is over and counts the round trips in its `x-death` header. After the last attempt it is
   * nacked without requeue (dead-lettered or dropped) and `'retriesExhausted'` is emitted. Body and
   * properties are kept (its own `expiration` excepted); headers gain only what the broker adds
   * (`x-death`, `x-first-death-*`). `false`: no retry queue (see `requeueOnError`).
   *
   * The retry queue is declared durable, with `x-dead-letter-exchange: ''` and
   * `x-dead-letter-routing-key: <queue>`, on the first failure, and declared again after reconnects;
   * it is not deleted by the client. A server-named queue (`amq.gen-…`) gets no retry queue: a
   * failed message is requeued after the delay, without an attempt limit.
   */
  retry?: RetryOptions | false;
  /** Ask to be the queue's only consumer. */
  exclusive?: boolean;
  /**
   * The broker considers each message handled as soon as it sends it (at-most-once): no acks, no
   * prefetch limit (the broker sends as fast as the connection takes), a failed handler's message
   * is gone unless `retry` copies it, and messages buffered when the subscription stops or its
   * connection drops are lost. Default `false`. Not for streams (they need acks).
   */
  noAck?: boolean;
  /**
   * Consumer priority (`x-priority`): while consumers of higher priority can take messages, those of
   * lower priority get none. Default: the broker's (0). Streams refuse it (406).
   */
  priority?: number;
  /**
   * For a stream queue: where to start reading (`x-stream-offset`): `'first'`, `'last'`, `'next'`,
   * an offset, or a `Date`. After a reconnect the subscription resumes from the first offset it had
   * not finished handling, and skips redeliveries of offsets it has handled (see `stream-cursor.ts`).
   * Also enabled by an `x-stream-offset` entry in `arguments`.
   */
  streamOffset?: 'first' | 'last' | 'next' | number | Date;
  /** Consumer arguments, e.g. `{ 'x-priority': 10 }`. */
  arguments?: FieldTable;
  /**
   * When the broker cancels the consumer (its queue was deleted), keep trying to subscribe again
   * (with the client's backoff) until the queue is back. Default `false`: delivery stops for good.
   */
  resubscribeOnCancel?: boolean;
}

/**
 * Events of a subscription.
 *
 * @example
 * ```ts
 * sub.on('handlerError', (err, msg) => log.error({ err, id: msg.properties.messageId }));
 * sub.on('cancel', (err) => log.warn(err.message));
 * ```
 */
export interface SubscriptionEvents {
  /** Subscribed (again) on a new channel. */
  subscribe: [info: { queue: string; consumerTag: string }];
  /**
   * The first delivery reached this consumer on its current channel (emitted before its handler
   * runs). On a single-active-consumer queue this is the sign that this consumer has become the
   * active one: RabbitMQ tells a 0-9-1 consumer nothing else (consume-ok comes for waiting consumers
   * too). Emitted again after each re-subscribe; a consumer that is active on an empty queue learns
   * it only when a message comes.
   */
  active: [info: { queue: string; consumerTag: string }];
  /** The broker cancelled the consumer (queue deleted). */
  cancel: [error: ConsumerCancelled];
  /**
   * A handler threw or rejected; its message is retried (see `retry`) or nacked. Also a message whose
   * properties could not be decoded (`error` is its `msg.decodeError`): rejected without requeue,
   * the handler not called.
   */
  handlerError: [error: unknown, message: Message];
  /**
   * A message failed its last attempt (`attempts` handler calls): it was nacked without requeue,
   * so dead-lettered if its queue has a dead-letter exchange, dropped otherwise.
   */
  retriesExhausted: [error: unknown, message: Message, attempts: number];
  /**
   * Subscribing failed (e.g. 404 no such queue; the subscription retries with backoff), or a failed
   * message could not be sent to its retry queue (it is then requeued after the delay). Emitted only
   * when listened to.
   */
  error: [error: AMQPError];
}

/**
 * Handles one message: resolve to ack it, throw (or reject) to have it retried later (see
 * `SubscribeOptions.retry`) and, after the last attempt, dead-lettered or dropped.
 *
 * @example
 * ```ts
 * const handler: SubscriptionHandler = async (msg) => { await save(msg.json()); };
 * ```
 */
export type SubscriptionHandler = (message: Message) => void | Promise<void>;

/** @internal The handler as the subscription calls it: with a test of whether its channel is still the live one, and that channel. */
export type InternalHandler = (message: Message, isCurrent: () => boolean, channel: Channel) => void | Promise<void>;

/** @internal Thrown by an internal handler to requeue a message without reporting a handler error. */
export const REQUEUE: unique symbol = Symbol('warren.requeue');

/** @internal */
export interface InternalSubscribeOptions extends SubscribeOptions {
  /** Called when the subscription starts to stop (cancel, close, broker cancel without resubscribe). */
  onStopping?: () => void;
  /** How failed messages reach their retry queue; without it, `retry` is off. */
  retryVia?: RetryTransport;
  /** The client's `logger`: gets what no listener hears. */
  logger?: Logger;
}

/** @internal The consumer arguments of a subscription: `arguments` with `priority` and `streamOffset` added. */
export function consumeArguments(options: SubscribeOptions): FieldTable {
  const args: FieldTable = { ...(options.arguments ?? {}) };
  if (options.priority !== undefined) {
    const { priority } = options;
    if (!Number.isInteger(priority) || priority < -2147483648 || priority > 2147483647) {
      throw new InvalidArgumentError(`priority must be a whole number (a 32-bit integer), got ${String(priority)}`);
    }
    if (args['x-priority'] !== undefined && args['x-priority'] !== priority) {
      throw new InvalidArgumentError("priority contradicts arguments['x-priority']; give one of them");
    }
    args['x-priority'] = priority;
  }
  if (options.streamOffset !== undefined) {
    const offset = options.streamOffset;
    const valid =
      offset === 'first' ||
      offset === 'last' ||
      offset === 'next' ||
      (typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0) ||
      (offset instanceof Date && !Number.isNaN(offset.getTime()));
    if (!valid) {
      throw new InvalidArgumentError(
        `streamOffset must be 'first', 'last', 'next', an offset ≥ 0 or a Date, got ${String(offset)}`,
      );
    }
    if (args['x-stream-offset'] !== undefined) {
      throw new InvalidArgumentError("give streamOffset or arguments['x-stream-offset'], not both");
    }
    args['x-stream-offset'] = offset;
  }
  return args;
}

/** @internal A subscription's options, checked and with their defaults. */
export interface SubscribeSettings {
  concurrency: number;
  prefetch: number;
  noAck: boolean;
  /** `arguments` with `priority` and `streamOffset` added. */
  consumeArguments: FieldTable;
  requeueOnError: boolean;
  /** `undefined` when retries are off (or there is no retry transport). */
  retry: RetryPolicy | undefined;
}

/** @internal Why `prefetch` cannot be used, or `undefined` when it can. */
export function prefetchError(prefetch: number): InvalidArgumentError | undefined {
  if (Number.isInteger(prefetch) && prefetch >= 1 && prefetch <= 65535) return undefined;
  return new InvalidArgumentError(`prefetch must be a whole number from 1 to 65535, got ${prefetch}`);
}

/** @internal Checks `options` (throwing `InvalidArgumentError`) and fills in the defaults. */
export function subscribeSettings(options: InternalSubscribeOptions): SubscribeSettings {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidArgumentError(`concurrency must be a whole number of at least 1, got ${concurrency}`);
  }
  const prefetch = options.prefetch ?? Math.min(65535, Math.max(10, 2 * concurrency));
  const invalid = prefetchError(prefetch);
  if (invalid !== undefined) throw invalid;
  const noAck = options.noAck ?? false;
  const args = consumeArguments(options);
  if (args['x-stream-offset'] !== undefined && noAck) {
    throw new InvalidArgumentError('a stream consumer needs acks: noAck cannot be used with streamOffset');
  }
  const requeueOnError = options.requeueOnError ?? true;
  const retry = retryPolicy(options.retry);
  return {
    concurrency,
    prefetch,
    noAck,
    consumeArguments: args,
    requeueOnError,
    retry: requeueOnError && options.retryVia !== undefined ? retry : undefined,
  };
}
