/**
 * `warren/amqplib/callback_api`: amqplib's callback API on warren. Change the require and keep your code:
 *
 * ```js
 * // const amqp = require('amqplib/callback_api');
 * const amqp = require('warren/amqplib/callback_api');
 * amqp.connect('amqp://localhost', (err, conn) => { … });
 * ```
 *
 * @example
 * ```ts
 * import amqp from 'warren/amqplib/callback_api';
 * amqp.connect('amqp://localhost', (err, conn) => {
 *   if (err) throw err;
 *   conn.createChannel((err, ch) => {
 *     if (err) throw err;
 *     ch.assertQueue('hello', { durable: false });
 *     ch.sendToQueue('hello', Buffer.from('Hello World!'));
 *   });
 * });
 * ```
 * @module
 */
import { EventEmitter } from 'node:events';
import type {
  ConfirmCallback,
  ConnectionFacade,
  Channel as PromiseChannel,
  ConfirmChannel as PromiseConfirmChannel,
} from './channel.js';
import { credentials } from './credentials.js';
import { BrokerError, IllegalOperationError } from './errors.js';
import { type ChannelModel, connect as connectPromise, type SocketOptions } from './model.js';
import type { ConsumeMessage, GetMessage, HeaderValue, Message, Options, Replies, ServerProperties } from './types.js';

/** A node-style callback: `(null, result)`, or `(err)` with `result` undefined, as in amqplib. */
export type Callback<T> = (err: Error | null, result: T) => void;

const FORWARDED = [
  'close',
  'return',
  'drain',
  'blocked',
  'unblocked',
  'update-secret-ok',
  'disconnect',
  'reconnect',
  'reconnect-failed',
  'connect-failed',
];

/** Re-emits `source`'s events on `target`; `'error'` and `'handler-error'` only to listeners, else `fallback`. */
function forward(source: EventEmitter, target: EventEmitter, fallback: (error: unknown) => void): void {
  for (const event of FORWARDED) source.on(event, (...args: unknown[]) => target.emit(event, ...args));
  for (const event of ['error', 'handler-error']) {
    source.on(event, (...args: unknown[]) => {
      if (target.listenerCount(event) > 0) target.emit(event, ...args);
      else fallback(args[0]);
    });
  }
}

function settle<T>(promise: Promise<T>, cb: Callback<T> | undefined): void {
  promise.then(
    (value) => cb?.(null, value),
    (err: Error) => cb?.(err, undefined as T),
  );
}

/**
 * A channel with amqplib's callback API: each operation takes an optional `(err, ok)` callback and
 * returns the channel.
 */
export class Channel extends EventEmitter {
  /** @internal */
  protected inner: PromiseChannel | undefined;
  /** @internal Resolves once the channel is open. */
  readonly ready: Promise<PromiseChannel>;
  private readonly model: CallbackModel;

  /** @internal Use `conn.createChannel(cb)`. */
  constructor(model: CallbackModel, opening: Promise<PromiseChannel>) {
    super();
    this.model = model;
    this.ready = opening.then((inner) => {
      this.inner = inner;
      forward(inner, this, (error) => model.channelError(error));
      return inner;
    });
    this.ready.catch(() => {});
  }

  /**
   * The connection this channel belongs to, as amqplib's type declarations describe it (the
   * callback model; it also has `serverProperties` like amqplib's raw connection object).
   */
  get connection(): CallbackModel {
    return this.model;
  }

  /** @internal */
  protected run<T>(op: (ch: PromiseChannel) => Promise<T>, cb: Callback<T> | undefined): this {
    settle(
      this.ready.then((ch) => op(ch)),
      cb,
    );
    return this;
  }

  private now(): PromiseChannel {
    if (this.inner === undefined)
      throw new IllegalOperationError('Channel is not open yet; wait for the createChannel callback');
    return this.inner;
  }

