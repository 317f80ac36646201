/**
 * A delivered message and its single-use acknowledgement.
 *
 * @module
 */
import { type FrameError, InvalidArgumentError } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';

/** How a delivery is settled. The few there are are shared constants: settling allocates nothing. */
export interface Settlement {
  readonly kind: 'ack' | 'nack' | 'reject';
  /** Also settles every earlier unsettled delivery (ack, nack). */
  readonly multiple: boolean;
  /** Puts the message back in its queue (nack, reject). */
  readonly requeue: boolean;
}

const KINDS = ['ack', 'nack', 'reject'] as const;
const SETTLEMENTS: readonly Settlement[] = KINDS.flatMap((kind) =>
  [false, true].flatMap((multiple) => [false, true].map((requeue) => Object.freeze({ kind, multiple, requeue }))),
);

/** The shared settlement for these choices. */
export function settlement(kind: Settlement['kind'], multiple: boolean, requeue: boolean): Settlement {
  const base = kind === 'ack' ? 0 : kind === 'nack' ? 4 : 8;
  return SETTLEMENTS[base + (multiple ? 2 : 0) + (requeue ? 1 : 0)]!;
}

/** What a message needs from its channel to be acknowledged. */
export interface AckTarget {
  /**
   * Sends the settlement of `deliveryTag` if the channel that delivered it (identified by
   * `generation`) is still open; otherwise does nothing.
   */
  settle(deliveryTag: number, generation: number, how: Settlement): boolean;
}

/** Options for `nack()` and `reject()`. */
export interface RequeueOptions {
  /** Put the message back in the queue (default `true`); `false` dead-letters or drops it. */
  requeue?: boolean;
}

/** Options for `ack()` and `nack()`. */
export interface MultipleOptions {
  /** Also settle every earlier unsettled delivery on this channel. */
  multiple?: boolean;
}

/**
 * A message received by a consumer or `basicGet`.
 *
 * @example
 * ```ts
 * await ch.basicConsume('jobs', {}, (msg) => {
 *   console.log(msg.body.toString(), msg.properties.messageId);
 *   msg.ack();
 * });
 * ```
 */
export class Message {
  /** The body bytes. */
  readonly body: Buffer;
  readonly properties: BasicProperties;
  readonly deliveryTag: number;
  /** True when the broker delivered this message before (it may have been processed already). */
  readonly redelivered: boolean;
  readonly exchange: string;
  readonly routingKey: string;
  /** The consumer it was delivered to; `undefined` for `basicGet`. */
  readonly consumerTag: string | undefined;
  /** Messages left in the queue, for `basicGet` only. */
  readonly messageCount: number | undefined;
  /**
   * Set when the message arrived intact but its properties could not be decoded (a header table
   * with an unknown type tag, nested too deep, or broken property bytes); `properties` is then `{}`
   * and `body` is complete. Only this message is affected: the channel and connection go on. Settle
   * it as usual; the robust client's subscriptions reject such a message without requeue
   * (dead-lettered if the queue has a dead-letter exchange) and report it as `handlerError`.
   *
   * @example
   * ```ts
   * if (msg.decodeError) { log.warn(msg.decodeError.message); msg.reject({ requeue: false }); return; }
   * ```
   */
  readonly decodeError: FrameError | undefined;
  private readonly target: AckTarget | undefined;
  private readonly generation: number;
  private settled: boolean;

  /** @internal */
  constructor(
    fields: {
      body: Buffer;
      properties: BasicProperties;
      deliveryTag: number;
      redelivered: boolean;
      exchange: string;
      routingKey: string;
      consumerTag?: string | undefined;
      messageCount?: number | undefined;
      decodeError?: FrameError | undefined;
    },
    target: AckTarget | undefined,
    generation: number,
  ) {
    this.body = fields.body;
    this.properties = fields.properties;
    this.deliveryTag = fields.deliveryTag;
    this.redelivered = fields.redelivered;
    this.exchange = fields.exchange;
    this.routingKey = fields.routingKey;
    this.consumerTag = fields.consumerTag;
    this.messageCount = fields.messageCount;
    this.decodeError = fields.decodeError;
    this.target = target;
    this.generation = generation;
    // A message received with noAck needs no acknowledgement: treat it as settled.
    this.settled = target === undefined;
  }

  /** True once ack, nack or reject was called (or the message needs no acknowledgement). */
  get isSettled(): boolean {
    return this.settled;
  }

  /**
   * Acknowledges the message. Single-use: later calls do nothing. Does nothing (and never throws)
   * if the channel that delivered the message is gone; the broker has then requeued it.
   * @returns whether an ack was sent.
   */
  ack(options?: MultipleOptions): boolean {
    return this.settle('ack', options?.multiple ?? false, false);
  }

  /** Negatively acknowledges the message (requeued unless `requeue: false`). Same rules as `ack()`. */
  nack(options?: RequeueOptions & MultipleOptions): boolean {
    return this.settle('nack', options?.multiple ?? false, options?.requeue ?? true);
  }

  /** Rejects the message (requeued unless `requeue: false`). Same rules as `ack()`. */
  reject(options?: RequeueOptions): boolean {
    return this.settle('reject', false, options?.requeue ?? true);
  }

  /** The body parsed as JSON. Throws `SyntaxError` naming the message when the body is not valid JSON. */
  json<T = unknown>(): T {
    try {
      return JSON.parse(this.body.toString('utf8')) as T;
    } catch (err) {
      throw new SyntaxError(
        `message ${this.properties.messageId ?? `#${this.deliveryTag}`} does not hold valid JSON: ${(err as Error).message}`,
      );
    }
  }

  private settle(kind: Settlement['kind'], multiple: boolean, requeue: boolean): boolean {
    if (this.settled || this.target === undefined) return false;
    this.settled = true;
    return this.target.settle(this.deliveryTag, this.generation, settlement(kind, multiple, requeue));
  }
}

// `msg.value` is the body decoded by a client's codecs (`createClient({ codecs })`, which gives each
// message its own `value`). Every other message answers with how to get one, from the prototype, so
// that no message pays for it.
Object.defineProperty(Message.prototype, 'value', {
  configurable: true,
  enumerable: false,
  get(): never {
    throw new InvalidArgumentError(
      'msg.value needs codecs: createClient({ codecs: new CodecRegistry() }); or read msg.body / msg.json()',
    );
  },
});
