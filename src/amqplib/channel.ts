/**
 * amqplib's `Channel` and `ConfirmChannel` on top of warren's channel layer. With recovery on (see
 * `connect`), a channel outlives its connection: it records what it declared, bound, prefetched and
 * consumed, and replays that on a fresh warren channel after a reconnect; publishes made meanwhile
 * wait (bounded), and confirm-mode publishes that were not confirmed are sent again.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Channel as WarrenChannel, ReturnedMessage } from '../channel/channel.js';
import type { Consumer as WarrenConsumer } from '../channel/consumer.js';
import type { Message as WarrenMessage } from '../channel/message.js';
import type { Connection as WarrenConnection } from '../connect.js';
import { type AMQPError, ChannelClosedByServer, InvalidArgumentError, MessageReturned } from '../errors.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import {
  amqplibMessage,
  amqplibProperties,
  consumeArguments,
  exchangeArguments,
  publishProperties,
  queueArguments,
  toFieldTable,
} from './args.js';
import { IllegalOperationError, toAmqplibError } from './errors.js';
import type { ConsumeMessage, GetMessage, HeaderValue, Message, Options, Replies, ServerProperties } from './types.js';

/**
 * Called with `(null, {})` when the broker confirmed a publish, or with the error alone (and `ok`
 * undefined, as in amqplib) when it did not.
 */
export type ConfirmCallback = (err: Error | null, ok: Replies.Empty) => void;

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

interface PendingPublish {
  seq: number;
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: BasicProperties;
  mandatory: boolean;
  callback: ConfirmCallback | undefined;
  settled: boolean;
  waiters: ((err: Error | null) => void)[];
}

type TopologyEntry =
  | { kind: 'exchange'; name: string; type: string; options: Options.AssertExchange }
  | { kind: 'queue'; name: string; serverNamed: boolean; options: Options.AssertQueue }
  | { kind: 'bindQueue'; queue: string; source: string; pattern: string; args: FieldTable }
  | { kind: 'bindExchange'; destination: string; source: string; pattern: string; args: FieldTable }
  | { kind: 'prefetch'; count: number; global: boolean }
  | { kind: 'consume'; tag: string; queue: string; options: Options.Consume };

interface ConsumerRecord {
  queue: string;
  callback: (msg: ConsumeMessage | null) => void;
  consumer: WarrenConsumer | undefined;
}

let publishSeq = 0;

/**
 * As in amqplib, a plain publish that a closing channel drops is not reported; one warren refused to
 * encode (a header value it cannot send, a priority above 255) is, as a warning, since amqplib
 * would have thrown.
 */
