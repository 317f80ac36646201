/**
 * amqplib's `Channel` and `ConfirmChannel` on top of warren's channel layer. With recovery on (see
 * `connect`), a channel outlives its connection: it records what it declared, bound, prefetched and
 * consumed, and replays that on a fresh warren channel after a reconnect; publishes made meanwhile
 * wait (bounded), and confirm-mode publishes that were not confirmed are sent again. What is
 * recorded and replayed lives in topology.ts, the publishing side in publishing.ts, the consumers in
 * consumers.ts; this file holds the channel's state and amqplib's operations.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Channel as WarrenChannel, ReturnedMessage } from '../channel/channel.js';
import type { Connection as WarrenConnection } from '../connect.js';
import { type AMQPError, ChannelClosedByServer, InvalidArgumentError } from '../errors.js';
import { amqplibMessage, amqplibProperties, toFieldTable } from './args.js';
import { IllegalOperationError, toAmqplibError } from './errors.js';
import { type ConfirmCallback, Publishing } from './publishing.js';
import { type ConsumerRecord, Consumers } from './consumers.js';
import { type BindingEntry, exchangeOptions, queueOptions, Topology } from './topology.js';
import type { ConsumeMessage, GetMessage, HeaderValue, Message, Options, Replies, ServerProperties } from './types.js';

export type { ConfirmCallback };

/** Binding arguments (for a headers exchange, `x-match` and the headers to match). */
type BindingArgs = Record<string, HeaderValue>;

/** What a channel needs from the model that created it. @internal */
export interface ChannelOwner {
  /** True when the model reconnects and channels replay their topology. */
  readonly recover: boolean;
  /** Publishes a recovering channel holds before `publish` throws. */
  readonly maxBuffered: number;
  /** True once `close()` was called on the model. */
  readonly closing: boolean;
  /** The facade of the connection, for `channel.connection`. */
  readonly connection: ConnectionFacade;
  /** The live warren connection, if any. */
  current(): WarrenConnection | undefined;
  /** A channel error nobody listens for on the channel. */
  unhandledChannelError(error: Error): void;
  /** The channel closed for good. */
  forget(channel: Channel): void;
}

/** The part of amqplib's connection object applications read (`channel.connection.serverProperties`). */
export interface ConnectionFacade extends EventEmitter {
  serverProperties: ServerProperties;
  expectSocketClose: boolean;
  sentSinceLastCheck: boolean;
  recvSinceLastCheck: boolean;
  /** Not available in warren/amqplib: throws. */
  sendMessage(...args: unknown[]): unknown;
}

/**
 * A channel with amqplib's API. Get one with `model.createChannel()`.
 *
 * Events: `'error'` (the broker closed the channel; only emitted when someone listens, otherwise
 * passed to the model's `'error'` listeners or reported as a warning), `'close'`, `'return'`
 * (an unroutable mandatory message, in amqplib's message shape), `'drain'` (after `publish` returned
 * false, once the buffer has room again).
 *
 * @example
 * ```ts
 * import amqp from 'warren/amqplib';
 * const conn = await amqp.connect('amqp://localhost');
 * const ch = await conn.createChannel();
 * await ch.assertQueue('tasks');
 * ch.sendToQueue('tasks', Buffer.from('hello'), { persistent: true });
 * await ch.consume('tasks', (msg) => { if (msg) ch.ack(msg); });
 * ```
 */
export class Channel extends EventEmitter {
  /** The connection object (amqplib's `channel.connection`). */
  readonly connection: ConnectionFacade;
  /** @internal */
  protected readonly owner: ChannelOwner;
  /** @internal */
  protected readonly confirmMode: boolean;
  private warren: WarrenChannel | undefined;
  private state: 'open' | 'recovering' | 'closed' = 'open';
  private reopenWaiters: { resolve(ch: WarrenChannel): void; reject(err: Error): void }[] = [];
  private readonly topology: Topology;
  private readonly publishing: Publishing;
  private readonly consumers: Consumers;

  /** @internal Use `model.createChannel()`. */
  constructor(owner: ChannelOwner, confirmMode: boolean) {
    super();
    this.owner = owner;
    this.confirmMode = confirmMode;
    this.connection = owner.connection;
    this.topology = new Topology(owner.recover);
    this.consumers = new Consumers({
      reportHandlerError: (err, event) => this.reportHandlerError(err, event),
      cancelled: (tag) => this.topology.unrecord((e) => e.kind === 'consume' && e.tag === tag),
    });
    this.publishing = new Publishing({
      confirmMode,
      maxBuffered: owner.maxBuffered,
      state: () => this.state,
      channel: () => this.warren,
      connection: () => owner.current(),
      queueName: (name) => this.topology.queueName(name),
      drain: () => this.emitSafely('drain'),
      reportHandlerError: (err, event) => this.reportHandlerError(err, event),
    });
  }

