/**
 * An AMQP channel: every 0-9-1 method as a typed async call.
 *
 * One synchronous method is in flight at a time; later calls wait in a FIFO. Content (deliveries,
 * get-ok, returns) is assembled from method, header and body frames. A channel error rejects what is
 * pending on this channel only.
 *
 * @module
 */
import { disposable } from '../dispose.js';
import { SafeEmitter } from '../user-code.js';
import { inspectCustom } from '../redact.js';
import type { ChannelHost } from '../connection/endpoint.js';
import {
  type AMQPError,
  type ChannelClosedByServer,
  ClosedError,
  InvalidArgumentError,
  MessageReturned,
  REPLY_CODES,
} from '../errors.js';
import type { AMQPMethod, MethodInputByName, MethodName, SyncMethodName } from '../protocol/generated/methods.js';
import type { BasicProperties } from '../protocol/generated/properties.js';
import type { FieldTable } from '../protocol/field-values.js';
import type { ContentHeader } from '../protocol/content-header.js';
import { Acknowledger } from './acknowledger.js';
import { type CallExtra, CallQueue, type CallResult, type PendingCallOf } from './call-queue.js';
import type {
  CallOptions,
  ChannelEvents,
  ConsumeOptions,
  ExchangeDeclareOptions,
  PublishOptions,
  QueueDeclareOptions,
  QueueDeclareResult,
  ReturnedMessage,
} from './channel-options.js';
import { type ChannelState, isEnded, nextState, publicChannelState, unusableError } from './channel-state.js';
import { requireName } from './checks.js';
import type { PendingConfirm } from './confirms.js';
import { type Consumer, ConsumerRegistry, type MessageHandler } from './consumer.js';
import { bindArgs, exchangeDeclareArgs, queueDeclareArgs } from './declare-args.js';
import { ChannelInbound } from './inbound.js';
import { Message, type Settlement, settlement } from './message.js';
import { Publishing } from './publishing.js';

// The option and result types of the methods below, for code that imports the channel from here.
export type * from './channel-options.js';

let generations = 0;

/**
 * A channel on a connection. Get one with `connection.openChannel()`.
 *
 * @example
 * ```ts
 * const ch = await conn.openChannel();
 * const { queue } = await ch.queueDeclare('', { exclusive: true });
 * await ch.basicPublish('', queue, Buffer.from('hello'));
 * const msg = await ch.basicGet(queue, { noAck: true });
 * await ch.close();
 * ```
 */
// No `implements ChannelEndpoint`: that contract is internal and stripped from the .d.ts; the
// connection's allocateChannel<T extends ChannelEndpoint>() checks the fit where it matters.
export class Channel extends SafeEmitter<ChannelEvents> {
  /** The channel number on its connection. */
  readonly id: number;
  private readonly host: ChannelHost;
  /** @internal Distinguishes this channel from earlier ones that had the same id, so stale acks are dropped. */
  readonly generation = ++generations;
  private state: ChannelState = 'opening';
  private closeError: AMQPError | undefined;
  /** @internal */
  readonly calls = new CallQueue((call) => this.send(call.name, call.args));
  /** @internal */
  readonly acks: Acknowledger;
  /** @internal */
  readonly consumers = new ConsumerRegistry(this);
  private readonly inbound: ChannelInbound;
  /** @internal */
  readonly publishing: Publishing;
  /** False while the broker asked us (channel.flow) to stop publishing. */
  private flowActive = true;

  /** @internal Use `connection.openChannel()`. */
  constructor(host: ChannelHost, id: number) {
    super();
    this.host = host;
    this.id = id;
    this.inbound = new ChannelInbound(this);
    this.publishing = new Publishing(host, id, () => {
      if (!this.canSend) throw this.unusableError();
    });
    this.acks = new Acknowledger(host, id, () => this.state === 'open' || this.state === 'closing');
  }

  /** What `console.log(channel)` shows: its number and state (its connection holds credentials). */
  [inspectCustom](): string {
    return `Channel { ${this.id}, ${publicChannelState(this.state)} }`;
  }

  /** What `JSON.stringify(channel)` gives. */
  toJSON(): { type: 'Channel'; id: number; state: string } {
    return { type: 'Channel', id: this.id, state: publicChannelState(this.state) };
  }

  /** True until the channel is closed by either side or its connection dies. */
  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Why the channel closed, once it has. */
  get closeReason(): AMQPError | undefined {
    return this.closeError;
  }

  /** True after `confirmSelect()`. */
  get confirmMode(): boolean {
    return this.publishing.confirms !== undefined;
  }