const ignore = (err: unknown): void => {
  if (err instanceof InvalidArgumentError) process.emitWarning(`warren/amqplib: publish not sent: ${err.message}`);
};

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
  private readonly topology: TopologyEntry[] = [];
  private readonly renames = new Map<string, string>();
  private readonly consumers = new Map<string, ConsumerRecord>();
  private readonly deliveredOn = new WeakMap<object, WarrenChannel>();
  /** Confirm-mode publishes not settled yet, for `waitForConfirms`. */
  private readonly unconfirmed = new Set<PendingPublish>();
  /** Publishes waiting for the channel to come back. */
  private offline: PendingPublish[] = [];
  private closedWithUnconfirmed = false;
  private drainWanted = false;

  /** @internal Use `model.createChannel()`. */
  constructor(owner: ChannelOwner, confirmMode: boolean) {
    super();
    this.owner = owner;
    this.confirmMode = confirmMode;
    this.connection = owner.connection;
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
    const closed = new Error('channel closed');
    const offline = this.offline;
    this.offline = [];
    for (const p of offline) this.settle(p, closed);
    const waiters = this.reopenWaiters;
    this.reopenWaiters = [];
    for (const w of waiters) w.reject(new IllegalOperationError('Channel closed'));
    if (this.unconfirmed.size > 0) this.closedWithUnconfirmed = true;
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
      for (const entry of [...this.topology]) await this.replay(conn, ch, entry);
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
    const offline = this.offline.sort((a, b) => a.seq - b.seq);
    this.offline = [];
    for (const p of offline) this.send(ch, p);
    if (this.drainWanted) this.waitDrain();
  }

  private async replay(conn: WarrenConnection, ch: WarrenChannel, entry: TopologyEntry): Promise<void> {
    switch (entry.kind) {
      case 'exchange':
        await ch.exchangeDeclare(entry.name, entry.type, exchangeOptions(entry.options));
        return;
      case 'queue': {
        if (!entry.serverNamed) {
          await ch.queueDeclare(entry.name, queueOptions(entry.options));
          return;
        }
        // A server-named queue that survived (not exclusive) is used again, so nothing stays stranded in it.
        if (!entry.options.exclusive && (await queueExists(conn, entry.name))) return;
        const { queue } = await ch.queueDeclare('', queueOptions(entry.options));
        this.renames.set(entry.name, queue);
        for (const [from, to] of this.renames) if (to === entry.name) this.renames.set(from, queue);
        entry.name = queue;
        return;
      }
      case 'bindQueue':
        await ch.queueBind(this.queueName(entry.queue), entry.source, entry.pattern, entry.args);
        return;
      case 'bindExchange':
        await ch.exchangeBind(entry.destination, entry.source, entry.pattern, entry.args);
        return;
      case 'prefetch':
        await ch.basicQos(entry.count, { global: entry.global });
        return;
      case 'consume': {
        const record = this.consumers.get(entry.tag);
        if (record === undefined) return;
        record.consumer = await this.startConsumer(ch, this.queueName(entry.queue), {
          ...entry.options,
          consumerTag: entry.tag,
        });
        return;
      }
    }
  }

  /** The current name of a queue this channel declared with `''` (they change on recovery). */
  private queueName(name: string): string {
    return this.renames.get(name) ?? name;
  }

  private record(entry: TopologyEntry): void {
    if (this.owner.recover) this.topology.push(entry);
  }

  private unrecord(match: (entry: TopologyEntry) => boolean): void {
    for (let i = this.topology.length - 1; i >= 0; i--) if (match(this.topology[i]!)) this.topology.splice(i, 1);
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
    const ok = await this.op('queue.declare', (ch) => ch.queueDeclare(this.queueName(requested), queueOptions(opts)));
    if (requested === '' || this.topology.every((e) => e.kind !== 'queue' || e.name !== ok.queue)) {
      this.record({ kind: 'queue', name: ok.queue, serverNamed: requested === '', options: opts });
    }
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Checks that a queue exists; a missing queue closes the channel with 404, as in amqplib. */
  async checkQueue(queue: string): Promise<Replies.AssertQueue> {
    const ok = await this.op('queue.declare', (ch) => ch.queueDeclare(this.queueName(queue), { passive: true }));
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Deletes a queue; resolves with how many messages it held. */
  async deleteQueue(queue: string, options?: Options.DeleteQueue): Promise<Replies.DeleteQueue> {
    const name = this.queueName(queue);
    const ok = await this.op('queue.delete', (ch) =>
      ch.queueDelete(name, { ifUnused: options?.ifUnused ?? false, ifEmpty: options?.ifEmpty ?? false }),
    );
    this.unrecord(
      (e) => (e.kind === 'queue' && e.name === name) || (e.kind === 'bindQueue' && this.queueName(e.queue) === name),
    );
    return { messageCount: ok.messageCount };
  }

  /** Removes every ready message from a queue. */
  async purgeQueue(queue: string): Promise<Replies.PurgeQueue> {
    const ok = await this.op('queue.purge', (ch) => ch.queuePurge(this.queueName(queue)));
    return { messageCount: ok.messageCount };
  }

  /** Binds a queue to an exchange. */
  async bindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
  ): Promise<Replies.Empty> {
    const table = toFieldTable(args);
    await this.op('queue.bind', (ch) => ch.queueBind(this.queueName(queue), source, pattern, table));
    this.record({ kind: 'bindQueue', queue, source, pattern, args: table });
    return {};
  }

  /** Removes a queue binding. */
  async unbindQueue(
    queue: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
  ): Promise<Replies.Empty> {
    const table = toFieldTable(args);
    await this.op('queue.unbind', (ch) => ch.queueUnbind(this.queueName(queue), source, pattern, table));
    this.unrecord((e) => e.kind === 'bindQueue' && e.queue === queue && e.source === source && e.pattern === pattern);
    return {};
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
      this.record({ kind: 'exchange', name: exchange, type, options: opts });
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
    this.unrecord(
      (e) =>
        (e.kind === 'exchange' && e.name === exchange) ||
        (e.kind === 'bindQueue' && e.source === exchange) ||
        (e.kind === 'bindExchange' && (e.source === exchange || e.destination === exchange)),
    );
    return {};
  }

  /** Binds exchange `destination` to exchange `source`. */
  async bindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
  ): Promise<Replies.Empty> {
    const table = toFieldTable(args);
    await this.op('exchange.bind', (ch) => ch.exchangeBind(destination, source, pattern, table));
    this.record({ kind: 'bindExchange', destination, source, pattern, args: table });
    return {};
  }

  /** Removes an exchange-to-exchange binding. */
  async unbindExchange(
    destination: string,
    source: string,
    pattern: string,
    args?: Record<string, HeaderValue>,
  ): Promise<Replies.Empty> {
    const table = toFieldTable(args);
    await this.op('exchange.unbind', (ch) => ch.exchangeUnbind(destination, source, pattern, table));
    this.unrecord(
      (e) => e.kind === 'bindExchange' && e.destination === destination && e.source === source && e.pattern === pattern,
    );
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
    const ch = this.warren;
    const direct = !this.confirmMode && this.state === 'open' && ch !== undefined && this.offline.length === 0;
    if (direct) {
      // The plain hot path: nothing to remember about the message once it is written.
      const routed = exchange === '' ? this.queueName(routingKey) : routingKey;
      ch.basicPublish(exchange, routed, content, publishProperties(options), {
        mandatory: options?.mandatory === true,
      }).catch(ignore);
      return this.writable();
    }
    const pending: PendingPublish = {
      seq: ++publishSeq,
      exchange,
      routingKey,
      content,
      properties: publishProperties(options),
      mandatory: options?.mandatory === true,
      callback,
      settled: false,
      waiters: [],
    };
    if (this.confirmMode) this.unconfirmed.add(pending);
    if (this.state !== 'open' || ch === undefined || this.offline.length > 0) {
      if (this.offline.length >= this.owner.maxBuffered) {
        this.unconfirmed.delete(pending);
        throw new IllegalOperationError(
          `Channel is reconnecting and already holds ${this.offline.length} publishes (recover.maxBuffered); wait for 'drain'`,
        );
      }
      this.offline.push(pending);
      if (this.offline.length < this.owner.maxBuffered / 2) return true;
      this.drainWanted = true;
      return false;
    }
    this.send(ch, pending);
    return this.writable();
  }

  /** True while the connection's write buffer has room; otherwise arranges one `'drain'`. */
  private writable(): boolean {
    const conn = this.owner.current();
    if (conn === undefined || conn.transport.writable) return true;
    if (!this.drainWanted) {
      this.drainWanted = true;
      this.waitDrain();
    }
    return false;
  }

  private waitDrain(): void {
    const conn = this.owner.current();
    if (conn === undefined || this.state !== 'open') return;
    conn.transport.waitWritable().then(() => {
      if (this.state !== 'open' || !this.drainWanted) return;
      this.drainWanted = false;
      this.emitSafely('drain');
    });
  }

  private send(ch: WarrenChannel, p: PendingPublish): void {
    const routingKey = p.exchange === '' ? this.queueName(p.routingKey) : p.routingKey;
    const sent = ch.basicPublish(p.exchange, routingKey, p.content, p.properties, { mandatory: p.mandatory });
    if (!this.confirmMode) {
      sent.catch(ignore);
      return;
    }
    sent.then(
      () => this.settle(p, null),
      (err: AMQPError) => {
        // Returned-and-confirmed counts as confirmed in amqplib; the return comes through 'return'.
        if (err instanceof MessageReturned) this.settle(p, null);
        else if (this.state === 'recovering' && !(err instanceof ChannelClosedByServer)) this.offline.push(p);
        else
          this.settle(
            p,
            this.state === 'closed' || err instanceof ChannelClosedByServer
              ? new Error('channel closed')
              : toAmqplibError(err),
          );
      },
    );
  }

  private settle(p: PendingPublish, err: Error | null): void {
    if (p.settled) return;
    p.settled = true;
    this.unconfirmed.delete(p);
    if (err !== null && this.state === 'closed') this.closedWithUnconfirmed = true;
    if (p.callback !== undefined) {
      try {
        p.callback(err, (err === null ? {} : undefined) as Replies.Empty);
      } catch (e) {
        this.reportHandlerError(e, 'publish callback');
      }
    }
    for (const w of p.waiters) w(err);
  }

  /** @internal Resolves when every publish so far is confirmed; rejects on the first nack or a close. */
  protected confirmsSettled(): Promise<void> {
    if (this.closedWithUnconfirmed) return Promise.reject(new Error('channel closed'));
    const waits = [...this.unconfirmed].map(
      (p) => new Promise<void>((resolve, reject) => p.waiters.push((err) => (err === null ? resolve() : reject(err)))),
    );
    return Promise.all(waits).then(() => undefined);
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
      this.startConsumer(ch, this.queueName(queue), opts, record),
    );
    record.consumer = consumer;
    this.record({ kind: 'consume', tag: consumer.consumerTag, queue, options: opts });
    return { consumerTag: consumer.consumerTag };
  }

  private async startConsumer(
    ch: WarrenChannel,
    queue: string,
    options: Options.Consume,
    fresh?: ConsumerRecord,
  ): Promise<WarrenConsumer> {
    let tag = options.consumerTag ?? '';
    const handler = (m: WarrenMessage) => {
      const record = this.consumers.get(m.consumerTag ?? tag);
      if (record === undefined) return;
      const msg = amqplibMessage(m) as ConsumeMessage;
      this.deliveredOn.set(msg, ch);
      try {
        record.callback(msg);
      } catch (err) {
        this.reportHandlerError(err, 'delivery');
      }
    };
    // Registered before consume-ok is handled, so no delivery can arrive unclaimed.
    const consumer = await ch.basicConsume(
      queue,
      {
        noAck: options.noAck === true,
        exclusive: options.exclusive === true,
        noLocal: options.noLocal === true,
        consumerTag: tag,
        arguments: consumeArguments(options),
      },
      (m) => {
        if (fresh !== undefined && !this.consumers.has(m.consumerTag ?? '')) {
          tag = m.consumerTag ?? '';
          this.consumers.set(tag, fresh);
        }
        handler(m);
      },
    );
    tag = consumer.consumerTag;
    if (fresh !== undefined) this.consumers.set(tag, fresh);
    consumer.on('cancel', ({ serverCancelled }) => {
      if (!serverCancelled) return;
      const record = this.consumers.get(tag);
      this.consumers.delete(tag);
      this.unrecord((e) => e.kind === 'consume' && e.tag === tag);
      if (record === undefined) return;
      try {
        record.callback(null);
      } catch (err) {
        this.reportHandlerError(err, 'cancel');
      }
    });
    return consumer;
  }

  /** Stops a consumer. */
  async cancel(consumerTag: string): Promise<Replies.Consume> {
    await this.op('basic.cancel', (ch) => ch.basicCancel(consumerTag));
    this.consumers.delete(consumerTag);
    this.unrecord((e) => e.kind === 'consume' && e.tag === consumerTag);
    return { consumerTag };
  }

  /** Fetches one message; `false` when the queue is empty. */
  async get(queue: string, options?: Options.Get): Promise<GetMessage | false> {
    const m = await this.op('basic.get', (ch) =>
      ch.basicGet(this.queueName(queue), { noAck: options?.noAck === true }),
    );
    if (m === null) return false;
    const msg = amqplibMessage(m) as GetMessage;
    if (this.warren !== undefined) this.deliveredOn.set(msg, this.warren);
    return msg;
  }

  /** The warren channel to acknowledge `message` on, or undefined when its channel is gone (the broker requeued it). */
  private ackTarget(message: Message | undefined): WarrenChannel | undefined {
    this.assertUsable();
    const ch = this.warren;
    if (ch === undefined) return undefined;
    if (message !== undefined) {
      const origin = this.deliveredOn.get(message);
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
    this.unrecord((e) => e.kind === 'prefetch' && e.global === (global === true));
    this.record({ kind: 'prefetch', count: n, global: global === true });
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

function queueOptions(o: Options.AssertQueue) {
  return {
    durable: o.durable ?? true,
    exclusive: o.exclusive === true,
    autoDelete: o.autoDelete === true,
    arguments: queueArguments(o),
  };
}

function exchangeOptions(o: Options.AssertExchange) {
  return {
    durable: o.durable ?? true,
    internal: o.internal === true,
    autoDelete: o.autoDelete === true,
    arguments: exchangeArguments(o),
  };
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

/** Whether a queue exists, asked on a channel of its own (a 404 closes the channel that asks). */
async function queueExists(conn: WarrenConnection, queue: string): Promise<boolean> {
  const probe = await conn.openChannel();
  try {
    await probe.queueDeclare(queue, { passive: true });
    return true;
  } catch (err) {
    if (err instanceof ChannelClosedByServer && err.replyCode === 404) return false;
    throw err;
  } finally {
    await probe.close().catch(() => {});
  }
}