  /** Closes the channel. */
  close(cb?: Callback<void>): this {
    return this.run((ch) => ch.close(), cb);
  }
  /** Declares a queue. */
  assertQueue(queue: string, options?: Options.AssertQueue, cb?: Callback<Replies.AssertQueue>): this {
    return this.run((ch) => ch.assertQueue(queue, options), cb);
  }
  /** Checks that a queue exists. */
  checkQueue(queue: string, cb?: Callback<Replies.AssertQueue>): this {
    return this.run((ch) => ch.checkQueue(queue), cb);
  }
  /** Deletes a queue. */
  deleteQueue(queue: string, options?: Options.DeleteQueue, cb?: Callback<Replies.DeleteQueue>): this {
    return this.run((ch) => ch.deleteQueue(queue, options), cb);
  }
  /** Purges a queue. */
  purgeQueue(queue: string, cb?: Callback<Replies.PurgeQueue>): this {
    return this.run((ch) => ch.purgeQueue(queue), cb);
  }
  /** Binds a queue. */
  bindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
    cb?: Callback<Replies.Empty>,
  ): this {
    return this.run((ch) => ch.bindQueue(queue, source, pattern, args), cb);
  }
  /** Unbinds a queue. */
  unbindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
    cb?: Callback<Replies.Empty>,
  ): this {
    return this.run((ch) => ch.unbindQueue(queue, source, pattern, args), cb);
  }
  /** Declares an exchange. */
  assertExchange(
    exchange: string,
    type: string,
    options?: Options.AssertExchange,
    cb?: Callback<Replies.AssertExchange>,
  ): this {
    return this.run((ch) => ch.assertExchange(exchange, type, options), cb);
  }
  /** Checks that an exchange exists. */
  checkExchange(exchange: string, cb?: Callback<Replies.Empty>): this {
    return this.run((ch) => ch.checkExchange(exchange), cb);
  }
  /** Deletes an exchange. */
  deleteExchange(exchange: string, options?: Options.DeleteExchange, cb?: Callback<Replies.Empty>): this {
    return this.run((ch) => ch.deleteExchange(exchange, options), cb);
  }
  /** Binds an exchange to another. */
  bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
    cb?: Callback<Replies.Empty>,
  ): this {
    return this.run((ch) => ch.bindExchange(destination, source, pattern, args), cb);
  }
  /** Removes an exchange binding. */
  unbindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
    cb?: Callback<Replies.Empty>,
  ): this {
    return this.run((ch) => ch.unbindExchange(destination, source, pattern, args), cb);
  }
  /** Publishes; false means wait for `'drain'`. */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    return this.now().publish(exchange, routingKey, content, options);
  }
  /** Publishes to a queue. */
  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.now().sendToQueue(queue, content, options);
  }
  /** Starts a consumer; `onMessage` gets `null` when the broker cancels it. */
  consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options?: Options.Consume,
    cb?: Callback<Replies.Consume>,
  ): this {
    return this.run((ch) => ch.consume(queue, onMessage, options), cb);
  }
  /** Cancels a consumer. */
  cancel(consumerTag: string, cb?: Callback<Replies.Consume>): this {
    return this.run((ch) => ch.cancel(consumerTag), cb);
  }
  /** Fetches one message (`false` when empty). */
  get(queue: string, options?: Options.Get, cb?: Callback<GetMessage | false>): this {
    return this.run((ch) => ch.get(queue, options), cb);
  }
  /** Acknowledges a message. */
  ack(message: Message, allUpTo?: boolean): this {
    this.now().ack(message, allUpTo);
    return this;
  }
  /** Acknowledges every outstanding message. */
  ackAll(): this {
    this.now().ackAll();
    return this;
  }
  /** Rejects a message. */
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): this {
    this.now().nack(message, allUpTo, requeue);
    return this;
  }
  /** Rejects every outstanding message. */
  nackAll(requeue?: boolean): this {
    this.now().nackAll(requeue);
    return this;
  }
  /** Rejects one message (basic.reject). */
  reject(message: Message, requeue?: boolean): this {
    this.now().reject(message, requeue);
    return this;
  }
  /** Sets the prefetch limit. */
  prefetch(count: number, global?: boolean, cb?: Callback<Replies.Empty>): this {
    return this.run((ch) => ch.prefetch(count, global), cb);
  }
  /** Same as `prefetch`. */
  qos(count: number, global?: boolean, cb?: Callback<Replies.Empty>): this {
    return this.prefetch(count, global, cb);
  }
  /** Asks for redelivery of unacknowledged messages. */
  recover(cb?: Callback<Replies.Empty>): this {
    return this.run((ch) => ch.recover(), cb);
  }
}