  /** Publishes sent in confirm mode and not yet confirmed. */
  get unconfirmedCount(): number {
    return this.publishing.confirms?.size ?? 0;
  }

  /** @internal Sends channel.open; resolves when the broker answers. */
  async open(options?: CallOptions): Promise<void> {
    await this.call('channel.open', {}, options, { opening: true });
    if (this.state === 'opening') this.moveTo('open');
  }

  // ------------------------------------------------------------------ sending

  private moveTo(next: ChannelState): void {
    this.state = nextState(this.state, next);
  }

  /** @internal Sends a method and schedules the flush. */
  send<N extends MethodName>(name: N, args: MethodInputByName[N]): void {
    this.host.sendMethod(this.id, name, args);
    this.host.scheduleFlush();
  }

  /** True while this channel may send: it is open, and so is its connection. */
  private get canSend(): boolean {
    return this.state === 'open' && this.host.unusable === undefined;
  }

  private unusableError(): AMQPError {
    return unusableError(this.id, this.state, this.closeError, this.host.unusable);
  }

  /**
   * Queues a synchronous method and resolves with its reply. Arguments are encoded up front so that
   * invalid input is reported before anything is queued.
   */
  private call<N extends SyncMethodName>(
    name: N,
    args: MethodInputByName[N],
    options?: CallOptions,
    extra?: CallExtra,
  ): Promise<CallResult<N>> {
    const sendable = this.state === 'open' || (extra?.opening === true && this.state === 'opening');
    if (!sendable || this.host.unusable !== undefined) return Promise.reject(this.unusableError());
    const limits = {
      timeout: options?.timeout ?? this.host.operationTimeout ?? 0,
      signal: options?.signal,
      channelId: this.id,
    };
    return this.calls.request(name, args, limits, extra?.handler, this.abandonCall);
  }

  /**
   * A call timed out or was aborted. Still waiting behind another: it is just dropped. Sent: its
   * reply may yet come and would answer the next call, so the channel is closed (channel.close on
   * the wire) and its id kept until the broker's close-ok.
   */
  private readonly abandonCall = <N extends SyncMethodName>(call: PendingCallOf<N>, error: AMQPError): void => {
    if (this.calls.removeWaiting(call)) {
      call.reject(error);
      return;
    }
    if (this.calls.head !== call || isEnded(this.state)) return;
    const holdId = this.host.unusable === undefined;
    const next = holdId ? 'abandoned' : 'closed';
    if (call.name === 'channel.close') {
      // close() gave up waiting for close-ok: closed all the same (finish resolves the close call).
      this.finish(undefined, next);
      return;
    }
    const behind = this.calls.drain().filter((c) => c !== call);
    call.reject(error);
    this.acks.flushRun();
    // Sent unless it already was: a close() queued behind this call has not gone out yet.
    if (holdId) {
      this.send('channel.close', {
        replyCode: REPLY_CODES.REPLY_SUCCESS,
        replyText: `${call.name} got no reply in time`,
        classId: 0,
        methodId: 0,
      });
    }
    this.finish(error, next);
    const closed = new ClosedError(`channel ${this.id} was closed: ${error.message}`, { cause: error });
    for (const c of behind) c.reject(closed);
  };

  /** @internal The broker's close-ok (or close) of an abandoned channel arrived: its id may be reused. */
  releaseAbandoned(): void {
    if (this.state !== 'abandoned') return;
    this.moveTo('closed');
    this.inbound.reset();
    this.host.releaseChannel(this.id);
  }

  // ------------------------------------------------------------------ exchanges

  /** Declares an exchange (exchange.declare). */
  async exchangeDeclare(exchange: string, type: string, options: ExchangeDeclareOptions = {}): Promise<void> {
    await this.call('exchange.declare', exchangeDeclareArgs(exchange, type, options), options);
  }

  /** Deletes an exchange (exchange.delete). With `ifUnused`, fails (406) while it has bindings. */
  async exchangeDelete(exchange: string, options: { ifUnused?: boolean } & CallOptions = {}): Promise<void> {
    requireName(exchange, 'exchange name');
    await this.call('exchange.delete', { exchange, ifUnused: options.ifUnused ?? false }, options);
  }