  /** @internal Opens the first warren channel. */
  async start(conn: WarrenConnection): Promise<void> {
    this.attach(await this.openOn(conn));
  }

  private async openOn(conn: WarrenConnection): Promise<WarrenChannel> {
    const ch = await conn.openChannel();
    if (this.confirmMode) {
      try {
        await ch.confirmSelect();
      } catch (err) {
        await ch.close().catch(() => {});
        throw err;
      }
    }
    return ch;
  }

  private attach(ch: WarrenChannel): void {
    this.warren = ch;
    ch.on('close', (err) => this.onWarrenClose(ch, err));
    ch.on('return', (r: ReturnedMessage) => this.emitSafely('return', returnedMessage(r)));
  }

  private onWarrenClose(ch: WarrenChannel, err: AMQPError | undefined): void {
    if (ch !== this.warren) return;
    this.warren = undefined;
    if (this.state === 'closed') return;
    if (err instanceof ChannelClosedByServer || err === undefined) {
      this.finish(err);
    } else if (this.owner.recover && !this.owner.closing) {
      this.state = 'recovering';
    } else {
      this.finish(undefined);
    }
  }

  /** Ends the channel for good: `'error'` (for a broker close), then `'close'`. */
  private finish(err: AMQPError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.publishing.closed();
    const waiters = this.reopenWaiters;
    this.reopenWaiters = [];
    for (const w of waiters) w.reject(new IllegalOperationError('Channel closed'));
    this.owner.forget(this);
    if (err !== undefined) {
      const error = toAmqplibError(err);
      if (this.listenerCount('error') > 0) this.emitSafely('error', error);
      else this.owner.unhandledChannelError(error);
    }
    this.emitSafely('close');
  }

  /** Emits without letting a throwing listener break the channel; `'handler-error'` hears of it. */
  private emitSafely(event: string, ...args: unknown[]): void {
    try {
      this.emit(event, ...args);
    } catch (err) {
      this.reportHandlerError(err, event);
    }
  }

  private reportHandlerError(err: unknown, event: string): void {
    if (this.listenerCount('handler-error') > 0) {
      setImmediate(() => this.emit('handler-error', err, event));
    } else {
      process.emitWarning(
        `warren/amqplib: a '${event}' handler threw and nobody listens for 'handler-error': ${String(err)}`,
      );
    }
  }

  // ------------------------------------------------------------------ recovery

  /** @internal The model reconnected: open a new warren channel and replay what this one set up. */
  async reopen(conn: WarrenConnection): Promise<void> {
    if (this.state !== 'recovering') return;
    const ch = await this.openOn(conn);
    try {
      await this.topology.replay(conn, ch, (on, tag, queue, options) =>
        this.consumers.restart(on, tag, queue, options),
      );
    } catch (err) {
      if (err instanceof ChannelClosedByServer) {
        this.warren = ch;
        this.onWarrenClose(ch, err);
        return;
      }
      await ch.close().catch(() => {});
      throw err;
    }
    if (this.currentState() !== 'recovering') {
      // Closed by the application while the replay ran.
      await ch.close().catch(() => {});
      return;
    }
    this.attach(ch);
    this.state = 'open';
    const waiters = this.reopenWaiters;
    this.reopenWaiters = [];
    for (const w of waiters) w.resolve(ch);
    this.publishing.resume(ch);
  }

  /** The open warren channel, waiting through a recovery; throws once the channel is closed. */
  private live(): Promise<WarrenChannel> {
    if (this.state === 'open' && this.warren !== undefined) return Promise.resolve(this.warren);
    if (this.state === 'recovering') {
      return new Promise((resolve, reject) => this.reopenWaiters.push({ resolve, reject }));
    }
    return Promise.reject(new IllegalOperationError('Channel closed'));
  }