/** A confirm-mode channel with amqplib's callback API. */
export class ConfirmChannel extends Channel {
  private confirmChannel(): PromiseConfirmChannel {
    if (this.inner === undefined)
      throw new IllegalOperationError('Channel is not open yet; wait for the createConfirmChannel callback');
    return this.inner as PromiseConfirmChannel;
  }
  /** Publishes; `cb` hears whether the broker confirmed. */
  override publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    cb?: ConfirmCallback,
  ): boolean {
    return this.confirmChannel().publish(exchange, routingKey, content, options, cb);
  }
  /** Publishes to a queue; `cb` hears whether the broker confirmed. */
  override sendToQueue(queue: string, content: Buffer, options?: Options.Publish, cb?: ConfirmCallback): boolean {
    return this.confirmChannel().sendToQueue(queue, content, options, cb);
  }
  /** Calls back once every publish so far is confirmed (with an error on a nack or a close). */
  waitForConfirms(cb: (err?: Error) => void): void {
    this.confirmChannel()
      .waitForConfirms()
      .then(
        () => cb(),
        (err: Error) => cb(err),
      );
  }
}

/** A connection with amqplib's callback API. */
export class CallbackModel extends EventEmitter {
  private readonly model: ChannelModel;

  /** @internal Use {@link connect}. */
  constructor(model: ChannelModel) {
    super();
    this.model = model;
    forward(model, this, (error) =>
      process.emitWarning(`warren/amqplib: connection error with no 'error' listener: ${String(error)}`),
    );
  }

  /** amqplib's connection object (`conn.connection.serverProperties`). */
  get connection(): ConnectionFacade {
    return this.model.connection;
  }

  /** What the broker said about itself when the connection opened. */
  get serverProperties(): ServerProperties {
    return this.model.connection.serverProperties;
  }

  /** @internal A channel error nobody listens for on the channel. */
  channelError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else process.emitWarning(`warren/amqplib: channel error with no 'error' listener: ${String(error)}`);
  }

  /** Closes the connection. */
  close(cb?: (err: Error | null) => void): void {
    settle(this.model.close(), cb);
  }

  /** Replaces the credential of the connection. */
  updateSecret(newSecret: Buffer | string, reason: string, cb?: Callback<void>): void {
    settle(this.model.updateSecret(newSecret, reason), cb);
  }

  /** Opens a channel; returns it at once (usable once `cb` is called). */
  createChannel(options?: { highWaterMark?: number } | Callback<Channel>, cb?: Callback<Channel>): Channel {
    const callback = typeof options === 'function' ? options : cb;
    const ch = new Channel(this, this.model.createChannel());
    settle(
      ch.ready.then(() => ch),
      callback,
    );
    return ch;
  }

  /** Opens a confirm-mode channel. */
  createConfirmChannel(
    options?: { highWaterMark?: number } | Callback<ConfirmChannel>,
    cb?: Callback<ConfirmChannel>,
  ): ConfirmChannel {
    const callback = typeof options === 'function' ? options : cb;
    const ch = new ConfirmChannel(this, this.model.createConfirmChannel());
    settle(
      ch.ready.then(() => ch),
      callback,
    );
    return ch;
  }
}

/**
 * Opens a connection and calls back with it: `connect(url, socketOptions, cb)`, `connect(url, cb)`
 * or `connect(cb)` (localhost). Socket options take `recover: true` as in the promise API.
 *
 * @example
 * ```ts
 * amqp.connect('amqp://localhost', { recover: true }, (err, conn) => { … });
 * ```
 */
export function connect(callback: Callback<CallbackModel>): void;
export function connect(url: string | Options.Connect | undefined, callback: Callback<CallbackModel>): void;
export function connect(
  url: string | Options.Connect | undefined,
  socketOptions: SocketOptions | undefined,
  callback: Callback<CallbackModel>,
): void;
export function connect(
  url?: string | Options.Connect | Callback<CallbackModel>,
  socketOptions?: SocketOptions | Callback<CallbackModel>,
  cb?: Callback<CallbackModel>,
): void {
  let target = url;
  let options = socketOptions;
  let callback = cb;
  if (typeof target === 'function') {
    callback = target;
    target = undefined;
    options = undefined;
  } else if (typeof options === 'function') {
    callback = options;
    options = undefined;
  }
  settle((async () => new CallbackModel(await connectPromise(target, options)))(), callback ?? (() => {}));
}

export { credentials } from './credentials.js';
export { BrokerError, IllegalOperationError } from './errors.js';
export type { SocketOptions } from './model.js';
export type * from './types.js';

/** The module as a default export too. */
const amqp = { connect, credentials, IllegalOperationError, BrokerError };
export default amqp;