  /** Binds exchange `destination` to exchange `source` (exchange.bind, a RabbitMQ extension). */
  async exchangeBind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    await this.call('exchange.bind', bindArgs({ destination, source }, routingKey, args), options);
  }

  /** Removes an exchange-to-exchange binding (exchange.unbind). */
  async exchangeUnbind(
    destination: string,
    source: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    await this.call('exchange.unbind', bindArgs({ destination, source }, routingKey, args), options);
  }

  // ------------------------------------------------------------------ queues

  /** Declares a queue (queue.declare). An empty name asks the broker to make one up. */
  async queueDeclare(queue = '', options: QueueDeclareOptions = {}): Promise<QueueDeclareResult> {
    const { args: ok } = await this.call('queue.declare', queueDeclareArgs(queue, options), options);
    return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount };
  }

  /** Binds a queue to an exchange (queue.bind). */
  async queueBind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    await this.call('queue.bind', bindArgs({ queue, exchange }, routingKey, args), options);
  }

  /** Removes a binding (queue.unbind). */
  async queueUnbind(
    queue: string,
    exchange: string,
    routingKey = '',
    args: FieldTable = {},
    options?: CallOptions,
  ): Promise<void> {
    await this.call('queue.unbind', bindArgs({ queue, exchange }, routingKey, args), options);
  }

  /** Removes every ready message from a queue (queue.purge); resolves with how many. */
  async queuePurge(queue: string, options?: CallOptions): Promise<{ messageCount: number }> {
    requireName(queue, 'queue name');
    const reply = await this.call('queue.purge', { queue }, options);
    return { messageCount: reply.args.messageCount };
  }

  /** Deletes a queue (queue.delete); resolves with how many messages it held. */
  async queueDelete(
    queue: string,
    options: { ifUnused?: boolean; ifEmpty?: boolean } & CallOptions = {},
  ): Promise<{ messageCount: number }> {
    requireName(queue, 'queue name');
    const reply = await this.call(
      'queue.delete',
      { queue, ifUnused: options.ifUnused ?? false, ifEmpty: options.ifEmpty ?? false },
      options,
    );
    return { messageCount: reply.args.messageCount };
  }

  // ------------------------------------------------------------------ basic

  /**
   * Limits unacknowledged deliveries (basic.qos). `global: false` (default) applies the limit to each
   * consumer started afterwards on this channel; `true` to the channel as a whole.
   *
   * With a `prefetchCount` of 8 or more, acks given in delivery order are sent together as one
   * basic.ack(multiple) once they cover a quarter of it, or after 1 ms: the broker spends far less
   * time on acks, and consuming runs faster. A nack, a reject, `basicRecover` and closing the channel
   * or the connection send the held acks first, so the wire order is the order you gave them. If the
   * connection is cut meanwhile, those messages are delivered again (as with any ack not yet sent).
   * `coalesceAcks: false` sends them at the next flush instead, a tick later at most.
   *
   * @example
   * ```ts
   * await ch.basicQos(100); // acks leave in runs of 25, or after 1 ms
   * await ch.basicQos(100, { coalesceAcks: false }); // acks leave with the next write
   * ```
   */
  async basicQos(
    prefetchCount: number,
    options: { prefetchSize?: number; global?: boolean; coalesceAcks?: boolean } & CallOptions = {},
  ): Promise<void> {
    if (!Number.isInteger(prefetchCount) || prefetchCount < 0 || prefetchCount > 65535) {
      throw new InvalidArgumentError(`prefetchCount must be a whole number from 0 to 65535, got ${prefetchCount}`);
    }
    await this.call(
      'basic.qos',
      {
        prefetchCount,
        prefetchSize: options.prefetchSize ?? 0,
        global: options.global ?? false,
      },
      options,
    );
    this.acks.holdUpTo(options.coalesceAcks === false ? 0 : prefetchCount);
  }

  /** @internal The connection is about to send connection.close: held acks go first. */
  onConnectionClosing(): void {
    this.acks.flushRun(); // writes only while the channel is open or closing
  }

  /**
   * Starts a consumer (basic.consume). `handler` runs for every delivery; call `msg.ack()` unless
   * `noAck` is set.
   */
  async basicConsume(queue: string, options: ConsumeOptions | undefined, handler: MessageHandler): Promise<Consumer> {
    requireName(queue, 'queue name');
    options ??= {};
    if (typeof handler !== 'function') throw new InvalidArgumentError('basicConsume needs a handler function');
    // The consumer is created and registered as consume-ok is handled (see onMethod), before any
    // delivery for it can arrive; the call resolves with it even if the broker has cancelled it since.
    return this.call(
      'basic.consume',
      {
        queue,
        consumerTag: options.consumerTag ?? '',
        noLocal: options.noLocal ?? false,
        noAck: options.noAck ?? false,
        exclusive: options.exclusive ?? false,
        arguments: options.arguments ?? {},
      },
      options,
      { handler },
    );
  }

  /** Stops a consumer (basic.cancel). Resolves once the broker confirmed; deliveries may precede that. */
  async basicCancel(consumerTag: string, options?: CallOptions): Promise<void> {
    requireName(consumerTag, 'consumer tag');
    if (this.state === 'open') await this.call('basic.cancel', { consumerTag }, options);
    this.consumers.cancelled(consumerTag, { serverCancelled: false });
  }

  /** @internal */
  cancelConsumer(consumerTag: string): Promise<void> {
    return this.basicCancel(consumerTag);
  }

  /**
   * Publishes a message (basic.publish). Resolves when written to the socket (waiting while the
   * socket is backed up), or, after `confirmSelect()`, when the broker confirms it. Rejects with
   * `PublishNacked`, `MessageReturned` (mandatory and unroutable, confirm mode), or the error that
   * closed the channel.
   */
  basicPublish(
    exchange: string,
    routingKey: string,
    body: Buffer,
    properties?: BasicProperties,
    options?: PublishOptions,
  ): Promise<void> {
    if (!this.canSend) return Promise.reject(this.unusableError());
    return this.publishing.publish(exchange, routingKey, body, properties, options);
  }

  /**
   * @internal The robust publisher's path, in confirm mode only: no promise; `pending` hears of the
   * ack, nack or return synchronously, in the same read that brought it, so that a close read right
   * after it cannot overtake it. When the channel closes first, `pending.lost` (or `reject`) is
   * called before the channel's `'close'` event. Throws what `basicPublish` rejects with.
   */
  publishTracked(body: Buffer, properties: BasicProperties | undefined, pending: PendingConfirm): void {
    if (this.publishing.confirms !== undefined && !this.canSend) throw this.unusableError();
    this.publishing.publishTracked(body, properties, pending);
  }

  /** Fetches one message (basic.get); `null` when the queue is empty. */
  async basicGet(queue: string, options: { noAck?: boolean } & CallOptions = {}): Promise<Message | null> {
    requireName(queue, 'queue name');
    const result = await this.call('basic.get', { queue, noAck: options.noAck ?? false }, options);
    return result instanceof Message ? result : null;
  }

  /** Acknowledges a delivery by tag (basic.ack). Prefer `msg.ack()`. A no-op when the channel is closed. */
  basicAck(deliveryTag: number, options: { multiple?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acks.settle(deliveryTag, settlement('ack', options.multiple ?? false, false));
  }

  /** Negatively acknowledges (basic.nack). A no-op when the channel is closed. */
  basicNack(deliveryTag: number, options: { multiple?: boolean; requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acks.settle(deliveryTag, settlement('nack', options.multiple ?? false, options.requeue ?? true));
  }

  /** Rejects one delivery (basic.reject). A no-op when the channel is closed. */
  basicReject(deliveryTag: number, options: { requeue?: boolean } = {}): void {
    if (this.state !== 'open') return;
    this.acks.settle(deliveryTag, settlement('reject', false, options.requeue ?? true));
  }

  /** Asks the broker to redeliver every unacknowledged message on this channel (basic.recover). */
  async basicRecover(options: { requeue?: boolean } & CallOptions = {}): Promise<void> {
    this.acks.flushRun();
    const delivered = this.acks.highestDelivered;
    await this.call('basic.recover', { requeue: options.requeue ?? true }, options);
    // The broker forgot the old tags; redeliveries come with new ones.
    this.acks.settledThrough(delivered);
  }

  /** @internal Acknowledgement from a Message: dropped if this channel is not the one that delivered it. */
  settle(deliveryTag: number, generation: number, how: Settlement): boolean {
    if (generation !== this.generation || !this.canSend) return false;
    this.acks.settle(deliveryTag, how);
    return true;
  }

  /** @internal True while acks (or other frames) of this channel's connection wait for the next flush. */
  get hasPendingWrites(): boolean {
    return this.host.hasPendingWrites;
  }

  /** @internal Writes what waits for the next flush of this channel's connection now. */
  flushNow(): void {
    this.host.flushNow();
  }

  /** @internal Runs `hook` once what waits for the next flush of this channel's connection is written. */
  afterNextFlush(hook: () => void): void {
    this.host.afterNextFlush(hook);
  }

  // ------------------------------------------------------------------ confirm, tx, flow

  /** Puts the channel in confirm mode: from now on `basicPublish` resolves when the broker confirms. */
  async confirmSelect(options?: CallOptions): Promise<void> {
    if (this.publishing.confirms !== undefined) return;
    await this.call('confirm.select', { nowait: false }, options);
    this.publishing.startConfirms();
  }

  /** Starts transactional mode (tx.select). */
  async txSelect(options?: CallOptions): Promise<void> {
    await this.call('tx.select', {}, options);
  }

  /** Commits the current transaction (tx.commit). */
  async txCommit(options?: CallOptions): Promise<void> {
    await this.call('tx.commit', {}, options);
  }

  /** Abandons the current transaction (tx.rollback). */
  async txRollback(options?: CallOptions): Promise<void> {
    await this.call('tx.rollback', {}, options);
  }

  /** Asks the broker to pause (`false`) or resume (`true`) deliveries to this channel (channel.flow). */
  async flow(active: boolean, options?: CallOptions): Promise<boolean> {
    const reply = await this.call('channel.flow', { active }, options);
    return reply.args.active;
  }

  /** True unless the broker asked this channel to stop publishing. */
  get isFlowActive(): boolean {
    return this.flowActive;
  }

  // ------------------------------------------------------------------ close

  /**
   * Closes the channel (channel.close) after the calls already queued. Publishes awaiting a confirm
   * are rejected if the broker has not confirmed them by then. Idempotent. With `timeout` (default
   * the connection's `operationTimeout`), it resolves at the latest that long after the close was
   * sent, the broker's close-ok or not; the id is then kept until the close-ok arrives.
   */
  async close(options?: { timeout?: number }): Promise<void> {
    if (isEnded(this.state)) return;
    if (this.state === 'closing') {
      await new Promise((resolve) => this.once('close', resolve));
      return;
    }
    const connection = this.host.unusable;
    if (connection !== undefined) {
      this.finish(connection instanceof ClosedError ? new ClosedError('connection closed') : connection);
      return;
    }
    this.acks.flushRun();
    const closing = this.call(
      'channel.close',
      { replyCode: REPLY_CODES.REPLY_SUCCESS, replyText: 'Goodbye', classId: 0, methodId: 0 },
      options?.timeout === undefined ? undefined : { timeout: options.timeout },
    );
    this.moveTo('closing');
    try {
      await closing;
    } catch {
      // Closed by the broker or the connection meanwhile: closed either way.
    }
    this.finish(undefined);
  }

  /** `await using ch = await conn.openChannel()` closes the channel at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ------------------------------------------------------------------ receiving

  /** @internal */
  onMethod(m: AMQPMethod): void {
    this.inbound.method(m);
  }

  /** @internal */
  onHeader(header: ContentHeader): void {
    this.inbound.header(header);
  }

  /** @internal */
  onBody(payload: Buffer): void {
    this.inbound.body(payload);
  }

  /** @internal */
  get lifecycle(): ChannelState {
    return this.state;
  }

  /** @internal */
  closedByServer(error: ChannelClosedByServer): void {
    this.finish(error);
  }

  /** @internal */
  flowChanged(active: boolean): void {
    this.flowActive = active;
    this.emit('flow', active);
  }

  /** @internal A mandatory message came back: its confirm rejects with it, and `'return'` tells of it. */
  returned(message: ReturnedMessage): void {
    this.publishing.confirms?.markReturned(new MessageReturned(message));
    if (this.listenerCount('return') > 0) this.emit('return', message);
  }

  /** @internal The connection died. */
  onConnectionLost(error: AMQPError): void {
    this.finish(error);
    this.releaseAbandoned();
  }

  /**
   * Ends the channel for its user: rejects pending calls and confirms, stops consumers, and frees
   * the id, unless `next` is `abandoned` (then the broker's close-ok frees it).
   */
  private finish(error: AMQPError | undefined, next: 'closed' | 'abandoned' = 'closed'): void {
    if (isEnded(this.state)) return;
    this.moveTo(next);
    this.closeError = error;
    this.inbound.reset();
    const reason = error ?? new ClosedError(`channel ${this.id} was closed`);
    for (const c of this.calls.drain()) {
      // A close we asked for completes normally when the broker closes or the connection drops.
      if (c.name === 'channel.close') c.resolve(null);
      else c.reject(reason);
    }
    this.publishing.confirms?.failAll(reason);
    this.acks.flushRun(); // only clears the hold: the channel no longer writes
    this.consumers.stopAll(error);
    if (next === 'closed') this.host.releaseChannel(this.id);
    this.emit('close', error);
  }
}

disposable(Channel.prototype, 'close');