  /** Runs one operation; in recovery mode an operation cut off by a lost connection runs again after it. */
  private async op<T>(method: string, run: (ch: WarrenChannel) => Promise<T>): Promise<T> {
    for (;;) {
      const ch = await this.live();
      try {
        return await run(ch);
      } catch (err) {
        const state = this.currentState();
        if (state === 'recovering' && !(err instanceof ChannelClosedByServer)) continue;
        if (state === 'closed' && !(err instanceof ChannelClosedByServer) && !(err instanceof InvalidArgumentError)) {
          throw new IllegalOperationError('Channel closed', { cause: err });
        }
        throw toAmqplibError(err as AMQPError, method);
      }
    }
  }

  private currentState(): 'open' | 'recovering' | 'closed' {
    return this.state;
  }

  /** Throws amqplib's IllegalOperationError for synchronous calls on a closed channel. */
  private assertUsable(): void {
    if (this.state === 'closed') throw new IllegalOperationError('Channel closed');
  }

  // ------------------------------------------------------------------ lifecycle

  /** Closes the channel. Rejects with IllegalOperationError if it is already closed. */
  async close(): Promise<void> {
    if (this.state === 'closed') throw new IllegalOperationError('Channel closed');
    const ch = this.warren;
    if (ch === undefined) {
      this.finish(undefined);
      return;
    }
    await ch.close();
    if (this.currentState() !== 'closed') this.finish(undefined);
  }

  // ------------------------------------------------------------------ queues

