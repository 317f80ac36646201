/**
 * The options, results and events of the channel API.
 *
 * @module
 */
import type { AMQPError, ReturnedMessageInfo } from '../errors.js';
import type { FieldTable } from '../protocol/field-values.js';
import type { ExchangeArgumentOptions, QueueArgumentOptions } from './declare-options.js';

/**
 * The deadline of one synchronous channel method (declare, bind, qos, consume, get, …).
 *
 * AMQP cannot cancel a method once it is sent, and a reply that comes later would be taken for the
 * answer to the next one; so when a method that was already sent times out or is aborted, the
 * channel is closed (channel.close on the wire) and every later call on it rejects. The connection
 * and its other channels are not affected. A call still waiting behind another is just dropped.
 *
 * @example
 * ```ts
 * try {
 *   await ch.queueDeclare('jobs', { durable: true, timeout: 5000 });
 * } catch (err) {
 *   if (err instanceof TimeoutError) ch = await conn.openChannel(); // that channel is closed now
 * }
 * ```
 */
export interface CallOptions {
  /** Abandons the call: it rejects with `AbortError` (and closes the channel if the method was sent). */
  signal?: AbortSignal;
  /**
   * Milliseconds to wait for the broker's reply, counted from the call; then it rejects with
   * `TimeoutError` and the channel is closed. Default: the connection's `operationTimeout` (none
   * unless set; the robust client sets 30000). 0 waits forever.
   */
  timeout?: number;
}

/** Options of `exchangeDeclare` (friendly argument options: see `declare-options.ts`). */
export interface ExchangeDeclareOptions extends CallOptions, ExchangeArgumentOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  /** Only check that the exchange exists (404 if not). */
  passive?: boolean;
  arguments?: FieldTable;
}

/** Options of `queueDeclare` (`messageTtl`, `queueType`, ...: see `declare-options.ts`). */
export interface QueueDeclareOptions extends CallOptions, QueueArgumentOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  /** Only check that the queue exists (404 if not). */
  passive?: boolean;
  /** e.g. `{ 'x-queue-type': 'quorum' }`, `{ 'x-message-ttl': 60000 }`. */
  arguments?: FieldTable;
}

/** Result of `queueDeclare`. */
export interface QueueDeclareResult {
  /** The queue name (the broker's choice when declared with `''`). */
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/** Options of `basicConsume`. */
export interface ConsumeOptions extends CallOptions {
  /** The broker considers messages acknowledged as soon as it sends them. */
  noAck?: boolean;
  exclusive?: boolean;
  /** A tag of your own; the broker makes one up when empty. */
  consumerTag?: string;
  noLocal?: boolean;
  /** e.g. `{ 'x-priority': 10 }`, `{ 'x-stream-offset': 'first' }`. */
  arguments?: FieldTable;
}

/** Options of `basicPublish`. */
export interface PublishOptions {
  /** Return the message (reject with `MessageReturned` in confirm mode) if no queue is bound for it. */
  mandatory?: boolean;
  /** Stops waiting for the socket or the confirm; the message may still reach the broker. */
  signal?: AbortSignal;
}

/** A message returned by the broker (basic.return). */
export type ReturnedMessage = ReturnedMessageInfo;

/** Events of a channel. */
export interface ChannelEvents {
  /** The channel closed: by `close()` (no error), by the broker or with its connection (the error). */
  close: [error: AMQPError | undefined];
  /** A mandatory message came back. In confirm mode its publish also rejects with `MessageReturned`. */
  return: [message: ReturnedMessage];
  /** The broker asked to stop (false) or resume (true) publishing (channel.flow). */
  flow: [active: boolean];
}
