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
import type { Options, ServerProperties } from './types.js';

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

/** Returns a channel at once and calls `cb` with it once it is open (or with why it could not open). */
function whenReady<C extends { ready: Promise<unknown> }>(ch: C, cb: Callback<C> | undefined): C {
  settle(
    ch.ready.then(() => ch),
    cb,
  );
  return ch;
}

/** The promise channel's operation `F` with a trailing `(err, ok)` callback, returning the channel. */
type WithCallback<F, Self> = F extends (...args: infer A) => Promise<infer R>
  ? (...args: [...A, cb?: Callback<R>]) => Self
  : never;
/** The promise channel's synchronous operation `F`, returning the channel. */
type Chained<F, Self> = F extends (...args: infer A) => unknown ? (...args: A) => Self : never;

/**
 * The operations the callback channel runs on the promise channel once it is open, each with the
 * number of arguments before its callback (the callback goes in that position even when optional
 * arguments before it are left out, as in amqplib).
 */
const CALLBACK_OPERATIONS = {
  close: 0,
  assertQueue: 2,
  checkQueue: 1,
  deleteQueue: 2,
  purgeQueue: 1,
  bindQueue: 4,
  unbindQueue: 4,
  assertExchange: 3,
  checkExchange: 1,
  deleteExchange: 2,
  bindExchange: 4,
  unbindExchange: 4,
  consume: 3,
  cancel: 1,
  get: 2,
  prefetch: 2,
  qos: 2,
  recover: 0,
} as const satisfies { [K in keyof PromiseChannel]?: number };

/** The synchronous operations, which need the channel open already and return it. */
const CHAINED_OPERATIONS = ['ack', 'ackAll', 'nack', 'nackAll', 'reject'] as const satisfies (keyof PromiseChannel)[];

type Operation = (...args: unknown[]) => unknown;

// The operations are installed on the prototype from the tables above; this declares their types.
export interface Channel {
  /** Closes the channel. */
  close: WithCallback<PromiseChannel['close'], this>;
  /** Declares a queue. */
  assertQueue: WithCallback<PromiseChannel['assertQueue'], this>;
  /** Checks that a queue exists. */
  checkQueue: WithCallback<PromiseChannel['checkQueue'], this>;
  /** Deletes a queue. */
  deleteQueue: WithCallback<PromiseChannel['deleteQueue'], this>;
  /** Purges a queue. */
  purgeQueue: WithCallback<PromiseChannel['purgeQueue'], this>;
  /** Binds a queue. */
  bindQueue: WithCallback<PromiseChannel['bindQueue'], this>;
  /** Unbinds a queue. */
  unbindQueue: WithCallback<PromiseChannel['unbindQueue'], this>;
  /** Declares an exchange. */
  assertExchange: WithCallback<PromiseChannel['assertExchange'], this>;
  /** Checks that an exchange exists. */
  checkExchange: WithCallback<PromiseChannel['checkExchange'], this>;
  /** Deletes an exchange. */
  deleteExchange: WithCallback<PromiseChannel['deleteExchange'], this>;
  /** Binds an exchange to another. */
  bindExchange: WithCallback<PromiseChannel['bindExchange'], this>;
  /** Removes an exchange binding. */
  unbindExchange: WithCallback<PromiseChannel['unbindExchange'], this>;
  /** Starts a consumer; `onMessage` gets `null` when the broker cancels it. */
  consume: WithCallback<PromiseChannel['consume'], this>;
  /** Cancels a consumer. */
  cancel: WithCallback<PromiseChannel['cancel'], this>;
  /** Fetches one message (`false` when empty). */
  get: WithCallback<PromiseChannel['get'], this>;
  /** Sets the prefetch limit. */
  prefetch: WithCallback<PromiseChannel['prefetch'], this>;
  /** Same as `prefetch`. */
  qos: WithCallback<PromiseChannel['qos'], this>;
  /** Asks for redelivery of unacknowledged messages. */
  recover: WithCallback<PromiseChannel['recover'], this>;
  /** Acknowledges a message. */
  ack: Chained<PromiseChannel['ack'], this>;
  /** Acknowledges every outstanding message. */
  ackAll: Chained<PromiseChannel['ackAll'], this>;
  /** Rejects a message. */
  nack: Chained<PromiseChannel['nack'], this>;
  /** Rejects every outstanding message. */
  nackAll: Chained<PromiseChannel['nackAll'], this>;
  /** Rejects one message (basic.reject). */
  reject: Chained<PromiseChannel['reject'], this>;
}

/**
 * A channel with amqplib's callback API: each operation takes an optional `(err, ok)` callback and
 * returns the channel.
 */
// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: see the interface above
export class Channel extends EventEmitter {
  /** @internal */
  protected inner: PromiseChannel | undefined;
  /** @internal Resolves once the channel is open. */
  readonly ready: Promise<PromiseChannel>;
  private readonly model: CallbackModel;

  static {
    const install = (name: string, value: Operation) =>
      Object.defineProperty(Channel.prototype, name, { value, writable: true, configurable: true });
    for (const [name, arity] of Object.entries(CALLBACK_OPERATIONS)) {
      install(name, function (this: Channel, ...args: unknown[]) {
        const cb = args[arity] as Callback<unknown> | undefined;
        return this.run(
          (ch) =>
            Reflect.apply(ch[name as keyof PromiseChannel] as Operation, ch, args.slice(0, arity)) as Promise<unknown>,
          cb,
        );
      });
    }
    for (const name of CHAINED_OPERATIONS) {
      install(name, function (this: Channel, ...args: unknown[]) {
        const ch = this.now();
        Reflect.apply(ch[name] as Operation, ch, args);
        return this;
      });
    }
  }

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

  /** Publishes; false means wait for `'drain'`. */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    return this.now().publish(exchange, routingKey, content, options);
  }
  /** Publishes to a queue. */
  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.now().sendToQueue(queue, content, options);
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
    return whenReady(new Channel(this, this.model.createChannel()), typeof options === 'function' ? options : cb);
  }

  /** Opens a confirm-mode channel. */
  createConfirmChannel(
    options?: { highWaterMark?: number } | Callback<ConfirmChannel>,
    cb?: Callback<ConfirmChannel>,
  ): ConfirmChannel {
    return whenReady(
      new ConfirmChannel(this, this.model.createConfirmChannel()),
      typeof options === 'function' ? options : cb,
    );
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