  /** Declares a queue (durable unless `durable: false`); `''` lets the broker name it. */
  async assertQueue(queue?: string, options?: Options.AssertQueue): Promise<Replies.AssertQueue> {
    const opts = options ?? {};
    const requested = queue ?? '';
    const ok = await this.op('queue.declare', (ch) =>
      ch.queueDeclare(this.topology.queueName(requested), queueOptions(opts)),
    );
    if (requested === '' || !this.topology.hasQueue(ok.queue)) {
      this.topology.record({ kind: 'queue', name: ok.queue, serverNamed: requested === '', options: opts });
    }
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Checks that a queue exists; a missing queue closes the channel with 404, as in amqplib. */
  async checkQueue(queue: string): Promise<Replies.AssertQueue> {
    const ok = await this.op('queue.declare', (ch) =>
      ch.queueDeclare(this.topology.queueName(queue), { passive: true }),
    );
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Deletes a queue; resolves with how many messages it held. */
  async deleteQueue(queue: string, options?: Options.DeleteQueue): Promise<Replies.DeleteQueue> {
    const name = this.topology.queueName(queue);
    const ok = await this.op('queue.delete', (ch) =>
      ch.queueDelete(name, { ifUnused: options?.ifUnused ?? false, ifEmpty: options?.ifEmpty ?? false }),
    );
    this.topology.unrecord(
      (e) =>
        (e.kind === 'queue' && e.name === name) ||
        (e.kind === 'bindQueue' && this.topology.queueName(e.queue) === name),
    );
    return { messageCount: ok.messageCount };
  }

  /** Removes every ready message from a queue. */
  async purgeQueue(queue: string): Promise<Replies.PurgeQueue> {
    const ok = await this.op('queue.purge', (ch) => ch.queuePurge(this.topology.queueName(queue)));
    return { messageCount: ok.messageCount };
  }

  /** Binds a queue to an exchange. */
  bindQueue(queue: string, source: string, pattern: string, args?: BindingArgs): Promise<Replies.Empty> {
    return this.binding('queue.bind', { kind: 'bindQueue', queue, source, pattern, args: toFieldTable(args) });
  }

  /** Removes a queue binding. */
  unbindQueue(queue: string, source: string, pattern: string, args?: BindingArgs): Promise<Replies.Empty> {
    return this.binding('queue.unbind', { kind: 'bindQueue', queue, source, pattern, args: toFieldTable(args) });
  }

  // ------------------------------------------------------------------ exchanges

  /** Declares an exchange (durable unless `durable: false`). */
  async assertExchange(
    exchange: string,
    type: string,
    options?: Options.AssertExchange,
  ): Promise<Replies.AssertExchange> {
    const opts = options ?? {};
    await this.op('exchange.declare', (ch) => ch.exchangeDeclare(exchange, type, exchangeOptions(opts)));
    // The default exchange and amq.* cannot be declared again on recovery (and need not be).
    if (exchange !== '' && !exchange.startsWith('amq.'))
      this.topology.record({ kind: 'exchange', name: exchange, type, options: opts });
    return { exchange };
  }

  /** Checks that an exchange exists; a missing one closes the channel with 404. */
  async checkExchange(exchange: string): Promise<Replies.Empty> {
    await this.op('exchange.declare', (ch) => ch.exchangeDeclare(exchange, 'direct', { passive: true }));
    return {};
  }

  /** Deletes an exchange. */
  async deleteExchange(exchange: string, options?: Options.DeleteExchange): Promise<Replies.Empty> {
    await this.op('exchange.delete', (ch) => ch.exchangeDelete(exchange, { ifUnused: options?.ifUnused ?? false }));
    this.topology.unrecord(
      (e) =>
        (e.kind === 'exchange' && e.name === exchange) ||
        (e.kind === 'bindQueue' && e.source === exchange) ||
        (e.kind === 'bindExchange' && (e.source === exchange || e.destination === exchange)),
    );
    return {};
  }

  /** Binds exchange `destination` to exchange `source`. */
  bindExchange(destination: string, source: string, pattern: string, args?: BindingArgs): Promise<Replies.Empty> {
    const entry = { kind: 'bindExchange', destination, source, pattern, args: toFieldTable(args) } as const;
    return this.binding('exchange.bind', entry);
  }

  /** Removes an exchange-to-exchange binding. */
  unbindExchange(destination: string, source: string, pattern: string, args?: BindingArgs): Promise<Replies.Empty> {
    const entry = { kind: 'bindExchange', destination, source, pattern, args: toFieldTable(args) } as const;
    return this.binding('exchange.unbind', entry);
  }

  /** Runs a bind or unbind, then updates what recovery replays. */
  private async binding(
    method: `${'queue' | 'exchange'}.${'bind' | 'unbind'}`,
    b: BindingEntry,
  ): Promise<Replies.Empty> {
    await this.op(method, (ch) => {
      if (b.kind === 'bindExchange') {
        const run = method === 'exchange.bind' ? ch.exchangeBind : ch.exchangeUnbind;
        return run.call(ch, b.destination, b.source, b.pattern, b.args);
      }
      const run = method === 'queue.bind' ? ch.queueBind : ch.queueUnbind;
      return run.call(ch, this.topology.queueName(b.queue), b.source, b.pattern, b.args);
    });
    if (method.endsWith('.bind')) this.topology.record(b);
    else this.topology.unrecordBinding(b);
    return {};
  }

  // ------------------------------------------------------------------ publishing

  /**
   * Publishes a message. Returns false when the write buffer is full: wait for `'drain'` before
   * publishing more. Throws IllegalOperationError on a closed channel, TypeError for a content that
   * is not a Buffer.
   */
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    return this.publishWith(exchange, routingKey, content, options, undefined);
  }

  /** Publishes to a queue through the default exchange. */
  sendToQueue(queue: string, content: Buffer, options?: Options.Publish): boolean {
    return this.publishWith('', queue, content, options, undefined);
  }

  /** @internal */
  protected publishWith(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish | undefined,
    callback: ConfirmCallback | undefined,
  ): boolean {
    this.assertUsable();
    if (!Buffer.isBuffer(content)) {
      throw new TypeError(
        `content must be a Buffer, got ${content === null ? 'null' : typeof content}; use Buffer.from(...)`,
      );
    }
    if (typeof exchange !== 'string' || typeof routingKey !== 'string') {
      throw new TypeError('exchange and routing key must be strings');
    }
    return this.publishing.publish({ exchange, routingKey, content, options, callback });
  }

  /** @internal Resolves when every publish so far is confirmed; rejects on the first nack or a close. */
  protected confirmsSettled(): Promise<void> {
    return this.publishing.settled();
  }

  // ------------------------------------------------------------------ consuming

  /**
   * Starts a consumer. `onMessage` gets each message in amqplib's shape, and `null` when the broker
   * cancels the consumer (queue deleted).
   */
  async consume(
    queue: string,
    onMessage: (msg: ConsumeMessage | null) => void,
    options?: Options.Consume,
  ): Promise<Replies.Consume> {
    const opts = options ?? {};
    const record: ConsumerRecord = { queue, callback: onMessage, consumer: undefined };
    const consumer = await this.op('basic.consume', (ch) =>
      this.consumers.start(ch, this.topology.queueName(queue), opts, record),
    );
    record.consumer = consumer;
    this.topology.record({ kind: 'consume', tag: consumer.consumerTag, queue, options: opts });
    return { consumerTag: consumer.consumerTag };
  }

  /** Stops a consumer. */
  async cancel(consumerTag: string): Promise<Replies.Consume> {
    await this.op('basic.cancel', (ch) => ch.basicCancel(consumerTag));
    this.consumers.remove(consumerTag);
    this.topology.unrecord((e) => e.kind === 'consume' && e.tag === consumerTag);
    return { consumerTag };
  }

  /** Fetches one message; `false` when the queue is empty. */
  async get(queue: string, options?: Options.Get): Promise<GetMessage | false> {
    const m = await this.op('basic.get', (ch) =>
      ch.basicGet(this.topology.queueName(queue), { noAck: options?.noAck === true }),
    );
    if (m === null) return false;
    const msg = amqplibMessage(m) as GetMessage;
    if (this.warren !== undefined) this.consumers.delivered(msg, this.warren);
    return msg;
  }

  /** The warren channel to acknowledge `message` on, or undefined when its channel is gone (the broker requeued it). */
  private ackTarget(message: Message | undefined): WarrenChannel | undefined {
    this.assertUsable();
    const ch = this.warren;
    if (ch === undefined) return undefined;
    if (message !== undefined) {
      const origin = this.consumers.origin(message);
      if (origin !== undefined && origin !== ch) return undefined;
    }
    return ch;
  }

  /** Acknowledges a message (all up to it with `allUpTo`). An unknown tag makes the broker close the channel (406). */
  ack(message: Message, allUpTo?: boolean): void {
    this.ackTarget(message)?.basicAck(message.fields.deliveryTag, { multiple: allUpTo === true });
  }

  /** Acknowledges every outstanding message. */
  ackAll(): void {
    this.ackTarget(undefined)?.basicAck(0, { multiple: true });
  }

  /** Rejects a message (requeued unless `requeue` is false). */
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void {
    this.ackTarget(message)?.basicNack(message.fields.deliveryTag, {
      multiple: allUpTo === true,
      requeue: requeue !== false,
    });
  }

  /** Rejects every outstanding message. */
  nackAll(requeue?: boolean): void {
    this.ackTarget(undefined)?.basicNack(0, { multiple: true, requeue: requeue !== false });
  }

  /** Rejects one message with basic.reject. */
  reject(message: Message, requeue?: boolean): void {
    this.ackTarget(message)?.basicReject(message.fields.deliveryTag, { requeue: requeue !== false });
  }

  /** Limits unacknowledged deliveries per consumer (or per channel with `global`). */
  async prefetch(count: number, global?: boolean): Promise<Replies.Empty> {
    const n = count || 0;
    await this.op('basic.qos', (ch) => ch.basicQos(n, { global: global === true }));
    this.topology.unrecord((e) => e.kind === 'prefetch' && e.global === (global === true));
    this.topology.record({ kind: 'prefetch', count: n, global: global === true });
    return {};
  }

  /** Same as `prefetch`. */
  qos(count: number, global?: boolean): Promise<Replies.Empty> {
    return this.prefetch(count, global);
  }

  /** Asks the broker to redeliver every unacknowledged message on this channel. */
  async recover(): Promise<Replies.Empty> {
    await this.op('basic.recover', (ch) => ch.basicRecover({ requeue: true }));
    return {};
  }
}

/**
 * A channel in confirm mode: `publish` and `sendToQueue` take a callback called with `null` once the
 * broker has the message, or an error when it refused it or the channel closed first.
 *
 * @example
 * ```ts
 * const ch = await conn.createConfirmChannel();
 * ch.sendToQueue('tasks', Buffer.from('x'), {}, (err) => { if (err) console.error('not stored', err); });
 * await ch.waitForConfirms();
 * ```
 */
export class ConfirmChannel extends Channel {
  /** Publishes; `callback` hears whether the broker confirmed. */
  override publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options?: Options.Publish,
    callback?: ConfirmCallback,
  ): boolean {
    return this.publishWith(exchange, routingKey, content, options, callback);
  }

  /** Publishes to a queue through the default exchange; `callback` hears whether the broker confirmed. */
  override sendToQueue(queue: string, content: Buffer, options?: Options.Publish, callback?: ConfirmCallback): boolean {
    return this.publishWith('', queue, content, options, callback);
  }

  /** Resolves once every message published so far is confirmed; rejects on a nack or a close. */
  waitForConfirms(): Promise<void> {
    return this.confirmsSettled();
  }
}

/** A returned message in amqplib's shape: the return's fields, the properties, the content. */
function returnedMessage(r: ReturnedMessage): Message {
  return {
    content: r.body,
    fields: {
      replyCode: r.replyCode,
      replyText: r.replyText,
      exchange: r.exchange,
      routingKey: r.routingKey,
    } as unknown as Message['fields'],
    properties: amqplibProperties(r.properties),
  };
}
